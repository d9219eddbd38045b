//! Nave's Topical Bible as a CLIR test collection.
//!
//! Each lexicon entry is a topic whose OSIS-flavoured markup holds lines separated by `<lb/>`;
//! a line is a subtopic text with `<ref osisRef="…">` references (single verses
//! `Prov.17.14`, ranges `Prov.25.8-Prov.25.10` within or across chapters, whole chapters
//! `Rom.2`), optional `<list><item>…</item></list>` sub-items (their text and references belong
//! to the line), and `See <ref target="Nave:OTHER">` cross-links (ignored). A query is
//! `"TOPIC: subtopic"`; its relevant documents are the verses its references cover, expanded
//! with a versification (verses per chapter, taken from the Bible database). References to
//! books outside the 66 (the apocryphal `Wis`, `PrAzar`) or to verses the versification lacks
//! make the line unresolvable; every line left out is counted in [`NaveReport`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;

use crate::bible::{BibleDb, VerseRef, book_number};
use crate::error::{DataError, Result};
use crate::formats::{Qrels, Query, QueryQrels};
use crate::sword::{LexEntry, read_zld};

/// Verses per chapter: `(book, chapter) → last verse`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Versification(BTreeMap<(u8, u16), u16>);

impl Versification {
    /// From a set of verse keys (the last verse of each chapter is the largest seen).
    pub fn from_refs(refs: impl IntoIterator<Item = VerseRef>) -> Self {
        let mut m = BTreeMap::new();
        for r in refs {
            let e = m.entry((r.book, r.chapter)).or_insert(0);
            *e = (*e).max(r.verse);
        }
        Versification(m)
    }

    /// From one version of the Bible database (placeholder verses included: they keep their slot).
    pub fn from_db(db: &BibleDb, version: &str) -> Result<Self> {
        Ok(Versification(db.chapter_lengths(version)?))
    }

    /// Last verse of a chapter.
    pub fn last_verse(&self, book: u8, chapter: u16) -> Option<u16> {
        self.0.get(&(book, chapter)).copied()
    }

    /// Number of verses.
    pub fn len(&self) -> usize {
        self.0.values().map(|&v| v as usize).sum()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn next_chapter(&self, book: u8, chapter: u16) -> Option<(u8, u16)> {
        self.0.range((book, chapter + 1)..).next().map(|(&k, _)| k)
    }
}

/// One end of an OSIS reference: a verse, or a whole chapter when `verse` is `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Point {
    book: u8,
    chapter: u16,
    verse: Option<u16>,
}

fn parse_point(s: &str) -> std::result::Result<Point, String> {
    let mut it = s.split('.');
    let name = it.next().unwrap_or("");
    let book = book_number(name).ok_or_else(|| format!("book {name:?} is not one of the 66"))?;
    let num = |x: Option<&str>| -> std::result::Result<Option<u16>, String> {
        match x {
            None => Ok(None),
            Some(t) => t
                .parse::<u16>()
                .ok()
                .filter(|&n| n > 0)
                .map(Some)
                .ok_or_else(|| format!("bad number {t:?} in {s:?}")),
        }
    };
    let chapter = num(it.next())?.ok_or_else(|| format!("no chapter in {s:?}"))?;
    let verse = num(it.next())?;
    if it.next().is_some() {
        return Err(format!("too many parts in {s:?}"));
    }
    Ok(Point {
        book,
        chapter,
        verse,
    })
}

