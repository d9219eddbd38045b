//! Cross-language disparity: how far each language pair falls behind the English→English
//! reference.
//!
//! For a pair `p` with score `s_p` and reference score `s_ref`:
//! `gap_p = (s_ref − s_p) / s_ref` (0 = as good as English, 0.25 = a quarter worse, negative =
//! better). Group averages are arithmetic means of the gaps of the pairs in each group.
//! [`gap_closed`] says how much of a baseline's gap a method closes:
//! `(gap_base − gap_method) / gap_base`, i.e. `(s_method − s_base) / (s_ref − s_base)` when
//! both share the reference (1 = all of it, 0 = none, negative = the gap widened).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{EvalError, Result};

/// Relative gaps per pair and their group averages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Disparity {
    pub reference: String,
    pub reference_score: f64,
    /// Gap of every non-reference pair.
    pub gaps: BTreeMap<String, f64>,
    /// Mean gap over the low-resource pairs (None when the group is empty).
    pub low_resource_mean: Option<f64>,
    /// Mean gap over the high-resource pairs (None when the group is empty).
    pub high_resource_mean: Option<f64>,
}

/// Computes gaps to `reference` (e.g. `"en-en"`) for every pair in `scores`, and group means.
/// Errors on a missing or non-positive reference, non-finite scores, and group members that are
/// not in `scores`.
pub fn disparity(
    scores: &BTreeMap<String, f64>,
    reference: &str,
    low: &[String],
    high: &[String],
) -> Result<Disparity> {
    let &reference_score = scores.get(reference).ok_or_else(|| {
        EvalError::UnknownId(format!("reference pair '{reference}' has no score"))
    })?;
    if !(reference_score.is_finite() && reference_score > 0.0) {
        return Err(EvalError::Invalid(format!(
            "reference score {reference_score} must be positive"
        )));
    }
    let mut gaps = BTreeMap::new();
    for (pair, &s) in scores {
        if !s.is_finite() {
            return Err(EvalError::Invalid(format!("score of '{pair}' is {s}")));
        }
        if pair != reference {
            gaps.insert(pair.clone(), (reference_score - s) / reference_score);
        }
    }
    let mean = |group: &[String]| -> Result<Option<f64>> {
        if group.is_empty() {
            return Ok(None);
        }
        let mut sum = 0.0;
        for p in group {
            sum += gaps.get(p).copied().ok_or_else(|| {
                EvalError::UnknownId(format!(
                    "group member '{p}' has no score (or is the reference)"
                ))
            })?;
        }
        Ok(Some(sum / group.len() as f64))
    };
    Ok(Disparity {
        reference: reference.to_string(),
        reference_score,
        low_resource_mean: mean(low)?,
        high_resource_mean: mean(high)?,
        gaps,
    })
}

/// The share of `base`'s gap that `method` closes, per pair both have and for the two group
/// means: `(gap_base − gap_method) / gap_base`. A pair (or group) where the baseline has no
/// gap to close (`gap_base ≤ 0`) has no share and is left out.
///
/// ```
/// # use std::collections::BTreeMap;
/// use clir_eval::disparity::{disparity, gap_closed};
/// let scores = |sw: f64| BTreeMap::from([("en".to_string(), 0.5), ("sw".to_string(), sw)]);
/// let (low, high) = (vec!["sw".to_string()], vec![]);
/// let zero_shot = disparity(&scores(0.2), "en", &low, &high).unwrap();
/// let trained = disparity(&scores(0.35), "en", &low, &high).unwrap();
/// let closed = gap_closed(&zero_shot, &trained);
/// assert!((closed.pairs["sw"] - 0.5).abs() < 1e-12); // (0.35 − 0.2) / (0.5 − 0.2)
/// assert!((closed.low_resource.unwrap() - 0.5).abs() < 1e-12);
/// assert_eq!(closed.high_resource, None);
/// ```
pub fn gap_closed(base: &Disparity, method: &Disparity) -> GapClosed {
    let share = |b: Option<f64>, m: Option<f64>| match (b, m) {
        (Some(b), Some(m)) if b > 0.0 => Some((b - m) / b),
        _ => None,
    };
    GapClosed {
        pairs: base
            .gaps
            .iter()
            .filter_map(|(p, &b)| Some((p.clone(), share(Some(b), method.gaps.get(p).copied())?)))
            .collect(),
        low_resource: share(base.low_resource_mean, method.low_resource_mean),
        high_resource: share(base.high_resource_mean, method.high_resource_mean),
    }
}

/// What [`gap_closed`] returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GapClosed {
    /// Share of the baseline's gap closed, per pair.
    pub pairs: BTreeMap<String, f64>,
    /// Share of the baseline's mean low-resource gap closed.
    pub low_resource: Option<f64>,
    /// Share of the baseline's mean high-resource gap closed.
    pub high_resource: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn gaps_and_group_means() {
        let scores: BTreeMap<String, f64> = [
            ("en-en", 0.5),
            ("sw-en", 0.25),
            ("de-en", 0.4),
            ("fr-en", 0.55),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let d = disparity(&scores, "en-en", &s(&["sw-en"]), &s(&["de-en", "fr-en"])).unwrap();
        assert!((d.gaps["sw-en"] - 0.5).abs() < 1e-12);
        assert!((d.gaps["fr-en"] + 0.1).abs() < 1e-12);
        assert!((d.low_resource_mean.unwrap() - 0.5).abs() < 1e-12);
        assert!((d.high_resource_mean.unwrap() - 0.05).abs() < 1e-12);
        assert!(!d.gaps.contains_key("en-en"));
        assert!(disparity(&scores, "xx", &[], &[]).is_err());
        assert!(disparity(&scores, "en-en", &s(&["so-en"]), &[]).is_err());
        assert!(disparity(&scores, "en-en", &s(&["en-en"]), &[]).is_err());
    }

    /// The share closed equals `(method − base) / (reference − base)` per pair; a widened gap
    /// is negative; a pair the baseline already matches (no gap) has no share.
    #[test]
    fn gap_closed_is_the_share_of_the_baselines_gap() {
        let d = |sw: f64, de: f64, fr: f64| {
            let scores = BTreeMap::from([
                ("en".to_string(), 0.6),
                ("sw".to_string(), sw),
                ("de".to_string(), de),
                ("fr".to_string(), fr),
            ]);
            disparity(&scores, "en", &s(&["sw"]), &s(&["de", "fr"])).unwrap()
        };
        let base = d(0.2, 0.4, 0.6);
        let c = gap_closed(&base, &d(0.5, 0.3, 0.7));
        assert!((c.pairs["sw"] - 0.75).abs() < 1e-12, "{c:?}"); // 0.3 of 0.4
        assert!((c.pairs["de"] + 0.5).abs() < 1e-12, "{c:?}"); // widened by 0.1 of 0.2
        assert!(!c.pairs.contains_key("fr"), "no gap to close: {c:?}");
        assert!((c.low_resource.unwrap() - 0.75).abs() < 1e-12);
        // High group: base mean gap (1/3 + 0)/2 = 1/6; method (0.5 + (−1/6))/2 = 1/6 → 0 closed.
        assert!(c.high_resource.unwrap().abs() < 1e-12, "{c:?}");
    }
}
