//! Cross-language disparity: how far each language pair falls behind the English→English
//! reference.
//!
//! For a pair `p` with score `s_p` and reference score `s_ref`:
//! `gap_p = (s_ref − s_p) / s_ref` (0 = as good as English, 0.25 = a quarter worse, negative =
//! better). Group averages are arithmetic means of the gaps of the pairs in each group.

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
}
