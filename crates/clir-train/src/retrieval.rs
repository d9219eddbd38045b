//! Retrieval evaluation of encoders: English queries encoded by one model, documents in the
//! target language by another, exact dense top-k, then trec_eval-exact MAP, nDCG@10 and
//! MRR@10 (`recip_rank` over the first 10 documents).
//!
//! The default collection is Nave's Topical Bible over New Testament verses (see
//! `clir_data::naves`); [`nave_set`] builds it for any Bible version, on the dev or test half
//! of the queries (a fixed, seeded split of every Nave NT topic, the same for every version),
//! optionally on a seeded sample of queries and documents (every judged document of a sampled
//! query is kept). [`collection_set`] does the same for a collection directory of the user's.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use clir_data::bible::{self, BibleDb, ENGLISH_VERSION, NEW_TESTAMENT};
use clir_data::naves::{NaveOptions, collection_from_files};
use clir_eval::dense::{DenseConfig, Matrix, Similarity, dense_top_k, hits_to_run};
use clir_eval::metrics::{EvalOptions, MeasureSet, evaluate};
use clir_eval::trec::{Qrels, Run};
use clir_models::{Embedder, TextKind};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};

/// Queries, documents and judgments of one evaluation.
#[derive(Debug, Clone, Default)]
pub struct RetrievalSet {
    pub qids: Vec<String>,
    pub queries: Vec<String>,
    pub docids: Vec<String>,
    pub docs: Vec<String>,
    pub qrels: Qrels,
    /// Every NT verse of the version, sampled or not: the whole target-language collection,
    /// which a trimmed student vocabulary is built from (with the bitext), so that the
    /// vocabulary never depends on the evaluation sample.
    pub collection: Vec<String>,
    /// What was sampled or left out, in words (for table headers).
    pub note: String,
}

/// Which half of the Nave NT queries an evaluation uses: `dev` to choose settings, `test` to
/// report them, `all` for both halves together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    #[default]
    All,
    Dev,
    Test,
}

impl std::str::FromStr for Split {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "all" => Ok(Split::All),
            "dev" => Ok(Split::Dev),
            "test" => Ok(Split::Test),
            other => Err(format!(
                "unknown split '{other}': expected dev, test or all"
            )),
        }
    }
}

impl std::fmt::Display for Split {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Split::All => "all",
            Split::Dev => "dev",
            Split::Test => "test",
        })
    }
}

/// Seed of the dev/test split of the queries. Fixed for good: changing it would move queries
/// between the halves and make earlier dev-split choices look at test queries.
pub const SPLIT_SEED: u64 = 0x5EED_0D57;

/// The dev half of `qids`: sorted, shuffled with [`SPLIT_SEED`], the first ⌈n/2⌉. The rest is
/// the test half.
pub fn dev_queries(qids: &[String]) -> BTreeSet<String> {
    let mut ids: Vec<&String> = qids.iter().collect();
    ids.sort();
    ids.dedup();
    ids.shuffle(&mut ChaCha8Rng::seed_from_u64(SPLIT_SEED));
    ids.truncate(ids.len().div_ceil(2));
    ids.into_iter().cloned().collect()
}

/// Sampling of [`nave_set`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetSample {
    /// Keep this many queries (seeded), or all.
    pub queries: Option<usize>,
    /// Keep this many documents: every judged document of the kept queries, then seeded
    /// distractors up to the number (so more than this when the judged ones alone exceed it,
    /// and the set's note says how many); or all.
    pub documents: Option<usize>,
    pub seed: u64,
    /// The half of the queries sampled from.
    pub split: Split,
}

