//! The lexical cells of the matrix: PSQ (probabilistic structured queries over the pair's
//! documents, with an IBM Model 1 table learned from the pair's training bitext) and BM25
//! English→English. Both rank the set's documents for its English queries; a query that
//! retrieves nothing gets an empty ranking, which scores 0 and is counted.

use clir_eval::dense::hits_to_run;
use clir_eval::lexical::bm25::Bm25Params;
use clir_eval::lexical::psq::{PsqIndex, TranslationTable};
use clir_eval::trec::Run;
use clir_train::bitext::load_bitext;
use clir_train::config::{DataConfig, Method};
use clir_train::retrieval::{RUN_DEPTH, RetrievalSet};
use serde::{Deserialize, Serialize};

use anyhow::Context;

use super::{Cell, CellKind, Preset};

/// What a lexical cell reports besides its scores.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LexicalNote {
    /// Queries that retrieved nothing (no word in the index, or for PSQ no translatable word).
    pub empty_queries: usize,
    /// Bitext pairs the translation table was learned from (PSQ).
    pub bitext_pairs: Option<usize>,
    /// English words with translations after pruning (PSQ).
    pub table_words: Option<usize>,
    /// Query word occurrences without a translation found in the collection (PSQ).
    #[serde(default)]
    pub untranslated_terms: Option<usize>,
}

/// The run of a lexical cell (BM25 or PSQ); `None` for a dense one.
pub fn run_of(
    preset: &Preset,
    cell: &Cell,
    set: &RetrievalSet,
) -> anyhow::Result<Option<(Run, LexicalNote)>> {
    Ok(match &cell.kind {
        CellKind::Bm25En => Some(bm25_run(set)?),
        CellKind::Psq => Some(
            psq_run(preset, &cell.pair, set).with_context(|| format!("{}: PSQ", cell.name()))?,
        ),
        _ => None,
    })
}

/// BM25 of the set's queries over its documents.
pub fn bm25_run(set: &RetrievalSet) -> anyhow::Result<(Run, LexicalNote)> {
    let (run, empty_queries) = clir_eval::lexical::bm25::bm25_run(
        &set.queries,
        &set.qids,
        &set.docs,
        &set.docids,
        Bm25Params::default(),
        RUN_DEPTH,
        true,
    )?;
    Ok((
        run,
        LexicalNote {
            empty_queries,
            bitext_pairs: None,
            table_words: None,
            untranslated_terms: None,
        },
    ))
}

/// The bitext settings of a pair's PSQ table: the trained cells' source and books, with
/// `[psq] max_pairs` as the budget (absent: every pair); and the sampling seed.
pub fn psq_data(preset: &Preset, pair: &str) -> anyhow::Result<(DataConfig, u64)> {
    let cfg = preset.train_config(pair, Method::Optical, &preset.variant_list()[0], None)?;
    let mut data = cfg.data;
    data.max_pairs = preset.psq.max_pairs;
    Ok((data, cfg.run.seed))
}

/// PSQ over the set's (target-language) documents, with a Model 1 table learned from the
/// pair's Old Testament bitext ([`psq_data`]).
pub fn psq_run(
    preset: &Preset,
    pair: &str,
    set: &RetrievalSet,
) -> anyhow::Result<(Run, LexicalNote)> {
    let (data, seed) = psq_data(preset, pair)?;
    let bitext = load_bitext(&data, seed)?;
    let pairs: Vec<(&str, &str)> = bitext
        .iter()
        .map(|p| (p.src.as_str(), p.tgt.as_str()))
        .collect();
    let table = TranslationTable::learn_model1(&pairs, &preset.psq.model1(), true)?
        .pruned(&preset.psq.prune());
    let index = PsqIndex::build(&set.docs, &set.docids, Bm25Params::default())?;
    let (hits, report) = index.search(&table, &set.queries, &set.qids, RUN_DEPTH, true)?;
    let empty_queries = hits.iter().filter(|h| h.is_empty()).count();
    debug_assert!(empty_queries >= report.untranslatable_qids.len());
    let run = hits_to_run(&hits, &set.qids, &set.docids)?;
    Ok((
        run,
        LexicalNote {
            empty_queries,
            bitext_pairs: Some(pairs.len()),
            table_words: Some(table.num_english_words()),
            untranslated_terms: Some(report.untranslated_terms),
        },
    ))
}
