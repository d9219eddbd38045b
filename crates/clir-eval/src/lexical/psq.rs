//! Probabilistic structured queries (PSQ; Darwish & Oard 2003) with translation probabilities
//! learned by IBM Model 1 (Brown et al. 1993) from a sentence-aligned bitext.
//!
//! Words are those of [`crate::lexical::bm25::tokenize`] (Unicode words, lower-cased) on both sides.
//!
//! **Model 1.** A target-language sentence `f_1..f_m` is generated from an English sentence
//! `e_1..e_l` plus, when [`Model1Config::null_word`] is set, an empty word `e_0` = NULL (for
//! target words without an English source): `P(f | e) ∝ Π_j Σ_i t(f_j | e_i)`. EM starts from
//! `t(f | e) = 1/|F(e)|`, `F(e)` the target words co-occurring with `e` in some pair (every
//! target word for NULL), and repeats
//!
//! * E: `a(i, j) = t(f_j | e_i) / Σ_i' t(f_j | e_i')`, the posterior that `f_j` came from `e_i`;
//! * M: `t(f | e) = c(f | e) / Σ_f' c(f' | e)` with `c(f | e) = Σ_pairs Σ_{i: e_i = e}
//!   Σ_{j: f_j = f} a(i, j)`.
//!
//! Every position counts, so a repeated word counts once per occurrence. There is no randomness
//! (nothing to seed), and the sums run in a fixed order whatever the number of threads: the
//! table is bit-identical on 1 or many threads. Only co-occurring `(e, f)` are stored (CSR).
//!
//! **PSQ-BM25.** An English query term `e` becomes the weighted bag of its translations:
//! `tf_e(D) = Σ_f p(f|e)·tf(f, D)`, `df_e = Σ_f p(f|e)·df(f)`, and `e` scores
//! `idf(df_e) · tf_e(D)·(k1 + 1) / (tf_e(D) + k1·(1 − b + b·|D|/avgdl))` with the `idf`, `k1`
//! and `b` of [`crate::lexical::bm25`]. A query scores `Σ_{e ∈ Q}` of its terms (a repeated term counts
//! every time).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use rayon::prelude::*;
use serde::Serialize;

use crate::error::{EvalError, Result};
use crate::lexical::bm25::{Bm25Index, Bm25Params, tokenize};
use crate::progress;
use crate::topk::{Hit, TopK};

/// The English word of the NULL row in TSV files and [`TranslationTable::entries`]
/// (never a token: `<` and `>` are not word characters).
pub const NULL_WORD: &str = "<NULL>";

/// IBM Model 1 settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Model1Config {
    /// EM iterations (default 5; 0 gives the uniform initial table).
    pub iterations: usize,
    /// Add an English NULL word to every pair (default true).
    pub null_word: bool,
}

impl Default for Model1Config {
    fn default() -> Self {
        Model1Config {
            iterations: 5,
            null_word: true,
        }
    }
}

/// Per-English-word pruning of a translation table.
///
/// Each row is first normalised to sum to 1, then walked by probability descending; an entry
/// is kept while `p ≥ min_prob`, fewer than `max_per_word` are kept and the kept mass is still
/// below `cumulative` (the entry that reaches it is kept, as in Patapsco's PSQ). The kept entries
/// are renormalised to sum to 1; a row that keeps nothing disappears.
#[derive(Debug, Clone, PartialEq)]
pub struct PruneConfig {
    /// Smallest kept probability (default 0.001).
    pub min_prob: f64,
    /// Most translations kept per English word (default 20).
    pub max_per_word: usize,
    /// Cumulative mass at which a row stops (default 0.97, Patapsco's; ≥ 1 disables the cut).
    pub cumulative: f64,
}

impl Default for PruneConfig {
    fn default() -> Self {
        PruneConfig {
            min_prob: 0.001,
            max_per_word: 20,
            cumulative: 0.97,
        }
    }
}

/// A table of translation probabilities `p(f | e)`: English word `e` → target-language word `f`.
///
/// Canonical form (so `==` compares contents): English and target words sorted, each row sorted
/// by probability descending, ties by target word; rows without entries are dropped.
#[derive(Debug, Clone, PartialEq)]
pub struct TranslationTable {
    /// English words, sorted; row `i` translates `english[i]`.
    english: Vec<String>,
    english_ids: HashMap<String, u32>,
    /// Target words used by some row, sorted.
    target: Vec<String>,
    /// Row `i` is `targets[offsets[i]..offsets[i + 1]]` with `probs` alongside.
    offsets: Vec<usize>,
    targets: Vec<u32>,
    probs: Vec<f64>,
    /// The NULL word's row, when there is one.
    null: Option<Vec<(u32, f64)>>,
}

