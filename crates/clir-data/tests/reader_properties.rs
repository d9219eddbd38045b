//! Property tests of every reader of this crate except the TREC ones (issue 16): TSV and JSONL
//! bitext, Moses pairs, queries, documents and SWORD zLD modules.
//!
//! For arbitrary bytes and for near misses (well-formed lines with one field broken, valid
//! modules with one file corrupted) a reader never panics, and every error names the file it
//! was given; for the line formats the error is `file:line: …` with a line that exists, every
//! line before it became a record, and the reader stops there. Well-formed input loses
//! nothing: N good lines give exactly the N records written.

use std::collections::BTreeMap;
use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};

use clir_data::DataError;
use clir_data::formats::{
    BitextFormat, BitextPair, BitextReader, DocFormat, DocsReader, Document, MosesReader,
    QueriesReader, Query, bitext_reader, docs_reader, moses_reader, read_docs, read_queries,
};
use clir_data::sword::{LexEntry, module_files, parse_zld, read_zld, write_zld};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

type PropResult<T = ()> = Result<T, TestCaseError>;

/// 256 cases, and no regression files written next to the tests.
fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ------------------------------------------------------------------------------- helpers

/// Lines as the readers count them: every `\n` ends one, and a last line may lack it.
fn line_count(bytes: &[u8]) -> u64 {
    // A file that is only a byte-order mark holds no lines.
    if bytes == b"\xEF\xBB\xBF" {
        return 0;
    }
    let newlines = bytes.iter().filter(|&&b| b == b'\n').count() as u64;
    newlines + u64::from(bytes.last().is_some_and(|&b| b != b'\n'))
}

/// Checks a line reader's error: `path:line: …` at a line of the input.
fn check_line_error(e: &DataError, path: &Path, lines: u64) -> PropResult<u64> {
    let shown = e.to_string();
    match e {
        DataError::Malformed { path: p, line, .. } => {
            prop_assert_eq!(p.as_path(), path, "{}", shown);
            prop_assert!(
                (1..=lines).contains(line),
                "line {} of an input of {} lines: {}",
                line,
                lines,
                shown
            );
            let head = format!("{}:{}: ", path.display(), line);
            prop_assert!(shown.starts_with(&head), "{:?} lacks {:?}", shown, head);
            Ok(*line)
        }
        other => Err(TestCaseError::fail(format!(
            "expected a file:line error, got {other:?}"
        ))),
    }
}

/// Drains a one-file line reader over `input`: either every line is a record, or the first
/// error names `path` and a line `L` of the input, exactly `L - 1` records came before it and
/// nothing comes after it. Returns the records and the error's line.
fn drain_lines<T>(
    mut reader: impl Iterator<Item = clir_data::Result<T>>,
    path: &Path,
    input: &[u8],
) -> PropResult<(Vec<T>, Option<u64>)> {
    let lines = line_count(input);
    let mut ok = Vec::new();
    let mut err = None;
    for r in reader.by_ref() {
        match r {
            Ok(v) => ok.push(v),
            Err(e) => {
                err = Some(e);
                break;
            }
        }
    }
    match err {
        Some(e) => {
            let line = check_line_error(&e, path, lines)?;
            prop_assert_eq!(ok.len() as u64, line - 1, "records before {}", e);
            prop_assert!(reader.next().is_none(), "the reader went on after {}", e);
            Ok((ok, Some(line)))
        }
        None => {
            prop_assert_eq!(ok.len() as u64, lines, "a clean read of {} lines", lines);
            Ok((ok, None))
        }
    }
}

const SRC: &str = "corpus dir/train.en";
const TGT: &str = "corpus dir/train.sw";

