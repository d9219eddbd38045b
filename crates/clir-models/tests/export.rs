//! `hf_export`: a (trimmed) checkpoint written as a Hugging Face / sentence-transformers
//! folder, read back by our HF loader and by an independent float64 numpy forward
//! (`tests/reference/hf_forward.py`, reading the folder with the `safetensors` package).
//! Models are small and made up (random weights, a WordLevel tokenizer).

mod common;

use std::path::Path;

use clir_models::embedder::load_named;
use clir_models::hf_export::export_hf;
use clir_models::{
    Embedder, EmbedderConfig, Encoder, EncoderConfig, Pooling, Prefixes, TextKind, TextTokenizer,
};
use common::*;

const WORDS: [&str; 14] = [
    "query:", "passage:", "the", "cat", "sat", "on", "mat", "a", "dog", "ran", "far", "big", "red",
    "house",
];
/// Trimming keeps these texts' words (plus prefixes and specials); big / red / house go.
const CORPUS: [&str; 2] = ["the cat sat on the mat", "a dog ran far"];
const TEXTS: [&str; 4] = [
    "the cat sat",
    "a dog ran far on the mat",
    "mat",
    "cat cat dog",
];

/// A made-up embedder with freshly initialised random weights.
fn tiny(
    dir: &Path,
    position_offset: usize,
    pooling: Pooling,
    normalize: bool,
    prefixes: (&str, &str),
) -> Embedder {
    let tok_path = tiny_tokenizer(dir, &WORDS);
    let encoder = EncoderConfig::new(4 + WORDS.len(), 16, 2, 4, 32, 24)
        .with_position_offset(position_offset)
        .with_layer_norm_eps(1e-6);
    let max_len = encoder.max_tokens();
    Embedder {
        config: EmbedderConfig {
            name: "tiny-model".into(),
            encoder: encoder.clone(),
            pooling,
            normalize,
            query_prefix: prefixes.0.into(),
            passage_prefix: prefixes.1.into(),
            max_len,
            base: None,
        },
        encoder: encoder.init(&flex()),
        tokenizer: TextTokenizer::from_file(&tok_path, max_len).unwrap(),
        device: flex(),
    }
}

/// Every tensor of an encoder except the word and position tables, in a fixed order.
fn other_tensors(e: &Encoder) -> Vec<Vec<f32>> {
    let mut out = vec![
        to_vec(e.embeddings.token_type.weight.val()),
        to_vec(e.embeddings.norm.gamma.val()),
        to_vec(e.embeddings.norm.beta.as_ref().unwrap().val()),
    ];
    for l in &e.layers {
        let a = &l.attention;
        let f = &l.feed_forward;
        for lin in [
            &a.query,
            &a.key,
            &a.value,
            &a.output,
            &f.intermediate,
            &f.output,
        ] {
            out.push(to_vec(lin.weight.val()));
            out.push(to_vec(lin.bias.as_ref().unwrap().val()));
        }
        for ln in [&a.norm, &f.norm] {
            out.push(to_vec(ln.gamma.val()));
            out.push(to_vec(ln.beta.as_ref().unwrap().val()));
        }
    }
    out
}

/// A base model saved as a checkpoint, and a "trained" student: other random weights,
/// vocabulary trimmed to [`CORPUS`], saved and loaded back as a checkpoint.
struct Setup {
    base: Embedder,
    student: Embedder,
}

fn setup(
    position_offset: usize,
    pooling: Pooling,
    normalize: bool,
    prefixes: (&str, &str),
) -> Setup {
    let root_tmp = tempfile::tempdir().unwrap();
    let root = root_tmp.path().to_path_buf();
    let base = tiny(
        &root.join("base"),
        position_offset,
        pooling,
        normalize,
        prefixes,
    );
    base.save(&root.join("base")).unwrap();
    let mut trained = tiny(
        &root.join("trained"),
        position_offset,
        pooling,
        normalize,
        prefixes,
    )
    .trim_vocab(CORPUS)
    .unwrap();
    trained.config.base = Some(root.join("base").display().to_string());
    trained.save(&root.join("student")).unwrap();
    // both read back the way `xtask export` reads them
    let base = load_named(root.join("base").to_str().unwrap(), None, &flex()).unwrap();
    let student = Embedder::load_checkpoint_as_saved(&root.join("student"), &flex()).unwrap();
    assert!(student.tokenizer.vocab_map().is_some());
    Setup { base, student }
}