/// Expands an `osisRef` value (`Book.C.V`, `Book.C`, or `A-B` of those) to its verses.
pub fn expand_osis_ref(
    osis: &str,
    v11n: &Versification,
) -> std::result::Result<Vec<VerseRef>, String> {
    let osis = osis.trim();
    let (a, b) = match osis.split_once('-') {
        Some((a, b)) => (parse_point(a)?, parse_point(b)?),
        None => {
            let p = parse_point(osis)?;
            (p, p)
        }
    };
    let last = |p: Point| {
        v11n.last_verse(p.book, p.chapter).ok_or_else(|| {
            let name = crate::bible::OSIS_BOOKS[usize::from(p.book) - 1];
            format!("no chapter {name}.{} in the versification", p.chapter)
        })
    };
    let start = VerseRef {
        book: a.book,
        chapter: a.chapter,
        verse: a.verse.unwrap_or(1),
    };
    let end = VerseRef {
        book: b.book,
        chapter: b.chapter,
        verse: match b.verse {
            Some(v) => v,
            None => last(b)?,
        },
    };
    if start > end {
        return Err(format!("reversed range {osis:?}"));
    }
    for p in [start, end] {
        if p.verse
            > last(Point {
                book: p.book,
                chapter: p.chapter,
                verse: None,
            })?
        {
            return Err(format!("verse {p} is not in the versification"));
        }
    }
    let mut out = Vec::new();
    let mut cur = start;
    loop {
        out.push(cur);
        if cur == end {
            return Ok(out);
        }
        if cur.verse
            < last(Point {
                book: cur.book,
                chapter: cur.chapter,
                verse: None,
            })?
        {
            cur.verse += 1;
        } else {
            let (book, chapter) = v11n
                .next_chapter(cur.book, cur.chapter)
                .ok_or_else(|| format!("range {osis:?} runs past the end"))?;
            cur = VerseRef {
                book,
                chapter,
                verse: 1,
            };
        }
    }
}

/// One line (subtopic) of a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subtopic {
    /// Cleaned subtopic text (may be empty when the line is only references).
    pub text: String,
    /// The `osisRef` values, in order.
    pub refs: Vec<String>,
    /// Number of `See …` cross-links (`<ref target=…>`) on the line.
    pub see_also: usize,
    /// The first markup fault on the line (an unclosed tag, a `</ref>` without its `<ref>`, a
    /// `<ref>` open at the end of the line), if any: the line is kept as parsed up to the
    /// fault, and [`NaveReport`] counts it.
    pub malformed: Option<String>,
}

/// A parsed topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic {
    /// 1-based position in the module (unique even when keys repeat).
    pub number: usize,
    /// The key.
    pub name: String,
    /// Its lines, in order.
    pub lines: Vec<Subtopic>,
}

fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let decoded = rest.find(';').filter(|&j| j <= 10).and_then(|j| {
            let name = &rest[1..j];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                _ => {
                    let n = if let Some(h) =
                        name.strip_prefix("#x").or_else(|| name.strip_prefix("#X"))
                    {
                        u32::from_str_radix(h, 16).ok()
                    } else {
                        name.strip_prefix('#').and_then(|d| d.parse().ok())
                    };
                    n.and_then(char::from_u32)
                }
            };
            c.map(|c| (c, j + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let i = tag.find(&format!("{name}="))? + name.len() + 1;
    let q = tag[i..].chars().next()?;
    if q != '"' && q != '\'' {
        return None;
    }
    let rest = &tag[i + 1..];
    Some(&rest[..rest.find(q)?])
}

/// Removes separators left where references were: splits on `;`, trims `,.:` and spaces at the
/// ends of each piece, drops empty pieces and trailing "See"/"See also".
fn clean_subtopic(raw: &str) -> String {
    let text = decode_entities(&raw.replace('→', " "));
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut pieces = Vec::new();
    for piece in text.split(';') {
        let mut p = piece.trim_matches(|c: char| c.is_whitespace() || ",.:".contains(c));
        loop {
            let before = p;
            for tail in ["See also", "see also", "See", "see"] {
                if p == tail {
                    p = "";
                } else if let Some(s) = p.strip_suffix(tail).filter(|s| s.ends_with(' ')) {
                    p = s;
                }
            }
            p = p.trim_matches(|c: char| c.is_whitespace() || ",.:".contains(c));
            if p == before {
                break;
            }
        }
        if !p.is_empty() {
            pieces.push(p);
        }
    }
    pieces.join("; ")
}

/// Parses one entry's markup into lines. Never fails: unknown tags are skipped; an unclosed
/// tag ends the line's text, and that and any unbalanced `<ref>` is recorded in the line's
/// `malformed` (counted by [`build_collection`], never silent).
pub fn parse_entry(number: usize, entry: &LexEntry) -> Topic {
    let mut lines = Vec::new();
    for raw_line in entry.text.split("<lb/>").skip(1) {
        let mut text = String::new();
        let mut refs = Vec::new();
        let mut see_also = 0;
        // Depth inside a <ref>: its content is the reference's display text, not subtopic text.
        let mut in_ref = 0usize;
        let mut malformed = None;
        let mut rest = raw_line;
        while !rest.is_empty() {
            match rest.find('<') {
                None => {
                    if in_ref == 0 {
                        text.push_str(rest);
                    }
                    break;
                }
                Some(i) => {
                    if in_ref == 0 {
                        text.push_str(&rest[..i]);
                    }
                    let Some(j) = rest[i..].find('>') else {
                        let tail: String = rest[i..].chars().take(40).collect();
                        malformed.get_or_insert(format!("unclosed tag {tail:?}"));
                        break;
                    };
                    let tag = &rest[i + 1..i + j];
                    rest = &rest[i + j + 1..];
                    let name = tag
                        .trim_start_matches('/')
                        .split(|c: char| c.is_whitespace() || c == '/')
                        .next()
                        .unwrap_or("");
                    match (name, tag.starts_with('/')) {
                        ("ref", false) if !tag.ends_with('/') => {
                            in_ref += 1;
                            if let Some(r) = attr(tag, "osisRef") {
                                refs.push(decode_entities(r));
                            } else {
                                see_also += 1;
                            }
                        }
                        ("ref", true) if in_ref == 0 => {
                            malformed.get_or_insert("</ref> without an open <ref>".into());
                        }
                        ("ref", true) => in_ref -= 1,
                        ("item", false) => text.push_str("; "),
                        _ => {}
                    }
                }
            }
        }
        if in_ref > 0 {
            malformed.get_or_insert("<ref> not closed by the end of the line".into());
        }
        lines.push(Subtopic {
            text: clean_subtopic(&text),
            refs,
            see_also,
            malformed,
        });
    }
    Topic {
        number,
        name: entry.key.clone(),
        lines,
    }
}

/// Reads and parses every topic of the Nave module in `dir` (files `nave.*`).
pub fn read_topics(dir: &Path) -> Result<Vec<Topic>> {
    Ok(read_zld(dir, crate::fetch::NAVES_STEM)?
        .iter()
        .enumerate()
        .map(|(i, e)| parse_entry(i + 1, e))
        .collect())
}

/// Which testament the relevant verses must all fall in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestamentFilter {
    /// No restriction.
    Any,
    /// Old Testament only.
    Old,
    /// New Testament only.
    New,
}

impl TestamentFilter {
    fn admits(self, r: &VerseRef) -> bool {
        match self {
            TestamentFilter::Any => true,
            TestamentFilter::Old => !r.is_new_testament(),
            TestamentFilter::New => r.is_new_testament(),
        }
    }
}

/// Options of the collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NaveOptions {
    /// Keep a subtopic only if all its verses fall in this testament.
    pub testament: TestamentFilter,
    /// Fewest relevant verses.
    pub min_relevant: usize,
    /// Most relevant verses.
    pub max_relevant: usize,
}

impl Default for NaveOptions {
    /// New Testament only, 2..=100 relevant verses.
    fn default() -> Self {
        NaveOptions {
            testament: TestamentFilter::New,
            min_relevant: 2,
            max_relevant: 100,
        }
    }
}

/// Counts of what went into the collection and what was left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NaveReport {
    /// Topics read.
    pub topics: usize,
    /// Lines (subtopics) read.
    pub lines: usize,
    /// Lines without any verse reference (cross-links only, headings).
    pub no_refs: usize,
    /// Lines with a reference that cannot be resolved (apocrypha, unknown chapter or verse).
    pub unresolvable: usize,
    /// Lines with a verse outside the requested testament.
    pub outside_testament: usize,
    /// Lines with fewer than `min_relevant` verses.
    pub too_few: usize,
    /// Lines with more than `max_relevant` verses.
    pub too_many: usize,
    /// Lines kept as queries.
    pub queries: usize,
    /// Relevance judgments written.
    pub qrels: usize,
    /// Up to 5 examples of unresolvable references.
    pub unresolvable_examples: Vec<String>,
    /// Lines with a markup fault (see [`Subtopic::malformed`]), kept as parsed up to it.
    pub malformed: usize,
    /// Up to 5 examples of markup faults.
    pub malformed_examples: Vec<String>,
}