impl TranslationTable {
    /// Learns `p(f | e)` with IBM Model 1 from `(English, target-language)` sentence pairs.
    ///
    /// An empty bitext, or a pair with a side without words, is an error naming the pair index.
    pub fn learn_model1<S: AsRef<str> + Sync>(
        pairs: &[(S, S)],
        cfg: &Model1Config,
        show_progress: bool,
    ) -> Result<TranslationTable> {
        if pairs.is_empty() {
            return Err(EvalError::Invalid("empty bitext: no sentence pairs".into()));
        }
        if u32::try_from(pairs.len()).is_err() {
            return Err(EvalError::Invalid("more than 2^32 sentence pairs".into()));
        }
        let tokenized: Vec<(Vec<String>, Vec<String>)> = pairs
            .par_iter()
            .map(|(e, f)| (tokenize(e.as_ref()), tokenize(f.as_ref())))
            .collect();
        for (i, (e, f)) in tokenized.iter().enumerate() {
            for (side, words) in [("English", e), ("target-language", f)] {
                if words.is_empty() {
                    return Err(EvalError::Invalid(format!(
                        "bitext pair {i}: the {side} side has no words"
                    )));
                }
            }
        }
        let corpus = Corpus::new(tokenized)?;
        let (t, t_null) = corpus.em(cfg, show_progress);
        let (e_words, f_words, row_off, row_f) = corpus.into_rows();
        let rows: Vec<Vec<(u32, f64)>> = row_off
            .windows(2)
            .map(|w| (w[0]..w[1]).map(|k| (row_f[k], t[k])).collect())
            .collect();
        drop((t, row_f));
        let null = t_null.map(|tn| (0..tn.len() as u32).zip(tn).collect());
        Ok(Self::assemble(e_words, f_words, rows, null))
    }

    /// A table from `(English word, target word, p)` entries (`e` = [`NULL_WORD`] for the NULL
    /// row). Rows need not sum to 1. Errors name the entry (0-based): a non-finite or negative
    /// `p`, an empty word or one with whitespace, the same `(e, f)` twice.
    pub fn from_entries<E, F, I>(entries: I) -> Result<TranslationTable>
    where
        E: AsRef<str>,
        F: AsRef<str>,
        I: IntoIterator<Item = (E, F, f64)>,
    {
        Self::collect_entries(entries)
            .map_err(|(n, msg)| EvalError::Invalid(format!("translation entry {n}: {msg}")))
    }

    /// [`from_entries`](Self::from_entries), with errors as (entry index, message).
    fn collect_entries<E, F, I>(
        entries: I,
    ) -> std::result::Result<TranslationTable, (usize, String)>
    where
        E: AsRef<str>,
        F: AsRef<str>,
        I: IntoIterator<Item = (E, F, f64)>,
    {
        let mut e_ids: HashMap<String, u32> = HashMap::new();
        let mut f_ids: HashMap<String, u32> = HashMap::new();
        let (mut e_words, mut f_words) = (Vec::new(), Vec::new());
        let mut rows: Vec<Vec<(u32, f64)>> = Vec::new();
        let mut null: Option<Vec<(u32, f64)>> = None;
        // Entries seen per (e, f), to reject duplicates without scanning rows.
        let mut seen: std::collections::HashSet<(u32, u32)> = Default::default();
        for (n, (e, f, p)) in entries.into_iter().enumerate() {
            let (e, f) = (e.as_ref(), f.as_ref());
            for w in [e, f] {
                if w.is_empty() || w.contains(char::is_whitespace) {
                    return Err((n, format!("word '{w}' is empty or has whitespace")));
                }
            }
            if !(p.is_finite() && p >= 0.0) {
                return Err((n, format!("p({f} | {e}) = {p} is not a probability")));
            }
            let fid = *f_ids.entry(f.to_string()).or_insert_with(|| {
                f_words.push(f.to_string());
                f_words.len() as u32 - 1
            });
            let (eid, row) = if e == NULL_WORD {
                (u32::MAX, null.get_or_insert_with(Vec::new))
            } else {
                let eid = *e_ids.entry(e.to_string()).or_insert_with(|| {
                    e_words.push(e.to_string());
                    rows.push(Vec::new());
                    e_words.len() as u32 - 1
                });
                (eid, &mut rows[eid as usize])
            };
            if !seen.insert((eid, fid)) {
                return Err((n, format!("p({f} | {e}) given twice")));
            }
            row.push((fid, p));
        }
        Ok(Self::assemble(e_words, f_words, rows, null))
    }