/// Nave's Topical Bible collection with documents in `language` (alias or version code;
/// `english` gives the WEB English→English reference).
pub fn nave_set(
    db: &BibleDb,
    naves_dir: &std::path::Path,
    language: &str,
    sample: SetSample,
) -> Result<RetrievalSet> {
    let version = bible::resolve_version(language)?;
    let nave = collection_from_files(naves_dir, db, ENGLISH_VERSION, NaveOptions::default())?;
    let (verses, _drops) = db.verses(&version, NEW_TESTAMENT)?;
    let texts: BTreeMap<String, String> = verses
        .into_iter()
        .map(|v| (v.r.to_string(), v.text))
        .collect();

    // Judgments of verses the version lacks (placeholders) cannot be met: drop and count them.
    let mut judged: Judged = BTreeMap::new();
    let mut missing_judgments = 0usize;
    for (qid, docno, _) in nave.qrels.iter() {
        if texts.contains_key(docno) {
            judged
                .entry(qid.to_string())
                .or_default()
                .insert(docno.to_string(), 1);
        } else {
            missing_judgments += 1;
        }
    }
    let all_ids: Vec<String> = nave.queries.iter().map(|q| q.id.clone()).collect();
    let queries: Vec<(String, String)> = nave
        .queries
        .iter()
        .filter(|q| judged.contains_key(&q.id))
        .map(|q| (q.id.clone(), q.text.clone()))
        .collect();
    let unjudged = nave.queries.len() - queries.len();
    // The split is drawn over every Nave topic (not per version), so a query is dev or test
    // in every language alike.
    sample_set(&all_ids, queries, texts, &judged, sample, |s| {
        format!(
            "{} of {} Nave NT queries ({} split), {} of {} {language} NT verses; {missing_judgments} judgments of verses missing in this version and {unjudged} queries left without judgments were dropped",
            s.queries, s.total_queries, sample.split, s.docs, s.total_docs,
        )
    })
}

/// A collection directory of the user's (what `data build` writes, or an ir_datasets
/// export): `queries.tsv`, `docs.jsonl` or `docs.tsv` (JSONL `title` and `text` are both
/// read), and `qrels.txt` in TREC format, graded or binary, read by the strict readers (a
/// judgment naming an unknown query or document is an error naming its line). Queries with no
/// judgment of grade ≥ 1 are left out and counted in the note, as trec_eval would score them
/// 0; the dev/test split is drawn over every query id of the file with [`dev_queries`], and
/// the sample is taken as in [`nave_set`] (judged documents of the kept queries first).
pub fn collection_set(dir: &std::path::Path, sample: SetSample) -> Result<RetrievalSet> {
    let docs_file = collection_docs_file(dir)?;
    let c = clir_data::cli::Collection::load(dir, docs_file)?;
    if c.docs.is_empty() {
        return Err(TrainError::Invalid(format!(
            "{}: the collection holds no documents",
            dir.join(docs_file).display()
        )));
    }
    // The reader has rejected duplicate ids, naming their lines.
    let texts: BTreeMap<String, String> = c.docs.into_iter().map(|d| (d.id, d.text)).collect();
    let mut judged: Judged = BTreeMap::new();
    for (qid, docno, grade) in c.qrels.iter() {
        judged
            .entry(qid.to_string())
            .or_default()
            .insert(docno.to_string(), grade);
    }
    let all_ids: Vec<String> = c.queries.iter().map(|q| q.id.clone()).collect();
    let has_relevant = |qid: &str| judged.get(qid).is_some_and(|j| j.values().any(|&g| g >= 1));
    let queries: Vec<(String, String)> = c
        .queries
        .iter()
        .filter(|q| has_relevant(&q.id))
        .map(|q| (q.id.clone(), q.text.clone()))
        .collect();
    if queries.is_empty() {
        return Err(TrainError::Invalid(format!(
            "{}: no query has a judgment of grade 1 or more",
            dir.join("qrels.txt").display()
        )));
    }
    let unjudged = all_ids.len() - queries.len();
    let name = dir.display().to_string();
    sample_set(&all_ids, queries, texts, &judged, sample, |s| {
        format!(
            "{} of {} queries ({} split), {} of {} documents of {name}; {unjudged} queries without a relevant judgment were left out",
            s.queries, s.total_queries, sample.split, s.docs, s.total_docs,
        )
    })
}

