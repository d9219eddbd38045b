//! The out-of-domain bitext sources on made-up package trees: what is paired, what is dropped
//! and why (every record accounted for), and errors that name the file.

use std::io::Write;
use std::path::Path;

use clir_data::ood::{self, Counts, OodBitext, OodSource};

fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

fn page(paragraphs: &[(&str, &str)]) -> String {
    let mut s = String::from("<html><body>\n");
    for (id, text) in paragraphs {
        s.push_str(&format!("<p id=\"{id}\" class=\"paragraph\">{text}</p>\n"));
    }
    s + "</body></html>\n"
}

fn pairs(b: &OodBitext) -> Vec<(&str, &str)> {
    b.pairs
        .iter()
        .map(|p| (p.src.as_str(), p.tgt.as_str()))
        .collect()
}

fn counts(c: &Counts) -> (usize, usize, usize, Vec<(&str, usize)>) {
    let dropped = c.dropped.iter().map(|(k, v)| (*k, *v)).collect();
    (c.files, c.records, c.pairs, dropped)
}

#[test]
fn help_pages_pair_by_page_and_id() {
    let tmp = tempfile::tempdir().unwrap();
    let (en, hi) = (tmp.path().join("en-US"), tmp.path().join("hi"));
    write(
        &en.join("text/a.html"),
        page(&[
            ("hd_1", "Load &amp; save"),
            ("par_2", "Saves files."),
            ("par_3", "Not translated."),
            ("par_4", "Twice"),
            ("par_4", "Twice"),
        ])
        .as_bytes(),
    );
    write(
        &hi.join("text/a.html"),
        page(&[
            ("hd_1", "लोड और सहेजें"),
            ("par_2", "फ़ाइलें  सहेजता\n है।"),
            ("par_3", "Not translated."),
            ("par_4", "दो बार"),
            ("par_9", "केवल हिंदी"),
        ])
        .as_bytes(),
    );
    write(
        &hi.join("text/only-hi.html"),
        page(&[("par_1", "अकेला")]).as_bytes(),
    );
    let b = ood::read_help(&en, &hi).unwrap();
    assert_eq!(
        pairs(&b),
        [
            ("Load & save", "लोड और सहेजें"),
            ("Saves files.", "फ़ाइलें सहेजता है।")
        ]
    );
    assert_eq!(
        counts(&b.counts),
        (
            1,
            6,
            2,
            vec![
                ("id missing in the English page", 1),
                ("id of a page missing in English", 1),
                ("id repeated a different number of times in English", 1),
                ("untranslated: the English text", 1),
            ]
        )
    );
    let shown = b.counts.to_string();
    assert!(
        shown.starts_with("1 files, 6 records: 2 pairs kept"),
        "{shown}"
    );
}

#[test]
fn interface_strings_lose_accelerators_and_repeats() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("LC_MESSAGES");
    let header = ("", "Content-Type: text/plain; charset=UTF-8\n");
    write(
        &dir.join("sw.mo"),
        &ood::mo::write_mo(&[header, ("ID1\u{4}~Open", "~খুলুন"), ("ID2\u{4}Close", "")]),
    );
    write(
        &dir.join("vcl.mo"),
        &ood::mo::write_mo(&[header, ("ID3\u{4}~Open", "খুলুন"), ("ID4\u{4}OK", "OK")]),
    );
    let b = ood::read_ui(&dir).unwrap();
    assert_eq!(b.pairs.len(), 1);
    assert_eq!(
        (b.pairs[0].src.as_str(), b.pairs[0].tgt.as_str()),
        ("Open", "খুলুন")
    );
    assert_eq!(
        counts(&b.counts),
        (
            2,
            4,
            1,
            vec![
                ("empty side", 1),
                ("repeats a pair", 1),
                ("untranslated: the English text", 1),
            ]
        )
    );
    write(&dir.join("broken.mo"), b"\xde\x12\x04\x95\0\0");
    let e = ood::read_ui(&dir).unwrap_err().to_string();
    assert!(e.contains("broken.mo: "), "{e}");
}

#[test]
fn dictionary_entries_pair_headwords_with_their_senses() {
    let tmp = tempfile::tempdir().unwrap();
    let (index, body) = ood::dictd::write_dictd(&[
        ("00databaseinfo", "made up\n"),
        ("above", "above /əbˈʌv/ <adv>\n\njuu\n"),
        (
            "annoy",
            "annoy <VT>\n1. kuudhi~sana\n   \"an example\"\n2. kuchokesha\n",
        ),
    ]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&body).unwrap();
    let (ip, dp) = (tmp.path().join("d.index"), tmp.path().join("d.dict.dz"));
    write(&ip, index.as_bytes());
    write(&dp, &gz.finish().unwrap());
    let b = ood::read_freedict(&ip, &dp).unwrap();
    assert_eq!(
        pairs(&b),
        [("above", "juu"), ("annoy", "kuudhi sana; kuchokesha")]
    );
    assert_eq!(counts(&b.counts), (1, 2, 2, vec![]));
    write(&ip, b"above\tA\n");
    let e = ood::read_freedict(&ip, &dp).unwrap_err().to_string();
    assert!(e.starts_with(&format!("{}:1: ", ip.display())), "{e}");
}

#[test]
fn sources_name_their_languages_and_packages() {
    let help: OodSource = "libreoffice-help".parse().unwrap();
    let names: Vec<&str> = help
        .packages("hindi")
        .unwrap()
        .iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, ["libreoffice-help-en-us", "libreoffice-help-hi"]);
    let e = help.packages("swahili").unwrap_err().to_string();
    assert_eq!(
        e,
        "libreoffice-help has no \"swahili\" bitext (it has hindi)"
    );
    let e = "wikipedia".parse::<OodSource>().unwrap_err().to_string();
    assert!(
        e.contains("libreoffice-help, libreoffice-ui or freedict"),
        "{e}"
    );
    let e = help.read("hindi", &[]).unwrap_err().to_string();
    assert!(e.contains("reads 2 unpacked packages"), "{e}");
    let dict: OodSource = "freedict".parse().unwrap();
    assert_eq!(
        dict.packages("sw").unwrap()[0].name,
        "dict-freedict-eng-swh"
    );
}

#[test]
fn fetch_and_read_names_the_package_it_could_not_fetch() {
    let cache = tempfile::tempdir().unwrap();
    let from = tempfile::tempdir().unwrap();
    let fetcher = clir_data::fetch::Source::cache(cache.path()).with_files_from(Some(from.path()));
    let ui: OodSource = "libreoffice-ui".parse().unwrap();
    let e = ui.fetch_and_read("HI", &fetcher).unwrap_err().to_string();
    assert!(e.contains("libreoffice-l10n-hi"), "{e}");
    let e = ui
        .fetch_and_read("swahili", &fetcher)
        .unwrap_err()
        .to_string();
    assert!(e.contains("has no \"swahili\" bitext"), "{e}");
}