    /// Canonical table from rows over the vocabularies `english` (one row each) and `target`.
    fn assemble(
        english: Vec<String>,
        target: Vec<String>,
        mut rows: Vec<Vec<(u32, f64)>>,
        mut null: Option<Vec<(u32, f64)>>,
    ) -> TranslationTable {
        let mut used = vec![false; target.len()];
        for &(f, _) in rows.iter().flatten().chain(null.iter().flatten()) {
            used[f as usize] = true;
        }
        let mut kept: Vec<u32> = (0..target.len() as u32)
            .filter(|&f| used[f as usize])
            .collect();
        kept.par_sort_unstable_by(|&a, &b| target[a as usize].cmp(&target[b as usize]));
        let mut remap = vec![u32::MAX; target.len()];
        for (new, &old) in kept.iter().enumerate() {
            remap[old as usize] = new as u32;
        }
        let canon = |row: &mut Vec<(u32, f64)>| {
            for e in row.iter_mut() {
                e.0 = remap[e.0 as usize];
            }
            row.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        };
        rows.par_iter_mut().for_each(canon);
        if let Some(r) = null.as_mut() {
            canon(r);
        }
        let null = null.filter(|r| !r.is_empty());
        let mut order: Vec<usize> = (0..rows.len()).filter(|&i| !rows[i].is_empty()).collect();
        order.par_sort_unstable_by(|&a, &b| english[a].cmp(&english[b]));
        let nnz: usize = order.iter().map(|&i| rows[i].len()).sum();
        let mut offsets = Vec::with_capacity(order.len() + 1);
        let (mut targets, mut probs) = (Vec::with_capacity(nnz), Vec::with_capacity(nnz));
        offsets.push(0);
        for &i in &order {
            for &(f, p) in &rows[i] {
                targets.push(f);
                probs.push(p);
            }
            offsets.push(targets.len());
        }
        let english: Vec<String> = order.iter().map(|&i| english[i].clone()).collect();
        let english_ids = (0..english.len() as u32)
            .map(|i| (english[i as usize].clone(), i))
            .collect();
        let target = kept.iter().map(|&f| target[f as usize].clone()).collect();
        TranslationTable {
            english,
            english_ids,
            target,
            offsets,
            targets,
            probs,
            null,
        }
    }

    /// English words with at least one translation, sorted.
    pub fn english_words(&self) -> &[String] {
        &self.english
    }

    /// Number of English words with at least one translation (NULL not counted).
    pub fn num_english_words(&self) -> usize {
        self.english.len()
    }

    /// Number of distinct target words in the table (NULL row included).
    pub fn num_target_words(&self) -> usize {
        self.target.len()
    }

    /// Number of `(e, f)` entries of the English rows (NULL row not counted).
    pub fn num_entries(&self) -> usize {
        self.targets.len()
    }

    /// Whether the table has a NULL row.
    pub fn has_null(&self) -> bool {
        self.null.is_some()
    }

    /// Row of an English word: target ids and probabilities.
    fn row(&self, english_word: &str) -> Option<(&[u32], &[f64])> {
        let i = *self.english_ids.get(english_word)? as usize;
        let r = self.offsets[i]..self.offsets[i + 1];
        Some((&self.targets[r.clone()], &self.probs[r]))
    }