/// The documents file of a collection directory: `docs.jsonl` or `docs.tsv` (both present is
/// an error: which one is meant is not clear).
pub fn collection_docs_file(dir: &std::path::Path) -> Result<&'static str> {
    let has = |f: &str| dir.join(f).is_file();
    match (has("docs.jsonl"), has("docs.tsv")) {
        (true, false) => Ok("docs.jsonl"),
        (false, true) => Ok("docs.tsv"),
        (true, true) => Err(TrainError::Invalid(format!(
            "{}: holds both docs.jsonl and docs.tsv; keep one",
            dir.display()
        ))),
        (false, false) => Err(TrainError::Invalid(format!(
            "{}: a collection directory needs queries.tsv, docs.jsonl (or docs.tsv) and qrels.txt; no documents file found",
            dir.display()
        ))),
    }
}

/// Judgments by query: document → grade.
type Judged = BTreeMap<String, BTreeMap<String, i64>>;

/// Sizes of a sampled set, for its note.
struct SampleSizes {
    queries: usize,
    total_queries: usize,
    docs: usize,
    total_docs: usize,
}

/// Applies the split (over `all_qids`) and the sample to `queries` (those with judgments)
/// and the documents `texts`; the qrels keep every judgment of the kept queries.
fn sample_set(
    all_qids: &[String],
    mut queries: Vec<(String, String)>,
    texts: BTreeMap<String, String>,
    judged: &Judged,
    sample: SetSample,
    note: impl FnOnce(&SampleSizes) -> String,
) -> Result<RetrievalSet> {
    if sample.split != Split::All {
        let dev = dev_queries(all_qids);
        let want_dev = sample.split == Split::Dev;
        queries.retain(|(id, _)| dev.contains(id) == want_dev);
    }
    let total_queries = queries.len();
    if let Some(n) = sample.queries.filter(|&n| n < queries.len()) {
        queries.shuffle(&mut ChaCha8Rng::seed_from_u64(sample.seed));
        queries.truncate(n);
        queries.sort();
    }
    let mut keep: BTreeSet<String> = BTreeSet::new();
    for (qid, _) in &queries {
        keep.extend(judged[qid].keys().cloned());
    }
    let total_docs = texts.len();
    match sample.documents {
        Some(n) if n < texts.len() => {
            let mut rest: Vec<&String> = texts.keys().filter(|d| !keep.contains(*d)).collect();
            rest.shuffle(&mut ChaCha8Rng::seed_from_u64(sample.seed ^ 0xD0C5));
            let extra = n.saturating_sub(keep.len());
            keep.extend(rest.into_iter().take(extra).cloned());
        }
        _ => keep.extend(texts.keys().cloned()),
    }
    let qrels = Qrels::from_judgments(
        queries.iter().flat_map(|(qid, _)| {
            judged[qid]
                .iter()
                .map(move |(d, &g)| (qid.as_str(), d.as_str(), g))
        }),
        "evaluation judgments",
    )?;
    let collection: Vec<String> = texts.values().cloned().collect();
    let (docids, docs): (Vec<String>, Vec<String>) =
        texts.into_iter().filter(|(d, _)| keep.contains(d)).unzip();
    let note = note(&SampleSizes {
        queries: queries.len(),
        total_queries,
        docs: docids.len(),
        total_docs,
    });
    let (qids, queries) = queries.into_iter().unzip();
    Ok(RetrievalSet {
        qids,
        queries,
        docids,
        docs,
        qrels,
        collection,
        note,
    })
}

/// Scores of one evaluated cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetrievalScores {
    pub map: f64,
    pub ndcg_10: f64,
    pub mrr_10: f64,
    /// `(qid, [map, ndcg_10, mrr_10])` in qid order.
    pub per_query: Vec<(String, [f64; 3])>,
}

