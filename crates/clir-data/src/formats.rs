//! Standard on-disk formats, read in a streaming way and written back.
//!
//! - Bitext: TSV `src<TAB>tgt`, Moses-style two aligned files (one sentence per line), JSONL
//!   `{"src": …, "tgt": …}`.
//! - Queries: TSV `qid<TAB>text`. Documents: JSONL `{"id": …, "text": …}` (`doc_id` for `id`
//!   and an optional `title`, put before the text, are accepted) or TSV `id<TAB>text`.
//! - JSONL records may hold only the fields named here: an unknown field is an error naming it
//!   and the line, never silently ignored (it could hold text the user meant to index).
//! - TREC qrels and runs are read and written by `clir_eval::trec`, the one trec_eval-exact
//!   reader and writer (re-exported here as [`Qrels`] and [`Run`]).
//!
//! Readers are iterators over `Result<record>`: they hold one line at a time (plus the set of ids
//! seen, to reject duplicates), report the file and 1-based line of any malformed record (wrong
//! column count, empty text, invalid UTF-8, duplicate id, unknown id where a known set was
//! given) and stop after the first error. Nothing is skipped: blank lines are errors too.
//! Ids may not be empty or contain whitespace (TREC files are whitespace separated). A UTF-8
//! byte-order mark at the very start of a file is accepted.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};

pub use clir_eval::trec::{Qrels, QueryQrels, Run, ScoredDoc};

/// One sentence pair. In JSONL, `src` and `tgt` are the only fields: any other field is an
/// error naming it, so no text is ever silently ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BitextPair {
    /// Source-side text (English in this project).
    pub src: String,
    /// Target-side text.
    pub tgt: String,
}

/// A query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// Query id.
    pub id: String,
    /// Query text.
    pub text: String,
}

/// A document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Document {
    /// Document id.
    pub id: String,
    /// Document text.
    pub text: String,
}

/// A JSONL document as read: `id` (or ir_datasets' `doc_id`), `text` and an optional `title`,
/// which is put before the text (`"title text"`), as BEIR-style collections are usually
/// indexed. Any other field is an error naming it: the reader never drops text silently.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonDocument {
    #[serde(alias = "doc_id")]
    id: String,
    #[serde(default)]
    title: Option<String>,
    text: String,
}

impl JsonDocument {
    fn into_document(self) -> Document {
        let text = match self.title.as_deref().map(str::trim) {
            Some(title) if !title.is_empty() => format!("{title} {}", self.text),
            _ => self.text,
        };
        Document { id: self.id, text }
    }
}

/// Opens a file for buffered reading, with the path in the error.
pub fn open(path: &Path) -> Result<BufReader<File>> {
    File::open(path)
        .map(BufReader::new)
        .map_err(|e| DataError::io(path, e))
}

fn create(path: &Path) -> Result<BufWriter<File>> {
    if let Some(p) = path.parent()
        && !p.as_os_str().is_empty()
    {
        std::fs::create_dir_all(p).map_err(|e| DataError::io(p, e))?;
    }
    File::create(path)
        .map(BufWriter::new)
        .map_err(|e| DataError::io(path, e))
}

/// Reads a file line by line, tracking the line number and checking UTF-8.
pub struct Lines<R> {
    path: PathBuf,
    reader: R,
    line: u64,
    buf: Vec<u8>,
}

impl<R: BufRead> Lines<R> {
    /// Wraps `reader`; `path` is used in error messages.
    pub fn new(path: impl Into<PathBuf>, reader: R) -> Self {
        Lines {
            path: path.into(),
            reader,
            line: 0,
            buf: Vec::new(),
        }
    }

    /// The file name used in messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The number of the line last returned.
    pub fn line_no(&self) -> u64 {
        self.line
    }

