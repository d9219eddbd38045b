//! trec_eval-exact ranking measures (semantics of trec_eval 9.0.8, the version bundled by
//! pytrec_eval).
//!
//! Per query, trec_eval
//! 1. sorts the retrieved documents by score descending and breaks ties by docno in *descending*
//!    byte order (`strcmp(b, a)`), then keeps the first `-M` documents;
//! 2. labels each retrieved document with its qrels grade, or "non-pool" when it is not in the
//!    qrels (and "unjudged" for negative grades): both count as non-relevant;
//! 3. counts `R` = judged documents with grade ≥ the relevance level (1 by default) and `N` =
//!    judged documents with grade in [0, level) (the judged non-relevant ones).
//!
//! With ranks `i = 1..n` and `rel_i = 1` when the grade at rank `i` is ≥ the level:
//! * `map` = Σ_i rel_i · P@i / R (0 when nothing relevant is retrieved);
//! * `Rprec` = |relevant in the top min(n, R)| / R;
//! * `bpref` = (1/R) Σ over relevant retrieved r of (1 − min(n_r, R) / min(N, R)), where n_r =
//!   judged non-relevant documents ranked above r (non-pool and unjudged ones are skipped); a
//!   term is 1 when n_r = 0, and bpref is 0 when R = 0;
//! * `recip_rank` = 1 / first relevant rank (0 if none);
//! * `P_k` = |relevant in the top k| / k (k, not min(k, n));
//! * `recall_k` = |relevant in the top k| / R;
//! * `ndcg_cut_k` = DCG@k / IDCG@k with DCG@k = Σ_{i≤k} g_i / log2(i + 1), gain `g_i` = the
//!   grade when positive, IDCG from the qrels grades sorted descending.
//!
//! Two measures trec_eval 9.0.8 does not have, named in its style and computed on the same
//! ranking (so `-M` applies to them too):
//! * `recip_rank_cut_k` (ir_measures `RR@k`) = 1 / first relevant rank if that rank is ≤ k, else
//!   0 — trec_eval's `recip_rank` under `-M k`;
//! * `judged_k` (ir_measures `Judged@k`) = |documents in the top min(k, n) that have a qrels line,
//!   whatever its grade (negative and 0 included)| / min(k, n).
//!
//! Queries in the run but not in the qrels are skipped. Queries in the qrels with no relevant
//! document are *not* skipped when they appear in the run (trec_eval scores them 0 and counts them
//! in the mean). The "all" line is the mean over evaluated queries, or with `-c` over every qrels
//! query (missing ones count as 0). `num_ret`, `num_rel_ret` and `num_rel` are summed, not averaged.

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::fmt::Write as _;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{EvalError, Result};
use crate::trec::{Qrels, QueryQrels, Run, ScoredDoc};

/// trec_eval's default cutoffs for `P`, `recall` and `ndcg_cut` given without parameters.
pub const TREC_DEFAULT_CUTOFFS: [usize; 9] = [5, 10, 15, 20, 30, 100, 200, 500, 1000];

/// A measure family, in trec_eval's printing order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Family {
    NumQ,
    NumRet,
    NumRel,
    NumRelRet,
    Map,
    Rprec,
    Bpref,
    RecipRank,
    /// Not in trec_eval: `recip_rank` with a cutoff (ir_measures `RR@k`).
    RecipRankCut,
    P,
    Recall,
    NdcgCut,
    /// Not in trec_eval: the judged fraction of the top k (ir_measures `Judged@k`).
    Judged,
}