/// The one set of names of the three measures, in the order of
/// [`RetrievalScores::per_query`]: the fields of results.json, the columns of results.csv and
/// the per-query CSVs, the chart file names and the keys of the expected-score files. In
/// trec_eval terms: `map`; `ndcg_10` = `ndcg_cut_10`; `mrr_10` = `recip_rank` over each
/// query's top 10 (`-M 10`).
pub const MEASURES: [&str; 3] = ["map", "ndcg_10", "mrr_10"];

/// Ranking depth of every evaluated run (documents per query), dense and lexical, as in
/// trec_eval's customary 1000.
pub const RUN_DEPTH: usize = 1000;

/// The similarity of every dense evaluation: the inner product `⟨q, d⟩`, which equals the
/// cosine for the L2-normalised embeddings of e5 and MiniLM.
pub const EVAL_SIMILARITY: Similarity = Similarity::Dot;

/// The run of exact dense retrieval: for each query (named by `qids`) the top `cfg.k`
/// documents (named by `docids`) by `cfg.similarity` of the embeddings, ties by document
/// order (`clir_eval::dense::dense_top_k`); written, the run follows trec_eval's order.
/// Embeddings must be finite and of one dimension.
pub fn rank_embeddings(
    queries: &[Vec<f32>],
    docs: &[Vec<f32>],
    qids: &[String],
    docids: &[String],
    cfg: &DenseConfig,
) -> Result<Run> {
    let dim = queries.first().map_or(0, Vec::len);
    let qflat: Vec<f32> = queries.iter().flatten().copied().collect();
    let dflat: Vec<f32> = docs.iter().flatten().copied().collect();
    let qm = Matrix::new(&qflat, queries.len(), dim, "query embeddings")?;
    let dm = Matrix::new(&dflat, docs.len(), dim, "document embeddings")?;
    let hits = dense_top_k(qm, dm, cfg)?;
    Ok(hits_to_run(&hits, qids, docids)?)
}

/// Ranks every document for every query (top `depth`, [`EVAL_SIMILARITY`]) and evaluates.
pub fn score_embeddings(
    queries: &[Vec<f32>],
    docs: &[Vec<f32>],
    set: &RetrievalSet,
    depth: usize,
) -> Result<(RetrievalScores, Run)> {
    let cfg = DenseConfig::new(depth, EVAL_SIMILARITY);
    let run = rank_embeddings(queries, docs, &set.qids, &set.docids, &cfg)?;
    Ok((score_run(&run, set)?, run))
}

/// Scores a run of the set's queries: `map`, `ndcg_10`, `mrr_10` as trec_eval computes them
/// with `-c` (a query the run retrieves nothing for, as a lexical method may, counts 0 and
/// stays in the mean and in the per-query list, so every method of a table is averaged and
/// tested over the same queries).
pub fn score_run(run: &Run, set: &RetrievalSet) -> Result<RetrievalScores> {
    let complete = EvalOptions {
        average_complete: true,
        ..EvalOptions::default()
    };
    let full = evaluate(
        &set.qrels,
        run,
        &MeasureSet::parse(&["map", "ndcg_cut.10"])?,
        &complete,
    )?;
    let top10 = evaluate(
        &set.qrels,
        run,
        &MeasureSet::parse(&["recip_rank"])?,
        &EvalOptions {
            max_docs_per_query: Some(10),
            ..complete
        },
    )?;
    let values = |e: &clir_eval::Evaluation| -> HashMap<String, Vec<f64>> {
        e.per_query
            .iter()
            .map(|q| (q.qid.clone(), q.values.clone()))
            .collect()
    };
    let (full_q, rr_q) = (values(&full), values(&top10));
    let per_query = set
        .qrels
        .queries
        .keys()
        .map(|qid| {
            let f = full_q.get(qid).map_or([0.0, 0.0], |v| [v[0], v[1]]);
            let rr = rr_q.get(qid).map_or(0.0, |v| v[0]);
            (qid.clone(), [f[0], f[1], rr])
        })
        .collect();
    Ok(RetrievalScores {
        map: full.all[0],
        ndcg_10: full.all[1],
        mrr_10: top10.all[0],
        per_query,
    })
}