/// Drains a Moses reader: a clean read pairs every line; otherwise the first error is a
/// `file:line` error in one of the two files (all lines before it paired), or names the
/// shorter file and where it ends.
fn drain_moses(src: &[u8], tgt: &[u8]) -> PropResult<(Vec<BitextPair>, Option<String>)> {
    let (ls, lt) = (line_count(src), line_count(tgt));
    let mut reader = MosesReader::new(SRC, Cursor::new(src), TGT, Cursor::new(tgt));
    let mut ok = Vec::new();
    let mut err = None;
    for r in reader.by_ref() {
        match r {
            Ok(v) => ok.push(v),
            Err(e) => {
                err = Some(e);
                break;
            }
        }
    }
    let Some(e) = err else {
        prop_assert_eq!(ls, lt);
        prop_assert_eq!(ok.len() as u64, ls);
        return Ok((ok, None));
    };
    prop_assert!(reader.next().is_none(), "the reader went on after {}", e);
    let shown = e.to_string();
    match &e {
        DataError::Malformed { path, .. } => {
            let lines = if path == Path::new(SRC) { ls } else { lt };
            let line = check_line_error(&e, path, lines)?;
            prop_assert_eq!(ok.len() as u64, line - 1, "pairs before {}", shown);
        }
        DataError::Invalid { path, .. } => {
            let (short, n, long) = if path == Path::new(TGT) {
                (TGT, lt, SRC)
            } else {
                (SRC, ls, TGT)
            };
            prop_assert_eq!(
                &shown,
                &format!("{short}: ends after {n} lines but {long} has more")
            );
            prop_assert_eq!(ok.len() as u64, n);
            prop_assert!(ls.min(lt) == n && ls != lt, "{} vs {}: {}", ls, lt, shown);
        }
        other => return Err(TestCaseError::fail(format!("unexpected {other:?}"))),
    }
    Ok((ok, Some(shown)))
}

/// Bytes that often look like records: fragments of TSV and JSON, ids, line breaks, a BOM
/// and bytes that are not UTF-8.
fn recordish() -> impl Strategy<Value = Vec<u8>> {
    const TOKENS: &[&[u8]] = &[
        b"{\"src\":",
        b"{\"id\":",
        b"\"tgt\":",
        b"\"text\":",
        b"\"a b\"",
        b"\"q1\"",
        b"\" \"",
        b"\"\\u00e9\\n\"",
        b",",
        b"}",
        b"null",
        b"7",
        b"q1",
        b"d 2",
        b"word",
        b"\t",
        b"\t",
        b" ",
        b"\n",
        b"\n",
        b"\r\n",
        b"\r",
        b"\xEF\xBB\xBF",
        b"\xFF",
        b"\xC3",
        "é".as_bytes(),
        b"\0",
    ];
    proptest::collection::vec(proptest::sample::select(TOKENS), 0..48).prop_map(|ts| ts.concat())
}

/// Arbitrary bytes, half of the time record-like.
fn any_input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![proptest::collection::vec(any::<u8>(), 0..400), recordish(),]
}

/// Non-blank text without tabs, line breaks or a leading BOM (TSV and Moses fields).
fn field() -> impl Strategy<Value = String> {
    "[^\t\r\n]{1,16}".prop_filter("non-blank", |s| {
        !s.trim().is_empty() && !s.starts_with('\u{feff}')
    })
}

/// Any non-blank text (JSON escapes what it must).
fn json_text() -> impl Strategy<Value = String> {
    any::<String>()
        .prop_map(|s| s.chars().take(16).collect::<String>())
        .prop_filter("non-blank", |s| !s.trim().is_empty())
}

/// An id: no whitespace, no leading BOM.
fn id() -> impl Strategy<Value = String> {
    "[^\\s\u{feff}]{1,10}"
}

/// Joins lines with LF or CRLF, optionally a BOM first and a terminator after the last line.
fn join(lines: &[Vec<u8>], crlf: bool, bom: bool, last_newline: bool) -> Vec<u8> {
    let mut out = Vec::new();
    if bom {
        out.extend(b"\xEF\xBB\xBF");
    }
    let eol: &[u8] = if crlf { b"\r\n" } else { b"\n" };
    for (i, l) in lines.iter().enumerate() {
        out.extend(l);
        if i + 1 < lines.len() || last_newline {
            out.extend(eol);
        }
    }
    out
}

