//! Training end to end on tiny made-up models and a made-up bitext: the OT loss falls, the
//! student's token states move toward the teacher's states of their translations, a killed
//! run resumes to the same weights, and teacher states are reused from the disk store.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use clir_data::formats::BitextPair;
use clir_models::embedder::EmbedderConfig;
use clir_models::{Embedder, EncoderConfig, Pooling, TextKind, TextTokenizer};
use clir_train::config::{Method, TrainConfig};
use clir_train::monolingual::MonoQuery;
use clir_train::trainer::{TrainInputs, snapshot_dir, train};
use ot_core::backend::Backend;
use rand::{Rng, SeedableRng};

const WORDS: usize = 12;

fn device() -> Device {
    Backend::cpu_default().device().unwrap()
}

fn english(i: usize) -> String {
    format!("e{i}")
}
fn target(i: usize) -> String {
    format!("t{i}")
}

/// A WordLevel `tokenizer.json` over both made-up languages with BERT-style specials.
fn tokenizer(dir: &Path) -> PathBuf {
    let words: Vec<String> = (0..WORDS)
        .map(english)
        .chain((0..WORDS).map(target))
        .collect();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    clir_models::tokenizer::write_word_level_tokenizer(dir, &words).unwrap()
}

/// Saves a randomly initialised tiny encoder as a checkpoint directory. The initialisation is
/// seeded per model name; the backend's generator is global, so a lock keeps tests running in
/// parallel from drawing in between.
fn tiny_model(dir: &Path, name: &str, tok: &Path) -> PathBuf {
    static INIT: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let d = device();
    let enc = EncoderConfig::new(4 + 2 * WORDS, 16, 2, 2, 32, 32);
    let out = dir.join(name);
    let e = Embedder {
        config: EmbedderConfig {
            name: name.into(),
            encoder: enc.clone(),
            pooling: Pooling::Mean,
            normalize: true,
            query_prefix: String::new(),
            passage_prefix: String::new(),
            max_len: 32,
            base: None,
        },
        encoder: {
            let _guard = INIT.lock().unwrap();
            d.seed(name.bytes().fold(17u64, |h, b| h * 31 + b as u64));
            enc.init(&d)
        },
        tokenizer: TextTokenizer::from_file(tok, 32).unwrap(),
        device: d,
    };
    e.save(&out).unwrap();
    out
}

/// Sentences of 3–6 distinct words; the translation maps `e_k → t_k` and reverses the order.
fn bitext(n: usize, seed: u64) -> Vec<BitextPair> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let len = rng.random_range(3..=6);
            let mut ws: Vec<usize> = (0..WORDS).collect();
            rand::seq::SliceRandom::shuffle(ws.as_mut_slice(), &mut rng);
            ws.truncate(len);
            let src: Vec<String> = ws.iter().map(|&w| english(w)).collect();
            let tgt: Vec<String> = ws.iter().rev().map(|&w| target(w)).collect();
            BitextPair {
                src: src.join(" "),
                tgt: tgt.join(" "),
            }
        })
        .collect()
}

/// Made-up English relevance data: query `k` is two English words, its relevant documents
/// hold both among other words.
fn monolingual(n: usize) -> Vec<MonoQuery> {
    (0..n)
        .map(|k| {
            let (a, b) = (k % WORDS, (k + 1) % WORDS);
            MonoQuery {
                id: format!("q{k}"),
                text: format!("{} {}", english(a), english(b)),
                docs: vec![
                    format!("{} {} {}", english(a), english((k + 5) % WORDS), english(b)),
                    format!("{} {}", english(b), english(a)),
                ],
            }
        })
        .collect()
}

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    teacher: PathBuf,
    student: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let tok = tokenizer(&root.join("tok"));
    Fixture {
        teacher: tiny_model(&root, "teacher", &tok),
        student: tiny_model(&root, "student", &tok),
        root,
        _dir: dir,
    }
}