impl fmt::Display for NaveReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} topics, {} subtopic lines → {} queries, {} qrels; left out: {} without references, {} unresolvable ({}), {} outside the testament, {} with too few and {} with too many verses",
            self.topics,
            self.lines,
            self.queries,
            self.qrels,
            self.no_refs,
            self.unresolvable,
            self.unresolvable_examples.join(", "),
            self.outside_testament,
            self.too_few,
            self.too_many
        )?;
        if self.malformed > 0 {
            write!(
                f,
                "; {} lines with malformed markup, kept as parsed up to the fault ({})",
                self.malformed,
                self.malformed_examples.join(", ")
            )?;
        }
        Ok(())
    }
}

/// A test collection: English queries and verse-level judgments (document ids are OSIS refs).
#[derive(Debug, Clone, Default)]
pub struct NaveCollection {
    /// Queries, `"TOPIC: subtopic"`.
    pub queries: Vec<Query>,
    /// Judgments, all with relevance 1.
    pub qrels: Qrels,
    /// What was kept and left out.
    pub report: NaveReport,
}

/// The query id of line `line` (1-based) of topic `number`.
pub fn query_id(number: usize, line: usize) -> String {
    format!("nave{number:04}.{line:02}")
}

/// Builds the collection from parsed topics.
pub fn build_collection(
    topics: &[Topic],
    v11n: &Versification,
    opts: NaveOptions,
) -> NaveCollection {
    let mut c = NaveCollection::default();
    let r = &mut c.report;
    r.topics = topics.len();
    for t in topics {
        'line: for (li, line) in t.lines.iter().enumerate() {
            r.lines += 1;
            if let Some(fault) = &line.malformed {
                r.malformed += 1;
                if r.malformed_examples.len() < 5 {
                    r.malformed_examples
                        .push(format!("{} line {}: {fault}", t.name, li + 1));
                }
            }
            if line.refs.is_empty() {
                r.no_refs += 1;
                continue;
            }
            let mut verses = BTreeSet::new();
            for osis in &line.refs {
                match expand_osis_ref(osis, v11n) {
                    Ok(v) => verses.extend(v),
                    Err(e) => {
                        r.unresolvable += 1;
                        if r.unresolvable_examples.len() < 5 {
                            r.unresolvable_examples
                                .push(format!("{} {osis}: {e}", t.name));
                        }
                        continue 'line;
                    }
                }
            }
            if !verses.iter().all(|v| opts.testament.admits(v)) {
                r.outside_testament += 1;
            } else if verses.len() < opts.min_relevant {
                r.too_few += 1;
            } else if verses.len() > opts.max_relevant {
                r.too_many += 1;
            } else {
                let qid = query_id(t.number, li + 1);
                let text = if line.text.is_empty() {
                    t.name.clone()
                } else {
                    format!("{}: {}", t.name, line.text)
                };
                // Query ids are unique per (topic, line) and a verse set has no duplicates.
                let judgments = verses.iter().map(|v| (v.to_string(), 1)).collect();
                c.qrels
                    .queries
                    .insert(qid.clone(), QueryQrels { judgments });
                c.queries.push(Query { id: qid, text });
            }
        }
    }
    r.queries = c.queries.len();
    r.qrels = c.qrels.len();
    c
}