fn json(v: &impl serde::Serialize) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

fn tsv(a: &str, b: &str) -> Vec<u8> {
    format!("{a}\t{b}").into_bytes()
}

/// The line formats.
#[derive(Debug, Clone, Copy)]
enum Fmt {
    BitextTsv,
    BitextJsonl,
    Queries,
    DocsTsv,
    DocsJsonl,
}

/// A broken record for format `fmt` from the good record `(a, b)`; `earlier` is an id of an
/// earlier record, if any (to duplicate).
fn broken(fmt: Fmt, how: usize, a: &str, b: &str, earlier: Option<&str>) -> Vec<u8> {
    let mut not_utf8 = a.as_bytes().to_vec();
    not_utf8.push(0xFF);
    match fmt {
        Fmt::BitextTsv => match how % 6 {
            0 => format!("{a} {b}").into_bytes(),
            1 => format!("{a}\t{b}\textra").into_bytes(),
            2 => tsv(" ", b),
            3 => tsv(a, "\u{3000}"),
            4 => [not_utf8, b"\t".to_vec(), b.as_bytes().to_vec()].concat(),
            _ => Vec::new(),
        },
        Fmt::BitextJsonl => {
            let good = json(&serde_json::json!({"src": a, "tgt": b}));
            match how % 7 {
                0 => json(&serde_json::json!({ "src": a })),
                1 => json(&serde_json::json!({"src": a, "tgt": 1})),
                2 => json(&serde_json::json!({"src": "  ", "tgt": b})),
                3 => good[..good.len() - 1].to_vec(),
                4 => [&good[..8], b"\xFF", &good[8..]].concat(),
                5 => [good.clone(), good].concat(),
                _ => Vec::new(),
            }
        }
        Fmt::Queries | Fmt::DocsTsv => match (how % 7, earlier) {
            (0, _) => tsv(&format!("{a} x"), b),
            (1, _) => tsv("", b),
            (2, Some(e)) => tsv(e, b),
            (3, _) => tsv(a, "\t"),
            (4, _) => tsv(a, " "),
            (5, _) => [not_utf8, b"\t".to_vec(), b.as_bytes().to_vec()].concat(),
            _ => Vec::new(),
        },
        Fmt::DocsJsonl => match (how % 8, earlier) {
            (0, _) => json(&serde_json::json!({ "id": a })),
            (1, _) => json(&serde_json::json!({ "text": b })),
            (2, _) => json(&serde_json::json!({"id": format!("{a}\u{a0}"), "text": b})),
            (3, Some(e)) => json(&serde_json::json!({"id": e, "text": b})),
            (4, _) => json(&serde_json::json!({"id": a, "text": "\n"})),
            (5, _) => json(&serde_json::json!({"id": 7, "text": b})),
            (6, _) => b"{\"id\":\"x\",\"text\":\"unterminated}".to_vec(),
            _ => Vec::new(),
        },
    }
}

/// The good record of format `fmt`.
fn good(fmt: Fmt, a: &str, b: &str) -> Vec<u8> {
    match fmt {
        Fmt::BitextTsv | Fmt::Queries | Fmt::DocsTsv => tsv(a, b),
        Fmt::BitextJsonl => json(&serde_json::json!({"src": a, "tgt": b})),
        Fmt::DocsJsonl => json(&serde_json::json!({"id": a, "text": b})),
    }
}

/// Records as `(id or source, text)` pairs, and the line of the error that ended them.
type Records = (Vec<(String, String)>, Option<u64>);