fn config(f: &Fixture, method: Method, steps: usize) -> TrainConfig {
    let mut c = TrainConfig::new();
    c.model.teacher = f.teacher.display().to_string();
    c.model.student = f.student.display().to_string();
    c.model.trim_vocab = false;
    c.model.freeze_embeddings = false;
    c.model.max_len = 32;
    c.loss.method = method;
    c.optim.lr = 1e-2;
    c.optim.weight_decay = 0.0;
    c.optim.warmup_steps = 2;
    c.optim.steps = steps;
    c.optim.batch_size = 8;
    c.run.progress = false;
    c.run.checkpoint_every = 10;
    c
}

fn to_vec(t: Tensor<3>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_into_vec().unwrap()
}

/// Mean cosine between each target token's state (student) and the state of its source word
/// (teacher), over `pairs`.
fn translation_alignment(teacher: &Embedder, student: &Embedder, pairs: &[BitextPair]) -> f32 {
    let mut total = 0.0;
    let mut count = 0;
    for p in pairs {
        let tb = teacher
            .tokenize(&[p.src.as_str()], TextKind::Passage)
            .unwrap();
        let sb = student
            .tokenize(&[p.tgt.as_str()], TextKind::Passage)
            .unwrap();
        let t = to_vec(teacher.encode(&tb).last());
        let s = to_vec(student.encode(&sb).last());
        let d = 16;
        let n = p.src.split(' ').count();
        // Source word j (token j + 1) translates to target token n − j (reversed order).
        for j in 0..n {
            let a = &t[(j + 1) * d..(j + 2) * d];
            let b = &s[(n - j) * d..(n - j + 1) * d];
            let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
            let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
            let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
            total += dot / (na * nb);
            count += 1;
        }
    }
    total / count as f32
}

