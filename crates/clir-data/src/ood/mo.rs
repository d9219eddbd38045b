//! GNU gettext `.mo` catalogues (LibreOffice's interface strings): every message with its
//! translation.
//!
//! Layout (GNU gettext manual, "The Format of GNU MO Files"): a magic number `0x950412de`
//! (in the file's byte order), a revision, the message count `N`, the offsets of the
//! original and translated string tables (`N` pairs of `u32` length and offset each) and of
//! a hash table the reader does not need. A string ends in a NUL its length leaves out; a
//! message with a context is `context \x04 msgid`, and plural forms are separated by NUL.

use std::path::Path;

use crate::{DataError, Result};

/// One message of a catalogue: its context (if any), the English text and its translation
/// (plural forms: the singular of both).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub context: Option<String>,
    pub msgid: String,
    pub msgstr: String,
}

/// Reads the `.mo` file at `path`; the header entry (empty msgid) is left out.
pub fn read_mo(path: &Path) -> Result<Vec<Message>> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    parse_mo(&bytes, path)
}

/// Parses a `.mo` image (`path` names it in errors). Every offset is checked against the
/// image: a wrong magic, a table or string outside it, a missing NUL or invalid UTF-8 is an
/// error naming the file and the message's index, never a panic.
pub fn parse_mo(bytes: &[u8], path: &Path) -> Result<Vec<Message>> {
    let bad = |msg: String| DataError::invalid(path, msg);
    let word = |at: usize, what: &str, big: bool| -> Result<u32> {
        let b: [u8; 4] = bytes
            .get(at..at + 4)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| {
                bad(format!(
                    "{what} at byte {at} lies beyond the file's {} bytes",
                    bytes.len()
                ))
            })?;
        Ok(if big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    };
    let big = match word(0, "the magic number", false)? {
        0x950412de => false,
        0xde120495 => true,
        m => {
            return Err(bad(format!(
                "not a gettext .mo file (magic {m:#010x}, expected 0x950412de)"
            )));
        }
    };
    let revision = word(4, "the revision", big)?;
    if revision >> 16 > 1 {
        return Err(bad(format!("unsupported .mo revision {revision:#x}")));
    }
    let n = word(8, "the message count", big)? as usize;
    let originals = word(12, "the originals' table offset", big)? as usize;
    let translations = word(16, "the translations' table offset", big)? as usize;
    let string = |table: usize, i: usize, what: &str| -> Result<&str> {
        let entry = table + 8 * i;
        let len = word(entry, &format!("message {i}'s {what} length"), big)? as usize;
        let at = word(entry + 4, &format!("message {i}'s {what} offset"), big)? as usize;
        let end = at
            .checked_add(len)
            .filter(|&e| e < bytes.len())
            .ok_or_else(|| {
                bad(format!(
                    "message {i}'s {what} (bytes {at}..{at}+{len} and its NUL) lies beyond the \
                 file's {} bytes",
                    bytes.len()
                ))
            })?;
        if bytes[end] != 0 {
            return Err(bad(format!("message {i}'s {what} does not end in NUL")));
        }
        std::str::from_utf8(&bytes[at..end])
            .map_err(|e| bad(format!("message {i}'s {what} is not UTF-8: {e}")))
    };
    let mut out = Vec::with_capacity(n.min(bytes.len() / 16));
    for i in 0..n {
        let id = string(originals, i, "msgid")?;
        let tr = string(translations, i, "msgstr")?;
        if id.is_empty() {
            continue; // the header: metadata, not a message
        }
        let (context, id) = match id.split_once('\u{4}') {
            Some((c, m)) => (Some(c.to_string()), m),
            None => (None, id),
        };
        let singular = |s: &str| s.split('\0').next().unwrap_or("").to_string();
        out.push(Message {
            context,
            msgid: singular(id),
            msgstr: singular(tr),
        });
    }
    Ok(out)
}

/// A `.mo` image of `messages` (little-endian, revision 0, no hash table): the writer the
/// tests and fixtures use.
pub fn write_mo(messages: &[(&str, &str)]) -> Vec<u8> {
    let n = messages.len();
    let tables = 28;
    let mut strings = Vec::new();
    let mut place = |s: &str| {
        let at = tables + 16 * n + strings.len();
        strings.extend_from_slice(s.as_bytes());
        strings.push(0);
        (s.len() as u32, at as u32)
    };
    let placed: Vec<_> = messages.iter().map(|(k, _)| place(k)).collect();
    let placed_tr: Vec<_> = messages.iter().map(|(_, v)| place(v)).collect();
    let mut out = Vec::new();
    for w in [
        0x950412de_u32,
        0,
        n as u32,
        tables as u32,
        (tables + 8 * n) as u32,
        0,
        0,
    ] {
        out.extend_from_slice(&w.to_le_bytes());
    }
    for (len, at) in placed.iter().chain(&placed_tr) {
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&at.to_le_bytes());
    }
    out.extend_from_slice(&strings);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn messages_contexts_and_plurals_round_trip() {
        let image = write_mo(&[
            ("", "Content-Type: text/plain; charset=UTF-8\n"),
            ("RID_OPEN\u{4}~Open", "~Fungua"),
            ("One file\0%1 files", "Faili moja\0Faili %1"),
        ]);
        let m = parse_mo(&image, Path::new("t.mo")).unwrap();
        assert_eq!(m.len(), 2, "the header is left out");
        assert_eq!(m[0].context.as_deref(), Some("RID_OPEN"));
        assert_eq!(
            (m[0].msgid.as_str(), m[0].msgstr.as_str()),
            ("~Open", "~Fungua")
        );
        assert_eq!(
            (m[1].msgid.as_str(), m[1].msgstr.as_str()),
            ("One file", "Faili moja")
        );
    }

    #[test]
    fn damaged_images_are_errors_naming_the_file_and_message() {
        let p = Path::new("ui/sw.mo");
        let e = parse_mo(b"GIF89a\0\0", p).unwrap_err().to_string();
        assert!(e.starts_with("ui/sw.mo: not a gettext .mo file"), "{e}");
        let mut image = write_mo(&[("Open", "Fungua"), ("Close", "Funga")]);
        let last = image.len() - 1;
        image[last] = b'x'; // the last string loses its NUL
        let e = parse_mo(&image, p).unwrap_err().to_string();
        assert!(e.contains("message 1's msgstr does not end in NUL"), "{e}");
        let cut = &image[..40];
        let e = parse_mo(cut, p).unwrap_err().to_string();
        assert!(
            e.starts_with("ui/sw.mo: ") && e.contains("beyond the file's 40 bytes"),
            "{e}"
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_mo(&bytes, Path::new("x.mo"));
        }

        #[test]
        fn mutated_catalogues_parse_or_name_the_file(
            at in any::<prop::sample::Index>(),
            byte in any::<u8>(),
        ) {
            let mut image = write_mo(&[("Open", "Fungua"), ("Save ~As", "Hifadhi ~Kama")]);
            let i = at.index(image.len());
            image[i] = byte;
            if let Err(e) = parse_mo(&image, Path::new("m.mo")) {
                prop_assert!(e.to_string().starts_with("m.mo: "), "{}", e);
            }
        }
    }
}
