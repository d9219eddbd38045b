//! Out-of-domain bitext from Debian packages, for the bitext-domain experiments: English
//! paired with a translation that is not the Bible.
//!
//! | source | languages | pairs of | packages |
//! |---|---|---|---|
//! | `libreoffice-help` | hindi | help paragraphs, matched by page and paragraph id | `libreoffice-help-en-us`, `libreoffice-help-hi` |
//! | `libreoffice-ui` | bengali, hindi | interface strings (gettext msgid → msgstr) | `libreoffice-l10n-bn`, `-hi` |
//! | `freedict` | swahili, hindi | dictionary entries (headword → its senses) | `dict-freedict-eng-swh`, `-eng-hin` |
//!
//! Every text has its whitespace collapsed; interface strings lose LibreOffice's `~`
//! accelerator marks, and a dictionary's `~` between the words of a translation becomes a
//! space. A record is dropped, and counted under its reason in [`Counts`], when
//! either side is empty, when the "translation" is the English text itself (an untranslated
//! paragraph or string), when it repeats a pair already kept, and (help pages) when its id is
//! missing from the English page or repeated a different number of times there. The packages
//! are fetched by name and pinned by hash ([`crate::fetch::OOD_DEB_PACKAGES`]).

pub mod dictd;
pub mod help;
pub mod mo;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use crate::bible;
use crate::fetch::{self, DebPackage};
use crate::formats::BitextPair;
use crate::{DataError, Result};

/// A source of out-of-domain bitext.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OodSource {
    /// LibreOffice's help pages, matched by page and paragraph id with the English ones.
    LibreOfficeHelp,
    /// LibreOffice's interface strings.
    LibreOfficeUi,
    /// FreeDict English→X dictionaries.
    FreeDict,
}

impl std::str::FromStr for OodSource {
    type Err = DataError;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "libreoffice-help" => OodSource::LibreOfficeHelp,
            "libreoffice-ui" => OodSource::LibreOfficeUi,
            "freedict" => OodSource::FreeDict,
            _ => {
                return Err(DataError::Usage(format!(
                    "unknown bitext source {s:?}: libreoffice-help, libreoffice-ui or freedict"
                )));
            }
        })
    }
}

/// What was read and what was kept: every record is either a pair or counted under the
/// reason it was dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Files read (help pages, catalogues, dictionaries).
    pub files: usize,
    /// Records read (paragraphs, messages, entries).
    pub records: usize,
    /// Records dropped, by reason.
    pub dropped: BTreeMap<&'static str, usize>,
    /// Pairs kept.
    pub pairs: usize,
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} files, {} records: {} pairs kept",
            self.files, self.records, self.pairs
        )?;
        for (why, n) in &self.dropped {
            write!(f, ", {n} dropped ({why})")?;
        }
        Ok(())
    }
}

/// Pairs and their counts.
#[derive(Debug, Clone, Default)]
pub struct OodBitext {
    pub pairs: Vec<BitextPair>,
    pub counts: Counts,
}

impl OodBitext {
    /// Counts one record; keeps it unless it is empty, untranslated or a repeat.
    fn record(&mut self, src: &str, tgt: &str, seen: &mut HashSet<(String, String)>) {
        self.counts.records += 1;
        let (src, tgt) = (collapse(src), collapse(tgt));
        let why = if src.is_empty() || tgt.is_empty() {
            Some("empty side")
        } else if src == tgt {
            Some("untranslated: the English text")
        } else if !seen.insert((src.clone(), tgt.clone())) {
            Some("repeats a pair")
        } else {
            None
        };
        match why {
            Some(why) => *self.counts.dropped.entry(why).or_default() += 1,
            None => {
                self.counts.pairs += 1;
                self.pairs.push(BitextPair { src, tgt });
            }
        }
    }

    /// Counts `n` records dropped before pairing, for `why`.
    fn skip(&mut self, why: &'static str, n: usize) {
        self.counts.records += n;
        *self.counts.dropped.entry(why).or_default() += n;
    }
}

fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The ISO code of a language name (`hindi`) or code (`hi`), from [`bible::LANGUAGE_NAMES`].
fn iso(language: &str) -> Option<&'static str> {
    bible::LANGUAGE_NAMES
        .iter()
        .find(|(name, code)| {
            name.eq_ignore_ascii_case(language) || code.eq_ignore_ascii_case(language)
        })
        .map(|(_, code)| *code)
}