impl Family {
    fn name(self) -> &'static str {
        match self {
            Family::NumQ => "num_q",
            Family::NumRet => "num_ret",
            Family::NumRel => "num_rel",
            Family::NumRelRet => "num_rel_ret",
            Family::Map => "map",
            Family::Rprec => "Rprec",
            Family::Bpref => "bpref",
            Family::RecipRank => "recip_rank",
            Family::RecipRankCut => "recip_rank_cut",
            Family::P => "P",
            Family::Recall => "recall",
            Family::NdcgCut => "ndcg_cut",
            Family::Judged => "judged",
        }
    }

    fn from_name(s: &str) -> Option<Self> {
        Some(match s {
            "num_q" => Family::NumQ,
            "num_ret" => Family::NumRet,
            "num_rel" => Family::NumRel,
            "num_rel_ret" => Family::NumRelRet,
            "map" => Family::Map,
            "Rprec" => Family::Rprec,
            "bpref" => Family::Bpref,
            "recip_rank" => Family::RecipRank,
            "recip_rank_cut" => Family::RecipRankCut,
            "P" => Family::P,
            "recall" => Family::Recall,
            "ndcg_cut" => Family::NdcgCut,
            "judged" => Family::Judged,
            _ => return None,
        })
    }

    fn has_cutoffs(self) -> bool {
        matches!(
            self,
            Family::P | Family::Recall | Family::NdcgCut | Family::RecipRankCut | Family::Judged
        )
    }

    /// Counts printed as integers (`%ld` in trec_eval).
    fn is_count(self) -> bool {
        matches!(
            self,
            Family::NumQ | Family::NumRet | Family::NumRel | Family::NumRelRet
        )
    }
}

/// One output value: a family and, for cutoff families, the cutoff (`P_10`, `ndcg_cut_20`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Measure {
    pub family: Family,
    pub cutoff: Option<usize>,
}

impl Measure {
    /// trec_eval's output name: `map`, `P_5`, `ndcg_cut_10`, ...
    pub fn name(&self) -> String {
        match self.cutoff {
            Some(k) => format!("{}_{k}", self.family.name()),
            None => self.family.name().to_string(),
        }
    }

    /// Whether the value is a count (printed without decimals, summed in "all").
    pub fn is_count(&self) -> bool {
        self.family.is_count()
    }
}

/// The trec_eval-style spec of an ir_measures measure name, or `spec` itself: `AP` → `map`,
/// `RR` → `recip_rank`, `Bpref` → `bpref`, `nDCG@k` → `ndcg_cut.k`, `P@k` → `P.k`, `R@k` →
/// `recall.k`, `RR@k` → `recip_rank_cut.k`, `Judged@k` → `judged.k`. `nDCG` and `Judged`
/// without a cutoff are errors saying so, never a silent substitute.
pub fn trec_spec(spec: &str) -> Result<String> {
    let bad = |why: &str| EvalError::BadMeasure(format!("{spec} ({why})"));
    let cutoff = |k: &str| -> Result<usize> {
        k.parse::<usize>()
            .ok()
            .filter(|&k| k > 0)
            .ok_or_else(|| bad("the cutoff must be a positive integer"))
    };
    Ok(match spec.split_once('@') {
        None => match spec {
            "AP" => "map".into(),
            "RR" => "recip_rank".into(),
            "Bpref" => "bpref".into(),
            "nDCG" => return Err(bad("give a cutoff, nDCG@k; trec_eval's ndcg has none here")),
            "Judged" => {
                return Err(bad(
                    "give a cutoff, Judged@k; the whole-ranking judged rate is not computed here",
                ));
            }
            _ => spec.to_string(),
        },
        Some(("nDCG", k)) => format!("ndcg_cut.{}", cutoff(k)?),
        Some(("P", k)) => format!("P.{}", cutoff(k)?),
        Some(("R", k)) => format!("recall.{}", cutoff(k)?),
        Some(("RR", k)) => format!("recip_rank_cut.{}", cutoff(k)?),
        Some(("Judged", k)) => format!("judged.{}", cutoff(k)?),
        Some(_) => return Err(bad("unknown ir_measures name")),
    })
}

/// An ordered set of measures (trec_eval's order: family, then cutoff ascending).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeasureSet {
    measures: Vec<Measure>,
}