    /// `(f, p(f | e))` for English word `e`, probability descending, ties by `f`; empty for a
    /// word without translations.
    pub fn translations(&self, english_word: &str) -> Vec<(&str, f64)> {
        self.row(english_word)
            .map(|(fs, ps)| {
                fs.iter()
                    .zip(ps)
                    .map(|(&f, &p)| (self.target[f as usize].as_str(), p))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `(f, p(f | NULL))`, in the order of [`translations`](Self::translations); empty without a
    /// NULL row.
    pub fn null_translations(&self) -> Vec<(&str, f64)> {
        self.null
            .iter()
            .flatten()
            .map(|&(f, p)| (self.target[f as usize].as_str(), p))
            .collect()
    }

    /// `p(f | e)`, 0 when the table has no such entry.
    pub fn probability(&self, english_word: &str, target_word: &str) -> f64 {
        self.translations(english_word)
            .into_iter()
            .find(|&(f, _)| f == target_word)
            .map_or(0.0, |(_, p)| p)
    }

    /// Every entry `(e, f, p(f | e))`: English rows in word order, then the NULL row as
    /// `e` = [`NULL_WORD`].
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str, f64)> + '_ {
        let rows = (0..self.english.len()).flat_map(move |i| {
            (self.offsets[i]..self.offsets[i + 1]).map(move |k| {
                (
                    self.english[i].as_str(),
                    self.target[self.targets[k] as usize].as_str(),
                    self.probs[k],
                )
            })
        });
        let null = self
            .null
            .iter()
            .flatten()
            .map(|&(f, p)| (NULL_WORD, self.target[f as usize].as_str(), p));
        rows.chain(null)
    }

    /// The table with each row pruned as [`PruneConfig`] says and renormalised to sum to 1.
    pub fn pruned(&self, cfg: &PruneConfig) -> TranslationTable {
        let prune = |fs: &[u32], ps: &[f64]| -> Vec<(u32, f64)> {
            let total: f64 = ps.iter().sum();
            let mut kept = Vec::new();
            if total <= 0.0 || !total.is_finite() {
                return kept;
            }
            let mut mass = 0.0;
            for (&f, &p) in fs.iter().zip(ps) {
                let q = p / total;
                if kept.len() >= cfg.max_per_word
                    || mass >= cfg.cumulative
                    || !(q >= cfg.min_prob && q > 0.0)
                {
                    break;
                }
                kept.push((f, q));
                mass += q;
            }
            let sum: f64 = kept.iter().map(|e| e.1).sum();
            for e in &mut kept {
                e.1 /= sum;
            }
            kept
        };
        let rows: Vec<Vec<(u32, f64)>> = (0..self.english.len())
            .into_par_iter()
            .map(|i| {
                let r = self.offsets[i]..self.offsets[i + 1];
                prune(&self.targets[r.clone()], &self.probs[r])
            })
            .collect();
        let null = self.null.as_ref().map(|row| {
            let (fs, ps): (Vec<u32>, Vec<f64>) = row.iter().copied().unzip();
            prune(&fs, &ps)
        });
        Self::assemble(self.english.clone(), self.target.clone(), rows, null)
    }

    /// Writes `e<TAB>f<TAB>p` lines in [`entries`](Self::entries) order (shortest round-trip
    /// numbers).
    pub fn write_tsv<W: Write>(&self, mut w: W) -> std::io::Result<()> {
        for (e, f, p) in self.entries() {
            if p != 0.0 && p.abs() < 1e-4 {
                writeln!(w, "{e}\t{f}\t{p:e}")?;
            } else {
                writeln!(w, "{e}\t{f}\t{p}")?;
            }
        }
        w.flush()
    }

    /// Writes the table to a TSV file (see [`write_tsv`](Self::write_tsv)).
    pub fn to_tsv(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let file = std::fs::File::create(path).map_err(|e| EvalError::io(path, e))?;
        self.write_tsv(BufWriter::new(file))
            .map_err(|e| EvalError::io(path, e))
    }

    /// Reads a table written by [`to_tsv`](Self::to_tsv); errors name the file and line.
    pub fn from_tsv(path: impl AsRef<Path>) -> Result<TranslationTable> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|e| EvalError::io(path, e))?;
        let mut entries = Vec::new();
        for (n, line) in BufReader::new(file).lines().enumerate() {
            let line = line.map_err(|e| EvalError::io(path, e))?;
            let fields: Vec<&str> = line.split('\t').collect();
            let [e, f, p] = fields[..] else {
                return Err(EvalError::parse(
                    &name,
                    n + 1,
                    format!("expected 3 tab-separated fields, found {}", fields.len()),
                ));
            };
            let p: f64 = p
                .parse()
                .map_err(|_| EvalError::parse(&name, n + 1, format!("bad probability '{p}'")))?;
            entries.push((e.to_string(), f.to_string(), p));
        }
        Self::collect_entries(entries).map_err(|(n, msg)| EvalError::parse(&name, n + 1, msg))
    }
}

/// The bitext as word ids, with the sparse co-occurrence structure EM works on.
struct Corpus {
    e_words: Vec<String>,
    f_words: Vec<String>,
    /// Pair `p`'s distinct English words are `e_ids[e_off[p]..e_off[p + 1]]` (ascending) with
    /// their counts in the pair in `e_mult`; the same for the target side.
    e_off: Vec<usize>,
    e_ids: Vec<u32>,
    e_mult: Vec<f64>,
    f_off: Vec<usize>,
    f_ids: Vec<u32>,
    f_mult: Vec<f64>,
    /// CSR over co-occurring `(e, f)`: row `e` is `row_f[row_off[e]..row_off[e + 1]]`, ascending.
    row_off: Vec<usize>,
    row_f: Vec<u32>,
    /// Row `e`'s occurrences `(pair, i)` (`e` is the pair's `i`-th distinct English word), in
    /// pair order: `occ[occ_off[e]..occ_off[e + 1]]`.
    occ_off: Vec<usize>,
    occ: Vec<(u32, u32)>,
    /// For occurrence `(p, i)` of row `e`, `grid[cell_off[e_off[p] + i] + j]` is the position of
    /// `(e, f_j)` within row `e`, for every distinct target word `f_j` of pair `p`. Each row's
    /// cells are contiguous (`grid_off[e]..grid_off[e + 1]`), in occurrence order.
    cell_off: Vec<usize>,
    grid_off: Vec<usize>,
    grid: Vec<u32>,
}

/// Distinct ids (ascending) with their counts.
type Runs = Vec<(u32, f64)>;

/// Distinct ids of `ids` (ascending) with their counts.
fn runs(mut ids: Vec<u32>) -> Runs {
    ids.sort_unstable();
    let mut out: Vec<(u32, f64)> = Vec::new();
    for id in ids {
        match out.last_mut() {
            Some((last, n)) if *last == id => *n += 1.0,
            _ => out.push((id, 1.0)),
        }
    }
    out
}