/// Reads `input` in `fmt`, checking [`drain_lines`]; returns the records as pairs.
fn read_fmt(fmt: Fmt, path: &Path, input: &[u8]) -> PropResult<Records> {
    let c = Cursor::new(input);
    let pair = |p: BitextPair| (p.src, p.tgt);
    let doc = |d: Document| (d.id, d.text);
    Ok(match fmt {
        Fmt::BitextTsv => {
            let (v, e) = drain_lines(BitextReader::new(path, c, BitextFormat::Tsv), path, input)?;
            (v.into_iter().map(pair).collect(), e)
        }
        Fmt::BitextJsonl => {
            let r = BitextReader::new(path, c, BitextFormat::Jsonl);
            let (v, e) = drain_lines(r, path, input)?;
            (v.into_iter().map(pair).collect(), e)
        }
        Fmt::Queries => {
            let (v, e) = drain_lines(QueriesReader::new(path, c), path, input)?;
            (v.into_iter().map(|q: Query| (q.id, q.text)).collect(), e)
        }
        Fmt::DocsTsv => {
            let (v, e) = drain_lines(DocsReader::new(path, c, DocFormat::Tsv), path, input)?;
            (v.into_iter().map(doc).collect(), e)
        }
        Fmt::DocsJsonl => {
            let (v, e) = drain_lines(DocsReader::new(path, c, DocFormat::Jsonl), path, input)?;
            (v.into_iter().map(doc).collect(), e)
        }
    })
}

const FMTS: [Fmt; 5] = [
    Fmt::BitextTsv,
    Fmt::BitextJsonl,
    Fmt::Queries,
    Fmt::DocsTsv,
    Fmt::DocsJsonl,
];

fn is_json(fmt: Fmt) -> bool {
    matches!(fmt, Fmt::BitextJsonl | Fmt::DocsJsonl)
}

/// Records of `fmt` with unique ids: `(id or source, text)`.
fn records(fmt: Fmt, min: usize) -> BoxedStrategy<Vec<(String, String)>> {
    let text = if is_json(fmt) {
        json_text().boxed()
    } else {
        field().boxed()
    };
    let key = match fmt {
        Fmt::BitextTsv => field().boxed(),
        Fmt::BitextJsonl => json_text().boxed(),
        _ => id().boxed(),
    };
    proptest::collection::btree_map(key, text, min..12)
        .prop_map(|m: BTreeMap<String, String>| m.into_iter().collect())
        .boxed()
}

fn fmt_and_records(min: usize) -> impl Strategy<Value = (Fmt, Vec<(String, String)>)> {
    proptest::sample::select(FMTS.to_vec()).prop_flat_map(move |f| (Just(f), records(f, min)))
}

// ------------------------------------------------------------------------- line readers