    /// The next line without its terminator (`\n` or `\r\n`), or `None` at the end.
    pub fn next_line(&mut self) -> Result<Option<String>> {
        self.buf.clear();
        let n = self
            .reader
            .read_until(b'\n', &mut self.buf)
            .map_err(|e| DataError::io(&self.path, e))?;
        // A file that is only a byte-order mark holds no lines.
        if n == 0 || (self.line == 0 && self.buf == b"\xEF\xBB\xBF") {
            return Ok(None);
        }
        self.line += 1;
        if self.buf.last() == Some(&b'\n') {
            self.buf.pop();
            if self.buf.last() == Some(&b'\r') {
                self.buf.pop();
            }
        }
        let mut bytes = &self.buf[..];
        if self.line == 1 && bytes.starts_with(b"\xEF\xBB\xBF") {
            bytes = &bytes[3..];
        }
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(Some(s.to_string())),
            Err(e) => Err(self.err(format!("invalid UTF-8 at byte {}", e.valid_up_to()))),
        }
    }

    /// A malformed-record error at the current line.
    pub fn err(&self, msg: impl Into<String>) -> DataError {
        DataError::malformed(&self.path, self.line, msg)
    }
}

fn check_text(text: &str, what: &str) -> std::result::Result<(), String> {
    if text.trim().is_empty() {
        Err(format!("empty {what}"))
    } else {
        Ok(())
    }
}

fn check_id(id: &str, what: &str) -> std::result::Result<(), String> {
    clir_eval::trec::id_problem(id, what).map_or(Ok(()), Err)
}

/// Splits a TSV line into exactly two fields.
fn split2(line: &str) -> std::result::Result<(&str, &str), String> {
    let n = line.split('\t').count();
    if n != 2 {
        return Err(format!("expected 2 tab-separated columns, found {n}"));
    }
    let (a, b) = line.split_once('\t').expect("two columns");
    Ok((a, b))
}

/// Fuses an iterator after its first error.
macro_rules! fused_next {
    ($self:expr, $body:expr) => {{
        if $self.failed {
            return None;
        }
        let r: Result<Option<_>> = $body;
        match r {
            Ok(v) => v.map(Ok),
            Err(e) => {
                $self.failed = true;
                Some(Err(e))
            }
        }
    }};
}

/// One record per line: how a [`RecordReader`] turns a line into its record (`Err(message)`
/// for a bad line; the reader adds the file and line), keeping what it must across lines
/// (ids seen so far).
pub trait LineFormat {
    type Record;
    fn parse(&mut self, line: &str) -> std::result::Result<Self::Record, String>;
}

/// A streaming reader of one record per line in the format `F`: errors name the file and the
/// line, and the iterator ends after its first error. [`BitextReader`], [`QueriesReader`] and
/// [`DocsReader`] are its instances.
pub struct RecordReader<R, F> {
    lines: Lines<R>,
    format: F,
    failed: bool,
}

impl<R: BufRead, F: LineFormat> RecordReader<R, F> {
    fn with_format(path: impl Into<PathBuf>, reader: R, format: F) -> Self {
        RecordReader {
            lines: Lines::new(path, reader),
            format,
            failed: false,
        }
    }

    fn read(&mut self) -> Result<Option<F::Record>> {
        let Some(line) = self.lines.next_line()? else {
            return Ok(None);
        };
        self.format
            .parse(&line)
            .map(Some)
            .map_err(|m| self.lines.err(m))
    }
}

impl<R: BufRead, F: LineFormat> Iterator for RecordReader<R, F> {
    type Item = Result<F::Record>;
    fn next(&mut self) -> Option<Self::Item> {
        fused_next!(self, self.read())
    }
}

// ---------------------------------------------------------------------------------------------
// Bitext

/// Bitext file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BitextFormat {
    /// `src<TAB>tgt` per line.
    Tsv,
    /// `{"src": …, "tgt": …}` per line.
    Jsonl,
}

impl BitextFormat {
    /// Picks the format from the file extension (`.tsv`/`.txt` → TSV, `.jsonl`/`.json` → JSONL).
    pub fn from_path(path: &Path) -> Result<Self> {
        match path.extension().and_then(|e| e.to_str()) {
            Some("tsv" | "txt") => Ok(BitextFormat::Tsv),
            Some("jsonl" | "json") => Ok(BitextFormat::Jsonl),
            _ => Err(DataError::invalid(
                path,
                "unknown bitext extension (expected .tsv or .jsonl)",
            )),
        }
    }
}

/// Streaming reader of TSV or JSONL bitext.
pub type BitextReader<R> = RecordReader<R, BitextFormat>;