/// Splits `data` into consecutive slices at `offsets` (`offsets[0] = 0`, last = `data.len()`).
fn split_at_offsets<'a, T>(mut data: &'a mut [T], offsets: &[usize]) -> Vec<&'a mut [T]> {
    let mut out = Vec::with_capacity(offsets.len().saturating_sub(1));
    for w in offsets.windows(2) {
        let (head, tail) = std::mem::take(&mut data).split_at_mut(w[1] - w[0]);
        out.push(head);
        data = tail;
    }
    out
}

/// Prefix sums `[0, n_0, n_0 + n_1, …]`.
fn offsets_of(lens: impl Iterator<Item = usize>) -> Vec<usize> {
    let mut off = vec![0];
    for n in lens {
        off.push(off[off.len() - 1] + n);
    }
    off
}

/// Word ids in order of first appearance, with the words themselves.
#[derive(Default)]
struct Vocabulary {
    ids: HashMap<String, u32>,
    words: Vec<String>,
}

impl Vocabulary {
    fn intern(&mut self, w: String) -> u32 {
        if let Some(&id) = self.ids.get(&w) {
            return id;
        }
        let id = self.words.len() as u32;
        self.words.push(w.clone());
        self.ids.insert(w, id);
        id
    }
}

/// One pair's English and target word ids.
type IdPair = (Vec<u32>, Vec<u32>);

/// The pairs as id sequences, and the two sides' words.
fn intern_pairs(
    tokenized: Vec<(Vec<String>, Vec<String>)>,
) -> Result<(Vec<String>, Vec<String>, Vec<IdPair>)> {
    let (mut e_vocab, mut f_vocab) = (Vocabulary::default(), Vocabulary::default());
    let ids = tokenized
        .into_iter()
        .map(|(e, f)| {
            let e = e.into_iter().map(|w| e_vocab.intern(w)).collect();
            let f = f.into_iter().map(|w| f_vocab.intern(w)).collect();
            (e, f)
        })
        .collect();
    if u32::try_from(e_vocab.words.len().max(f_vocab.words.len())).is_err() {
        return Err(EvalError::Invalid("more than 2^32 distinct words".into()));
    }
    Ok((e_vocab.words, f_vocab.words, ids))
}

/// One side's distinct words per pair, packed: pair `p`'s are `ids[off[p]..off[p + 1]]`
/// with their counts in `mult`.
fn pack<'a>(sides: impl Iterator<Item = &'a Runs> + Clone) -> (Vec<usize>, Vec<u32>, Vec<f64>) {
    let off = offsets_of(sides.clone().map(Vec::len));
    let (ids, mult) = sides.flat_map(|r| r.iter().copied()).unzip();
    (off, ids, mult)
}

/// Occurrences of each English word, in pair order, as `(pair, position)`; word `e`'s are
/// `occ[occ_off[e]..occ_off[e + 1]]`.
fn occurrences(n_words: usize, e_ids: &[u32], e_off: &[usize]) -> (Vec<usize>, Vec<(u32, u32)>) {
    let mut counts = vec![0usize; n_words];
    for &e in e_ids {
        counts[e as usize] += 1;
    }
    let occ_off = offsets_of(counts.into_iter());
    let mut cursor = occ_off.clone();
    let mut occ = vec![(0u32, 0u32); e_ids.len()];
    for (p, w) in e_off.windows(2).enumerate() {
        for (i, &e) in e_ids[w[0]..w[1]].iter().enumerate() {
            occ[cursor[e as usize]] = (p as u32, i as u32);
            cursor[e as usize] += 1;
        }
    }
    (occ_off, occ)
}

/// Where each occurrence's grid cells start (`cell_off`, one cell per target word of its
/// pair) and where each English word's cells start (`grid_off`, with the total last).
fn grid_layout(
    occ_off: &[usize],
    occ: &[(u32, u32)],
    e_off: &[usize],
    f_off: &[usize],
) -> (Vec<usize>, Vec<usize>) {
    let mut cell_off = vec![0usize; occ.len()];
    let mut grid_off = Vec::with_capacity(occ_off.len());
    let mut next = 0;
    for w in occ_off.windows(2) {
        grid_off.push(next);
        for &(p, i) in &occ[w[0]..w[1]] {
            let p = p as usize;
            cell_off[e_off[p] + i as usize] = next;
            next += f_off[p + 1] - f_off[p];
        }
    }
    grid_off.push(next);
    (cell_off, grid_off)
}