/// Embeds the set's queries with `query_model` and documents with `doc_model`, then scores
/// the [`dense_run`] of depth [`RUN_DEPTH`] by [`EVAL_SIMILARITY`].
pub fn evaluate_models(
    query_model: &Embedder,
    doc_model: &Embedder,
    set: &RetrievalSet,
    batch_size: usize,
) -> Result<RetrievalScores> {
    let run = dense_run(
        query_model,
        doc_model,
        (&set.queries, &set.qids),
        (&set.docs, &set.docids),
        &DenseRunOptions {
            depth: RUN_DEPTH,
            similarity: EVAL_SIMILARITY,
            batch_size,
            progress: false,
        },
    )?;
    score_run(&run, set)
}

/// Settings of [`dense_run`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DenseRunOptions {
    /// Documents kept per query.
    pub depth: usize,
    pub similarity: Similarity,
    /// Texts per encoder batch.
    pub batch_size: usize,
    /// Progress bars on stderr while encoding and ranking.
    pub progress: bool,
}

/// Dense retrieval with two encoders: `queries` (texts, ids) embedded by `query_model` as
/// queries (E5's `query: ` prefix), `docs` (texts, ids) by `doc_model` as passages
/// (`passage: `), then [`rank_embeddings`]. A non-finite embedding is an error naming its
/// row (the text's position).
pub fn dense_run<S: AsRef<str>>(
    query_model: &Embedder,
    doc_model: &Embedder,
    queries: (&[S], &[String]),
    docs: (&[S], &[String]),
    opts: &DenseRunOptions,
) -> Result<Run> {
    let embed = |model: &Embedder, (texts, ids): (&[S], &[String]), kind, what: &str| {
        if texts.len() != ids.len() {
            return Err(TrainError::Invalid(format!(
                "{} {what} texts but {} ids",
                texts.len(),
                ids.len()
            )));
        }
        let label = format!("encode {what}s");
        let bar = clir_eval::progress::bar(texts.len() as u64, &label, opts.progress);
        let e = model.embed_with_progress(texts, kind, opts.batch_size, |n| bar.inc(n as u64))?;
        bar.finish_and_clear();
        check_finite(&format!("{what} embeddings"), &e)?;
        Ok(e)
    };
    let q = embed(query_model, queries, TextKind::Query, "query")?;
    let d = embed(doc_model, docs, TextKind::Passage, "document")?;
    let cfg = DenseConfig {
        progress: opts.progress,
        ..DenseConfig::new(opts.depth, opts.similarity)
    };
    rank_embeddings(&q, &d, queries.1, docs.1, &cfg)
}