/// Python with numpy and safetensors, or `None` after a skip line (a failure when
/// `OPTICAL_REQUIRE_REAL_DATA=1`).
fn python_reference(folder: &Path, ids: &[Vec<u32>]) -> Option<Vec<Vec<f64>>> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/hf_forward.py");
    let ids_path = folder.with_extension("ids.json");
    std::fs::write(&ids_path, serde_json::to_string(ids).unwrap()).unwrap();
    let out = std::process::Command::new("python3")
        .arg(&script)
        .arg(folder)
        .arg(&ids_path)
        .output();
    let missing = match &out {
        Err(e) => Some(format!("python3: {e}")),
        Ok(o) if o.status.code() == Some(3) => Some(String::from_utf8_lossy(&o.stderr).into()),
        Ok(_) => None,
    };
    if let Some(why) = missing {
        let msg = format!(
            "numpy/safetensors reference unavailable ({}): python3 -m pip install numpy safetensors",
            why.trim()
        );
        if std::env::var(clir_data::fetch::cached::REQUIRE_ENV).as_deref() == Ok("1") {
            panic!("{msg}");
        }
        eprintln!("skipped: {msg}");
        return None;
    }
    let out = out.unwrap();
    assert!(
        out.status.success(),
        "hf_forward.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

/// Exports `s.student`, loads the folder with `Embedder::load_hf` and checks weights,
/// settings and embeddings against the checkpoint and the numpy reference.
fn export_round_trip(s: &Setup) -> Embedder {
    let out_tmp = tempfile::tempdir().unwrap();
    let out = out_tmp.path().join("hf");
    let written = export_hf(&s.student, Some(&s.base), &out).unwrap();
    for f in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "modules.json",
        "1_Pooling/config.json",
        "sentence_bert_config.json",
        "config_sentence_transformers.json",
    ] {
        assert!(
            written.contains(&out.join(f)),
            "{f} not written: {written:?}"
        );
    }
    let hf = Embedder::load_hf(&out, &flex()).unwrap();
    assert!(hf.tokenizer.vocab_map().is_none());

    // settings
    let (c, h) = (&s.student.config, &hf.config);
    assert_eq!(
        (h.pooling, h.normalize, h.max_len),
        (c.pooling, c.normalize, c.max_len)
    );
    assert_eq!(
        (&h.query_prefix, &h.passage_prefix),
        (&c.query_prefix, &c.passage_prefix)
    );
    assert_eq!(h.encoder.max_tokens(), c.encoder.max_tokens());
    assert_eq!(h.encoder.vocab_size, s.base.config.encoder.vocab_size);

    // weights: untouched rows bit-equal to the base, kept rows to the trained ones
    let d = c.encoder.hidden_size;
    let full = to_vec(hf.encoder.embeddings.word.weight.val());
    let base_rows = to_vec(s.base.encoder.embeddings.word.weight.val());
    let trained_rows = to_vec(s.student.encoder.embeddings.word.weight.val());
    let map = s.student.tokenizer.vocab_map().unwrap();
    assert!(map.len() < s.base.config.encoder.vocab_size);
    for id in 0..s.base.config.encoder.vocab_size {
        let row = &full[id * d..(id + 1) * d];
        if map.contains(id as u32) {
            let new = map.to_new(id as u32) as usize;
            assert_eq!(row, &trained_rows[new * d..(new + 1) * d], "kept row {id}");
            assert_ne!(
                row,
                &base_rows[id * d..(id + 1) * d],
                "row {id} not trained"
            );
        } else {
            assert_eq!(row, &base_rows[id * d..(id + 1) * d], "untouched row {id}");
        }
    }
    // the positions this encoder reads, wherever the HF table puts them
    let positions = |e: &Embedder| {
        let off = e.config.encoder.position_offset;
        to_vec(e.encoder.embeddings.position.weight.val())[off * d..].to_vec()
    };
    assert_eq!(positions(&hf), positions(&s.student));
    let others = other_tensors(&hf.encoder);
    assert_eq!(others, other_tensors(&s.student.encoder));
    assert_ne!(others, other_tensors(&s.base.encoder));

    // embeddings: the same f32 weights through the same code, so equal up to rounding
    for kind in [TextKind::Query, TextKind::Passage] {
        let a = s.student.embed(&TEXTS, kind, 2).unwrap();
        let b = hf.embed(&TEXTS, kind, 2).unwrap();
        for (x, y) in a.iter().zip(&b) {
            assert!(max_abs_diff(x, y) <= 1e-6, "{kind:?}: {x:?} vs {y:?}");
        }
    }

    // independent float64 numpy forward of the exported folder, on our token ids
    let mut ids = Vec::new();
    let mut ours = Vec::new();
    for kind in [TextKind::Query, TextKind::Passage] {
        for t in TEXTS {
            ids.push(
                hf.tokenizer
                    .encode(&format!("{}{t}", h.prefix(kind)))
                    .unwrap(),
            );
        }
        ours.extend(hf.embed(&TEXTS, kind, 3).unwrap());
    }
    if let Some(reference) = python_reference(&out, &ids) {
        assert_eq!(reference.len(), ours.len());
        for (r, o) in reference.iter().zip(&ours) {
            let r: Vec<f32> = r.iter().map(|&x| x as f32).collect();
            let diff = max_abs_diff(&r, o);
            assert!(diff <= 1e-5, "numpy reference differs by {diff}");
        }
    }
    hf
}