impl<R: BufRead> BitextReader<R> {
    /// Reads `reader` in `format`; `path` names it in errors.
    pub fn new(path: impl Into<PathBuf>, reader: R, format: BitextFormat) -> Self {
        Self::with_format(path, reader, format)
    }
}

impl LineFormat for BitextFormat {
    type Record = BitextPair;
    fn parse(&mut self, line: &str) -> std::result::Result<BitextPair, String> {
        let pair = match self {
            BitextFormat::Tsv => {
                let (s, t) = split2(line)?;
                BitextPair {
                    src: s.to_string(),
                    tgt: t.to_string(),
                }
            }
            BitextFormat::Jsonl => serde_json::from_str::<BitextPair>(line)
                .map_err(|e| format!("bad JSON bitext record: {e}"))?,
        };
        check_text(&pair.src, "source text")?;
        check_text(&pair.tgt, "target text")?;
        Ok(pair)
    }
}

/// Opens a TSV or JSONL bitext file (format from the extension).
pub fn bitext_reader(path: &Path) -> Result<BitextReader<BufReader<File>>> {
    let format = BitextFormat::from_path(path)?;
    Ok(BitextReader::new(path, open(path)?, format))
}

/// Streaming reader of Moses-style bitext: two files with one sentence per line, aligned by line.
pub struct MosesReader<A, B> {
    src: Lines<A>,
    tgt: Lines<B>,
    failed: bool,
}

impl<A: BufRead, B: BufRead> MosesReader<A, B> {
    /// Reads the aligned pair of streams.
    pub fn new(src_path: impl Into<PathBuf>, src: A, tgt_path: impl Into<PathBuf>, tgt: B) -> Self {
        MosesReader {
            src: Lines::new(src_path, src),
            tgt: Lines::new(tgt_path, tgt),
            failed: false,
        }
    }

    fn read(&mut self) -> Result<Option<BitextPair>> {
        let s = self.src.next_line()?;
        let t = self.tgt.next_line()?;
        match (s, t) {
            (None, None) => Ok(None),
            (Some(_), None) => Err(DataError::invalid(
                self.tgt.path(),
                format!(
                    "ends after {} lines but {} has more",
                    self.tgt.line_no(),
                    self.src.path().display()
                ),
            )),
            (None, Some(_)) => Err(DataError::invalid(
                self.src.path(),
                format!(
                    "ends after {} lines but {} has more",
                    self.src.line_no(),
                    self.tgt.path().display()
                ),
            )),
            (Some(s), Some(t)) => {
                check_text(&s, "sentence").map_err(|m| self.src.err(m))?;
                check_text(&t, "sentence").map_err(|m| self.tgt.err(m))?;
                Ok(Some(BitextPair { src: s, tgt: t }))
            }
        }
    }
}

impl<A: BufRead, B: BufRead> Iterator for MosesReader<A, B> {
    type Item = Result<BitextPair>;
    fn next(&mut self) -> Option<Self::Item> {
        fused_next!(self, self.read())
    }
}

/// Opens a Moses-style pair of files.
pub fn moses_reader(
    src: &Path,
    tgt: &Path,
) -> Result<MosesReader<BufReader<File>, BufReader<File>>> {
    Ok(MosesReader::new(src, open(src)?, tgt, open(tgt)?))
}

fn tsv_field_ok(text: &str) -> bool {
    !text.contains(['\t', '\n', '\r'])
}

/// Writes bitext in `format`; returns the number of pairs. Texts must be non-empty and, for TSV,
/// free of tabs and line breaks.
pub fn write_bitext<'a, W: Write>(
    out: W,
    path: &Path,
    format: BitextFormat,
    pairs: impl IntoIterator<Item = &'a BitextPair>,
) -> Result<usize> {
    let mut out = out;
    let mut n = 0;
    for p in pairs {
        n += 1;
        for (t, side) in [(&p.src, "source"), (&p.tgt, "target")] {
            if t.trim().is_empty() {
                return Err(DataError::invalid(
                    path,
                    format!("pair {n}: empty {side} text"),
                ));
            }
            if format == BitextFormat::Tsv && !tsv_field_ok(t) {
                return Err(DataError::invalid(
                    path,
                    format!("pair {n}: {side} text has a tab or line break"),
                ));
            }
        }
        let r = match format {
            BitextFormat::Tsv => writeln!(out, "{}\t{}", p.src, p.tgt),
            BitextFormat::Jsonl => {
                writeln!(out, "{}", serde_json::to_string(p).expect("serialisable"))
            }
        };
        r.map_err(|e| DataError::io(path, e))?;
    }
    out.flush().map_err(|e| DataError::io(path, e))?;
    Ok(n)
}

