//! TREC qrels and run files: strict parsers and a run writer.
//!
//! * qrels lines: `qid iter docno rel` (exactly 4 ASCII-whitespace-separated fields, `rel` an integer;
//!   negative values mean "in the pool but unjudged", as in trec_eval).
//! * run lines: `qid iter docno rank score tag` (exactly 6 fields, `score` a finite number; the
//!   `rank` column is ignored, as trec_eval ignores it).
//!
//! Lines holding only whitespace are skipped; anything else malformed is an error that names the
//! file and the line. A document listed twice for one query is rejected (trec_eval also refuses
//! duplicates, though only when both copies survive `-M`).

use std::collections::{BTreeMap, HashMap};

pub use rustc_hash::FxHashMap;
use std::io::Write;
use std::path::Path;

use rayon::prelude::*;

use crate::error::{EvalError, Result};

/// Relevance judgments of one query: docno → relevance grade.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueryQrels {
    pub judgments: FxHashMap<String, i64>,
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

/// Reads a qrels or run file as UTF-8. Bytes that are not UTF-8 are an error naming the file
/// and the line (trec_eval itself compares docnos as bytes; we keep ids as text).
fn read_file(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| EvalError::io(path, e))?;
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let line = 1 + e.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count();
        EvalError::parse(
            &path.display().to_string(),
            line,
            format!("byte {at} of the file is not UTF-8 (ids must be UTF-8 text)"),
        )
    })
}

/// The text without a leading UTF-8 byte-order mark (which would otherwise become part of
/// the first query id and silently match nothing).
fn strip_bom(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}

impl Qrels {
    /// Reads a qrels file.
    pub fn from_path(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        Self::parse(&read_file(path)?, &path.display().to_string())
    }

    /// Reads a qrels file, also passing each line's `(qid, docno)` to `check`, whose error
    /// message becomes an error naming the file and line (e.g. ids not in a collection).
    pub fn from_path_checked(
        path: impl AsRef<Path>,
        check: impl Fn(&str, &str) -> std::result::Result<(), String>,
    ) -> Result<Self> {
        let path = path.as_ref();
        Self::parse_checked(&read_file(path)?, &path.display().to_string(), check)
    }

    /// Parses qrels text; `source_name` is used in error messages.
    pub fn parse(text: &str, source_name: &str) -> Result<Self> {
        Self::parse_checked(text, source_name, |_, _| Ok(()))
    }

    /// [`Qrels::parse`] with a per-line id check (see [`Qrels::from_path_checked`]).
    pub fn parse_checked(
        text: &str,
        source_name: &str,
        check: impl Fn(&str, &str) -> std::result::Result<(), String>,
    ) -> Result<Self> {
        let text = strip_bom(text);
        let mut queries: BTreeMap<String, QueryQrels> = BTreeMap::new();
        let mut first_line: HashMap<(String, String), usize> = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let lineno = i + 1;
            let fields: Vec<&str> = line.split_ascii_whitespace().collect();
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
            check(qid, docno).map_err(|m| EvalError::parse(source_name, lineno, m))?;
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

    /// Builds qrels from `(qid, docno, rel)` judgments held in memory, with the checks a file
    /// gets: no (query, document) pair twice, and ids that a TREC file can hold (non-empty,
    /// no whitespace). `what` names the source in errors.
    pub fn from_judgments<I, Q, D>(judgments: I, what: &str) -> Result<Self>
    where
        I: IntoIterator<Item = (Q, D, i64)>,
        Q: Into<String>,
        D: Into<String>,
    {
        let mut queries: BTreeMap<String, QueryQrels> = BTreeMap::new();
        for (q, d, rel) in judgments {
            let (qid, docno) = (q.into(), d.into());
            check_trec_id(&qid, "query id", what)?;
            check_trec_id(&docno, "document id", what)?;
            let judged = &mut queries.entry(qid.clone()).or_default().judgments;
            if judged.contains_key(&docno) {
                return Err(EvalError::Invalid(format!(
                    "{what}: document '{docno}' judged twice for query '{qid}'"
                )));
            }
            judged.insert(docno, rel);
        }
        Ok(Qrels { queries })
    }

    /// Number of judgments (lines of the qrels file).
    pub fn len(&self) -> usize {
        self.queries.values().map(|q| q.judgments.len()).sum()
    }

    /// Whether there are no judgments.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every judgment as `(qid, docno, rel)`: queries in byte order, documents in byte order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str, i64)> {
        self.queries.iter().flat_map(|(qid, qq)| {
            let mut docs: Vec<(&String, &i64)> = qq.judgments.iter().collect();
            docs.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            docs.into_iter()
                .map(move |(d, &rel)| (qid.as_str(), d.as_str(), rel))
        })
    }