impl MeasureSet {
    /// The measures of the OPTICAL evaluation: `map`, `ndcg_cut.5,10,20,100`, `recip_rank`,
    /// `P.5,10,20,100`, `recall.10,100,1000`, `Rprec`.
    pub fn standard() -> Self {
        Self::parse(&[
            "map",
            "Rprec",
            "recip_rank",
            "P.5,10,20,100",
            "recall.10,100,1000",
            "ndcg_cut.5,10,20,100",
        ])
        .expect("static measure list parses")
    }

    /// Parses trec_eval `-m` specs: `map`, `bpref`, `P.5,10`, `ndcg_cut` (default cutoffs),
    /// `num_q`, ..., the two non-trec_eval families `recip_rank_cut.k` and `judged.k`, and the
    /// ir_measures names of the same measures (`AP`, `RR`, `Bpref`, `nDCG@10`, `P@10`, `R@100`,
    /// `RR@10`, `Judged@10`; see [`trec_spec`]). Several specs are merged; cutoffs must be
    /// positive integers. Output keeps trec_eval's names.
    pub fn parse<S: AsRef<str>>(specs: &[S]) -> Result<Self> {
        let mut set: BTreeSet<Measure> = BTreeSet::new();
        for spec in specs {
            let spec = trec_spec(spec.as_ref().trim())?;
            let spec = spec.as_str();
            let (name, params) = match spec.split_once('.') {
                Some((n, p)) => (n, Some(p)),
                None => (spec, None),
            };
            let family =
                Family::from_name(name).ok_or_else(|| EvalError::BadMeasure(spec.to_string()))?;
            match (family.has_cutoffs(), params) {
                (false, None) => {
                    set.insert(Measure {
                        family,
                        cutoff: None,
                    });
                }
                (false, Some(_)) => return Err(EvalError::BadMeasure(spec.to_string())),
                (true, None) => {
                    for k in TREC_DEFAULT_CUTOFFS {
                        set.insert(Measure {
                            family,
                            cutoff: Some(k),
                        });
                    }
                }
                (true, Some(p)) => {
                    for part in p.split(',') {
                        let k: usize = part
                            .trim()
                            .parse()
                            .ok()
                            .filter(|&k| k > 0)
                            .ok_or_else(|| EvalError::BadMeasure(spec.to_string()))?;
                        set.insert(Measure {
                            family,
                            cutoff: Some(k),
                        });
                    }
                }
            }
        }
        if set.is_empty() {
            return Err(EvalError::BadMeasure(String::new()));
        }
        Ok(MeasureSet {
            measures: set.into_iter().collect(),
        })
    }

    /// The measures, in output order.
    pub fn measures(&self) -> &[Measure] {
        &self.measures
    }

    /// Position of a measure by output name (`P_10`).
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.measures.iter().position(|m| m.name() == name)
    }
}

/// Evaluation options, mirroring trec_eval's flags.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EvalOptions {
    /// `-c`: average over all qrels queries, missing ones counting 0.
    pub average_complete: bool,
    /// `-M`: evaluate only the first N ranked documents of each query.
    pub max_docs_per_query: Option<usize>,
    /// `-l`: minimum grade for "relevant" (1); must be ≥ 0.
    pub relevance_level: i64,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            average_complete: false,
            max_docs_per_query: None,
            relevance_level: 1,
        }
    }
}

/// Per-query values, in the order of the [`MeasureSet`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryResult {
    pub qid: String,
    pub values: Vec<f64>,
}

/// The outcome of [`evaluate`]: per-query values and the "all" aggregate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub measures: MeasureSet,
    /// Evaluated queries (in both run and qrels), in qid byte order.
    pub per_query: Vec<QueryResult>,
    /// Aggregate ("all") values.
    pub all: Vec<f64>,
}

impl Evaluation {
    /// Per-query value of `measure` (output name) for `qid`.
    pub fn value(&self, qid: &str, measure: &str) -> Option<f64> {
        let m = self.measures.index_of(measure)?;
        let q = self
            .per_query
            .binary_search_by(|r| r.qid.as_str().cmp(qid))
            .ok()?;
        Some(self.per_query[q].values[m])
    }