#[test]
fn optical_training_lowers_the_loss_and_aligns_translations() {
    let f = fixture();
    let pairs = bitext(64, 1);
    let held_out = bitext(16, 2);
    let cfg = config(&f, Method::Optical, 40);
    let inputs = TrainInputs {
        pairs,
        ..Default::default()
    };
    let out = train(&cfg, &inputs, &f.root.join("run"), &device()).unwrap();
    assert_eq!(out.steps_done, 40);
    let losses: Vec<f64> = out.log.iter().map(|l| l.loss).collect();
    let head: f64 = losses[..5].iter().sum::<f64>() / 5.0;
    let tail: f64 = losses[35..].iter().sum::<f64>() / 5.0;
    assert!(tail < 0.7 * head, "loss did not fall: {losses:?}");
    assert!(out.log.iter().all(|l| l.ot_iterations > 0 && l.tokens > 0));

    let d = device();
    let teacher = Embedder::load_path(&f.teacher, None, &d).unwrap();
    let before = Embedder::load_path(&f.student, None, &d).unwrap();
    let after = Embedder::load_path(&f.root.join("run").join("student"), None, &d).unwrap();
    let a0 = translation_alignment(&teacher, &before, &held_out);
    let a1 = translation_alignment(&teacher, &after, &held_out);
    eprintln!(
        "held-out alignment {a0} → {a1}; last loss {:?}",
        losses.last()
    );
    assert!(
        a1 > a0 + 0.3 && a1 > 0.5,
        "student tokens did not move toward their translations: {a0} → {a1}"
    );

    // The run directory holds its config, one log line per step and the final student.
    let run = f.root.join("run");
    let saved = TrainConfig::load(&run.join("config.toml")).unwrap();
    assert_eq!(saved, cfg);
    let log = std::fs::read_to_string(run.join("log.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 40);
}

#[test]
fn a_killed_run_resumes_to_the_same_weights() {
    let f = fixture();
    let mut cfg = config(&f, Method::Optical, 7);
    cfg.run.checkpoint_every = 2;
    let inputs = TrainInputs {
        pairs: bitext(40, 3),
        teacher_store: Some(f.root.join("store")),
        ..Default::default()
    };
    let d = device();
    let straight = train(&cfg, &inputs, &f.root.join("a"), &d).unwrap();
    assert_eq!(straight.teacher_reused, 0);

    let cut = TrainInputs {
        stop_after: Some(3),
        ..inputs.clone()
    };
    let first = train(&cfg, &cut, &f.root.join("b"), &d).unwrap();
    assert_eq!(first.steps_done, 3);
    assert!(!f.root.join("b").join("student").exists());
    // The teacher states came from the store the first run filled.
    assert_eq!(first.teacher_reused, 40);
    let resumed = train(&cfg, &inputs, &f.root.join("b"), &d).unwrap();
    assert_eq!(resumed.resumed_from, Some(3));
    assert_eq!(resumed.steps_done, 7);

    let la: Vec<f64> = straight.log.iter().map(|l| l.loss).collect();
    let lb: Vec<f64> = first
        .log
        .iter()
        .chain(&resumed.log)
        .map(|l| l.loss)
        .collect();
    assert_eq!(la, lb, "losses differ after resuming");
    let texts = ["t1 t2 t3", "t4 t0 t9 t11"];
    let ea = straight
        .student
        .embed(&texts, TextKind::Passage, 2)
        .unwrap();
    let eb = resumed.student.embed(&texts, TextKind::Passage, 2).unwrap();
    assert_eq!(ea, eb, "weights differ after resuming");
    let log = std::fs::read_to_string(f.root.join("b").join("log.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 7);

    // A finished run keeps its final student, not its checkpoints, and is read back as is.
    assert!(!f.root.join("b").join("checkpoints").exists());
    let again = train(&cfg, &inputs, &f.root.join("b"), &d).unwrap();
    assert_eq!(again.log.len(), 7);
    let ec = again.student.embed(&texts, TextKind::Passage, 2).unwrap();
    assert_eq!(ec, ea);

    // Another configuration in the same directory is refused.
    let mut other = cfg.clone();
    other.optim.lr = 0.5;
    let e = train(&other, &inputs, &f.root.join("b"), &d)
        .unwrap_err()
        .to_string();
    assert!(e.contains("config.toml"), "{e}");
}

/// The student a run saves is the model for use: loaded from its folder it reads the full
/// vocabulary (tokens trimming dropped keep the base model's rows, as the export writes them)
/// at the base model's length (32), not the training length (5): its vectors equal the
/// exported folder's to 1e-5 on texts with tokens outside the bitext and texts longer than the
/// training length. The in-memory trimmed student refuses such texts instead of reading
/// `<unk>`.
#[test]
fn the_saved_student_reads_the_full_vocabulary_at_its_own_length() {
    let f = fixture();
    let mut cfg = config(&f, Method::Optical, 6);
    cfg.model.trim_vocab = true;
    cfg.model.max_len = 5;
    // t10 and t11 never occur in the bitext: trimming drops them.
    let pairs: Vec<BitextPair> = bitext(60, 8)
        .into_iter()
        .filter(|p| !p.tgt.contains("t10") && !p.tgt.contains("t11"))
        .collect();
    let inputs = TrainInputs {
        pairs,
        ..Default::default()
    };
    let d = device();
    let run = f.root.join("run");
    let out = train(&cfg, &inputs, &run, &d).unwrap();
    let trimmed = out.student.tokenizer.vocab_map().unwrap().len();
    assert!(trimmed < 4 + 2 * WORDS, "nothing was trimmed");

    let saved = Embedder::load_checkpoint(&run.join("student"), &d).unwrap();
    assert!(saved.tokenizer.vocab_map().is_none(), "still trimmed");
    assert_eq!(saved.config.encoder.vocab_size, 4 + 2 * WORDS);
    assert_eq!(saved.config.max_len, 32, "the training length leaked");
    let base = Embedder::load_path(&f.student, None, &d).unwrap();
    let row = |e: &Embedder, id: u32| -> Vec<f32> {
        let w = e.encoder.embeddings.word.weight.val();
        let idx = Tensor::<1, Int>::from_data(TensorData::new(vec![id as i64], [1]), &d);
        w.select(0, idx)
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap()
    };
    let t11 = base.tokenizer.encode("t11").unwrap()[1];
    assert_eq!(
        row(&saved, t11),
        row(&base, t11),
        "a dropped token lost its row"
    );
    let t0 = base.tokenizer.encode("t0").unwrap()[1];
    assert_ne!(
        row(&saved, t0),
        row(&base, t0),
        "a trained row was not kept"
    );

    let as_saved = Embedder::load_checkpoint_as_saved(&run.join("student"), &d).unwrap();
    let hf = f.root.join("hf");
    clir_models::hf_export::export_hf(&as_saved, Some(&base), &hf).unwrap();
    let exported = Embedder::load_hf(&hf, &d).unwrap();
    assert_eq!(exported.config.max_len, 32);
    let texts = [
        "t11 t10 t3",
        "t0 t1 t2 t3 t4 t5 t6 t7 t8 t9 t0 t1",
        "t10",
        "t2 t3",
    ];
    let a = saved.embed(&texts, TextKind::Passage, 2).unwrap();
    let b = exported.embed(&texts, TextKind::Passage, 2).unwrap();
    let diff = a
        .iter()
        .flatten()
        .zip(b.iter().flatten())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    assert!(diff <= 1e-5, "folder and export differ by {diff}");
    // The long text is read in full: cut at the training length it embeds differently.
    let cut = saved.clone().with_max_len(5).unwrap();
    let c = cut.embed(&texts[1..2], TextKind::Passage, 1).unwrap();
    assert!(c[0] != a[1], "the long text was cut");
    // The in-memory student refuses a text it would read as <unk>.
    let e = out
        .student
        .embed(&texts[..1], TextKind::Passage, 1)
        .unwrap_err()
        .to_string();
    assert!(e.contains("outside this model's trimmed vocabulary"), "{e}");
    // A folder whose base model is gone is an error naming it.
    let moved = f.root.join("moved-student");
    std::fs::rename(&f.student, &moved).unwrap();
    let e = Embedder::load_checkpoint(&run.join("student"), &d)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("embedder.json") && e.contains(&f.student.display().to_string()),
        "{e}"
    );
}

/// The hybrid objective `OPTICAL + μ·MSE`: at μ = 0 it is OPTICAL step for step (the same
/// losses and weights); at μ > 0 its first step's loss (the same initial student and batch)
/// is OPTICAL's first loss plus μ times the translation-term MSE's, and the log keeps both
/// terms.
#[test]
fn the_hybrid_objective_adds_mu_times_the_sentence_mse() {
    let f = fixture();
    let inputs = TrainInputs {
        pairs: bitext(32, 9),
        ..Default::default()
    };
    let d = device();
    let run = |name: &str, method: Method, mu: f64| {
        let mut cfg = config(&f, method, 4);
        cfg.loss.hybrid_mse_weight = mu;
        cfg.loss.mse_english_term = false;
        train(&cfg, &inputs, &f.root.join(name), &d).unwrap()
    };
    let optical = run("optical", Method::Optical, 0.0);
    let zero = run("hybrid-0", Method::Optical, 0.0);
    let losses = |o: &clir_train::trainer::TrainOutcome| -> Vec<f64> {
        o.log.iter().map(|l| l.loss).collect()
    };
    assert_eq!(losses(&optical), losses(&zero));
    let texts = ["t1 t2 t3", "t4 t0 t9"];
    assert_eq!(
        optical.student.embed(&texts, TextKind::Passage, 2).unwrap(),
        zero.student.embed(&texts, TextKind::Passage, 2).unwrap()
    );
    assert!(zero.log.iter().all(|l| l.sentence_loss.is_none()));

    let mse = run("mse", Method::Mse, 0.0);
    let hybrid = run("hybrid-2", Method::Optical, 2.0);
    let first = &hybrid.log[0];
    let (ot, sent) = (optical.log[0].loss, mse.log[0].loss);
    assert!(
        (first.loss - (ot + 2.0 * sent)).abs() <= 1e-5 * first.loss.abs(),
        "{first:?}"
    );
    assert!((first.cross_loss.unwrap() - ot).abs() <= 1e-6, "{first:?}");
    assert!(
        (first.sentence_loss.unwrap() - sent).abs() <= 1e-6,
        "{first:?}"
    );
    assert_ne!(losses(&hybrid)[1..], losses(&optical)[1..]);
    // Only OPTICAL reads μ.
    let mut cfg = config(&f, Method::Kl, 4);
    cfg.loss.hybrid_mse_weight = 1.0;
    let e = cfg.validate().unwrap_err();
    assert!(
        e.contains("hybrid_mse_weight") && e.contains("optical only"),
        "{e}"
    );
}

/// A warm start: an OPTICAL run with `warm_start_mse_steps = 2` trains its first two steps
/// exactly as the MSE run (same losses: same student, batches and learning rates), then with
/// the OT loss (Sinkhorn diagnostics from step 3 on). Only OPTICAL takes it, and at least one
/// OPTICAL step must remain.
#[test]
fn a_warm_start_trains_mse_steps_then_optical() {
    let f = fixture();
    let inputs = TrainInputs {
        pairs: bitext(32, 6),
        ..Default::default()
    };
    let d = device();
    let mse = train(
        &config(&f, Method::Mse, 4),
        &inputs,
        &f.root.join("mse"),
        &d,
    )
    .unwrap();
    let mut cfg = config(&f, Method::Optical, 4);
    cfg.loss.warm_start_mse_steps = 2;
    let warm = train(&cfg, &inputs, &f.root.join("warm"), &d).unwrap();
    let losses = |o: &clir_train::trainer::TrainOutcome| -> Vec<f64> {
        o.log.iter().map(|l| l.loss).collect()
    };
    assert_eq!(losses(&warm)[..2], losses(&mse)[..2]);
    assert!(warm.log[..2].iter().all(|l| l.ot_iterations == 0));
    assert!(warm.log[2..].iter().all(|l| l.ot_iterations > 0));
    assert_ne!(losses(&warm)[2..], losses(&mse)[2..]);
    cfg.loss.warm_start_mse_steps = 4;
    let e = cfg.validate().unwrap_err();
    assert!(e.contains("leaves no OPTICAL step"), "{e}");
    let mut kl = config(&f, Method::Kl, 4);
    kl.loss.warm_start_mse_steps = 1;
    let e = kl.validate().unwrap_err();
    assert!(e.contains("optical only"), "{e}");
}

/// Snapshots for a training curve: the student saved after step k of a run is, bit for bit,
/// the student of the same run stopped after k steps; a step outside the run is refused, and
/// a finished run without the asked snapshots says so.
#[test]
fn snapshots_are_the_students_of_runs_stopped_there() {
    let f = fixture();
    let cfg = config(&f, Method::Optical, 6);
    let inputs = TrainInputs {
        pairs: bitext(40, 4),
        snapshots: vec![2, 6],
        ..Default::default()
    };
    let d = device();
    let whole = f.root.join("whole");
    train(&cfg, &inputs, &whole, &d).unwrap();
    let stopped = TrainInputs {
        stop_after: Some(2),
        snapshots: Vec::new(),
        ..inputs.clone()
    };
    let cut = train(&cfg, &stopped, &f.root.join("cut"), &d).unwrap();
    let texts = ["t1 t2 t3", "t4 t0 t9 t11"];
    let snap = Embedder::load_checkpoint(&snapshot_dir(&whole, 2), &d).unwrap();
    assert_eq!(
        snap.embed(&texts, TextKind::Passage, 2).unwrap(),
        cut.student.embed(&texts, TextKind::Passage, 2).unwrap()
    );
    let last = Embedder::load_checkpoint(&snapshot_dir(&whole, 6), &d).unwrap();
    let fin = Embedder::load_checkpoint(&whole.join("student"), &d).unwrap();
    assert_eq!(
        last.embed(&texts, TextKind::Passage, 2).unwrap(),
        fin.embed(&texts, TextKind::Passage, 2).unwrap()
    );
    let outside = TrainInputs {
        snapshots: vec![7],
        ..inputs.clone()
    };
    let e = train(&cfg, &outside, &f.root.join("x"), &d)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("snapshot step 7 lies outside the run's steps 1..=6"),
        "{e}"
    );
    let missing = TrainInputs {
        snapshots: vec![4],
        ..inputs
    };
    let e = train(&cfg, &missing, &whole, &d).unwrap_err().to_string();
    assert!(e.contains("finished without a snapshot at step 4"), "{e}");
}

#[test]
fn every_baseline_and_idf_marginals_train_without_touching_the_teacher() {
    let f = fixture();
    let d = device();
    let teacher_bytes = std::fs::read(f.teacher.join("model.bpk")).unwrap();
    for (method, idf) in [
        (Method::Mse, false),
        (Method::Kl, false),
        (Method::Joint, false),
        (Method::Optical, true),
    ] {
        let mut cfg = config(&f, method, 12);
        if idf {
            cfg.loss.marginal = clir_train::config::Marginal::Idf;
        }
        let inputs = TrainInputs {
            pairs: bitext(32, 4),
            monolingual: if method == Method::Joint {
                monolingual(WORDS)
            } else {
                Vec::new()
            },
            ..Default::default()
        };
        let dir = f.root.join(format!("{}-{idf}", method.name()));
        let out = train(&cfg, &inputs, &dir, &d).unwrap();
        let losses: Vec<f64> = out.log.iter().map(|l| l.loss).collect();
        assert!(
            losses.iter().all(|l| l.is_finite()),
            "{method:?}: {losses:?}"
        );
        assert!(
            losses[9..].iter().sum::<f64>() < losses[..3].iter().sum::<f64>(),
            "{method:?}: loss did not fall: {losses:?}"
        );
    }
    // The teacher checkpoint is unchanged.
    assert_eq!(
        std::fs::read(f.teacher.join("model.bpk")).unwrap(),
        teacher_bytes
    );
}

/// The joint objective: both terms are logged and fall; at λ = 1 it is OPTICAL step for step
/// (the monolingual term is computed but weighs nothing); without monolingual queries it is
/// refused.
#[test]
fn the_joint_objective_adds_a_monolingual_matching_term() {
    let f = fixture();
    let d = device();
    let pairs = bitext(32, 5);
    let mono = monolingual(WORDS);
    let mut cfg = config(&f, Method::Joint, 16);
    cfg.loss.joint_lambda = 0.5;
    let inputs = TrainInputs {
        pairs: pairs.clone(),
        monolingual: mono.clone(),
        ..Default::default()
    };
    let out = train(&cfg, &inputs, &f.root.join("joint"), &d).unwrap();
    let cross: Vec<f64> = out.log.iter().map(|l| l.cross_loss.unwrap()).collect();
    let mono_terms: Vec<f64> = out.log.iter().map(|l| l.mono_loss.unwrap()).collect();
    for (l, (c, m)) in out.log.iter().zip(cross.iter().zip(&mono_terms)) {
        assert!((l.loss - (0.5 * c + 0.5 * m)).abs() < 1e-5, "{l:?}");
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    assert!(
        mean(&mono_terms[12..]) < mean(&mono_terms[..4]),
        "the monolingual term did not fall: {mono_terms:?}"
    );
    assert!(
        mean(&cross[12..]) < mean(&cross[..4]),
        "the cross-lingual term did not fall: {cross:?}"
    );
    // In-batch negatives of 8 queries: the initial InfoNCE loss is near log 8.
    assert!(mono_terms[0] > 1.0, "{mono_terms:?}");

    // λ = 1 trains exactly as OPTICAL.
    let mut only_cross = config(&f, Method::Joint, 6);
    only_cross.loss.joint_lambda = 1.0;
    let joint = train(&only_cross, &inputs, &f.root.join("joint-1"), &d).unwrap();
    let optical = train(
        &config(&f, Method::Optical, 6),
        &TrainInputs {
            pairs,
            ..Default::default()
        },
        &f.root.join("optical"),
        &d,
    )
    .unwrap();
    for (a, b) in joint.log.iter().zip(&optical.log) {
        assert!((a.loss - b.loss).abs() < 1e-6, "{a:?} vs {b:?}");
    }

    // No monolingual data: a clear error.
    let e = train(
        &cfg,
        &TrainInputs {
            pairs: bitext(8, 6),
            ..Default::default()
        },
        &f.root.join("joint-none"),
        &d,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("monolingual"), "{e}");
}

/// The frozen-prefix cache changes how the student's lowest layers are computed, not what:
/// for every method, cached and uncached runs of the same seed give the same losses and the
/// same student (to f32 rounding), and a second run reads the states from the store.
#[test]
fn the_frozen_prefix_cache_gives_the_uncached_losses() {
    let f = fixture();
    let d = device();
    for method in [Method::Optical, Method::Mse, Method::Kl, Method::Joint] {
        let mut cfg = config(&f, method, 6);
        cfg.model.freeze_embeddings = true;
        cfg.model.freeze_layers = 1;
        let base = TrainInputs {
            pairs: bitext(48, 8),
            monolingual: if method == Method::Joint {
                monolingual(WORDS)
            } else {
                Vec::new()
            },
            ..Default::default()
        };
        let plain = TrainInputs {
            prefix_cache: false,
            ..base.clone()
        };
        let cached = TrainInputs {
            prefix_store: Some(f.root.join(format!("prefix-{}", method.name()))),
            ..base.clone()
        };
        let name = method.name();
        let a = train(&cfg, &plain, &f.root.join(format!("{name}-plain")), &d).unwrap();
        let b = train(&cfg, &cached, &f.root.join(format!("{name}-cached")), &d).unwrap();
        assert_eq!(a.prefix, None);
        let (k, computed, reused) = b.prefix.expect("the cached run uses the cache");
        assert_eq!(k, 1);
        assert!(
            computed > 0 && reused < computed,
            "{method:?}: {computed} {reused}"
        );
        for (x, y) in a.log.iter().zip(&b.log) {
            assert!(
                (x.loss - y.loss).abs() < 1e-5,
                "{method:?} step {}: {} vs {}",
                x.step,
                x.loss,
                y.loss
            );
            assert_eq!(x.tokens, y.tokens);
        }
        let texts = ["t1 t2 t3", "t4 t0 t9 t11", "e3 e5"];
        let ea = a.student.embed(&texts, TextKind::Passage, 2).unwrap();
        let eb = b.student.embed(&texts, TextKind::Passage, 2).unwrap();
        for (u, v) in ea.iter().flatten().zip(eb.iter().flatten()) {
            assert!((u - v).abs() < 1e-4, "{method:?}: {u} vs {v}");
        }
        // A second run with the same store computes nothing.
        let again = train(&cfg, &cached, &f.root.join(format!("{name}-again")), &d).unwrap();
        let (_, computed, reused) = again.prefix.unwrap();
        assert_eq!(computed, 0, "{method:?}");
        assert!(reused > 0);
        for (x, y) in b.log.iter().zip(&again.log) {
            assert_eq!(x.loss, y.loss, "{method:?}: the store changed the states");
        }
    }
}

/// Set in the child process of `off_a_terminal_training_prints_progress_lines`.
const PROGRESS_CHILD: &str = "OPTICAL_TEST_PROGRESS_CHILD";

/// Off a terminal (a Slurm job, a CI log) indicatif draws nothing, so training reports its
/// progress in plain lines on stderr. The test runs itself again with stderr a pipe, the child
/// trains with progress shown, and the parent reads the child's stderr.
#[test]
fn off_a_terminal_training_prints_progress_lines() {
    if std::env::var_os(PROGRESS_CHILD).is_some() {
        let f = fixture();
        let mut cfg = config(&f, Method::Optical, 6);
        cfg.run.progress = true;
        let inputs = TrainInputs {
            pairs: bitext(16, 5),
            ..Default::default()
        };
        train(&cfg, &inputs, &f.root.join("run"), &device()).unwrap();
        return;
    }
    let o = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "off_a_terminal_training_prints_progress_lines",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(PROGRESS_CHILD, "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    let train: Vec<&str> = err.lines().filter(|l| l.starts_with("train: ")).collect();
    // A line per step (each passes another 5 %) but the last, then the final line.
    assert_eq!(train.len(), 6, "{err}");
    for (i, l) in train[..5].iter().enumerate() {
        let head = format!("train: {}/6 steps ({}%), loss ", i + 1, (i + 1) * 100 / 6);
        assert!(l.starts_with(&head), "{l}");
        assert!(
            l.contains(" tok/s, ") && l.contains(" steps/s, elapsed "),
            "{l}"
        );
        assert!(l.contains(", ETA "), "{l}");
    }
    assert!(
        train[5].starts_with("train: finished 6/6 steps (100%), loss "),
        "{}",
        train[5]
    );
    assert!(!err.contains("Some("), "{err}");
    // The teacher's states are encoded with a progress of their own.
    assert!(
        err.lines()
            .any(|l| l.starts_with("teacher states: finished ") && l.contains(" sentences (100%)")),
        "{err}"
    );
}
