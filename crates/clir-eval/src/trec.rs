//! TREC qrels and run files: strict parsers and a run writer.
//!
//! * qrels lines: `qid iter docno rel` (exactly 4 whitespace-separated fields, `rel` an integer;
//!   negative values mean "in the pool but unjudged", as in trec_eval).
//! * run lines: `qid iter docno rank score tag` (exactly 6 fields, `score` a finite number; the
//!   `rank` column is ignored, as trec_eval ignores it).
//!
//! Lines holding only whitespace are skipped; anything else malformed is an error that names the
//! file and the line. A document listed twice for one query is rejected (trec_eval also refuses
//! duplicates, though only when both copies survive `-M`).

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;

use crate::error::{EvalError, Result};

/// Relevance judgments of one query: docno → relevance grade.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueryQrels {
    pub judgments: HashMap<String, i64>,
}

impl QueryQrels {
    /// Number of documents with grade ≥ `level` (trec_eval's `num_rel`).
    pub fn num_rel(&self, level: i64) -> usize {
        self.judgments.values().filter(|&&r| r >= level).count()
    }
}

/// Relevance judgments for all queries, ordered by qid byte-wise (trec_eval's `strcmp` order).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Qrels {
    pub queries: BTreeMap<String, QueryQrels>,
}

/// One retrieved document with its score.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredDoc {
    pub docno: String,
    pub score: f64,
}

/// A ranked run: qid → retrieved documents (any order; evaluation sorts them).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Run {
    pub queries: BTreeMap<String, Vec<ScoredDoc>>,
}

fn read_file(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| EvalError::io(path, e))
}

impl Qrels {
    /// Reads a qrels file.
    pub fn from_path(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        Self::parse(&read_file(path)?, &path.display().to_string())
    }

    /// Parses qrels text; `source_name` is used in error messages.
    pub fn parse(text: &str, source_name: &str) -> Result<Self> {
        let mut queries: BTreeMap<String, QueryQrels> = BTreeMap::new();
        let mut first_line: HashMap<(String, String), usize> = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let lineno = i + 1;
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.is_empty() {
                continue;
            }
            if fields.len() != 4 {
                return Err(EvalError::parse(
                    source_name,
                    lineno,
                    format!(
                        "expected 4 fields 'qid iter docno rel', found {}",
                        fields.len()
                    ),
                ));
            }
            let (qid, docno) = (fields[0], fields[2]);
            let rel: i64 = fields[3].parse().map_err(|_| {
                EvalError::parse(
                    source_name,
                    lineno,
                    format!("relevance '{}' is not an integer", fields[3]),
                )
            })?;
            let key = (qid.to_string(), docno.to_string());
            if let Some(&first) = first_line.get(&key) {
                return Err(EvalError::Duplicate {
                    source_name: source_name.to_string(),
                    line: lineno,
                    first_line: first,
                    qid: key.0,
                    docno: key.1,
                });
            }
            first_line.insert(key, lineno);
            queries
                .entry(qid.to_string())
                .or_default()
                .judgments
                .insert(docno.to_string(), rel);
        }
        Ok(Qrels { queries })
    }
}

impl Run {
    /// Reads a run file.
    pub fn from_path(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        Self::parse(&read_file(path)?, &path.display().to_string())
    }

    /// Parses run text; `source_name` is used in error messages.
    pub fn parse(text: &str, source_name: &str) -> Result<Self> {
        let mut queries: BTreeMap<String, Vec<ScoredDoc>> = BTreeMap::new();
        let mut lines_of: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            let lineno = i + 1;
            let mut it = line.split_whitespace();
            let fields: [Option<&str>; 6] = std::array::from_fn(|_| it.next());
            let extra = it.count();
            let n = fields.iter().flatten().count() + extra;
            if n == 0 {
                continue;
            }
            if n != 6 {
                return Err(EvalError::parse(
                    source_name,
                    lineno,
                    format!("expected 6 fields 'qid iter docno rank score tag', found {n}"),
                ));
            }
            let f = fields.map(|x| x.unwrap_or(""));
            let score: f64 = f[4].parse().map_err(|_| {
                EvalError::parse(
                    source_name,
                    lineno,
                    format!("score '{}' is not a number", f[4]),
                )
            })?;
            if !score.is_finite() {
                return Err(EvalError::parse(
                    source_name,
                    lineno,
                    format!("score '{}' is not finite", f[4]),
                ));
            }
            let docs = match queries.get_mut(f[0]) {
                Some(d) => d,
                None => queries.entry(f[0].to_string()).or_default(),
            };
            docs.push(ScoredDoc {
                docno: f[2].to_string(),
                score,
            });
            match lines_of.get_mut(f[0]) {
                Some(l) => l.push(lineno),
                None => {
                    lines_of.insert(f[0].to_string(), vec![lineno]);
                }
            }
        }
        // Duplicate check per query: sort positions by docno and compare neighbours.
        for (qid, docs) in &queries {
            let lines = &lines_of[qid];
            let mut order: Vec<usize> = (0..docs.len()).collect();
            order.sort_unstable_by(|&a, &b| docs[a].docno.cmp(&docs[b].docno).then(a.cmp(&b)));
            for w in order.windows(2) {
                if docs[w[0]].docno == docs[w[1]].docno {
                    return Err(EvalError::Duplicate {
                        source_name: source_name.to_string(),
                        line: lines[w[1]],
                        first_line: lines[w[0]],
                        qid: qid.clone(),
                        docno: docs[w[1]].docno.clone(),
                    });
                }
            }
        }
        Ok(Run { queries })
    }

    /// Builds a run from `(qid, docno, score)` triples, rejecting duplicates and non-finite scores.
    pub fn from_triples<I, Q, D>(triples: I) -> Result<Self>
    where
        I: IntoIterator<Item = (Q, D, f64)>,
        Q: Into<String>,
        D: Into<String>,
    {
        let mut queries: BTreeMap<String, Vec<ScoredDoc>> = BTreeMap::new();
        let mut seen: std::collections::HashSet<(String, String)> = Default::default();
        for (q, d, s) in triples {
            let (q, d): (String, String) = (q.into(), d.into());
            if !s.is_finite() {
                return Err(EvalError::Invalid(format!(
                    "score {s} for query '{q}', document '{d}' is not finite"
                )));
            }
            if !seen.insert((q.clone(), d.clone())) {
                return Err(EvalError::Invalid(format!(
                    "duplicate document '{d}' for query '{q}'"
                )));
            }
            queries
                .entry(q)
                .or_default()
                .push(ScoredDoc { docno: d, score: s });
        }
        Ok(Run { queries })
    }

    /// Writes the run in TREC format (`qid Q0 docno rank score tag`), each query's documents
    /// ranked by score descending, ties by docno descending (trec_eval's order), ranks from 1.
    pub fn write_trec<W: Write>(&self, mut w: W, tag: &str) -> std::io::Result<()> {
        for (qid, docs) in &self.queries {
            let mut sorted: Vec<&ScoredDoc> = docs.iter().collect();
            sorted.sort_by(|a, b| {
                b.score
                    .total_cmp(&a.score)
                    .then_with(|| b.docno.cmp(&a.docno))
            });
            for (rank, d) in sorted.iter().enumerate() {
                writeln!(w, "{qid} Q0 {} {} {} {tag}", d.docno, rank + 1, d.score)?;
            }
        }
        Ok(())
    }
}
