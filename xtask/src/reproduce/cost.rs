//! What a cell costs before it is computed: the median of finished cells of its kind, else the
//! per-step and per-verse times measured on this project's 2-core CPU (`--list`, preset `cost`
//! fields, docs/training.md "What a preset costs").

use std::collections::BTreeSet;

use clir_train::retrieval::RetrievalSet;
use clir_train::{Method, TrainConfig};

use super::{Cell, CellKind, CellResult, ENGLISH, Preset};

/// Rough seconds for a cell not computed yet: the median of finished cells of the same method
/// in this results directory, else [`CpuCost`], the per-step and per-verse times measured on a
/// 2-core CPU.
/// `fills` holds the bitext samples whose teacher and frozen-prefix states an earlier cell of
/// the list computes (their cost is counted once).
pub(super) fn estimate_seconds(
    cell: &Cell,
    set: &RetrievalSet,
    preset: &Preset,
    finished: &[CellResult],
    fills: &mut BTreeSet<String>,
) -> f64 {
    let same: Vec<f64> = finished
        .iter()
        .filter(|r| r.method == cell.label && (r.pair == ENGLISH) == (cell.pair == ENGLISH))
        .map(|r| r.seconds)
        .collect();
    if let Some(typical) = median(same) {
        return typical;
    }
    let cost = CpuCost::MEASURED;
    let docs = set.docs.len() as f64;
    let queries = set.queries.len() as f64 / cost.teacher_vps;
    match &cell.kind {
        CellKind::English(_) | CellKind::TeacherDirect(_) => queries + docs / cost.teacher_vps,
        // Indexing and searching take seconds; Model 1 on a few thousand pairs about as long.
        CellKind::Bm25En | CellKind::Psq => 30.0,
        CellKind::ZeroShot => queries + docs / cost.student_vps + cost.cell_overhead_s,
        CellKind::Trained(..) if cell.step.is_some() => {
            queries + docs / cost.student_vps + cost.cell_overhead_s
        }
        CellKind::Trained(m, v) => preset
            .train_config(&cell.pair, *m, v, cell.seed)
            .map(|c| {
                let sample = format!("{} {} {:?}", cell.pair, c.run.seed, c.data);
                let fill = fills.insert(sample);
                queries + cost.trained_cell(&c, *m, docs, fill)
            })
            .unwrap_or(queries + docs / cost.student_vps),
    }
}

/// The median of the finished cells' times: one cell that paid for something its siblings did
/// not (a second training, a busy machine) does not move it, where it would move a mean.
fn median(mut seconds: Vec<f64>) -> Option<f64> {
    if seconds.is_empty() {
        return None;
    }
    seconds.sort_by(f64::total_cmp);
    let mid = seconds.len() / 2;
    Some(if seconds.len() % 2 == 1 {
        seconds[mid]
    } else {
        (seconds[mid - 1] + seconds[mid]) / 2.0
    })
}

/// Throughputs measured on this project's 2-core CPU (release build, flex, e5-small student and
/// teacher; `cargo xtask bench train`, docs/training.md "What a preset costs"). Steps measured
/// 2026-12-03 with token-wise linear layers (217d133); states and encodings 2026-12-02.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CpuCost {
    /// Seconds per optimiser step of 16 pairs (training length 64, embeddings + 8 layers frozen,
    /// prefix cache on) for OPTICAL, two-term MSE, KL and joint. Batches are length-bucketed, so
    /// a longer training length costs only on the verses that exceed 64 tokens: not scaled.
    pub step_optical: f64,
    pub step_mse: f64,
    pub step_kl: f64,
    pub step_joint: f64,
    /// The same OPTICAL step with nothing frozen (no cache), to scale by trained layers.
    pub step_optical_unfrozen: f64,
    /// Frozen-prefix and teacher states computed per second of new bitext sentences.
    pub fill_per_s: f64,
    /// Evaluation verses per second: teacher, student (all layers), trained student above a
    /// shared 8-layer prefix.
    pub teacher_vps: f64,
    pub student_vps: f64,
    pub student_top_vps: f64,
    /// Fixed seconds of a zero-shot or trained cell besides its steps and encodings (loading
    /// and trimming the student, tokenising the collection, checkpoints): quick's cells took
    /// about this much more than their steps and encodings.
    pub cell_overhead_s: f64,
}