    /// Aggregate value of `measure` (output name).
    pub fn all_value(&self, measure: &str) -> Option<f64> {
        self.measures.index_of(measure).map(|m| self.all[m])
    }

    /// `(qid, value)` for every evaluated query.
    pub fn per_query_values(&self, measure: &str) -> Result<Vec<(String, f64)>> {
        let m = self
            .measures
            .index_of(measure)
            .ok_or_else(|| EvalError::BadMeasure(measure.to_string()))?;
        Ok(self
            .per_query
            .iter()
            .map(|r| (r.qid.clone(), r.values[m]))
            .collect())
    }

    /// trec_eval-formatted text: `name<TAB>qid<TAB>value`, the name left-justified to 22
    /// characters, values with 4 decimals (counts as integers); per-query lines (with `-q`)
    /// come first, then the `all` lines.
    pub fn format_trec(&self, per_query: bool) -> String {
        let mut out = String::new();
        let ms = self.measures.measures();
        if per_query {
            for q in &self.per_query {
                for (m, v) in ms.iter().zip(&q.values) {
                    if m.family == Family::NumQ {
                        continue; // trec_eval prints num_q only for "all"
                    }
                    write_line(&mut out, m, &q.qid, *v);
                }
            }
        }
        for (m, v) in ms.iter().zip(&self.all) {
            write_line(&mut out, m, "all", *v);
        }
        out
    }
}

fn write_line(out: &mut String, m: &Measure, qid: &str, v: f64) {
    let name = m.name();
    let v = v + 0.0; // never print "-0.0000"
    if m.is_count() {
        let _ = writeln!(out, "{name:<22}\t{qid}\t{}", v.round() as i64);
    } else {
        let _ = writeln!(out, "{name:<22}\t{qid}\t{v:.4}");
    }
}

/// A run score as trec_eval 9.0.8 compares it: stored in a C `float`, so scores equal to f32
/// precision tie (then fall to the docno order), and `-0` equals `0` as under C's `<`/`>`.
/// Scores are validated finite before they get here; a NaN would still order totally.
pub fn trec_score(score: f64) -> f32 {
    let f = score as f32;
    if f == 0.0 { 0.0 } else { f }
}

/// trec_eval's ranking order: score (as [`trec_score`]) descending, ties by docno descending
/// (byte order).
pub fn trec_order(a: &ScoredDoc, b: &ScoredDoc) -> Ordering {
    trec_key_order(
        (trec_score(a.score), &a.docno),
        (trec_score(b.score), &b.docno),
    )
}

/// [`trec_order`] on `(trec_score, docno)` keys.
fn trec_key_order(a: (f32, &str), b: (f32, &str)) -> Ordering {
    b.0.total_cmp(&a.0)
        .then_with(|| b.1.as_bytes().cmp(a.1.as_bytes()))
}

/// The judged view of one ranked query: trec_eval's relevance value by rank (the grade, or
/// [`NON_POOL`] / [`UNJUDGED`]) and counts from the qrels.
struct JudgedRanking {
    grades: Vec<i64>,
    /// `R`: qrels documents with grade ≥ the level.
    num_rel: usize,
    /// `N`: qrels documents with grade in [0, level).
    num_nonrel: usize,
    /// Positive grades of all judged documents, sorted descending (for the ideal DCG).
    ideal: Vec<i64>,
}

/// trec_eval's `RELVALUE_NONPOOL`: the document has no qrels line.
const NON_POOL: i64 = -1;
/// trec_eval's `RELVALUE_UNJUDGED`: the qrels line has a negative grade ("in the pool, not
/// judged"). Both codes are below every level ≥ 0, so they never count as relevant.
const UNJUDGED: i64 = -2;