proptest! {
    #![proptest_config(config())]

    /// Arbitrary bytes through every line reader: no panic, and any error is `path:line: …`
    /// at a line of the input after exactly the lines before it became records.
    #[test]
    fn line_readers_on_arbitrary_bytes(input in any_input()) {
        let path = Path::new("data dir/input ü.tsv");
        for fmt in FMTS {
            read_fmt(fmt, path, &input)?;
        }
    }

    /// Moses pairs of arbitrary files: no panic; errors name one of the two files (and its
    /// line, or where the shorter one ends).
    #[test]
    fn moses_on_arbitrary_bytes(src in any_input(), tgt in any_input(), same in any::<bool>()) {
        let tgt = if same { src.clone() } else { tgt };
        drain_moses(&src, &tgt)?;
    }

    /// N well-formed lines (LF or CRLF, with or without a BOM and a final line break) give
    /// exactly the N records written, in order.
    #[test]
    fn well_formed_lines_lose_nothing(
        (fmt, recs) in fmt_and_records(0),
        crlf in any::<bool>(),
        bom in any::<bool>(),
        last_newline in any::<bool>(),
    ) {
        let lines: Vec<Vec<u8>> = recs.iter().map(|(a, b)| good(fmt, a, b)).collect();
        // (A file of nothing but a BOM is one empty line, not zero records.)
        let input = join(&lines, crlf, bom && !lines.is_empty(), last_newline);
        let (back, err) = read_fmt(fmt, Path::new("good.txt"), &input)?;
        prop_assert_eq!(err, None);
        prop_assert_eq!(back, recs);
    }

    /// Well-formed lines with one of them broken (a column missing or added, an empty or
    /// blank field, bytes that are not UTF-8, a bad id, a duplicate id, bad JSON, an empty
    /// line): exactly the records before it, then an error at its line naming the file.
    #[test]
    fn one_broken_line_is_reported_at_its_line(
        (fmt, recs) in fmt_and_records(1),
        at in any::<prop::sample::Index>(),
        how in 0usize..8,
        crlf in any::<bool>(),
        last_newline in any::<bool>(),
    ) {
        let k = at.index(recs.len());
        let mut lines: Vec<Vec<u8>> = recs.iter().map(|(a, b)| good(fmt, a, b)).collect();
        let earlier = (k > 0).then(|| recs[at.index(k)].0.as_str());
        let (a, b) = &recs[k];
        lines[k] = broken(fmt, how, a, b, earlier);
        // An empty last line exists only if a line break ends it.
        let last_newline = last_newline || lines[k].is_empty();
        let input = join(&lines, crlf, false, last_newline);
        let path = Path::new("near/miss.txt");
        let (back, err) = read_fmt(fmt, path, &input)?;
        prop_assert_eq!(err, Some(k as u64 + 1), "{:?} broken by {} at line {}", fmt, how, k + 1);
        prop_assert_eq!(&back[..], &recs[..k]);
    }

    /// Moses files of N good lines each pair up exactly; one blank line or a line that is not
    /// UTF-8 in either file is reported at its line; a file cut short names itself.
    #[test]
    fn moses_near_misses(
        pairs in proptest::collection::vec((field(), field()), 1..12),
        at in any::<prop::sample::Index>(),
        how in 0usize..4,
        crlf in any::<bool>(),
    ) {
        let src: Vec<Vec<u8>> = pairs.iter().map(|p| p.0.clone().into_bytes()).collect();
        let tgt: Vec<Vec<u8>> = pairs.iter().map(|p| p.1.clone().into_bytes()).collect();
        let (back, err) = drain_moses(&join(&src, crlf, false, true), &join(&tgt, crlf, false, true))?;
        prop_assert_eq!(err, None);
        let want: Vec<BitextPair> = pairs
            .iter()
            .map(|(s, t)| BitextPair { src: s.clone(), tgt: t.clone() })
            .collect();
        prop_assert_eq!(back, want);

        let k = at.index(pairs.len());
        let (mut src, mut tgt) = (src, tgt);
        let (expect_path, expect_line) = match how {
            0 => { src[k] = b"   ".to_vec(); (SRC, Some(k + 1)) }
            1 => { tgt[k].push(0xFF); (TGT, Some(k + 1)) }
            2 => { src.truncate(k); (SRC, None) }
            _ => { tgt.truncate(k); (TGT, None) }
        };
        let (back, err) = drain_moses(&join(&src, crlf, false, true), &join(&tgt, crlf, false, true))?;
        let err = err.expect("an error");
        prop_assert_eq!(back.len(), k);
        match expect_line {
            Some(l) => prop_assert!(err.starts_with(&format!("{expect_path}:{l}: ")), "{}", err),
            None => prop_assert!(err.starts_with(&format!("{expect_path}: ends after {k} lines")), "{}", err),
        }
    }

    /// The file-opening readers: arbitrary bytes in a real file give errors naming that
    /// file; a missing file or an unknown extension is an error naming it too.
    #[test]
    fn file_readers_name_the_file(input in any_input(), other in any_input()) {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let check = |r: &clir_data::Result<()>, p: &Path| -> PropResult {
            if let Err(e) = r {
                let shown = e.to_string();
                let head = format!("{}:", p.display());
                prop_assert!(shown.starts_with(&head), "{:?} lacks {:?}", shown, head);
            }
            Ok(())
        };
        for name in ["b.tsv", "b.jsonl", "b.txt", "b.json", "b.csv"] {
            let p = d.join(name);
            std::fs::write(&p, &input).unwrap();
            let r = bitext_reader(&p).and_then(|mut r| r.try_for_each(|x| x.map(drop)));
            check(&r, &p)?;
            let r = docs_reader(&p).and_then(|mut r| r.try_for_each(|x| x.map(drop)));
            check(&r, &p)?;
            check(&read_docs(&p).map(drop), &p)?;
            check(&read_queries(&p).map(drop), &p)?;
        }
        let (a, b) = (d.join("m.en"), d.join("m.sw"));
        std::fs::write(&a, &input).unwrap();
        std::fs::write(&b, &other).unwrap();
        if let Err(e) = moses_reader(&a, &b).and_then(|mut r| r.try_for_each(|x| x.map(drop))) {
            let shown = e.to_string();
            prop_assert!(
                shown.starts_with(&format!("{}:", a.display()))
                    || shown.starts_with(&format!("{}:", b.display())),
                "{}",
                shown
            );
        }
        let missing = d.join("absent.tsv");
        let e = read_queries(&missing).unwrap_err();
        prop_assert!(matches!(e, DataError::Io { .. }), "{}", e);
        check(&Err(e), &missing)?;
        let e = moses_reader(&a, &missing).err().expect("an error");
        check(&Err(e), &missing)?;
    }
}