/// Writes a bitext file (format from the extension).
pub fn write_bitext_file<'a>(
    path: &Path,
    pairs: impl IntoIterator<Item = &'a BitextPair>,
) -> Result<usize> {
    let format = BitextFormat::from_path(path)?;
    write_bitext(create(path)?, path, format, pairs)
}

/// Writes a Moses-style pair of files.
pub fn write_moses<'a>(
    src: &Path,
    tgt: &Path,
    pairs: impl IntoIterator<Item = &'a BitextPair>,
) -> Result<usize> {
    let (mut a, mut b) = (create(src)?, create(tgt)?);
    let mut n = 0;
    for p in pairs {
        n += 1;
        for (t, path) in [(&p.src, src), (&p.tgt, tgt)] {
            if t.trim().is_empty() || t.contains(['\n', '\r']) {
                return Err(DataError::invalid(
                    path,
                    format!("pair {n}: empty text or line break"),
                ));
            }
        }
        writeln!(a, "{}", p.src).map_err(|e| DataError::io(src, e))?;
        writeln!(b, "{}", p.tgt).map_err(|e| DataError::io(tgt, e))?;
    }
    a.flush().map_err(|e| DataError::io(src, e))?;
    b.flush().map_err(|e| DataError::io(tgt, e))?;
    Ok(n)
}

// ---------------------------------------------------------------------------------------------
// Queries and documents

/// Streaming reader of a queries TSV (`qid<TAB>text`), rejecting duplicate ids.
pub type QueriesReader<R> = RecordReader<R, QueryLines>;

/// The queries TSV format, with the ids seen so far.
#[derive(Debug, Default)]
pub struct QueryLines {
    seen: HashSet<String>,
}

impl<R: BufRead> QueriesReader<R> {
    /// Reads `reader`; `path` names it in errors.
    pub fn new(path: impl Into<PathBuf>, reader: R) -> Self {
        Self::with_format(path, reader, QueryLines::default())
    }
}

impl LineFormat for QueryLines {
    type Record = Query;
    fn parse(&mut self, line: &str) -> std::result::Result<Query, String> {
        let (id, text) = split2(line)?;
        check_id(id, "query id")?;
        check_text(text, "query text")?;
        if !self.seen.insert(id.to_string()) {
            return Err(format!("duplicate query id {id:?}"));
        }
        Ok(Query {
            id: id.to_string(),
            text: text.to_string(),
        })
    }
}

/// Reads a whole queries TSV file.
pub fn read_queries(path: &Path) -> Result<Vec<Query>> {
    QueriesReader::new(path, open(path)?).collect()
}

/// Writes a queries TSV; returns the count. Ids must be unique and whitespace-free.
pub fn write_queries<'a, W: Write>(
    out: W,
    path: &Path,
    queries: impl IntoIterator<Item = &'a Query>,
) -> Result<usize> {
    let mut out = out;
    let mut seen = HashSet::new();
    let mut n = 0;
    for q in queries {
        n += 1;
        check_id(&q.id, "query id")
            .map_err(|m| DataError::invalid(path, format!("query {n}: {m}")))?;
        if q.text.trim().is_empty() || !tsv_field_ok(&q.text) {
            return Err(DataError::invalid(
                path,
                format!("query {:?}: empty text, tab or line break", q.id),
            ));
        }
        if !seen.insert(q.id.as_str()) {
            return Err(DataError::invalid(
                path,
                format!("duplicate query id {:?}", q.id),
            ));
        }
        writeln!(out, "{}\t{}", q.id, q.text).map_err(|e| DataError::io(path, e))?;
    }
    out.flush().map_err(|e| DataError::io(path, e))?;
    Ok(n)
}