fn judge(docs: &[ScoredDoc], qrels: &QueryQrels, opts: &EvalOptions) -> JudgedRanking {
    // Sort (score, docno) keys by value: fewer indirections than sorting references.
    let mut order: Vec<(f32, &str)> = docs
        .iter()
        .map(|d| (trec_score(d.score), d.docno.as_str()))
        .collect();
    order.sort_unstable_by(|a, b| trec_key_order(*a, *b));
    if let Some(m) = opts.max_docs_per_query {
        order.truncate(m);
    }
    let grades = order
        .iter()
        .map(|(_, d)| match qrels.judgments.get(*d) {
            Some(&g) if g >= 0 => g,
            Some(_) => UNJUDGED,
            None => NON_POOL,
        })
        .collect();
    let mut ideal: Vec<i64> = qrels
        .judgments
        .values()
        .copied()
        .filter(|&g| g > 0)
        .collect();
    ideal.sort_unstable_by(|a, b| b.cmp(a));
    let level = opts.relevance_level;
    JudgedRanking {
        grades,
        num_rel: qrels.num_rel(level),
        num_nonrel: qrels
            .judgments
            .values()
            .filter(|&&g| (0..level).contains(&g))
            .count(),
        ideal,
    }
}

/// `prefix[k]` = how many of the first k items are true, for k = 0..=len.
fn prefix_counts(items: impl Iterator<Item = bool>) -> Vec<usize> {
    let mut prefix = vec![0usize];
    for x in items {
        prefix.push(prefix.last().copied().unwrap_or(0) + x as usize);
    }
    prefix
}

/// trec_eval's bpref (see the module docs): R relevant and N judged non-relevant documents in
/// the qrels, the ranking's relevance values in `grades`.
fn bpref(grades: &[i64], level: i64, r: usize, n: usize) -> f64 {
    if r == 0 {
        return 0.0;
    }
    let mut nonrel_above = 0usize;
    let mut sum = 0.0;
    for &g in grades {
        if g < 0 {
            continue; // non-pool or unjudged: skipped
        }
        if g < level {
            nonrel_above += 1;
        } else if nonrel_above == 0 {
            sum += 1.0;
        } else {
            // nonrel_above ≤ N, so N > 0 here.
            sum += 1.0 - nonrel_above.min(r) as f64 / n.min(r) as f64;
        }
    }
    sum / r as f64
}

/// Discounted cumulative gain of the first `k` gains: Σ g_i / log2(i + 1), positive gains only.
fn dcg(gains: &[i64], k: usize) -> f64 {
    gains
        .iter()
        .take(k)
        .enumerate()
        .filter(|(_, g)| **g > 0)
        .fold(0.0, |acc, (i, &g)| acc + g as f64 / ((i + 2) as f64).log2())
}

fn query_values(j: &JudgedRanking, measures: &[Measure], level: i64) -> Vec<f64> {
    let n = j.grades.len();
    let rel: Vec<bool> = j.grades.iter().map(|&g| g >= level).collect();
    // rel_prefix[i] = relevant among the first i documents.
    let rel_prefix = prefix_counts(rel.iter().copied());
    let rel_in_top = |k: usize| rel_prefix[k.min(n)];
    // judged_prefix[i] = documents with a qrels line (any grade) among the first i.
    let judged_prefix = prefix_counts(j.grades.iter().map(|&g| g != NON_POOL));
    let first_rel = rel.iter().position(|&x| x);
    let r = j.num_rel;
    measures
        .iter()
        .map(|m| match (m.family, m.cutoff) {
            (Family::NumQ, _) => 1.0,
            (Family::NumRet, _) => n as f64,
            (Family::NumRel, _) => r as f64,
            (Family::NumRelRet, _) => rel_in_top(n) as f64,
            (Family::Map, _) => {
                if r == 0 {
                    return 0.0;
                }
                let mut found = 0usize;
                let mut sum = 0.0;
                for (i, &is_rel) in rel.iter().enumerate() {
                    if is_rel {
                        found += 1;
                        sum += found as f64 / (i + 1) as f64;
                    }
                }
                sum / r as f64
            }
            (Family::Rprec, _) => {
                if r == 0 || n == 0 {
                    0.0
                } else {
                    rel_in_top(r) as f64 / r as f64
                }
            }
            (Family::Bpref, _) => bpref(&j.grades, level, r, j.num_nonrel),
            (Family::RecipRank, _) => first_rel.map_or(0.0, |i| 1.0 / (i + 1) as f64),
            (Family::RecipRankCut, Some(k)) => first_rel
                .filter(|&i| i < k)
                .map_or(0.0, |i| 1.0 / (i + 1) as f64),
            (Family::P, Some(k)) => rel_in_top(k) as f64 / k as f64,
            (Family::Recall, Some(k)) => {
                if r == 0 {
                    0.0
                } else {
                    rel_in_top(k) as f64 / r as f64
                }
            }
            (Family::NdcgCut, Some(k)) => {
                let ideal = dcg(&j.ideal, k);
                if ideal > 0.0 {
                    dcg(&j.grades, k) / ideal
                } else {
                    0.0
                }
            }
            (Family::Judged, Some(k)) => {
                let top = k.min(n);
                if top == 0 {
                    0.0
                } else {
                    judged_prefix[top] as f64 / top as f64
                }
            }
            (_, None) => unreachable!("cutoff families always carry a cutoff"),
        })
        .collect()
}