impl CpuCost {
    pub const MEASURED: CpuCost = CpuCost {
        step_optical: 0.35,
        step_mse: 0.66,
        step_kl: 0.34,
        step_joint: 0.73,
        step_optical_unfrozen: 1.1,
        fill_per_s: 50.0,
        teacher_vps: 78.0,
        student_vps: 72.0,
        student_top_vps: 217.0,
        cell_overhead_s: 10.0,
    };

    /// Seconds of one trained cell under `cfg`: bitext states (when `fill`: the first cell
    /// of its bitext sample), steps, then `docs` encoded.
    pub fn trained_cell(&self, cfg: &TrainConfig, method: Method, docs: f64, fill: bool) -> f64 {
        let depth = cfg.model.student_depth.unwrap_or(12) as f64;
        let frozen = cfg.model.freeze_layers.min(depth as usize) as f64;
        let per_step_frozen8 = match method {
            Method::Optical => self.step_optical,
            Method::Mse => self.step_mse,
            Method::Kl => self.step_kl,
            Method::Joint => self.step_joint,
        };
        // Linear in trained layers between the 8-frozen and the unfrozen measurements.
        let slope = (self.step_optical_unfrozen - self.step_optical) / 8.0;
        let trained = depth - frozen;
        let per_step = (per_step_frozen8 + slope * (trained - 4.0)).max(0.05)
            * cfg.optim.batch_size as f64
            / 16.0;
        let pairs = cfg
            .data
            .max_pairs
            .unwrap_or(cfg.optim.steps * cfg.optim.batch_size) as f64;
        let encode = if frozen >= 8.0 {
            docs / self.student_top_vps
        } else {
            docs / self.student_vps
        };
        let fill = if fill { pairs / self.fill_per_s } else { 0.0 };
        // A warm start's steps cost what MSE steps cost.
        let warm = cfg.loss.warm_start_mse_steps.min(cfg.optim.steps) as f64;
        let warm_extra = warm * (self.step_mse - per_step_frozen8).max(0.0);
        fill + cfg.optim.steps as f64 * per_step + warm_extra + encode + self.cell_overhead_s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cell_that_paid_twice_does_not_price_the_others() {
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![420.0, 900.0, 400.0]), Some(420.0));
        assert_eq!(median(vec![900.0, 400.0, 420.0, 860.0]), Some(640.0));
    }

    #[test]
    fn cost_estimates_follow_the_measured_rates() {
        let cost = CpuCost::MEASURED;
        let mut cfg = TrainConfig::new();
        cfg.optim.steps = 100;
        cfg.optim.batch_size = 16;
        cfg.model.freeze_layers = 8;
        cfg.data.max_pairs = Some(1600);
        let docs = 1000.0;
        let cached = cost.trained_cell(&cfg, Method::Optical, docs, false);
        let want = 100.0 * cost.step_optical + docs / cost.student_top_vps + cost.cell_overhead_s;
        assert!((cached - want).abs() < 1e-9, "{cached} vs {want}");
        // The bitext states are paid by the first cell of a sample only.
        let first = cost.trained_cell(&cfg, Method::Optical, docs, true);
        assert!((first - cached - 1600.0 / cost.fill_per_s).abs() < 1e-9);
        // Nothing frozen: the unfrozen step, and every layer encoded.
        cfg.model.freeze_layers = 0;
        let unfrozen = cost.trained_cell(&cfg, Method::Optical, docs, false);
        let want =
            100.0 * cost.step_optical_unfrozen + docs / cost.student_vps + cost.cell_overhead_s;
        assert!((unfrozen - want).abs() < 1e-9, "{unfrozen} vs {want}");
        // Twice the batch, twice the steps' time; MSE dearer than OPTICAL.
        cfg.model.freeze_layers = 8;
        cfg.optim.batch_size = 32;
        let double = cost.trained_cell(&cfg, Method::Optical, docs, false);
        assert!((double - cached - 100.0 * cost.step_optical).abs() < 1e-9);
        assert!(cost.trained_cell(&cfg, Method::Mse, docs, false) > double);
    }
}
