//! LibreOffice help pages: the text of every paragraph and heading that carries an id
//! (`<p id="par_id3146957">`, `<h2 id="hd_id3143284">`), so that a translated page and its
//! English original pair up by file and id.

use std::collections::BTreeMap;
use std::path::Path;

use crate::{DataError, Result};

/// The elements whose text is read (the help's paragraphs and headings).
const TAGS: [&str; 7] = ["p", "h1", "h2", "h3", "h4", "h5", "h6"];

/// Each id of a page with the texts of its elements, in page order (a page may repeat an
/// id: an embedded section shown twice).
pub type Paragraphs = BTreeMap<String, Vec<String>>;

/// Reads the page at `path`.
pub fn read_page(path: &Path) -> Result<Paragraphs> {
    let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
    parse_page(&text, path)
}

/// The paragraphs of a page: tags removed, entities decoded, whitespace collapsed. An element
/// with an id that is never closed, or an unknown entity, is an error naming the file and line.
pub fn parse_page(html: &str, path: &Path) -> Result<Paragraphs> {
    let line_of = |at: usize| html[..at].bytes().filter(|&b| b == b'\n').count() as u64 + 1;
    let mut out = Paragraphs::new();
    let mut pos = 0;
    while let Some(rel) = html[pos..].find('<') {
        let start = pos + rel;
        let Some((tag, id, open_end)) = element_with_id(html, start) else {
            pos = start + 1;
            continue;
        };
        let close = format!("</{tag}>");
        let Some(len) = html[open_end..].find(&close) else {
            return Err(DataError::malformed(
                path,
                line_of(start),
                format!("<{tag} id=\"{id}\"> is never closed ({close} missing)"),
            ));
        };
        let inner = &html[open_end..open_end + len];
        let text = plain_text(inner).map_err(|msg| {
            DataError::malformed(path, line_of(open_end), format!("id {id}: {msg}"))
        })?;
        out.entry(id.to_string()).or_default().push(text);
        pos = open_end + len + close.len();
    }
    Ok(out)
}

/// The tag, id and end of the start tag at `start`, when it opens one of [`TAGS`] with an
/// `id` attribute.
fn element_with_id(html: &str, start: usize) -> Option<(&'static str, &str, usize)> {
    let rest = &html[start + 1..];
    let tag = TAGS
        .into_iter()
        .find(|t| rest.starts_with(t) && rest[t.len()..].starts_with([' ', '>']))?;
    let end = start + 1 + rest.find('>')? + 1;
    let open = &html[start..end];
    let at = open.find(" id=\"")? + 5;
    let len = open[at..].find('"')?;
    Some((tag, &open[at..at + len], end))
}

/// `inner` without tags, its entities decoded and its whitespace collapsed.
fn plain_text(inner: &str) -> std::result::Result<String, String> {
    let mut text = String::with_capacity(inner.len());
    let mut rest = inner;
    while let Some(lt) = rest.find('<') {
        text.push_str(&rest[..lt]);
        text.push(' ');
        let gt = rest[lt..]
            .find('>')
            .ok_or("a tag is never closed ('>' missing)")?;
        rest = &rest[lt + gt + 1..];
    }
    text.push_str(rest);
    let decoded = decode_entities(&text)?;
    Ok(decoded.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// HTML entities: the five of XML, `&nbsp;` and numeric references.
fn decode_entities(s: &str) -> std::result::Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let tail = &rest[amp..];
        let semi = tail
            .find(';')
            .filter(|&i| i <= 12)
            .ok_or_else(|| format!("'&' starts no entity near {:?}", head(tail)))?;
        let name = &tail[1..semi];
        let c = match name {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            "nbsp" => ' ',
            _ => numeric(name).ok_or_else(|| format!("unknown entity &{name};"))?,
        };
        out.push(c);
        rest = &tail[semi + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn numeric(name: &str) -> Option<char> {
    let n = name.strip_prefix('#')?;
    let v = match n.strip_prefix(['x', 'X']) {
        Some(hex) => u32::from_str_radix(hex, 16).ok()?,
        None => n.parse().ok()?,
    };
    char::from_u32(v)
}

fn head(s: &str) -> &str {
    let end = s.char_indices().nth(16).map_or(s.len(), |(i, _)| i);
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const PAGE: &str = "<html><body>\n<h1 id=\"hd_id1\" dir=\"auto\"><a href=\"x\">Load/Save</a></h1>\n\
        <p id=\"par_id2\" class=\"paragraph\"><span>Saves &amp; loads\n   files&nbsp;&#233;&#x41;.</span></p>\n\
        <p class=\"paragraph\">no id: not read</p>\n<p id=\"par_id2\">again</p>\n<img id=\"x\">\n</body></html>";

    #[test]
    fn ids_texts_and_repeats() {
        let p = parse_page(PAGE, Path::new("a.html")).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p["hd_id1"], ["Load/Save"]);
        assert_eq!(p["par_id2"], ["Saves & loads files éA.", "again"]);
    }

    #[test]
    fn unclosed_elements_and_unknown_entities_name_file_and_line() {
        let e = parse_page("<p>x</p>\n\n<p id=\"par_9\">open", Path::new("h/a.html"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "h/a.html:3: <p id=\"par_9\"> is never closed (</p> missing)"
        );
        let e = parse_page("\n<h2 id=\"hd_1\">a &bogus; b</h2>", Path::new("b.html"))
            .unwrap_err()
            .to_string();
        assert_eq!(e, "b.html:2: id hd_1: unknown entity &bogus;");
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(s in "[<>/&;#a-z0-9 =\"\\n]{0,120}") {
            let text = format!("<p id=\"par_1\">{s}</p>{s}");
            if let Err(e) = parse_page(&text, Path::new("x.html")) {
                prop_assert!(e.to_string().starts_with("x.html:"), "{}", e);
            }
        }
    }
}