/// Evaluates `run` against `qrels` with trec_eval's semantics (see the module docs).
///
/// Errors with [`EvalError::NoQueries`] when no run query has qrels (trec_eval's exit 7).
pub fn evaluate(
    qrels: &Qrels,
    run: &Run,
    measures: &MeasureSet,
    opts: &EvalOptions,
) -> Result<Evaluation> {
    evaluate_with_progress(qrels, run, measures, opts, false)
}

/// [`evaluate`] with an optional progress bar (one step per query) on stderr.
pub fn evaluate_with_progress(
    qrels: &Qrels,
    run: &Run,
    measures: &MeasureSet,
    opts: &EvalOptions,
    show_progress: bool,
) -> Result<Evaluation> {
    let ms = measures.measures();
    if opts.relevance_level < 0 {
        // trec_eval accepts it but then counts non-pool documents as relevant (map > 1).
        return Err(EvalError::Invalid(format!(
            "relevance level {} is negative: it must be ≥ 0",
            opts.relevance_level
        )));
    }
    // In-memory runs (dense, BM25, rerank) get the checks a run file gets when read.
    run.validate("in-memory run")?;
    // An empty ranking is a query absent from the run, as it is once the run is written out.
    let evaluated: Vec<(&String, &Vec<ScoredDoc>, &QueryQrels)> = run
        .queries
        .iter()
        .filter(|(_, docs)| !docs.is_empty())
        .filter_map(|(qid, docs)| qrels.queries.get(qid).map(|q| (qid, docs, q)))
        .collect();
    if evaluated.is_empty() {
        return Err(EvalError::NoQueries);
    }
    let bar = crate::progress::bar(evaluated.len() as u64, "evaluate", show_progress);
    let per_query: Vec<QueryResult> = evaluated
        .par_iter()
        .with_min_len(16)
        .map(|(qid, docs, q)| {
            let j = judge(docs, q, opts);
            bar.inc(1);
            QueryResult {
                qid: (*qid).clone(),
                values: query_values(&j, ms, opts.relevance_level),
            }
        })
        .collect();
    bar.finish_and_clear();
    let n_eval = per_query.len();
    let denom = if opts.average_complete {
        qrels.queries.len()
    } else {
        n_eval
    };
    let all = ms
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let sum = per_query.iter().fold(0.0, |acc, q| acc + q.values[i]);
            match m.family {
                Family::NumQ => denom as f64,
                Family::NumRet | Family::NumRelRet => sum,
                Family::NumRel if opts.average_complete => {
                    // trec_eval sums grades > 0 over all qrels queries here.
                    qrels
                        .queries
                        .values()
                        .map(|q| q.judgments.values().filter(|&&g| g > 0).count() as f64)
                        .sum()
                }
                Family::NumRel => sum,
                _ => sum / denom as f64,
            }
        })
        .collect();
    Ok(Evaluation {
        measures: measures.clone(),
        per_query,
        all,
    })
}