/// Writes a queries TSV file.
pub fn write_queries_file<'a>(
    path: &Path,
    queries: impl IntoIterator<Item = &'a Query>,
) -> Result<usize> {
    write_queries(create(path)?, path, queries)
}

/// Document file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocFormat {
    /// `{"id": …, "text": …}` per line.
    Jsonl,
    /// `id<TAB>text` per line.
    Tsv,
}

impl DocFormat {
    /// From the extension: `.jsonl`/`.json` or `.tsv`/`.txt`.
    pub fn from_path(path: &Path) -> Result<Self> {
        match path.extension().and_then(|e| e.to_str()) {
            Some("jsonl" | "json") => Ok(DocFormat::Jsonl),
            Some("tsv" | "txt") => Ok(DocFormat::Tsv),
            _ => Err(DataError::invalid(
                path,
                "unknown documents extension (expected .jsonl or .tsv)",
            )),
        }
    }
}

/// Streaming reader of documents, rejecting duplicate ids.
pub type DocsReader<R> = RecordReader<R, DocLines>;

/// A documents format, with the ids seen so far.
#[derive(Debug)]
pub struct DocLines {
    format: DocFormat,
    seen: HashSet<String>,
}

impl<R: BufRead> DocsReader<R> {
    /// Reads `reader` in `format`; `path` names it in errors.
    pub fn new(path: impl Into<PathBuf>, reader: R, format: DocFormat) -> Self {
        let format = DocLines {
            format,
            seen: HashSet::new(),
        };
        Self::with_format(path, reader, format)
    }
}

impl LineFormat for DocLines {
    type Record = Document;
    fn parse(&mut self, line: &str) -> std::result::Result<Document, String> {
        let doc = match self.format {
            DocFormat::Tsv => {
                let (id, text) = split2(line)?;
                Document {
                    id: id.to_string(),
                    text: text.to_string(),
                }
            }
            DocFormat::Jsonl => serde_json::from_str::<JsonDocument>(line)
                .map_err(|e| format!("bad JSON document record: {e}"))?
                .into_document(),
        };
        check_id(&doc.id, "document id")?;
        check_text(&doc.text, "document text")?;
        if !self.seen.insert(doc.id.clone()) {
            return Err(format!("duplicate document id {:?}", doc.id));
        }
        Ok(doc)
    }
}

/// Opens a documents file (format from the extension).
pub fn docs_reader(path: &Path) -> Result<DocsReader<BufReader<File>>> {
    let format = DocFormat::from_path(path)?;
    Ok(DocsReader::new(path, open(path)?, format))
}

/// Reads a whole documents file.
pub fn read_docs(path: &Path) -> Result<Vec<Document>> {
    docs_reader(path)?.collect()
}

/// Writes documents; returns the count. Ids must be unique and whitespace-free.
pub fn write_docs<'a, W: Write>(
    out: W,
    path: &Path,
    format: DocFormat,
    docs: impl IntoIterator<Item = &'a Document>,
) -> Result<usize> {
    let mut out = out;
    let mut seen = HashSet::new();
    let mut n = 0;
    for d in docs {
        n += 1;
        check_id(&d.id, "document id")
            .map_err(|m| DataError::invalid(path, format!("document {n}: {m}")))?;
        if d.text.trim().is_empty() || (format == DocFormat::Tsv && !tsv_field_ok(&d.text)) {
            return Err(DataError::invalid(
                path,
                format!("document {:?}: empty text, tab or line break", d.id),
            ));
        }
        if !seen.insert(d.id.as_str()) {
            return Err(DataError::invalid(
                path,
                format!("duplicate document id {:?}", d.id),
            ));
        }
        let r = match format {
            DocFormat::Tsv => writeln!(out, "{}\t{}", d.id, d.text),
            DocFormat::Jsonl => {
                writeln!(out, "{}", serde_json::to_string(d).expect("serialisable"))
            }
        };
        r.map_err(|e| DataError::io(path, e))?;
    }
    out.flush().map_err(|e| DataError::io(path, e))?;
    Ok(n)
}