/// Per English word (in parallel): its distinct co-occurring target words, ascending, and
/// in `grid` the position of each cell's word in that row. `pos` maps target id → row
/// position.
fn co_occurrence_rows(
    grid: &mut [u32],
    grid_off: &[usize],
    occ_off: &[usize],
    occ: &[(u32, u32)],
    f_off: &[usize],
    f_ids: &[u32],
    n_f: usize,
) -> Vec<Vec<u32>> {
    let targets = |p: u32| &f_ids[f_off[p as usize]..f_off[p as usize + 1]];
    split_at_offsets(grid, grid_off)
        .into_par_iter()
        .enumerate()
        .map_init(
            || vec![u32::MAX; n_f],
            |pos, (e, cells)| {
                let occs = &occ[occ_off[e]..occ_off[e + 1]];
                let mut row = Vec::new();
                for &(p, _) in occs {
                    for &f in targets(p) {
                        if pos[f as usize] == u32::MAX {
                            pos[f as usize] = 0;
                            row.push(f);
                        }
                    }
                }
                row.sort_unstable();
                for (k, &f) in row.iter().enumerate() {
                    pos[f as usize] = k as u32;
                }
                let mut at = 0;
                for &(p, _) in occs {
                    for &f in targets(p) {
                        cells[at] = pos[f as usize];
                        at += 1;
                    }
                }
                for &f in &row {
                    pos[f as usize] = u32::MAX;
                }
                row
            },
        )
        .collect()
}

impl Corpus {
    fn new(tokenized: Vec<(Vec<String>, Vec<String>)>) -> Result<Corpus> {
        let (e_words, f_words, ids) = intern_pairs(tokenized)?;
        let distinct: Vec<(Runs, Runs)> = ids
            .into_par_iter()
            .map(|(e, f)| (runs(e), runs(f)))
            .collect();
        let (e_off, e_ids, e_mult) = pack(distinct.iter().map(|(e, _)| e));
        let (f_off, f_ids, f_mult) = pack(distinct.iter().map(|(_, f)| f));
        drop(distinct);
        let (occ_off, occ) = occurrences(e_words.len(), &e_ids, &e_off);
        let (cell_off, grid_off) = grid_layout(&occ_off, &occ, &e_off, &f_off);
        let mut grid = vec![0u32; grid_off[grid_off.len() - 1]];
        let rows = co_occurrence_rows(
            &mut grid,
            &grid_off,
            &occ_off,
            &occ,
            &f_off,
            &f_ids,
            f_words.len(),
        );
        let row_off = offsets_of(rows.iter().map(Vec::len));
        let row_f: Vec<u32> = rows.into_iter().flatten().collect();
        Ok(Corpus {
            e_words,
            f_words,
            e_off,
            e_ids,
            e_mult,
            f_off,
            f_ids,
            f_mult,
            row_off,
            row_f,
            occ_off,
            occ,
            cell_off,
            grid_off,
            grid,
        })
    }

    /// The vocabularies and the CSR rows; everything else is freed.
    fn into_rows(self) -> (Vec<String>, Vec<String>, Vec<usize>, Vec<u32>) {
        (self.e_words, self.f_words, self.row_off, self.row_f)
    }