/// Reads the module in `dir` and builds the collection with the versification of `db`'s
/// `version`.
pub fn collection_from_files(
    dir: &Path,
    db: &BibleDb,
    version: &str,
    opts: NaveOptions,
) -> Result<NaveCollection> {
    if opts.min_relevant > opts.max_relevant {
        return Err(DataError::Usage(format!(
            "min relevant {} > max relevant {}",
            opts.min_relevant, opts.max_relevant
        )));
    }
    let topics = read_topics(dir)?;
    let v11n = Versification::from_db(db, version)?;
    Ok(build_collection(&topics, &v11n, opts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v11n() -> Versification {
        // Made-up chapter lengths: Prov 25 has 28 verses, Prov 26 has 28; Matt 1..2; John 3.
        let mut m = BTreeMap::new();
        m.insert((20, 25), 28);
        m.insert((20, 26), 28);
        m.insert((40, 1), 25);
        m.insert((40, 2), 23);
        m.insert((43, 3), 36);
        m.insert((44, 1), 26);
        Versification(m)
    }

    fn refs(s: &str) -> Vec<String> {
        expand_osis_ref(s, &v11n())
            .unwrap()
            .iter()
            .map(|v| v.to_string())
            .collect()
    }

    #[test]
    fn osis_refs_expand() {
        assert_eq!(refs("Prov.25.8"), ["Prov.25.8"]);
        assert_eq!(
            refs("Prov.25.8-Prov.25.10"),
            ["Prov.25.8", "Prov.25.9", "Prov.25.10"]
        );
        assert_eq!(
            refs("Prov.25.27-Prov.26.2"),
            ["Prov.25.27", "Prov.25.28", "Prov.26.1", "Prov.26.2"]
        );
        assert_eq!(refs("Matt.2").len(), 23);
        assert_eq!(refs("Matt.1.25-Matt.2.1"), ["Matt.1.25", "Matt.2.1"]);
        // Across books: the next chapter present in the versification.
        assert_eq!(refs("John.3.36-Acts.1.1"), ["John.3.36", "Acts.1.1"]);
        for bad in [
            "Wis.1.1",
            "Prov.25.29",
            "Prov.25.10-Prov.25.8",
            "Prov.27.1",
            "Prov",
            "Prov.x.1",
            "Prov.1.2.3",
            "",
        ] {
            assert!(expand_osis_ref(bad, &v11n()).is_err(), "{bad}");
        }
    }

    fn entry(key: &str, body: &str) -> LexEntry {
        LexEntry {
            key: key.into(),
            text: format!("<entryFree n=\"{key}\">\n<def>\n{body}</def>\n</entryFree>"),
        }
    }

    #[test]
    fn entries_parse_into_lines() {
        let e = entry(
            "LOVE",
            "<lb/>→ Of neighbours &amp; friends <ref osisRef=\"Matt.1.2\">Mt 1:2</ref>; <ref osisRef=\"Matt.1.4-Matt.1.5\">4, 5</ref>\n\
             <lb/>→ See <ref target=\"Nave:CHARITY\">CHARITY</ref>\n\
             <lb/>→ Feasts of <ref osisRef=\"Wis.1.1\">Wis 1:1</ref>; See also <ref target=\"Nave:X\">X</ref>\n\
             <lb/>1. Sundry\n<list>\n<item>Of God <ref osisRef=\"John.3.16\">Joh 3:16</ref></item>\n<item>In &#8220;deed&#8221; <ref osisRef=\"Matt.2\">Mt 2</ref></item>\n</list>\n",
        );
        let t = parse_entry(7, &e);
        assert_eq!(t.lines.len(), 4);
        assert_eq!(
            t.lines[0],
            Subtopic {
                text: "Of neighbours & friends".into(),
                refs: vec!["Matt.1.2".into(), "Matt.1.4-Matt.1.5".into()],
                see_also: 0,
                malformed: None
            }
        );
        assert_eq!(
            t.lines[1],
            Subtopic {
                text: String::new(),
                refs: vec![],
                see_also: 1,
                malformed: None
            }
        );
        assert_eq!(t.lines[2].text, "Feasts of");
        assert_eq!(
            t.lines[3].text,
            "1. Sundry; Of God; In \u{201c}deed\u{201d}"
        );
        assert_eq!(t.lines[3].refs, ["John.3.16", "Matt.2"]);

        let other = parse_entry(
            8,
            &entry(
                "ABBA",
                "<lb/>→ <ref osisRef=\"Prov.25.1\">Pr 25:1</ref>, <ref osisRef=\"Prov.25.3\">3</ref>\n",
            ),
        );
        let c = build_collection(&[t, other.clone()], &v11n(), NaveOptions::default());
        assert_eq!(c.report.topics, 2);
        assert_eq!(c.report.lines, 5);
        assert_eq!(c.report.no_refs, 1);
        assert_eq!(c.report.unresolvable, 1);
        assert_eq!(c.report.outside_testament, 1);
        // Line 4 has 1 + 23 = 24 verses, line 1 has 3.
        assert_eq!(
            c.queries
                .iter()
                .map(|q| (q.id.as_str(), q.text.as_str()))
                .collect::<Vec<_>>(),
            [
                ("nave0007.01", "LOVE: Of neighbours & friends"),
                (
                    "nave0007.04",
                    "LOVE: 1. Sundry; Of God; In \u{201c}deed\u{201d}"
                )
            ]
        );
        assert_eq!(
            c.qrels
                .iter()
                .filter(|(q, _, _)| *q == "nave0007.01")
                .map(|(_, d, _)| d)
                .collect::<Vec<_>>(),
            ["Matt.1.2", "Matt.1.4", "Matt.1.5"]
        );
        assert_eq!(c.report.qrels, 27);
        let strict = build_collection(
            &[parse_entry(7, &e)],
            &v11n(),
            NaveOptions {
                max_relevant: 10,
                ..Default::default()
            },
        );
        assert_eq!((strict.report.queries, strict.report.too_many), (1, 1));
        let old = build_collection(
            std::slice::from_ref(&other),
            &v11n(),
            NaveOptions {
                testament: TestamentFilter::Old,
                ..Default::default()
            },
        );
        assert_eq!(old.queries[0].text, "ABBA");
        let few = build_collection(
            &[other],
            &v11n(),
            NaveOptions {
                testament: TestamentFilter::Any,
                min_relevant: 3,
                max_relevant: 9,
            },
        );
        assert_eq!(few.report.too_few, 1);
    }

    #[test]
    fn markup_faults_are_recorded_and_counted() {
        // No closing `</def>` after the body, so the last tag stays unclosed.
        let e = LexEntry {
            key: "FAULTS".into(),
            text: "<entryFree n=\"FAULTS\">\n<def>\n<lb/>→ Fine <ref osisRef=\"Matt.1.1\">Mt 1:1</ref>, <ref osisRef=\"Matt.1.2\">2</ref>\n\
             <lb/>→ Stray </ref>close <ref osisRef=\"Matt.1.3\">Mt 1:3</ref>, <ref osisRef=\"Matt.1.4\">4</ref>\n\
             <lb/>→ Open <ref osisRef=\"Matt.1.1\">Mt 1:1\n\
             <lb/>→ Cut <ref osisRef=\"Matt.1.2\">Mt 1:2</ref> more <ref osisRef=\"Matt.1.3"
                .into(),
        };
        let t = parse_entry(3, &e);
        let faults: Vec<Option<&str>> = t.lines.iter().map(|l| l.malformed.as_deref()).collect();
        assert_eq!(faults[0], None);
        assert_eq!(faults[1], Some("</ref> without an open <ref>"));
        assert_eq!(faults[2], Some("<ref> not closed by the end of the line"));
        assert!(
            faults[3]
                .unwrap()
                .starts_with("unclosed tag \"<ref osisRef"),
            "{faults:?}"
        );
        // Kept as parsed up to the fault, and counted with examples.
        assert_eq!(t.lines[3].refs, ["Matt.1.2"]);
        let c = build_collection(&[t], &v11n(), NaveOptions::default());
        assert_eq!(c.report.malformed, 3);
        assert_eq!(c.report.malformed_examples.len(), 3);
        let words = c.report.to_string();
        assert!(words.contains("3 lines with malformed markup"), "{words}");
        assert!(words.contains("FAULTS line 2: </ref> without"), "{words}");
    }

    #[test]
    fn entities() {
        assert_eq!(
            decode_entities("a &amp; b &#8220;x&#x201D; &bogus; & end &"),
            "a & b \u{201c}x\u{201d} &bogus; & end &"
        );
    }

    proptest! {
        #[test]
        fn parsing_never_panics(s in "(<lb/>|<ref osisRef=\"|<ref target=\"|</ref>|<item>|<list>|\">|&amp;|&#|[A-Za-z0-9 .;,-])*") {
            let t = parse_entry(1, &LexEntry { key: "K".into(), text: s.clone() });
            let _ = build_collection(&[t], &v11n(), NaveOptions::default());
            for r in s.split('"') {
                let _ = expand_osis_ref(r, &v11n());
            }
        }

        #[test]
        fn arbitrary_text_never_panics(s in any::<String>()) {
            let _ = parse_entry(1, &LexEntry { key: "K".into(), text: s.clone() });
            let _ = expand_osis_ref(&s, &v11n());
        }
    }
}