/// Checks that embeddings are finite (a diverged student must not produce a silent score).
pub fn check_finite(what: &str, e: &[Vec<f32>]) -> Result<()> {
    match e.iter().position(|r| r.iter().any(|x| !x.is_finite())) {
        Some(i) => Err(TrainError::Invalid(format!(
            "{what}: row {i} holds a non-finite value"
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_without_results_counts_zero_and_stays_listed() {
        let qrels = Qrels::from_judgments([("q1", "d1", 1), ("q2", "d2", 1)], "test").unwrap();
        let set = RetrievalSet {
            qids: vec!["q1".into(), "q2".into()],
            queries: vec!["x".into(), "y".into()],
            docids: vec!["d1".into(), "d2".into()],
            docs: vec![String::new(); 2],
            qrels,
            collection: Vec::new(),
            note: String::new(),
        };
        let run = Run::from_triples([("q1", "d1", 1.0)]).unwrap();
        let s = score_run(&run, &set).unwrap();
        assert_eq!((s.map, s.ndcg_10, s.mrr_10), (0.5, 0.5, 0.5));
        assert_eq!(
            s.per_query,
            [
                ("q1".to_string(), [1.0, 1.0, 1.0]),
                ("q2".to_string(), [0.0, 0.0, 0.0])
            ]
        );
    }

    #[test]
    fn perfect_and_reversed_rankings_score_as_trec_eval_would() {
        let qrels = Qrels::from_judgments([("q1", "d1", 1)], "test").unwrap();
        let set = RetrievalSet {
            qids: vec!["q1".into()],
            queries: vec!["x".into()],
            docids: vec!["d0".into(), "d1".into(), "d2".into()],
            docs: vec![String::new(); 3],
            qrels,
            collection: Vec::new(),
            note: String::new(),
        };
        let q = vec![vec![1.0, 0.0]];
        let good = vec![vec![0.0, 1.0], vec![1.0, 0.0], vec![0.5, 0.5]];
        let (s, _) = score_embeddings(&q, &good, &set, 10).unwrap();
        assert_eq!((s.map, s.mrr_10, s.ndcg_10), (1.0, 1.0, 1.0));
        // The relevant document ranked third: MAP = RR = 1/3, nDCG = 1/log2(4) = 0.5.
        let bad = vec![vec![0.9, 0.1], vec![0.0, 1.0], vec![1.0, 0.0]];
        let (s, _) = score_embeddings(&q, &bad, &set, 10).unwrap();
        assert!((s.map - 1.0 / 3.0).abs() < 1e-12 && (s.mrr_10 - 1.0 / 3.0).abs() < 1e-12);
        assert!((s.ndcg_10 - 0.5).abs() < 1e-12);
        assert_eq!(s.per_query[0].0, "q1");
    }

    /// A made-up collection directory: three queries (q3 judged non-relevant only), four
    /// documents in JSONL with a title, graded judgments.
    fn write_collection(dir: &std::path::Path) {
        std::fs::write(
            dir.join("queries.tsv"),
            "q1\tfirst query\nq2\tsecond query\nq3\tthird query\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("docs.jsonl"),
            concat!(
                "{\"doc_id\": \"d1\", \"title\": \"Title\", \"text\": \"one\"}\n",
                "{\"id\": \"d2\", \"text\": \"two\"}\n",
                "{\"id\": \"d3\", \"text\": \"three\"}\n",
                "{\"id\": \"d4\", \"text\": \"four\"}\n",
            ),
        )
        .unwrap();
        std::fs::write(
            dir.join("qrels.txt"),
            "q1 0 d1 2\nq1 0 d2 0\nq2 0 d3 1\nq3 0 d4 0\n",
        )
        .unwrap();
    }

    fn everything() -> SetSample {
        SetSample {
            queries: None,
            documents: None,
            seed: 1,
            split: Split::All,
        }
    }

    #[test]
    fn a_collection_directory_reads_titles_grades_and_leaves_out_unjudged_queries() {
        let dir = tempfile::tempdir().unwrap();
        write_collection(dir.path());
        let set = collection_set(dir.path(), everything()).unwrap();
        assert_eq!(set.qids, ["q1", "q2"]);
        assert_eq!(set.queries, ["first query", "second query"]);
        assert_eq!(set.docids, ["d1", "d2", "d3", "d4"]);
        assert_eq!(set.docs[0], "Title one");
        assert_eq!(set.collection.len(), 4);
        assert_eq!(set.qrels.queries["q1"].judgments["d1"], 2);
        assert_eq!(set.qrels.queries["q1"].judgments["d2"], 0);
        assert!(!set.qrels.queries.contains_key("q3"));
        assert!(
            set.note.contains("2 of 2 queries")
                && set.note.contains("1 queries without a relevant judgment"),
            "{}",
            set.note
        );
        // Graded nDCG: d1 (grade 2) first is ideal for q1.
        let run =
            Run::from_triples([("q1", "d1", 2.0), ("q1", "d2", 1.0), ("q2", "d3", 1.0)]).unwrap();
        let s = score_run(&run, &set).unwrap();
        assert_eq!((s.map, s.ndcg_10), (1.0, 1.0));

        // A one-document sample keeps the judged documents of the kept queries only.
        let small = collection_set(
            dir.path(),
            SetSample {
                queries: Some(1),
                documents: Some(1),
                ..everything()
            },
        )
        .unwrap();
        assert_eq!(small.qids.len(), 1);
        let judged: Vec<&str> = small.qrels.iter().map(|(_, d, _)| d).collect();
        assert_eq!(small.docids, judged);

        // The split is dev_queries over every query id of the file, judged or not.
        let all: Vec<String> = ["q1", "q2", "q3"].map(String::from).to_vec();
        let dev = dev_queries(&all);
        let dev_set = collection_set(
            dir.path(),
            SetSample {
                split: Split::Dev,
                ..everything()
            },
        )
        .unwrap();
        let want: Vec<&String> = ["q1", "q2"]
            .iter()
            .map(|q| all.iter().find(|a| a == q).unwrap())
            .filter(|q| dev.contains(*q))
            .collect();
        assert_eq!(dev_set.qids.iter().collect::<Vec<_>>(), want);
    }

    #[test]
    fn a_bad_collection_directory_is_an_error_naming_the_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        write_collection(dir.path());
        std::fs::write(dir.path().join("qrels.txt"), "q1 0 d1 1\nq2 0 d9 1\n").unwrap();
        let e = collection_set(dir.path(), everything())
            .unwrap_err()
            .to_string();
        assert!(e.contains("qrels.txt:2") && e.contains("d9"), "{e}");

        std::fs::write(dir.path().join("qrels.txt"), "q1 0 d1 0\n").unwrap();
        let e = collection_set(dir.path(), everything())
            .unwrap_err()
            .to_string();
        assert!(e.contains("no query has a judgment of grade 1"), "{e}");

        std::fs::write(dir.path().join("docs.tsv"), "d1\tone\n").unwrap();
        let e = collection_set(dir.path(), everything())
            .unwrap_err()
            .to_string();
        assert!(e.contains("both docs.jsonl and docs.tsv"), "{e}");
        std::fs::remove_file(dir.path().join("docs.jsonl")).unwrap();
        std::fs::remove_file(dir.path().join("docs.tsv")).unwrap();
        let e = collection_set(dir.path(), everything())
            .unwrap_err()
            .to_string();
        assert!(e.contains("no documents file"), "{e}");

        write_collection(dir.path());
        std::fs::write(
            dir.path().join("docs.jsonl"),
            "{\"id\": \"d1\", \"text\": \"one\", \"body\": \"x\"}\n",
        )
        .unwrap();
        let e = collection_set(dir.path(), everything())
            .unwrap_err()
            .to_string();
        assert!(e.contains("docs.jsonl:1") && e.contains("body"), "{e}");
    }

    #[test]
    fn the_query_split_is_fixed_balanced_and_order_free() {
        let ids: Vec<String> = (0..101).map(|i| format!("q{i}")).collect();
        let dev = dev_queries(&ids);
        assert_eq!(dev.len(), 51);
        let mut reversed = ids.clone();
        reversed.reverse();
        assert_eq!(
            dev_queries(&reversed),
            dev,
            "the split depends on input order"
        );
        // Neither half is a prefix of the sorted ids: the split is shuffled.
        let mut sorted = ids.clone();
        sorted.sort();
        assert!(sorted[..51].iter().any(|q| !dev.contains(q)));
        assert_eq!("dev".parse::<Split>().unwrap(), Split::Dev);
        assert!("train".parse::<Split>().is_err());
    }
}