// ------------------------------------------------------------------------------- SWORD

const ZLD: [&str; 4] = ["lex/m.idx", "lex/m.dat", "lex/m.zdx", "lex/m.zdt"];

fn zld_paths() -> [&'static Path; 4] {
    ZLD.map(Path::new)
}

/// Checks a zLD error names one of the module's files, `file: …`.
fn check_zld_error(e: &DataError, files: &[PathBuf]) -> PropResult {
    let shown = e.to_string();
    prop_assert!(
        matches!(e, DataError::Invalid { .. } | DataError::Io { .. }),
        "{:?}",
        e
    );
    prop_assert!(
        files
            .iter()
            .any(|f| shown.starts_with(&format!("{}: ", f.display()))),
        "{:?} names none of {:?}",
        shown,
        files
    );
    Ok(())
}

fn zld_files() -> Vec<PathBuf> {
    ZLD.iter().map(PathBuf::from).collect()
}

fn zlib(bytes: &[u8]) -> Vec<u8> {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    z.write_all(bytes).unwrap();
    z.finish().unwrap()
}

fn small() -> impl Strategy<Value = u32> {
    prop_oneof![0u32..48, any::<u32>()]
}

/// A module that is structurally plausible but wrong anywhere: index records pointing
/// (mostly) inside the data file, records with keys, `\r\n` and block/index numbers, blocks
/// that are valid zlib streams of arbitrary tables and texts.
fn plausible_zld() -> impl Strategy<Value = [Vec<u8>; 4]> {
    let record = (
        "[a-zA-Z \u{e9}]{0,6}",
        proptest::bool::weighted(0.9),
        0u32..4,
        0u32..5,
        proptest::collection::vec(any::<u8>(), 0..3),
    );
    let block = (
        0u32..5,
        proptest::collection::vec((small(), small()), 0..5),
        proptest::collection::vec(any::<u8>(), 0..40),
        proptest::bool::weighted(0.9),
    );
    (
        proptest::collection::vec(record, 0..6),
        proptest::collection::vec(block, 0..4),
        proptest::collection::vec((small(), small()), 0..2),
        any::<bool>(),
    )
        .prop_map(|(recs, blocks, extra_idx, pad)| {
            let (mut idx, mut dat, mut zdx, mut zdt) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for (key, crlf, block, index, junk) in recs {
                let mut rec = key.into_bytes();
                if crlf {
                    rec.extend(b"\r\n");
                }
                rec.extend(block.to_le_bytes());
                rec.extend(index.to_le_bytes());
                rec.extend(junk);
                idx.extend((dat.len() as u32).to_le_bytes());
                idx.extend((rec.len() as u32).to_le_bytes());
                dat.extend(rec);
                dat.extend(b"\r\n");
            }
            for (o, s) in extra_idx {
                idx.extend(o.to_le_bytes());
                idx.extend(s.to_le_bytes());
            }
            for (count, table, body, valid) in blocks {
                let mut raw = count.to_le_bytes().to_vec();
                for (o, s) in table {
                    raw.extend(o.to_le_bytes());
                    raw.extend(s.to_le_bytes());
                }
                raw.extend(body);
                let mut z = if valid { zlib(&raw) } else { raw };
                if pad {
                    z.extend([0u8; 16]);
                }
                zdx.extend((zdt.len() as u32).to_le_bytes());
                zdx.extend((z.len() as u32).to_le_bytes());
                zdt.extend(z);
            }
            [idx, dat, zdx, zdt]
        })
}