#[test]
fn trimmed_bert_checkpoint_exports_with_full_vocabulary() {
    let s = setup(0, Pooling::Mean, true, ("query: ", "passage: "));
    let out_tmp = tempfile::tempdir().unwrap();
    let out = out_tmp.path().to_path_buf();
    export_hf(&s.student, Some(&s.base), &out).unwrap();
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["model_type"], "bert");
    assert_eq!(cfg["architectures"][0], "BertModel");
    assert_eq!(cfg["max_position_embeddings"], 24);
    let modules = std::fs::read_to_string(out.join("modules.json")).unwrap();
    assert!(modules.contains("Normalize"), "{modules}");
    let st: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("config_sentence_transformers.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        st["prompts"],
        serde_json::json!({"query": "query: ", "passage": "passage: "})
    );
    export_round_trip(&s);
}

#[test]
fn xlmr_family_exports_with_shifted_positions_and_cls_pooling() {
    // position offset 2 with a tokenizer padding with id 0: XLM-R reads positions from
    // pad_token_id + 1 = 1, so the export drops one unused leading row
    let s = setup(2, Pooling::Cls, false, ("", ""));
    let hf = export_round_trip(&s);
    assert_eq!(hf.config.encoder.position_offset, 1);
    assert_eq!(hf.config.encoder.max_position, 23);
    assert!(!hf.config.normalize);
    let dir_tmp = tempfile::tempdir().unwrap();
    let dir = dir_tmp.path().to_path_buf();
    export_hf(&s.student, Some(&s.base), &dir).unwrap();
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["model_type"], "xlm-roberta");
    assert_eq!(cfg["pad_token_id"], 0);
    let st: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("config_sentence_transformers.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(st["prompts"], serde_json::json!({}));
}

#[test]
fn untrimmed_model_exports_without_a_base() {
    let root_tmp = tempfile::tempdir().unwrap();
    let root = root_tmp.path().to_path_buf();
    let e = tiny(&root.join("m"), 0, Pooling::Mean, true, ("q ", "p "));
    export_hf(&e, None, &root.join("hf")).unwrap();
    let hf = Embedder::load_hf(&root.join("hf"), &flex()).unwrap();
    assert_eq!(
        to_vec(hf.encoder.embeddings.word.weight.val()),
        to_vec(e.encoder.embeddings.word.weight.val())
    );
    assert_eq!(
        (
            hf.config.query_prefix.as_str(),
            hf.config.passage_prefix.as_str()
        ),
        ("q ", "p ")
    );
}

