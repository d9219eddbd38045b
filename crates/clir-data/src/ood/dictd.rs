//! FreeDict dictionaries in the dictd format: an index (`headword TAB offset TAB length`,
//! the numbers in dictd's base64 digits) into a gzip-compressed (dictzip) text, and each
//! entry's translations.
//!
//! A FreeDict English→X entry is its headword line (`annoy /ɐnˈɔɪ/ <VT>`) followed by the
//! senses, either plain lines (`juu`) or numbered ones (`1. चिढ़ाना, सताना`), each possibly
//! followed by indented example sentences in quotes, which are not translations.

use std::io::Read;
use std::path::Path;

use crate::{DataError, Result};

/// dictd's base64 digits, most significant first.
const DIGITS: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// One dictionary entry: the headword and its senses (examples left out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub headword: String,
    pub senses: Vec<String>,
}

/// The entries of `index` in `dict` (the `.dict.dz` file, or an uncompressed `.dict`); the
/// `00database…` entries (the dictionary's own metadata) are left out. An index line without
/// three fields, a bad number or an entry outside the text is an error naming the index
/// file and line.
pub fn read_dictd(index: &Path, dict: &Path) -> Result<Vec<Entry>> {
    let raw = std::fs::read(dict).map_err(|e| DataError::io(dict, e))?;
    let text = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| DataError::invalid(dict, format!("not a readable dictzip file: {e}")))?;
        out
    } else {
        raw
    };
    let idx = std::fs::read_to_string(index).map_err(|e| DataError::io(index, e))?;
    parse_dictd(&idx, &text, (index, dict))
}

/// [`read_dictd`] on the index text and the uncompressed dictionary.
pub fn parse_dictd(index: &str, text: &[u8], (ipath, dpath): (&Path, &Path)) -> Result<Vec<Entry>> {
    let mut out = Vec::new();
    for (n, line) in index.lines().enumerate() {
        let ln = n as u64 + 1;
        let bad = |msg: String| DataError::malformed(ipath, ln, msg);
        let f: Vec<&str> = line.split('\t').collect();
        let [headword, offset, length] = f[..] else {
            return Err(bad(format!(
                "expected headword, offset and length separated by tabs, found {} fields",
                f.len()
            )));
        };
        if headword.starts_with("00database") || headword.starts_with("00-database") {
            continue;
        }
        let (at, len) = (b64(offset).map_err(&bad)?, b64(length).map_err(&bad)?);
        let body = at
            .checked_add(len)
            .and_then(|end| text.get(at..end))
            .ok_or_else(|| {
                bad(format!(
                    "entry {headword:?} (bytes {at}..{at}+{len}) lies beyond the {} bytes of {}",
                    text.len(),
                    dpath.display()
                ))
            })?;
        let body = std::str::from_utf8(body)
            .map_err(|e| bad(format!("entry {headword:?} is not UTF-8: {e}")))?;
        out.push(Entry {
            headword: headword.to_string(),
            senses: senses(body),
        });
    }
    Ok(out)
}

/// A number in dictd's base64 digits.
fn b64(s: &str) -> std::result::Result<usize, String> {
    if s.is_empty() || s.len() > 10 {
        return Err(format!("{s:?} is not a dictd number"));
    }
    s.bytes().try_fold(0usize, |n, c| {
        let d = DIGITS
            .iter()
            .position(|&x| x == c)
            .ok_or_else(|| format!("{s:?} is not a dictd number ({:?})", c as char))?;
        Ok(n * 64 + d)
    })
}

/// The translations of an entry's body: every line after the headword line that is not an
/// example (indented, starting with a quote), its sense number removed.
fn senses(body: &str) -> Vec<String> {
    body.lines()
        .skip(1)
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('"'))
        .map(|l| strip_number(l.trim()).to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// `1. text` → `text`.
fn strip_number(l: &str) -> &str {
    match l.split_once(". ") {
        Some((n, rest)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => rest.trim(),
        _ => l,
    }
}

/// A number in dictd's base64 digits (the inverse of [`b64`]).
fn b64_digits(mut n: usize) -> String {
    let mut s = Vec::new();
    loop {
        s.push(DIGITS[n % 64]);
        n /= 64;
        if n == 0 {
            break;
        }
    }
    s.reverse();
    String::from_utf8(s).unwrap_or_default()
}

/// A dictionary of `(headword, entry text)` as its index and (uncompressed) text: the writer
/// the tests and fixtures use.
pub fn write_dictd(entries: &[(&str, &str)]) -> (String, Vec<u8>) {
    let (mut index, mut text) = (String::new(), Vec::new());
    for (h, body) in entries {
        let (at, len) = (b64_digits(text.len()), b64_digits(body.len()));
        index.push_str(&format!("{h}\t{at}\t{len}\n"));
        text.extend_from_slice(body.as_bytes());
    }
    (index, text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn paths() -> (&'static Path, &'static Path) {
        (Path::new("d.index"), Path::new("d.dict"))
    }

    #[test]
    fn plain_and_numbered_senses_without_examples() {
        let (index, text) = write_dictd(&[
            ("00databaseinfo", "about this dictionary\n"),
            ("above", "above /əbˈʌv/ <adv>\n\njuu\n"),
            (
                "annoy",
                "annoy /ɐnˈɔɪ/ <VT>\n1. kuudhi, kusumbua\n      \"I was annoyed.\"\n2. kuchokesha\n",
            ),
        ]);
        let e = parse_dictd(&index, &text, paths()).unwrap();
        assert_eq!(e.len(), 2, "metadata entries are left out");
        assert_eq!(e[0].senses, ["juu"]);
        assert_eq!(e[1].headword, "annoy");
        assert_eq!(e[1].senses, ["kuudhi, kusumbua", "kuchokesha"]);
    }

    #[test]
    fn bad_index_lines_name_the_file_and_line() {
        let (index, text) = write_dictd(&[("above", "above\n\njuu\n")]);
        let e = parse_dictd(&format!("{index}x\t!\tB\n"), &text, paths()).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("d.index:2: \"!\" is not a dictd number"),
            "{e}"
        );
        let e = parse_dictd("above\tA\n", &text, paths()).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("d.index:1: expected headword, offset"),
            "{e}"
        );
        let e = parse_dictd("above\tA\tZZ\n", &text, paths()).unwrap_err();
        assert!(
            e.to_string().contains("lies beyond the 11 bytes of d.dict"),
            "{e}"
        );
    }

    proptest! {
        #[test]
        fn arbitrary_indexes_never_panic(index in "[A-Za-z0-9+/\\t\\n]{0,80}") {
            let (_, text) = write_dictd(&[("a", "a\n\nb\n")]);
            if let Err(e) = parse_dictd(&index, &text, paths()) {
                prop_assert!(e.to_string().starts_with("d.index:"), "{}", e);
            }
        }
    }
}