    /// Writes the qrels in TREC format (`qid 0 docno rel`), in [`Qrels::iter`]'s order.
    pub fn write_trec<W: Write>(&self, mut w: W) -> std::io::Result<()> {
        for (qid, docno, rel) in self.iter() {
            writeln!(w, "{qid} 0 {docno} {rel}")?;
        }
        w.flush()
    }

    /// Writes the qrels to a file (see [`Qrels::write_trec`]).
    pub fn write_file(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let f = std::fs::File::create(path).map_err(|e| EvalError::io(path, e))?;
        self.write_trec(std::io::BufWriter::new(f))
            .map_err(|e| EvalError::io(path, e))
    }
}

/// The one rule for ids (and run tags) of whitespace-separated files: non-empty, without
/// whitespace. Returns what is wrong with `id`, a `kind` such as "query id", if anything.
/// clir-data's readers and writers apply the same rule through this function.
pub fn id_problem(id: &str, kind: &str) -> Option<String> {
    if id.is_empty() {
        Some(format!("empty {kind}"))
    } else if id.chars().any(char::is_whitespace) {
        Some(format!("{kind} {id:?} contains whitespace"))
    } else {
        None
    }
}

/// [`id_problem`] as an error of the in-memory source `what`.
fn check_trec_id(id: &str, kind: &str, what: &str) -> Result<()> {
    match id_problem(id, kind) {
        Some(m) => Err(EvalError::Invalid(format!(
            "{what}: {m} (TREC files are whitespace separated)"
        ))),
        None => Ok(()),
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
        let text = strip_bom(text);
        // Parse ~1 MiB chunks (cut at line ends) in parallel, then group by query in file order.
        let chunks = split_chunks(text, 1 << 20);
        let parsed: Vec<(ChunkResult<'_>, usize)> = chunks
            .par_iter()
            .map(|c| {
                (
                    parse_run_chunk(c),
                    c.bytes().filter(|&b| b == b'\n').count(),
                )
            })
            .collect();
        struct Group<'a> {
            qid: &'a str,
            docs: Vec<(&'a str, f64, usize)>,
        }
        let mut groups: Vec<Group<'_>> = Vec::new();
        let mut index: HashMap<&str, usize> = HashMap::new();
        let mut offset = 0usize;
        for (res, newlines) in parsed {
            let raw = res.map_err(|(l, m)| EvalError::parse(source_name, offset + l, m))?;
            let mut last: Option<usize> = None;
            for r in raw {
                let g = match last {
                    Some(g) if groups[g].qid == r.qid => g,
                    _ => *index.entry(r.qid).or_insert_with(|| {
                        groups.push(Group {
                            qid: r.qid,
                            docs: Vec::new(),
                        });
                        groups.len() - 1
                    }),
                };
                last = Some(g);
                groups[g].docs.push((r.docno, r.score, offset + r.line));
            }
            offset += newlines;
        }
        // Per query, in parallel: reject duplicates, own the strings.
        let built: Vec<Result<(String, Vec<ScoredDoc>)>> = groups
            .par_iter()
            .map(|g| {
                let mut first: FxHashMap<&str, usize> =
                    FxHashMap::with_capacity_and_hasher(g.docs.len(), Default::default());
                for &(d, _, line) in &g.docs {
                    if let Some(&first_line) = first.get(d) {
                        return Err(EvalError::Duplicate {
                            source_name: source_name.to_string(),
                            line,
                            first_line,
                            qid: g.qid.to_string(),
                            docno: d.to_string(),
                        });
                    }
                    first.insert(d, line);
                }
                let docs = g
                    .docs
                    .iter()
                    .map(|&(d, score, _)| ScoredDoc {
                        docno: d.to_string(),
                        score,
                    })
                    .collect();
                Ok((g.qid.to_string(), docs))
            })
            .collect();
        let mut queries = BTreeMap::new();
        let mut first_err: Option<EvalError> = None;
        for b in built {
            match b {
                Ok((q, d)) => {
                    queries.insert(q, d);
                }
                Err(e) => {
                    // Report the duplicate that comes first in the file.
                    let line = |e: &EvalError| match e {
                        EvalError::Duplicate { line, .. } => *line,
                        _ => usize::MAX,
                    };
                    if first_err.as_ref().is_none_or(|f| line(&e) < line(f)) {
                        first_err = Some(e);
                    }
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(Run { queries }),
        }
    }

    /// Builds a run from `(qid, docno, score)` triples, rejecting duplicates and non-finite scores.
    pub fn from_triples<I, Q, D>(triples: I) -> Result<Self>
    where
        I: IntoIterator<Item = (Q, D, f64)>,
        Q: Into<String>,
        D: Into<String>,
    {
        let mut queries: BTreeMap<String, Vec<ScoredDoc>> = BTreeMap::new();
        for (q, d, score) in triples {
            queries.entry(q.into()).or_default().push(ScoredDoc {
                docno: d.into(),
                score,
            });
        }
        let run = Run { queries };
        run.validate("run")?;
        Ok(run)
    }

    /// The checks a run file gets when read, for a run built in memory: every score finite and
    /// no document twice in one query's ranking. `what` names the run in the error.
    pub fn validate(&self, what: &str) -> Result<()> {
        for (qid, docs) in &self.queries {
            let mut seen: std::collections::HashSet<&str> =
                std::collections::HashSet::with_capacity(docs.len());
            check_trec_id(qid, "query id", what)?;
            for d in docs {
                check_trec_id(&d.docno, "document id", what)?;
                if !d.score.is_finite() {
                    return Err(EvalError::Invalid(format!(
                        "{what}: score {} for query '{qid}', document '{}' is not finite",
                        d.score, d.docno
                    )));
                }
                if !seen.insert(d.docno.as_str()) {
                    return Err(EvalError::Invalid(format!(
                        "{what}: duplicate document '{}' for query '{qid}'",
                        d.docno
                    )));
                }
            }
        }
        Ok(())
    }

    /// Writes the run in TREC format (`qid Q0 docno rank score tag`), each query's documents
    /// ranked by score descending, ties by docno descending (trec_eval's order), ranks from 1.
    pub fn write_trec<W: Write>(&self, mut w: W, tag: &str) -> std::io::Result<()> {
        if let Some(m) = id_problem(tag, "run tag") {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, m));
        }
        for (qid, docs) in &self.queries {
            let mut sorted: Vec<&ScoredDoc> = docs.iter().collect();
            sorted.sort_by(|a, b| crate::metrics::trec_order(a, b));
            for (rank, d) in sorted.iter().enumerate() {
                writeln!(w, "{qid} Q0 {} {} {} {tag}", d.docno, rank + 1, d.score)?;
            }
        }
        Ok(())
    }
}

/// A chunk's parsed lines, or its first error as (chunk-local line, message).
type ChunkResult<'a> = std::result::Result<Vec<RawLine<'a>>, (usize, String)>;

/// One parsed run line, borrowing from the text; `line` is 1-based within its chunk.
struct RawLine<'a> {
    qid: &'a str,
    docno: &'a str,
    score: f64,
    line: usize,
}