#[test]
fn export_errors_name_the_problem() {
    let s = setup(0, Pooling::Mean, true, ("query: ", "passage: "));
    let out_tmp = tempfile::tempdir().unwrap();
    let out = out_tmp.path().to_path_buf();
    let err = export_hf(&s.student, None, &out).unwrap_err().to_string();
    assert!(
        err.contains("trimmed") && err.contains("base model"),
        "{err}"
    );

    let err = export_hf(&s.student, Some(&s.student), &out)
        .unwrap_err()
        .to_string();
    assert!(err.contains("is itself trimmed"), "{err}");

    let root_tmp = tempfile::tempdir().unwrap();

    let root = root_tmp.path().to_path_buf();
    let tok = tiny_tokenizer(&root, &WORDS);
    let wide_cfg = EncoderConfig::new(4 + WORDS.len(), 32, 1, 4, 32, 24);
    let wide = Embedder {
        config: EmbedderConfig {
            name: "wide-base".into(),
            encoder: wide_cfg.clone(),
            ..s.base.config.clone()
        },
        encoder: wide_cfg.init(&flex()),
        tokenizer: TextTokenizer::from_file(&tok, 24).unwrap(),
        device: flex(),
    };
    let err = export_hf(&s.student, Some(&wide), &out)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("wide-base") && err.contains("width 32") && err.contains("width 16"),
        "{err}"
    );

    // Same size and width, but two words swap ids: the rows would land on the wrong tokens.
    let root_tmp = tempfile::tempdir().unwrap();
    let root = root_tmp.path().to_path_buf();
    let mut swapped = WORDS;
    swapped.swap(3, 4); // "cat" and "sat"
    let tok = tiny_tokenizer(&root, &swapped);
    let other = Embedder {
        config: EmbedderConfig {
            name: "other-vocab".into(),
            ..s.base.config.clone()
        },
        encoder: s.base.encoder.clone(),
        tokenizer: TextTokenizer::from_file(&tok, 24).unwrap(),
        device: flex(),
    };
    let err = export_hf(&s.student, Some(&other), &out)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("other-vocab") && err.contains("2 tokens differ") && err.contains("\"cat\""),
        "{err}"
    );
}