    /// Model 1 EM: `t` over the CSR positions and, with a NULL word, `t(f | NULL)` by target id.
    fn em(&self, cfg: &Model1Config, show_progress: bool) -> (Vec<f64>, Option<Vec<f64>>) {
        let n_pairs = self.e_off.len() - 1;
        let mut t = vec![0f64; self.row_f.len()];
        for (e, row) in split_at_offsets(&mut t, &self.row_off)
            .into_iter()
            .enumerate()
        {
            let init = 1.0 / (self.row_off[e + 1] - self.row_off[e]) as f64;
            row.fill(init);
        }
        let n_f = self.f_words.len();
        let mut t_null = cfg.null_word.then(|| vec![1.0 / n_f as f64; n_f]);
        // w[f_off[p] + j] = n_j / Σ_i' t(f_j | e_i'): count of f_j in pair p over its E-step
        // denominator, so that c(f_j | e_i) gains n_i·t(f_j | e_i)·w.
        let mut w = vec![0f64; self.f_ids.len()];
        let bar = progress::bar(cfg.iterations as u64, "model1", show_progress);
        for _ in 0..cfg.iterations {
            // E-step denominators, per pair.
            split_at_offsets(&mut w, &self.f_off)
                .into_par_iter()
                .enumerate()
                .for_each(|(p, wp)| {
                    let fr = self.f_off[p]..self.f_off[p + 1];
                    let uf = fr.len();
                    wp.fill(0.0);
                    for q in self.e_off[p]..self.e_off[p + 1] {
                        let (m, row) = (self.e_mult[q], self.row_off[self.e_ids[q] as usize]);
                        let cells = &self.grid[self.cell_off[q]..][..uf];
                        for (den, &c) in wp.iter_mut().zip(cells) {
                            *den += m * t[row + c as usize];
                        }
                    }
                    if let Some(tn) = &t_null {
                        for (den, &f) in wp.iter_mut().zip(&self.f_ids[fr.clone()]) {
                            *den += tn[f as usize];
                        }
                    }
                    for (den, &n) in wp.iter_mut().zip(&self.f_mult[fr]) {
                        *den = if *den > 0.0 { n / *den } else { 0.0 };
                    }
                });
            // Counts and M-step, per English row (each row reads and writes only its own t).
            split_at_offsets(&mut t, &self.row_off)
                .into_par_iter()
                .enumerate()
                .for_each_init(Vec::new, |c: &mut Vec<f64>, (e, row)| {
                    c.clear();
                    c.resize(row.len(), 0.0);
                    let mut cells = &self.grid[self.grid_off[e]..self.grid_off[e + 1]];
                    for &(p, i) in &self.occ[self.occ_off[e]..self.occ_off[e + 1]] {
                        let (p, i) = (p as usize, i as usize);
                        let m = self.e_mult[self.e_off[p] + i];
                        let wp = &w[self.f_off[p]..self.f_off[p + 1]];
                        let (mine, rest) = cells.split_at(wp.len());
                        for (&k, &wj) in mine.iter().zip(wp) {
                            let k = k as usize;
                            c[k] += m * row[k] * wj;
                        }
                        cells = rest;
                    }
                    let total: f64 = c.iter().sum();
                    if total > 0.0 {
                        for (tk, &ck) in row.iter_mut().zip(c.iter()) {
                            *tk = ck / total;
                        }
                    }
                });
            if let Some(tn) = t_null.as_mut() {
                let mut c = vec![0f64; n_f];
                for p in 0..n_pairs {
                    let fr = self.f_off[p]..self.f_off[p + 1];
                    for (&f, &wj) in self.f_ids[fr.clone()].iter().zip(&w[fr]) {
                        c[f as usize] += tn[f as usize] * wj;
                    }
                }
                let total: f64 = c.iter().sum();
                if total > 0.0 {
                    for (tk, ck) in tn.iter_mut().zip(c) {
                        *tk = ck / total;
                    }
                }
            }
            bar.inc(1);
        }
        bar.finish_and_clear();
        (t, t_null)
    }
}

/// What [`PsqIndex::search`] could not translate.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PsqReport {
    /// Queries searched.
    pub queries: usize,
    /// Query word occurrences.
    pub query_terms: usize,
    /// Query word occurrences without a translation (`p > 0`) that occurs in the collection.
    pub untranslated_terms: usize,
    /// Queries none of whose words could be translated: their rankings are empty.
    pub untranslatable_qids: Vec<String>,
}

/// A query word resolved against a table and an index.
struct QueryTerm {
    idf: f32,
    /// `(index term, p(f | e))` for the translations that occur in the collection.
    postings: Vec<(u32, f64)>,
}

/// Per-thread buffers of a PSQ search.
struct Scratch {
    acc: Vec<f32>,
    tf: Vec<f64>,
    touched: Vec<u32>,
}

/// PSQ-BM25 retrieval of English queries over target-language documents.
#[derive(Debug, Clone)]
pub struct PsqIndex {
    index: Bm25Index,
}

impl PsqIndex {
    /// Indexes target-language `docs` (as [`Bm25Index::build`]; `ids` name them in errors).
    pub fn build<S: AsRef<str> + Sync>(
        docs: &[S],
        ids: &[String],
        params: Bm25Params,
    ) -> Result<Self> {
        Ok(PsqIndex {
            index: Bm25Index::build(docs, ids, params)?,
        })
    }

    /// PSQ over an existing BM25 index.
    pub fn from_bm25(index: Bm25Index) -> Self {
        PsqIndex { index }
    }

    /// The underlying BM25 index.
    pub fn bm25(&self) -> &Bm25Index {
        &self.index
    }

    /// Number of indexed documents.
    pub fn num_docs(&self) -> usize {
        self.index.num_docs()
    }

    fn resolve(&self, table: &TranslationTable, word: &str) -> Option<QueryTerm> {
        let (fs, ps) = table.row(word)?;
        let mut postings = Vec::new();
        let mut df = 0f64;
        for (&f, &p) in fs.iter().zip(ps) {
            if p > 0.0
                && let Some(id) = self.index.term_id(&table.target[f as usize])
            {
                df += p * self.index.postings(id).len() as f64;
                postings.push((id, p));
            }
        }
        (!postings.is_empty()).then(|| QueryTerm {
            idf: self.index.idf_weight(df as f32),
            postings,
        })
    }