fn lex_entries() -> impl Strategy<Value = Vec<LexEntry>> {
    proptest::collection::btree_map("[^\r\n]{1,12}", "[^\0]{0,40}", 0..10).prop_map(|m| {
        m.into_iter()
            .map(|(key, text)| LexEntry { key, text })
            .collect()
    })
}

proptest! {
    #![proptest_config(config())]

    /// Arbitrary bytes in each of the four files: no panic; errors name one of them.
    #[test]
    fn zld_on_arbitrary_bytes(
        idx in proptest::collection::vec(any::<u8>(), 0..80),
        dat in proptest::collection::vec(any::<u8>(), 0..160),
        zdx in proptest::collection::vec(any::<u8>(), 0..40),
        zdt in proptest::collection::vec(any::<u8>(), 0..160),
    ) {
        if let Err(e) = parse_zld([&idx, &dat, &zdx, &zdt], zld_paths()) {
            check_zld_error(&e, &zld_files())?;
        }
    }

    /// Plausible but corrupt modules (the deeper checks: keys, block numbers, zlib, block
    /// tables, entry offsets, UTF-8): no panic; errors name one of the files.
    #[test]
    fn zld_on_plausible_modules(files in plausible_zld()) {
        let [idx, dat, zdx, zdt] = &files;
        match parse_zld([idx, dat, zdx, zdt], zld_paths()) {
            Ok(entries) => prop_assert_eq!(entries.len(), idx.len() / 8),
            Err(e) => check_zld_error(&e, &zld_files())?,
        }
    }

    /// A written module reads back exactly (nothing dropped); with one file corrupted (a byte
    /// changed, the file cut, bytes appended, or its whole content replaced) the reader never
    /// panics, and its errors name one of the files on disk.
    #[test]
    fn zld_modules_round_trip_and_corruption_is_named(
        entries in lex_entries(),
        per_block in 1usize..4,
        file in 0usize..4,
        how in 0usize..4,
        at in any::<prop::sample::Index>(),
        bytes in proptest::collection::vec(any::<u8>(), 1..24),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write_zld(d, "m", &entries, per_block).unwrap();
        prop_assert_eq!(&read_zld(d, "m").unwrap(), &entries);
        let paths = module_files(d, "m");
        let mut data = std::fs::read(&paths[file]).unwrap();
        match how {
            0 if !data.is_empty() => {
                let i = at.index(data.len());
                data[i] ^= bytes[0].max(1);
            }
            1 => data.truncate(at.index(data.len() + 1)),
            2 => data.extend(&bytes),
            _ => data = bytes,
        }
        std::fs::write(&paths[file], &data).unwrap();
        match read_zld(d, "m") {
            Ok(back) => prop_assert!(back.len() * 8 == std::fs::metadata(&paths[0]).unwrap().len() as usize),
            Err(e) => check_zld_error(&e, &paths)?,
        }
        std::fs::remove_file(&paths[file]).unwrap();
        let e = read_zld(d, "m").unwrap_err();
        check_zld_error(&e, &paths)?;
        prop_assert!(e.to_string().starts_with(&format!("{}: ", paths[file].display())), "{}", e);
    }
}