#[test]
fn prefixes_parse_and_load_from_sentence_transformers_prompts() {
    let p = |s: &str| s.parse::<Prefixes>();
    assert_eq!(
        p("e5").unwrap(),
        Prefixes {
            query: "query: ".into(),
            passage: "passage: ".into()
        }
    );
    assert_eq!(
        p("none").unwrap(),
        Prefixes {
            query: String::new(),
            passage: String::new()
        }
    );
    assert_eq!(
        p("q> |").unwrap(),
        Prefixes {
            query: "q> ".into(),
            passage: String::new()
        }
    );
    for bad in ["e6", "a|b|c", ""] {
        let err = p(bad).unwrap_err();
        assert!(err.contains("QUERY|PASSAGE"), "{bad}: {err}");
    }

    // an HF folder named like E5 without prompts warns; `document` counts as the passage key
    let root_tmp = tempfile::tempdir().unwrap();
    let root = root_tmp.path().to_path_buf();
    let e = tiny(&root.join("m"), 0, Pooling::Mean, true, ("", ""));
    let dir = root.join("my-e5-export");
    export_hf(&e, None, &dir).unwrap();
    let hf = Embedder::load_hf(&dir, &flex()).unwrap();
    assert!(hf.missing_prefix_warning().unwrap().contains("--prefix e5"));
    let fixed = hf.with_prefixes(&p("e5").unwrap());
    assert!(fixed.missing_prefix_warning().is_none());
    assert_eq!(fixed.config.prefix(TextKind::Passage), "passage: ");

    let st = dir.join("config_sentence_transformers.json");
    std::fs::write(&st, r#"{"prompts": {"query": "q: ", "document": "d: "}}"#).unwrap();
    let hf = Embedder::load_hf(&dir, &flex()).unwrap();
    assert_eq!(
        (
            hf.config.query_prefix.as_str(),
            hf.config.passage_prefix.as_str()
        ),
        ("q: ", "d: ")
    );
    assert!(hf.missing_prefix_warning().is_none());

    std::fs::write(&st, r#"{"prompts": {"query": 3}}"#).unwrap();
    let err = Embedder::load_hf(&dir, &flex()).unwrap_err().to_string();
    assert!(
        err.contains("config_sentence_transformers.json") && err.contains("prompts.query"),
        "{err}"
    );
}

#[test]
fn real_e5_small_student_exports_as_xlmr_with_prompts() {
    let Some((w, t)) = e5_paths() else { return };
    let mut e5 = Embedder::load_e5s1(&w, &t, &flex()).unwrap();
    // a shallow student keeps the test quick; the export takes its depth from the checkpoint
    e5.encoder.layers.truncate(2);
    e5.config.encoder.num_layers = 2;
    let texts = [
        "Optimal transport aligns the tokens.",
        "Der Hund läuft über die Wiese.",
    ];
    let student = e5.clone().trim_vocab(texts).unwrap();
    let root_tmp = tempfile::tempdir().unwrap();
    let root = root_tmp.path().to_path_buf();
    student.save(&root.join("student")).unwrap();
    let student = Embedder::load_checkpoint_as_saved(&root.join("student"), &flex()).unwrap();
    let out = root.join("multilingual-e5-small-student");
    export_hf(&student, Some(&e5), &out).unwrap();
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(
        (cfg["model_type"].as_str(), cfg["pad_token_id"].as_u64()),
        (Some("xlm-roberta"), Some(1))
    );
    assert_eq!(cfg["num_hidden_layers"], 2);
    let hf = Embedder::load_hf(&out, &flex()).unwrap();
    assert_eq!(hf.config.encoder.position_offset, 2);
    assert_eq!(
        hf.config.encoder.max_tokens(),
        student.config.encoder.max_tokens()
    );
    assert_eq!(hf.config.query_prefix, "query: ");
    assert!(hf.missing_prefix_warning().is_none());
    assert_eq!(hf.config.encoder.vocab_size, e5.config.encoder.vocab_size);
    let mut ids = Vec::new();
    let mut ours = Vec::new();
    for kind in [TextKind::Query, TextKind::Passage] {
        let a = student.embed(&texts, kind, 2).unwrap();
        let b = hf.embed(&texts, kind, 2).unwrap();
        for (x, y) in a.iter().zip(&b) {
            assert!(max_abs_diff(x, y) <= 1e-6, "{kind:?}");
        }
        // a text the trimmed student reads as <unk> but the full vocabulary knows
        let unseen = ["Kwa nini mbwa anakimbia?"];
        assert!(student.trimmed_away_tokens(&unseen, kind).unwrap().1 > 0);
        let full = e5.embed(&unseen, kind, 1).unwrap();
        let exported = hf.embed(&unseen, kind, 1).unwrap();
        assert!(
            max_abs_diff(&full[0], &exported[0]) <= 1e-6,
            "{kind:?} unseen"
        );
        for t in texts {
            ids.push(
                hf.tokenizer
                    .encode(&format!("{}{t}", hf.config.prefix(kind)))
                    .unwrap(),
            );
        }
        ours.extend(b);
    }
    if let Some(reference) = python_reference(&out, &ids) {
        for (r, o) in reference.iter().zip(&ours) {
            let r: Vec<f32> = r.iter().map(|&x| x as f32).collect();
            let diff = max_abs_diff(&r, o);
            assert!(diff <= 1e-5, "numpy reference differs by {diff}");
        }
    }
    // the exported folder holds ~400 MB of f32 weights
    std::fs::remove_dir_all(&root).unwrap();
}