/// Splits `text` into pieces of about `target` bytes, each ending at a newline (or the end).
fn split_chunks(text: &str, target: usize) -> Vec<&str> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    while start < bytes.len() {
        let mut end = (start + target).min(bytes.len());
        while end < bytes.len() && bytes[end - 1] != b'\n' {
            end += 1;
        }
        out.push(&text[start..end]);
        start = end;
    }
    out
}

/// Parses run lines (see the module docs); errors carry the chunk-local line number.
fn parse_run_chunk(chunk: &str) -> ChunkResult<'_> {
    let mut out = Vec::with_capacity(chunk.len() / 32);
    for (i, line) in chunk.lines().enumerate() {
        let lineno = i + 1;
        let mut it = line.split_ascii_whitespace();
        let f: [&str; 6] = std::array::from_fn(|_| it.next().unwrap_or(""));
        let n = f.iter().filter(|x| !x.is_empty()).count() + it.count();
        if n == 0 {
            continue;
        }
        if n != 6 {
            return Err((
                lineno,
                format!("expected 6 fields 'qid iter docno rank score tag', found {n}"),
            ));
        }
        let score: f64 = f[4]
            .parse()
            .map_err(|_| (lineno, format!("score '{}' is not a number", f[4])))?;
        if !score.is_finite() {
            return Err((lineno, format!("score '{}' is not finite", f[4])));
        }
        out.push(RawLine {
            qid: f[0],
            docno: f[2],
            score,
            line: lineno,
        });
    }
    Ok(out)
}