impl OodSource {
    pub fn name(self) -> &'static str {
        match self {
            OodSource::LibreOfficeHelp => "libreoffice-help",
            OodSource::LibreOfficeUi => "libreoffice-ui",
            OodSource::FreeDict => "freedict",
        }
    }

    /// The packages this source reads for `language`, in the order [`read`](Self::read)
    /// takes their unpacked directories.
    pub fn packages(self, language: &str) -> Result<Vec<DebPackage>> {
        use fetch::*;
        let found = match (self, iso(language)) {
            (OodSource::LibreOfficeHelp, Some("hi")) => vec![LO_HELP_EN_DEB, LO_HELP_HI_DEB],
            (OodSource::LibreOfficeUi, Some("bn")) => vec![LO_L10N_BN_DEB],
            (OodSource::LibreOfficeUi, Some("hi")) => vec![LO_L10N_HI_DEB],
            (OodSource::FreeDict, Some("sw")) => vec![FREEDICT_ENG_SWH_DEB],
            (OodSource::FreeDict, Some("hi")) => vec![FREEDICT_ENG_HIN_DEB],
            _ => {
                let has = match self {
                    OodSource::LibreOfficeHelp => "hindi",
                    OodSource::LibreOfficeUi => "bengali and hindi",
                    OodSource::FreeDict => "swahili and hindi",
                };
                return Err(DataError::Usage(format!(
                    "{} has no {language:?} bitext (it has {has})",
                    self.name()
                )));
            }
        };
        Ok(found)
    }

    /// Fetches (or finds in the cache) the [`packages`](Self::packages) for `language`
    /// through `fetcher`, then [`read`](Self::read)s them.
    pub fn fetch_and_read(self, language: &str, fetcher: &fetch::Source) -> Result<OodBitext> {
        let dirs = self
            .packages(language)?
            .iter()
            .map(|p| fetcher.deb(p))
            .collect::<Result<Vec<_>, _>>()?;
        self.read(language, &dirs)
    }

    /// Reads the pairs from the unpacked `dirs` of [`packages`](Self::packages).
    pub fn read(self, language: &str, dirs: &[PathBuf]) -> Result<OodBitext> {
        let packages = self.packages(language)?;
        if dirs.len() != packages.len() {
            return Err(DataError::Usage(format!(
                "{} {language} reads {} unpacked packages ({}), not {}",
                self.name(),
                packages.len(),
                packages
                    .iter()
                    .map(|p| p.name)
                    .collect::<Vec<_>>()
                    .join(", "),
                dirs.len()
            )));
        }
        let code = iso(language).unwrap_or_default();
        match self {
            OodSource::LibreOfficeHelp => read_help(
                &dirs[0].join("usr/share/libreoffice/help/en-US"),
                &dirs[1].join("usr/share/libreoffice/help").join(code),
            ),
            OodSource::LibreOfficeUi => read_ui(
                &dirs[0]
                    .join("usr/lib/libreoffice/program/resource")
                    .join(code)
                    .join("LC_MESSAGES"),
            ),
            OodSource::FreeDict => {
                let stem = match code {
                    "sw" => "freedict-eng-swh",
                    _ => "freedict-eng-hin",
                };
                let d = dirs[0].join("usr/share/dictd");
                read_freedict(
                    &d.join(format!("{stem}.index")),
                    &d.join(format!("{stem}.dict.dz")),
                )
            }
        }
    }
}

/// Files under `dir` whose names end in `ext`, sorted (an unreadable or missing folder is
/// an error naming it).
fn files_under(dir: &Path, ext: &str) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for e in walkdir::WalkDir::new(dir).follow_links(true) {
        let e = e.map_err(|e| {
            let at = e.path().unwrap_or(dir).to_path_buf();
            DataError::io(&at, e.into())
        })?;
        if e.file_type().is_file() && e.path().extension().is_some_and(|x| x == ext) {
            out.push(e.into_path());
        }
    }
    out.sort();
    Ok(out)
}

/// Help paragraphs of `xx` (a language's help folder) paired with those of `en` (en-US) by
/// page and id.
pub fn read_help(en: &Path, xx: &Path) -> Result<OodBitext> {
    let mut out = OodBitext::default();
    let mut seen = HashSet::new();
    for page in files_under(xx, "html")? {
        let rel = page.strip_prefix(xx).unwrap_or(&page);
        let english = en.join(rel);
        let theirs = help::read_page(&page)?;
        if !english.is_file() {
            let n = theirs.values().map(Vec::len).sum();
            out.skip("id of a page missing in English", n);
            continue;
        }
        out.counts.files += 1;
        let ours = help::read_page(&english)?;
        for (id, texts) in &theirs {
            match ours.get(id) {
                Some(en_texts) if en_texts.len() == texts.len() => {
                    for (e, t) in en_texts.iter().zip(texts) {
                        out.record(e, t, &mut seen);
                    }
                }
                Some(_) => out.skip(
                    "id repeated a different number of times in English",
                    texts.len(),
                ),
                None => out.skip("id missing in the English page", texts.len()),
            }
        }
    }
    Ok(out)
}

/// Interface strings of every catalogue in `dir` (a language's `LC_MESSAGES`).
pub fn read_ui(dir: &Path) -> Result<OodBitext> {
    let mut out = OodBitext::default();
    let mut seen = HashSet::new();
    for file in files_under(dir, "mo")? {
        out.counts.files += 1;
        for m in mo::read_mo(&file)? {
            out.record(
                &m.msgid.replace('~', ""),
                &m.msgstr.replace('~', ""),
                &mut seen,
            );
        }
    }
    Ok(out)
}

/// Dictionary entries: the headword and its senses joined by `; ` (FreeDict's `~`, which
/// joins the words of a multi-word translation, becomes a space).
pub fn read_freedict(index: &Path, dict: &Path) -> Result<OodBitext> {
    let mut out = OodBitext::default();
    let mut seen = HashSet::new();
    out.counts.files = 1;
    for e in dictd::read_dictd(index, dict)? {
        out.record(
            &e.headword,
            &e.senses.join("; ").replace('~', " "),
            &mut seen,
        );
    }
    Ok(out)
}