/// Writes a documents file (format from the extension).
pub fn write_docs_file<'a>(
    path: &Path,
    docs: impl IntoIterator<Item = &'a Document>,
) -> Result<usize> {
    let format = DocFormat::from_path(path)?;
    write_docs(create(path)?, path, format, docs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn p() -> PathBuf {
        PathBuf::from("fixture.txt")
    }

    fn bitext(s: &str, f: BitextFormat) -> Result<Vec<BitextPair>> {
        BitextReader::new(p(), Cursor::new(s.as_bytes().to_vec()), f).collect()
    }

    fn err_line(e: DataError) -> u64 {
        match e {
            DataError::Malformed { line, .. } => line,
            other => panic!("expected a malformed-record error, got {other}"),
        }
    }

    #[test]
    fn bitext_tsv_reads_and_reports_lines() {
        let ok = bitext(
            "a cat\tune chatte\r\nthe dog\tle chien\n",
            BitextFormat::Tsv,
        )
        .unwrap();
        assert_eq!(ok.len(), 2);
        assert_eq!(
            ok[1],
            BitextPair {
                src: "the dog".into(),
                tgt: "le chien".into()
            }
        );
        let e = bitext("a\tb\nno tab here\n", BitextFormat::Tsv).unwrap_err();
        assert!(
            e.to_string().starts_with("fixture.txt:2: expected 2"),
            "{e}"
        );
        assert_eq!(
            err_line(bitext("a\tb\nx\ty\tz\n", BitextFormat::Tsv).unwrap_err()),
            2
        );
        assert_eq!(
            err_line(bitext("a\tb\n\n", BitextFormat::Tsv).unwrap_err()),
            2
        );
        assert_eq!(
            err_line(bitext("a\tb\nc\t  \n", BitextFormat::Tsv).unwrap_err()),
            2
        );
        let bad = b"a\tb\nc\t\xff\xfe\n".to_vec();
        let e = BitextReader::new(p(), Cursor::new(bad), BitextFormat::Tsv)
            .collect::<Result<Vec<_>>>()
            .unwrap_err();
        assert!(e.to_string().contains(":2: invalid UTF-8"), "{e}");
    }

    #[test]
    fn reader_stops_after_first_error_but_yields_earlier_records() {
        let mut r = BitextReader::new(
            p(),
            Cursor::new(b"a\tb\nbad\nc\td\n".to_vec()),
            BitextFormat::Tsv,
        );
        assert!(r.next().unwrap().is_ok());
        assert!(r.next().unwrap().is_err());
        assert!(r.next().is_none());
    }

    #[test]
    fn bitext_jsonl_and_bom() {
        let ok = bitext(
            "\u{feff}{\"src\":\"hi\",\"tgt\":\"jambo\"}\n{\"tgt\":\"b\",\"src\":\"a\"}\n",
            BitextFormat::Jsonl,
        )
        .unwrap();
        assert_eq!(ok[0].tgt, "jambo");
        assert_eq!(ok[1].src, "a");
        assert_eq!(
            err_line(bitext("{\"src\":\"hi\"}\n", BitextFormat::Jsonl).unwrap_err()),
            1
        );
        assert_eq!(
            err_line(
                bitext(
                    "{\"src\":\"a\",\"tgt\":\"b\"}\n{\"src\":\"\",\"tgt\":\"b\"}",
                    BitextFormat::Jsonl
                )
                .unwrap_err()
            ),
            2
        );
    }

    #[test]
    fn moses_checks_alignment() {
        let r = MosesReader::new(
            "a.en",
            Cursor::new("one\ntwo\n"),
            "a.sw",
            Cursor::new("moja\nmbili\n"),
        );
        let v: Vec<_> = r.collect::<Result<_>>().unwrap();
        assert_eq!(
            v[1],
            BitextPair {
                src: "two".into(),
                tgt: "mbili".into()
            }
        );
        let r = MosesReader::new(
            "a.en",
            Cursor::new("one\ntwo\nthree\n"),
            "a.sw",
            Cursor::new("moja\nmbili\n"),
        );
        let e = r.collect::<Result<Vec<_>>>().unwrap_err().to_string();
        assert!(
            e.starts_with("a.sw: ends after 2 lines but a.en has more"),
            "{e}"
        );
        let r = MosesReader::new(
            "a.en",
            Cursor::new("one\n\n"),
            "a.sw",
            Cursor::new("moja\nmbili\n"),
        );
        let e = r.collect::<Result<Vec<_>>>().unwrap_err().to_string();
        assert!(e.starts_with("a.en:2: empty"), "{e}");
    }

    #[test]
    fn moses_files_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let (a, b) = (d.join("train.en"), d.join("train.sw"));
        let pairs = [
            BitextPair {
                src: "one\ttab".into(),
                tgt: "moja".into(),
            },
            BitextPair {
                src: "two".into(),
                tgt: "mbili".into(),
            },
        ];
        assert_eq!(write_moses(&a, &b, &pairs).unwrap(), 2);
        let back: Vec<_> = moses_reader(&a, &b)
            .unwrap()
            .collect::<Result<_>>()
            .unwrap();
        assert_eq!(back, pairs);
        let bad = [BitextPair {
            src: "line\nbreak".into(),
            tgt: "x".into(),
        }];
        assert!(write_moses(&a, &b, &bad).is_err());
    }

    #[test]
    fn queries_and_docs() {
        let q: Vec<Query> = QueriesReader::new(p(), Cursor::new("q1\tfaith\nq2\tlove: of God\n"))
            .collect::<Result<_>>()
            .unwrap();
        assert_eq!(q[1].text, "love: of God");
        let e = QueriesReader::new(p(), Cursor::new("q1\ta\nq1\tb\n"))
            .collect::<Result<Vec<_>>>()
            .unwrap_err();
        assert!(e.to_string().contains(":2: duplicate query id"), "{e}");
        let e = QueriesReader::new(p(), Cursor::new("q 1\ta\n"))
            .collect::<Result<Vec<_>>>()
            .unwrap_err();
        assert!(e.to_string().contains("whitespace"), "{e}");
        let d: Vec<Document> = DocsReader::new(
            p(),
            Cursor::new("{\"id\":\"John.3.16\",\"text\":\"For God so loved\"}\n"),
            DocFormat::Jsonl,
        )
        .collect::<Result<_>>()
        .unwrap();
        assert_eq!(d[0].id, "John.3.16");
        let e = DocsReader::new(p(), Cursor::new("d1\tx\nd2\ty\nd1\tz\n"), DocFormat::Tsv)
            .collect::<Result<Vec<_>>>()
            .unwrap_err();
        assert_eq!(err_line(e), 3);
        let e = DocsReader::new(p(), Cursor::new("{\"id\":\"d1\"}\n"), DocFormat::Jsonl)
            .collect::<Result<Vec<_>>>()
            .unwrap_err();
        assert_eq!(err_line(e), 1);
    }

    #[test]
    fn a_file_of_only_a_byte_order_mark_is_empty() {
        assert!(bitext("\u{feff}", BitextFormat::Tsv).unwrap().is_empty());
        assert_eq!(
            err_line(bitext("\u{feff}\n", BitextFormat::Tsv).unwrap_err()),
            1
        );
    }

    #[test]
    fn jsonl_fields_policy() {
        let docs = |s: &str| -> Result<Vec<Document>> {
            DocsReader::new(p(), Cursor::new(s.as_bytes().to_vec()), DocFormat::Jsonl).collect()
        };
        let d = docs(concat!(
            r#"{"id": "a", "text": "body"}"#,
            "\n",
            r#"{"doc_id": "b", "title": "Head", "text": "body"}"#,
            "\n",
            r#"{"id": "c", "title": " ", "text": "body"}"#,
            "\n"
        ))
        .unwrap();
        let texts: Vec<&str> = d.iter().map(|d| d.text.as_str()).collect();
        assert_eq!(texts, ["body", "Head body", "body"]);
        assert_eq!(d[1].id, "b");
        let e = docs(
            "{\"id\": \"a\", \"text\": \"x\"}\n{\"id\": \"b\", \"body\": \"y\", \"text\": \"z\"}\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("fixture.txt:2: ") && e.contains("unknown field `body`"),
            "{e}"
        );
        let e = bitext(
            "{\"src\": \"a\", \"tgt\": \"b\", \"lang\": \"sw\"}\n",
            BitextFormat::Jsonl,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("fixture.txt:1: ") && e.contains("unknown field `lang`"),
            "{e}"
        );
    }

    #[test]
    fn writers_validate() {
        let mut v = Vec::new();
        let bad = [BitextPair {
            src: "a\tb".into(),
            tgt: "c".into(),
        }];
        assert!(write_bitext(&mut v, &p(), BitextFormat::Tsv, &bad).is_err());
        // The same pair is fine in JSONL.
        assert_eq!(
            write_bitext(&mut v, &p(), BitextFormat::Jsonl, &bad).unwrap(),
            1
        );
        let dup = [
            Query {
                id: "q".into(),
                text: "a".into(),
            },
            Query {
                id: "q".into(),
                text: "b".into(),
            },
        ];
        assert!(write_queries(Vec::new(), &p(), &dup).is_err());
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn text() -> impl Strategy<Value = String> {
            // Any non-blank text without tabs or line breaks.
            "[^\t\r\n]{0,20}".prop_filter("non-blank", |s| {
                !s.trim().is_empty() && !s.starts_with('\u{feff}')
            })
        }
        fn id() -> impl Strategy<Value = String> {
            "[A-Za-z0-9._:-]{1,12}"
        }

        proptest! {
            #[test]
            fn readers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
                let c = || Cursor::new(bytes.clone());
                let _ = BitextReader::new(p(), c(), BitextFormat::Tsv).count();
                let _ = BitextReader::new(p(), c(), BitextFormat::Jsonl).count();
                let _ = MosesReader::new(p(), c(), p(), c()).count();
                let _ = QueriesReader::new(p(), c()).count();
                let _ = DocsReader::new(p(), c(), DocFormat::Jsonl).count();
                let _ = DocsReader::new(p(), c(), DocFormat::Tsv).count();
            }

            #[test]
            fn every_line_is_a_record_or_an_error(lines in proptest::collection::vec("[a-z \t]{0,8}", 0..20)) {
                // A reader either yields one record per line or fails: nothing is dropped.
                let input: String = lines.iter().map(|l| format!("{l}\n")).collect();
                let r: Result<Vec<_>> = BitextReader::new(p(), Cursor::new(input.clone()), BitextFormat::Tsv).collect();
                if let Ok(v) = r { prop_assert_eq!(v.len(), lines.len()); }
            }

            #[test]
            fn bitext_round_trips(pairs in proptest::collection::vec((text(), text()), 0..10), jsonl in any::<bool>()) {
                let pairs: Vec<BitextPair> = pairs.into_iter().map(|(src, tgt)| BitextPair { src, tgt }).collect();
                let f = if jsonl { BitextFormat::Jsonl } else { BitextFormat::Tsv };
                let mut buf = Vec::new();
                write_bitext(&mut buf, &p(), f, &pairs).unwrap();
                let back: Vec<_> = BitextReader::new(p(), Cursor::new(buf), f).collect::<Result<_>>().unwrap();
                prop_assert_eq!(back, pairs);
            }

            #[test]
            fn collections_round_trip(
                items in proptest::collection::btree_map(id(), (text(), id(), -3i32..4, -1e6f64..1e6), 0..10),
                jsonl in any::<bool>(),
            ) {
                let queries: Vec<Query> = items.iter().map(|(k, (t, _, _, _))| Query { id: k.clone(), text: t.clone() }).collect();
                let mut buf = Vec::new();
                write_queries(&mut buf, &p(), &queries).unwrap();
                let back: Vec<_> = QueriesReader::new(p(), Cursor::new(buf)).collect::<Result<_>>().unwrap();
                prop_assert_eq!(back, queries);

                let docs: Vec<Document> = items.iter().map(|(k, (t, _, _, _))| Document { id: k.clone(), text: t.clone() }).collect();
                let f = if jsonl { DocFormat::Jsonl } else { DocFormat::Tsv };
                let mut buf = Vec::new();
                write_docs(&mut buf, &p(), f, &docs).unwrap();
                let back: Vec<_> = DocsReader::new(p(), Cursor::new(buf), f).collect::<Result<_>>().unwrap();
                prop_assert_eq!(back, docs);
            }
        }
    }
}