    /// Top-k documents per English query by PSQ-BM25 (score descending, ties by index; only
    /// scores > 0), and a report of what could not be translated. A query with no translatable
    /// word gets an empty ranking and is listed in the report; a query without any word is an
    /// error (as in [`Bm25Index::search`]).
    pub fn search<S: AsRef<str> + Sync>(
        &self,
        table: &TranslationTable,
        queries: &[S],
        qids: &[String],
        k: usize,
        show_progress: bool,
    ) -> Result<(Vec<Vec<Hit>>, PsqReport)> {
        let toks = crate::lexical::bm25::tokenize_queries(queries, qids, k)?;
        let mut terms: HashMap<&str, Option<QueryTerm>> = HashMap::new();
        let mut report = PsqReport {
            queries: queries.len(),
            ..PsqReport::default()
        };
        for t in toks.iter().flatten() {
            let term = terms
                .entry(t.as_str())
                .or_insert_with(|| self.resolve(table, t));
            report.query_terms += 1;
            report.untranslated_terms += usize::from(term.is_none());
        }
        let n = self.num_docs();
        let bar = progress::bar(queries.len() as u64, "psq", show_progress);
        let ranked: Vec<Option<Vec<Hit>>> = toks
            .par_iter()
            .map_init(
                || Scratch {
                    acc: vec![0f32; n],
                    tf: vec![0f64; n],
                    touched: Vec::new(),
                },
                |s, q| {
                    let resolved: Vec<&QueryTerm> = q
                        .iter()
                        .filter_map(|t| terms[t.as_str()].as_ref())
                        .collect();
                    let out = (!resolved.is_empty()).then(|| self.score_into(&resolved, s, k));
                    bar.inc(1);
                    out
                },
            )
            .collect();
        bar.finish_and_clear();
        let mut hits = Vec::with_capacity(ranked.len());
        for (i, r) in ranked.into_iter().enumerate() {
            match r {
                Some(h) => hits.push(h),
                None => {
                    report.untranslatable_qids.push(qids[i].clone());
                    hits.push(Vec::new());
                }
            }
        }
        Ok((hits, report))
    }

    /// PSQ-BM25 scores of one query (its resolved words in query order) and their top k.
    fn score_into(&self, terms: &[&QueryTerm], s: &mut Scratch, k: usize) -> Vec<Hit> {
        s.acc.fill(0.0);
        for term in terms {
            for &(id, p) in &term.postings {
                for &(d, tf) in self.index.postings(id) {
                    let slot = &mut s.tf[d as usize];
                    if *slot == 0.0 {
                        s.touched.push(d);
                    }
                    *slot += p * f64::from(tf);
                }
            }
            for &d in &s.touched {
                let d = d as usize;
                let tf_e = std::mem::take(&mut s.tf[d]) as f32;
                s.acc[d] += self.index.term_score(term.idf, tf_e, d);
            }
            s.touched.clear();
        }
        let mut top = TopK::new(k);
        for (d, &score) in s.acc.iter().enumerate() {
            if score > 0.0 {
                top.push(d, score);
            }
        }
        top.into_sorted()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_count_repeats() {
        assert_eq!(runs(vec![3, 1, 3, 3]), [(1, 1.0), (3, 3.0)]);
    }

    #[test]
    fn one_pair_without_null_splits_evenly_then_stays() {
        // One pair "a b" / "x y": every t(f | e) stays 1/2 (the posterior is symmetric).
        let t = TranslationTable::learn_model1(
            &[("a b", "x y")],
            &Model1Config {
                iterations: 3,
                null_word: false,
            },
            false,
        )
        .unwrap();
        for (_, _, p) in t.entries() {
            assert_eq!(p, 0.5);
        }
        assert_eq!(t.num_entries(), 4);
        assert!(!t.has_null());
    }

    #[test]
    fn first_iteration_matches_the_equations_by_hand() {
        // Pairs (a | x), (a b | x y), no NULL. Init: t(x|a) = t(y|a) = 1/2, t(x|b) = t(y|b) = 1/2.
        // Pair 1: x from a only → c(x|a) += 1. Pair 2: each f splits 1/2–1/2 between a and b.
        // c(x|a) = 1.5, c(y|a) = 0.5 → t(x|a) = 0.75; c(x|b) = c(y|b) = 0.5 → t = 0.5.
        let t = TranslationTable::learn_model1(
            &[("a", "x"), ("a b", "x y")],
            &Model1Config {
                iterations: 1,
                null_word: false,
            },
            false,
        )
        .unwrap();
        assert_eq!(t.translations("a"), [("x", 0.75), ("y", 0.25)]);
        assert_eq!(t.translations("b"), [("x", 0.5), ("y", 0.5)]);
        assert_eq!(t.probability("b", "z"), 0.0);
        assert!(t.translations("zz").is_empty());
    }

    #[test]
    fn split_at_offsets_covers_everything() {
        let mut v = [1, 2, 3, 4, 5];
        let parts = split_at_offsets(&mut v, &[0, 2, 2, 5]);
        assert_eq!(parts.len(), 3);
        assert_eq!(&*parts[0], &[1, 2]);
        assert!(parts[1].is_empty());
        assert_eq!(&*parts[2], &[3, 4, 5]);
    }
}
