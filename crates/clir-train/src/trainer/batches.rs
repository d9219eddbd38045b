//! The batch order: a pure function of the seed and the step (so a resumed run sees the same
//! batches), with length bucketing.

use clir_data::formats::BitextPair;
use clir_models::TextKind;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::config::TrainConfig;
use crate::error::Result;

use super::student::Student;

/// The pairs of each step: epoch `e` is a permutation seeded by `(seed, e)`, cut into full
/// batches (a trailing partial batch is left out of that epoch unless it is the only one).
/// With lengths and a pool of `p > 1` batches, each run of `p · batch` pairs of the permutation
/// is sorted by length (longest first, stable) before it is cut, and the epoch's batches are
/// then shuffled by a second seeded permutation: every epoch still uses the same pairs once.
#[derive(Debug, Clone)]
pub struct BatchOrder {
    pub(crate) n: usize,
    pub(crate) batch: usize,
    pub(crate) seed: u64,
    pub(crate) lengths: Option<Vec<usize>>,
    pub(crate) pool: usize,
}

impl BatchOrder {
    /// A run's bitext order: batches of `optim.batch_size` seeded by `run.seed`, bucketed by
    /// the student's token count of each target-language sentence (`optim.length_pool`).
    pub(crate) fn by_length(
        cfg: &TrainConfig,
        pairs: &[BitextPair],
        student: &Student,
        side: TextKind,
    ) -> Result<Self> {
        let prefix = student.config.prefix(side);
        let lengths = pairs
            .iter()
            .map(|p| {
                Ok(student
                    .tokenizer
                    .encode(&format!("{prefix}{}", p.tgt))?
                    .len())
            })
            .collect::<Result<Vec<usize>>>()?;
        Ok(BatchOrder::bucketed(
            lengths,
            cfg.optim.batch_size,
            cfg.run.seed,
            cfg.optim.length_pool,
        ))
    }

    /// Plain random batches of `n` pairs.
    pub fn new(n: usize, batch: usize, seed: u64) -> Self {
        BatchOrder {
            n,
            batch: batch.min(n).max(1),
            seed,
            lengths: None,
            pool: 1,
        }
    }

    /// Length-bucketed batches of the pairs with these token counts.
    pub fn bucketed(lengths: Vec<usize>, batch: usize, seed: u64, pool: usize) -> Self {
        BatchOrder {
            pool: pool.max(1),
            ..BatchOrder::new(lengths.len(), batch, seed)
        }
        .with_lengths(lengths)
    }

    pub(crate) fn with_lengths(mut self, lengths: Vec<usize>) -> Self {
        self.lengths = Some(lengths);
        self
    }

    pub fn batches_per_epoch(&self) -> usize {
        (self.n / self.batch).max(1)
    }

    pub(crate) fn epoch_seed(&self, epoch: usize) -> u64 {
        self.seed
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(epoch as u64)
    }

    /// Pair indices of optimiser step `step` (0-based).
    pub fn batch(&self, step: usize) -> Vec<usize> {
        let per = self.batches_per_epoch();
        let (epoch, k) = (step / per, step % per);
        let mut idx: Vec<usize> = (0..self.n).collect();
        idx.shuffle(&mut ChaCha8Rng::seed_from_u64(self.epoch_seed(epoch)));
        let used = &mut idx[..per * self.batch];
        match &self.lengths {
            Some(len) if self.pool > 1 => {
                for window in used.chunks_mut(self.pool * self.batch) {
                    window.sort_by_key(|&i| std::cmp::Reverse(len[i]));
                }
                let mut batches: Vec<usize> = (0..per).collect();
                let seed = self.epoch_seed(epoch) ^ 0xB5AD_4ECE_DA1C_E2A9;
                batches.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
                let b = batches[k];
                used[b * self.batch..(b + 1) * self.batch].to_vec()
            }
            _ => used[k * self.batch..(k + 1) * self.batch].to_vec(),
        }
    }
}
