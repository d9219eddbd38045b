//! Bounded top-k selection shared by dense and lexical retrieval.
//!
//! Order: score descending, ties by document index ascending. Candidates must be offered in
//! increasing document index for the threshold shortcut to respect that tie order.

use std::cmp::Ordering;

/// One hit: document index and score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    pub doc: usize,
    pub score: f32,
}

/// Ranking order of hits: score descending, then document index ascending.
pub fn hit_order(a: &Hit, b: &Hit) -> Ordering {
    b.score.total_cmp(&a.score).then_with(|| a.doc.cmp(&b.doc))
}

/// Keeps the best `k` hits seen so far using a buffer of up to `2k` candidates that is pruned
/// with a linear-time selection when full; `threshold` is the k-th best score after a prune.
#[derive(Debug, Clone)]
pub struct TopK {
    k: usize,
    buf: Vec<Hit>,
    threshold: f32,
    pruned: bool,
}

impl TopK {
    /// An empty collector for the best `k` hits (`k > 0`).
    pub fn new(k: usize) -> Self {
        TopK {
            k,
            buf: Vec::with_capacity(2 * k),
            threshold: f32::NEG_INFINITY,
            pruned: false,
        }
    }

    /// Whether a score could enter the top k (cheap pre-check before `push`).
    #[inline(always)]
    pub fn admits(&self, score: f32) -> bool {
        !self.pruned || score > self.threshold
    }

    /// Offers a hit; documents must arrive in increasing index order.
    #[inline]
    pub fn push(&mut self, doc: usize, score: f32) {
        if !self.admits(score) {
            return;
        }
        self.buf.push(Hit { doc, score });
        if self.buf.len() >= 2 * self.k {
            self.prune();
        }
    }

    fn prune(&mut self) {
        if self.buf.len() > self.k {
            self.buf.select_nth_unstable_by(self.k - 1, hit_order);
            self.buf.truncate(self.k);
        }
        if self.buf.len() == self.k {
            self.pruned = true;
            self.threshold = self
                .buf
                .iter()
                .map(|h| h.score)
                .fold(f32::INFINITY, f32::min);
        }
    }

    /// Merges another collector (over a disjoint, *later* or earlier document range: the final
    /// sort restores the tie order, so any range order is fine for the result).
    pub fn merge(&mut self, other: TopK) {
        // Pushing would break the increasing-index precondition, so append and prune fully.
        self.buf.extend(other.buf);
        if self.buf.len() > self.k {
            self.buf.select_nth_unstable_by(self.k - 1, hit_order);
            self.buf.truncate(self.k);
        }
        self.pruned = false;
        if self.buf.len() == self.k {
            self.prune();
        }
    }

    /// The best `min(k, offered)` hits in ranking order.
    pub fn into_sorted(mut self) -> Vec<Hit> {
        if self.buf.len() > self.k {
            self.buf.select_nth_unstable_by(self.k - 1, hit_order);
            self.buf.truncate(self.k);
        }
        self.buf.sort_unstable_by(hit_order);
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn topk_matches_full_sort(scores in proptest::collection::vec(0u8..20, 0..300), k in 1usize..40) {
            let mut t = TopK::new(k);
            for (i, &s) in scores.iter().enumerate() {
                t.push(i, s as f32);
            }
            let mut all: Vec<Hit> = scores.iter().enumerate().map(|(i, &s)| Hit { doc: i, score: s as f32 }).collect();
            all.sort_by(hit_order);
            all.truncate(k);
            prop_assert_eq!(t.into_sorted(), all);
        }

        #[test]
        fn merge_of_shards_matches_full_sort(scores in proptest::collection::vec(0u8..10, 0..200), k in 1usize..20, split in 0usize..200) {
            let split = split.min(scores.len());
            let (mut a, mut b) = (TopK::new(k), TopK::new(k));
            for (i, &s) in scores.iter().enumerate() {
                if i < split { a.push(i, s as f32) } else { b.push(i, s as f32) }
            }
            b.merge(a);
            let mut all: Vec<Hit> = scores.iter().enumerate().map(|(i, &s)| Hit { doc: i, score: s as f32 }).collect();
            all.sort_by(hit_order);
            all.truncate(k);
            prop_assert_eq!(b.into_sorted(), all);
        }
    }
}
