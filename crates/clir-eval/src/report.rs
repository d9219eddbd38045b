//! Result tables (method × language for one metric) with significance against a baseline, and
//! their Markdown, CSV, JSON and SVG (grouped bar chart) renderings.
//!
//! A cell's value is the mean of its per-query values. Every non-baseline cell is tested against
//! the baseline method on the same language (paired t-test or randomization test over the same
//! queries); the p-values of all cells of the table are Holm–Bonferroni adjusted together, and a
//! cell is marked `†` when its adjusted p-value is below `alpha`. Each cell also carries the 95%
//! Student-t confidence interval of its mean over queries ([`ResultsTable::ci`]).
//!
//! [`ComparisonTable`] tests chosen (reference, other) method pairs on every language with the
//! same paired tests: per-query differences `d_i = reference_i − other_i`, their mean and its
//! 95% confidence interval, and p-values Holm–Bonferroni adjusted over all pairs × languages.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write;

use serde::{Deserialize, Serialize};

use crate::error::{EvalError, Result};
use crate::stats::{
    ConfidenceInterval, holm_bonferroni, mean_confidence_interval, paired_randomization_test,
    paired_t_test,
};

/// Which paired test marks significance.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum SigTest {
    /// Paired two-sided t-test.
    TTest,
    /// Paired randomization test with this many sign flips and seed.
    Randomization { permutations: usize, seed: u64 },
}

impl SigTest {
    /// Two-sided p-value of the paired test of `a` against `b` (same queries, same order).
    fn p_value(self, a: &[f64], b: &[f64]) -> Result<f64> {
        Ok(match self {
            SigTest::TTest => paired_t_test(a, b)?.p_value,
            SigTest::Randomization { permutations, seed } => {
                paired_randomization_test(a, b, permutations, seed)?.p_value
            }
        })
    }

    /// Human-readable name, for table footnotes.
    fn describe(self) -> String {
        match self {
            SigTest::TTest => "paired two-sided t-test".to_string(),
            SigTest::Randomization { permutations, seed } => {
                format!("paired randomization test ({permutations} random sign flips, seed {seed})")
            }
        }
    }
}

/// Level of the confidence intervals in [`ResultsTable::ci`] and [`Comparison::diff_ci`].
pub const CI_LEVEL: f64 = 0.95;

/// A paired sample of methods `a` and `b` on language `l` (same queries, in the stored order)
/// and the p-value of `test` of `a` against `b`.
struct PairedSample {
    a: Vec<f64>,
    b: Vec<f64>,
    p_value: f64,
}

/// Fetches the per-query values of `a` and `b` on `l`, checks that both exist and cover the
/// same qids in the same order, and runs `test` (a NaN p-value is an error).
fn paired_sample(
    per_query: &PerQuery,
    a: &str,
    b: &str,
    l: &str,
    test: SigTest,
) -> Result<PairedSample> {
    let get = |m: &str| {
        per_query
            .get(&(m.to_string(), l.to_string()))
            .ok_or_else(|| {
                EvalError::UnknownId(format!(
                    "no per-query values for {m} / {l} (comparing {a} with {b} on {l})"
                ))
            })
    };
    let (pa, pb) = (get(a)?, get(b)?);
    let qa: Vec<&String> = pa.iter().map(|x| &x.0).collect();
    let qb: Vec<&String> = pb.iter().map(|x| &x.0).collect();
    if qa != qb {
        return Err(EvalError::Mismatch(format!(
            "{a} and {b} cover different queries on {l} ({} vs {} queries)",
            qa.len(),
            qb.len()
        )));
    }
    let va: Vec<f64> = pa.iter().map(|x| x.1).collect();
    let vb: Vec<f64> = pb.iter().map(|x| x.1).collect();
    let p_value = test.p_value(&va, &vb)?;
    if p_value.is_nan() {
        return Err(EvalError::Invalid(format!(
            "NaN p-value comparing {a} with {b} on {l}"
        )));
    }
    Ok(PairedSample {
        a: va,
        b: vb,
        p_value,
    })
}

/// Significance of one cell against the baseline.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CellSignificance {
    pub p_value: f64,
    pub p_holm: f64,
    pub significant: bool,
}

/// One metric's results: `values[method][language]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultsTable {
    pub metric: String,
    pub methods: Vec<String>,
    pub languages: Vec<String>,
    pub values: Vec<Vec<f64>>,
    pub baseline: Option<String>,
    pub alpha: f64,
    /// `significance[method][language]`, None for the baseline row or without a baseline.
    pub significance: Vec<Vec<Option<CellSignificance>>>,
    /// `ci[method][language]`: 95% Student-t confidence interval of the cell's mean over its
    /// per-query values (see [`mean_confidence_interval`]); None for tables built with
    /// [`ResultsTable::from_values`] and for cells with fewer than 2 queries.
    #[serde(default)]
    pub ci: Vec<Vec<Option<ConfidenceInterval>>>,
}

/// Per-query values keyed by `(method, language)`: `(qid, value)` pairs.
pub type PerQuery = BTreeMap<(String, String), Vec<(String, f64)>>;

impl ResultsTable {
    /// A table of plain values (no significance).
    pub fn from_values(
        metric: &str,
        methods: Vec<String>,
        languages: Vec<String>,
        values: Vec<Vec<f64>>,
    ) -> Result<Self> {
        if values.len() != methods.len() || values.iter().any(|r| r.len() != languages.len()) {
            return Err(EvalError::Mismatch(format!(
                "values must be {} methods × {} languages",
                methods.len(),
                languages.len()
            )));
        }
        if values.iter().flatten().any(|v| !v.is_finite()) {
            return Err(EvalError::Invalid("non-finite table value".into()));
        }
        let significance = vec![vec![None; languages.len()]; methods.len()];
        let ci = vec![vec![None; languages.len()]; methods.len()];
        Ok(ResultsTable {
            metric: metric.to_string(),
            methods,
            languages,
            values,
            baseline: None,
            alpha: 0.05,
            significance,
            ci,
        })
    }

    /// Builds the table from per-query values (means per cell, with their 95% confidence
    /// intervals in [`ResultsTable::ci`]) and marks significance against `baseline` with
    /// Holm–Bonferroni correction over all cells.
    pub fn from_per_query(
        metric: &str,
        methods: Vec<String>,
        languages: Vec<String>,
        per_query: &PerQuery,
        baseline: Option<&str>,
        test: SigTest,
        alpha: f64,
    ) -> Result<Self> {
        let cell = |m: &str, l: &str| -> Result<&Vec<(String, f64)>> {
            per_query
                .get(&(m.to_string(), l.to_string()))
                .ok_or_else(|| EvalError::UnknownId(format!("no per-query values for {m} / {l}")))
        };
        let mut values = Vec::new();
        for m in &methods {
            let mut row = Vec::new();
            for l in &languages {
                let v = cell(m, l)?;
                if v.is_empty() {
                    return Err(EvalError::Invalid(format!("no queries for {m} / {l}")));
                }
                row.push(v.iter().map(|x| x.1).sum::<f64>() / v.len() as f64);
            }
            values.push(row);
        }
        let mut table = Self::from_values(metric, methods, languages, values)?;
        table.alpha = alpha;
        for (mi, m) in table.methods.iter().enumerate() {
            for (li, l) in table.languages.iter().enumerate() {
                let v: Vec<f64> = cell(m, l)?.iter().map(|x| x.1).collect();
                if v.len() >= 2 {
                    table.ci[mi][li] = Some(
                        mean_confidence_interval(&v, CI_LEVEL)
                            .map_err(|e| EvalError::Invalid(format!("{m} / {l}: {e}")))?,
                    );
                }
            }
        }
        let Some(base) = baseline else {
            return Ok(table);
        };
        let bi = table
            .methods
            .iter()
            .position(|m| m == base)
            .ok_or_else(|| EvalError::UnknownId(format!("baseline method '{base}'")))?;
        table.baseline = Some(base.to_string());
        let mut cells = Vec::new();
        let mut pvals = Vec::new();
        for (mi, m) in table.methods.iter().enumerate() {
            if mi == bi {
                continue;
            }
            for (li, l) in table.languages.iter().enumerate() {
                let sample = paired_sample(per_query, m, base, l, test)?;
                cells.push((mi, li));
                pvals.push(sample.p_value);
            }
        }
        for ((mi, li), (p, ph)) in cells
            .into_iter()
            .zip(pvals.iter().zip(holm_bonferroni(&pvals)?))
        {
            table.significance[mi][li] = Some(CellSignificance {
                p_value: *p,
                p_holm: ph,
                significant: ph < alpha,
            });
        }
        Ok(table)
    }

    fn mark(&self, mi: usize, li: usize) -> &'static str {
        match self.significance[mi][li] {
            Some(s) if s.significant => "†",
            _ => "",
        }
    }

    /// Markdown table: one row per method, one column per language, best value per column in
    /// bold, `†` for a significant difference from the baseline.
    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "| {} | {} |",
            md_cell(&self.metric),
            md_cells(&self.languages)
        );
        let _ = writeln!(s, "|---|{}", "---:|".repeat(self.languages.len()));
        let best: Vec<f64> = (0..self.languages.len())
            .map(|li| {
                self.values
                    .iter()
                    .map(|r| r[li])
                    .fold(f64::NEG_INFINITY, f64::max)
            })
            .collect();
        for (mi, m) in self.methods.iter().enumerate() {
            let cells: Vec<String> = (0..self.languages.len())
                .map(|li| {
                    let v = format!("{:.4}{}", self.values[mi][li], self.mark(mi, li));
                    if self.values[mi][li] == best[li] {
                        format!("**{v}**")
                    } else {
                        v
                    }
                })
                .collect();
            let _ = writeln!(s, "| {} | {} |", md_cell(m), cells.join(" | "));
        }
        if let Some(b) = &self.baseline {
            let _ = writeln!(
                s,
                "\n† significantly different from {b} (Holm–Bonferroni adjusted p < {})",
                self.alpha
            );
        }
        s
    }

    /// Markdown table of the confidence intervals: same rows and columns as
    /// [`ResultsTable::to_markdown`], each cell `[lower, upper]` with 4 decimals (`–` without
    /// an interval).
    pub fn ci_markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "| {} ({:.0}% CI) | {} |",
            md_cell(&self.metric),
            CI_LEVEL * 100.0,
            md_cells(&self.languages)
        );
        let _ = writeln!(s, "|---|{}", "---:|".repeat(self.languages.len()));
        for (mi, m) in self.methods.iter().enumerate() {
            let cells: Vec<String> = (0..self.languages.len())
                .map(
                    |li| match self.ci.get(mi).and_then(|r| r.get(li)).copied().flatten() {
                        Some(c) => format!("[{:.4}, {:.4}]", c.lower, c.upper),
                        None => "–".to_string(),
                    },
                )
                .collect();
            let _ = writeln!(s, "| {} | {} |", md_cell(m), cells.join(" | "));
        }
        s
    }

    /// CSV: `metric,method,language,value,p_value,p_holm,significant`.
    pub fn write_csv<W: Write>(&self, w: W) -> Result<()> {
        let mut wr = csv::Writer::from_writer(w);
        wr.write_record([
            "metric",
            "method",
            "language",
            "value",
            "p_value",
            "p_holm",
            "significant",
        ])?;
        for (mi, m) in self.methods.iter().enumerate() {
            for (li, l) in self.languages.iter().enumerate() {
                let sig = self.significance[mi][li];
                wr.write_record([
                    self.metric.clone(),
                    m.clone(),
                    l.clone(),
                    format!("{:.6}", self.values[mi][li]),
                    sig.map_or(String::new(), |s| format!("{:.6}", s.p_value)),
                    sig.map_or(String::new(), |s| format!("{:.6}", s.p_holm)),
                    sig.map_or(String::new(), |s| s.significant.to_string()),
                ])?;
            }
        }
        wr.flush().map_err(|e| EvalError::io("<csv output>", e))?;
        Ok(())
    }

    /// JSON of the whole table.
    pub fn to_json(&self) -> Result<String> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    /// SVG grouped bar chart: one group per language, one bar per method.
    pub fn to_svg(&self) -> String {
        const PALETTE: [&str; 8] = [
            "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#9c755f",
        ];
        let (nl, nm) = (self.languages.len().max(1), self.methods.len().max(1));
        let bar_w = 14.0;
        let group_w = bar_w * nm as f64 + 16.0;
        let (left, top, plot_h) = (60.0, 40.0, 260.0);
        let legend_w = 170.0;
        let width = left + group_w * nl as f64 + 20.0 + legend_w;
        let height = top + plot_h + 36.0;
        let vmax = self.values.iter().flatten().fold(0.0f64, |a, &b| a.max(b));
        let ymax = nice_ceiling(vmax);
        let y = |v: f64| top + plot_h * (1.0 - v.max(0.0) / ymax);
        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="sans-serif" font-size="11">"#
        );
        let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="20" font-size="14" text-anchor="middle">{}</text>"#,
            left + group_w * nl as f64 / 2.0,
            xml_escape(&self.metric)
        );
        for i in 0..=5 {
            let v = ymax * i as f64 / 5.0;
            let yy = y(v);
            let _ = writeln!(
                s,
                r##"<line x1="{left}" x2="{:.1}" y1="{yy:.1}" y2="{yy:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{v:.2}</text>"##,
                left + group_w * nl as f64,
                left - 6.0,
                yy + 4.0
            );
        }
        for (li, l) in self.languages.iter().enumerate() {
            let gx = left + group_w * li as f64 + 8.0;
            for (mi, m) in self.methods.iter().enumerate() {
                let v = self.values[mi][li];
                let x = gx + bar_w * mi as f64;
                let _ = writeln!(
                    s,
                    r#"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{} / {}: {v:.4}{}</title></rect>"#,
                    y(v),
                    bar_w - 1.0,
                    top + plot_h - y(v),
                    PALETTE[mi % PALETTE.len()],
                    xml_escape(m),
                    xml_escape(l),
                    self.mark(mi, li)
                );
                if !self.mark(mi, li).is_empty() {
                    let _ = writeln!(
                        s,
                        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">†</text>"#,
                        x + bar_w / 2.0,
                        y(v) - 3.0
                    );
                }
            }
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                gx + bar_w * nm as f64 / 2.0,
                top + plot_h + 16.0,
                xml_escape(l)
            );
        }
        let _ = writeln!(
            s,
            r#"<line x1="{left}" x2="{left}" y1="{top}" y2="{:.1}" stroke="black"/><line x1="{left}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="black"/>"#,
            top + plot_h,
            left + group_w * nl as f64,
            top + plot_h,
            top + plot_h
        );
        let lx = left + group_w * nl as f64 + 20.0;
        for (mi, m) in self.methods.iter().enumerate() {
            let ly = top + 16.0 * mi as f64;
            let _ = writeln!(
                s,
                r#"<rect x="{lx:.1}" y="{ly:.1}" width="10" height="10" fill="{}"/><text x="{:.1}" y="{:.1}">{}</text>"#,
                PALETTE[mi % PALETTE.len()],
                lx + 14.0,
                ly + 9.0,
                xml_escape(m)
            );
        }
        s.push_str("</svg>\n");
        s
    }
}

/// One paired comparison of two methods on one language.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub reference: String,
    pub other: String,
    pub language: String,
    /// Number of queries.
    pub n: usize,
    /// mean over queries of (reference − other)
    pub mean_diff: f64,
    /// 95% CI of the per-query differences' mean
    pub diff_ci: ConfidenceInterval,
    /// Raw two-sided p-value of the paired test (reference against other).
    pub p_value: f64,
    /// Holm–Bonferroni adjusted p-value, over all comparisons of the table.
    pub p_holm: f64,
    /// `p_holm < alpha`.
    pub significant: bool,
}

/// Pairwise comparisons (e.g. one method against every other) on every language, with
/// Holm–Bonferroni correction over the whole table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComparisonTable {
    pub metric: String,
    pub test: SigTest,
    pub alpha: f64,
    pub languages: Vec<String>,
    /// Pair-major: every language of the first pair, then of the second, ...
    pub comparisons: Vec<Comparison>,
}

impl ComparisonTable {
    /// `pairs`: (reference, other) method pairs; every pair is tested on every language of
    /// `languages`, and both methods must have per-query values there over the same qids
    /// (otherwise an error naming both methods and the language). For each pair and language,
    /// with `d_i = reference_i − other_i`: `mean_diff = d̄`, `diff_ci = d̄ ± t_{0.975, n−1}·s_d/√n`,
    /// `p_value` from `test` (paired t-test or randomization test of reference against other);
    /// the `m = pairs × languages` p-values are Holm–Bonferroni adjusted together and
    /// `significant = p_holm < alpha`. A pair listed twice, a method paired with itself, an
    /// `alpha` outside (0, 1) or a NaN p-value are errors.
    pub fn from_per_query(
        metric: &str,
        pairs: &[(String, String)],
        languages: Vec<String>,
        per_query: &PerQuery,
        test: SigTest,
        alpha: f64,
    ) -> Result<Self> {
        Self::build(metric, pairs, languages, per_query, test, alpha, false)
    }

    /// As [`from_per_query`](Self::from_per_query), for a table of partial results: a
    /// (pair, language) where either method has no per-query values is left out (shown as
    /// `–`; [`get`](Self::get) gives `None`), and the Holm–Bonferroni adjustment runs over the
    /// comparisons made. Queries that differ between two present methods are still an error.
    pub fn from_available_per_query(
        metric: &str,
        pairs: &[(String, String)],
        languages: Vec<String>,
        per_query: &PerQuery,
        test: SigTest,
        alpha: f64,
    ) -> Result<Self> {
        Self::build(metric, pairs, languages, per_query, test, alpha, true)
    }

    fn build(
        metric: &str,
        pairs: &[(String, String)],
        languages: Vec<String>,
        per_query: &PerQuery,
        test: SigTest,
        alpha: f64,
        skip_missing: bool,
    ) -> Result<Self> {
        if !(alpha > 0.0 && alpha < 1.0) {
            return Err(EvalError::Invalid(format!(
                "alpha must be in (0, 1), got {alpha}"
            )));
        }
        for (i, (r, o)) in pairs.iter().enumerate() {
            if r == o {
                return Err(EvalError::Invalid(format!("pair compares {r} with itself")));
            }
            if pairs[..i].iter().any(|(r2, o2)| r2 == r && o2 == o) {
                return Err(EvalError::Invalid(format!("pair {r} vs {o} listed twice")));
            }
        }
        let mut comparisons = Vec::with_capacity(pairs.len() * languages.len());
        for (r, o) in pairs {
            for l in &languages {
                let has = |m: &String| per_query.contains_key(&(m.clone(), l.clone()));
                if skip_missing && !(has(r) && has(o)) {
                    continue;
                }
                let sample = paired_sample(per_query, r, o, l, test)?;
                let d: Vec<f64> = sample.a.iter().zip(&sample.b).map(|(x, y)| x - y).collect();
                let diff_ci = mean_confidence_interval(&d, CI_LEVEL)
                    .map_err(|e| EvalError::Invalid(format!("{r} vs {o} on {l}: {e}")))?;
                comparisons.push(Comparison {
                    reference: r.clone(),
                    other: o.clone(),
                    language: l.clone(),
                    n: d.len(),
                    mean_diff: diff_ci.mean,
                    diff_ci,
                    p_value: sample.p_value,
                    p_holm: f64::NAN,
                    significant: false,
                });
            }
        }
        let raw: Vec<f64> = comparisons.iter().map(|c| c.p_value).collect();
        for (c, ph) in comparisons.iter_mut().zip(holm_bonferroni(&raw)?) {
            c.p_holm = ph;
            c.significant = ph < alpha;
        }
        Ok(ComparisonTable {
            metric: metric.to_string(),
            test,
            alpha,
            languages,
            comparisons,
        })
    }

    /// The comparison of `reference` against `other` on `language`, if in the table.
    pub fn get(&self, reference: &str, other: &str, language: &str) -> Option<&Comparison> {
        self.comparisons
            .iter()
            .find(|c| c.reference == reference && c.other == other && c.language == language)
    }

    /// Markdown table: one row per pair ("reference vs other", in the order given), one column
    /// per language. A cell is the signed mean difference with 4 decimals (`+0.0123`), then
    /// `▲` when significantly higher (`p_holm < alpha`, difference > 0) or `▼` when
    /// significantly lower, then ` (p=…)` with the Holm-adjusted p-value to 3 significant
    /// digits (`p<0.001` below 0.001). A footnote names the test, the Holm–Bonferroni
    /// correction over all N comparisons and alpha.
    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "| {} | {} |",
            md_cell(&self.metric),
            md_cells(&self.languages)
        );
        let _ = writeln!(s, "|---|{}", "---:|".repeat(self.languages.len()));
        let mut rows: Vec<(&str, &str)> = Vec::new();
        for c in &self.comparisons {
            if !rows.contains(&(c.reference.as_str(), c.other.as_str())) {
                rows.push((&c.reference, &c.other));
            }
        }
        for (r, o) in rows {
            let cells: Vec<String> = self
                .languages
                .iter()
                .map(|l| match self.get(r, o, l) {
                    Some(c) => {
                        let mark = match (c.significant, c.mean_diff) {
                            (true, d) if d > 0.0 => "▲",
                            (true, d) if d < 0.0 => "▼",
                            _ => "",
                        };
                        // `+ 0.0` turns −0 into +0.
                        format!("{:+.4}{mark} ({})", c.mean_diff + 0.0, format_p(c.p_holm))
                    }
                    None => "–".to_string(),
                })
                .collect();
            let _ = writeln!(
                s,
                "| {} vs {} | {} |",
                md_cell(r),
                md_cell(o),
                cells.join(" | ")
            );
        }
        let test = self.test.describe();
        let mut chars = test.chars();
        let test: String = chars
            .next()
            .map(|c| c.to_uppercase().chain(chars).collect())
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "\nDifferences are reference − other, mean over queries. {test}; p is \
             Holm–Bonferroni adjusted over all {} comparisons of the table; ▲/▼: significantly \
             higher/lower (adjusted p < {}).",
            self.comparisons.len(),
            self.alpha
        );
        s
    }
}

/// `p=` with 3 significant digits (`p=0.0412`, `p=0.500`, `p=1.00`), or `p<0.001`.
fn format_p(p: f64) -> String {
    if p < 0.001 {
        return "p<0.001".to_string();
    }
    // Round to 3 significant digits first, so that 0.09996 becomes 0.100, not 0.1000.
    let sci = format!("{p:.2e}");
    let Some((_, exp)) = sci.split_once('e') else {
        return format!("p={p}");
    };
    let exp: i32 = exp.parse().unwrap_or(0);
    let rounded: f64 = sci.parse().unwrap_or(p);
    let decimals = (2 - exp).max(0) as usize;
    format!("p={rounded:.decimals$}")
}

/// Smallest of 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8 × 10^k that is ≥ v (1 for v ≤ 0).
fn nice_ceiling(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let e = v.log10().floor() as i32;
    // m·10^e, computed as a division for e < 0 so that 0.6 is exactly the double 0.6.
    let scale = |m: f64| {
        if e >= 0 {
            m * 10f64.powi(e)
        } else {
            m / 10f64.powi(-e)
        }
    };
    [1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0]
        .into_iter()
        .map(scale)
        .find(|&c| c >= v)
        .unwrap_or_else(|| scale(10.0))
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A name as one Markdown table cell: `|` escaped and line breaks turned into spaces, so a
/// method, variant or language name can never add a column or end its row.
pub fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\r', '\n'], " ")
}

/// Names as the Markdown cells of one row, `|`-separated (each through [`md_cell`]).
pub fn md_cells(names: &[String]) -> String {
    names
        .iter()
        .map(|n| md_cell(n))
        .collect::<Vec<_>>()
        .join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn per_query() -> PerQuery {
        let q = |vals: &[f64]| -> Vec<(String, f64)> {
            vals.iter()
                .enumerate()
                .map(|(i, v)| (format!("q{i}"), *v))
                .collect()
        };
        let mut pq = PerQuery::new();
        let base: Vec<f64> = (0..30).map(|i| 0.3 + 0.01 * (i % 7) as f64).collect();
        let better: Vec<f64> = base
            .iter()
            .enumerate()
            .map(|(i, v)| v + 0.1 + 0.005 * (i % 3) as f64)
            .collect();
        let same: Vec<f64> = base
            .iter()
            .enumerate()
            .map(|(i, v)| v + if i % 2 == 0 { 0.01 } else { -0.01 })
            .collect();
        pq.insert(("base".into(), "sw".into()), q(&base));
        pq.insert(("base".into(), "so".into()), q(&base));
        pq.insert(("ot".into(), "sw".into()), q(&better));
        pq.insert(("ot".into(), "so".into()), q(&same));
        pq
    }

    fn table(test: SigTest) -> ResultsTable {
        ResultsTable::from_per_query(
            "nDCG@10",
            vec!["base".into(), "ot".into()],
            vec!["sw".into(), "so".into()],
            &per_query(),
            Some("base"),
            test,
            0.05,
        )
        .unwrap()
    }

    #[test]
    fn significance_marks_only_real_differences() {
        for test in [
            SigTest::TTest,
            SigTest::Randomization {
                permutations: 2000,
                seed: 1,
            },
        ] {
            let t = table(test);
            assert!(t.significance[0][0].is_none());
            assert!(t.significance[1][0].unwrap().significant, "{test:?}");
            assert!(!t.significance[1][1].unwrap().significant, "{test:?}");
            let md = t.to_markdown();
            assert!(md.contains("| ot | **0."), "{md}");
            assert!(md.contains("†"), "{md}");
            assert_eq!(
                md.matches('†').count(),
                2,
                "one mark and the footnote: {md}"
            );
        }
    }

    #[test]
    fn markdown_cells_escape_pipes_and_line_breaks() {
        assert_eq!(md_cell("joint|λ=0.5"), "joint\\|λ=0.5");
        assert_eq!(md_cell("a\nb"), "a b");
        assert_eq!(md_cells(&["x|y".into(), "z".into()]), "x\\|y | z");
    }

    #[test]
    fn csv_json_svg() {
        let t = table(SigTest::TTest);
        let mut out = Vec::new();
        t.write_csv(&mut out).unwrap();
        let csv = String::from_utf8(out).unwrap();
        assert_eq!(csv.lines().count(), 5);
        assert!(csv.starts_with(
            "metric,method,language,value,p_value,p_holm,significant\nnDCG@10,base,sw,"
        ));
        let mut back: ResultsTable = serde_json::from_str(&t.to_json().unwrap()).unwrap();
        // serde_json without its `float_roundtrip` feature may parse a double 1 ulp off (it
        // does for one CI bound here): compare the intervals to 1e-15 relative, the rest exactly.
        let close = |x: f64, y: f64| (x - y).abs() <= 1e-15 * x.abs().max(y.abs());
        assert_eq!(back.ci.len(), t.ci.len());
        for (rb, rt) in back.ci.iter().zip(&t.ci) {
            assert_eq!(rb.len(), rt.len());
            for (cb, ct) in rb.iter().zip(rt) {
                let (cb, ct) = (cb.unwrap(), ct.unwrap());
                assert_eq!((cb.n, cb.level), (ct.n, ct.level));
                for (x, y) in [
                    (cb.mean, ct.mean),
                    (cb.lower, ct.lower),
                    (cb.upper, ct.upper),
                ] {
                    assert!(close(x, y), "{cb:?} vs {ct:?}");
                }
            }
        }
        back.ci = t.ci.clone();
        assert_eq!(back, t);
        let old_json = t.to_json().unwrap().replace("\"ci\"", "\"ignored_ci\"");
        let old: ResultsTable = serde_json::from_str(&old_json).unwrap();
        assert!(old.ci.is_empty(), "`ci` defaults to empty for older JSON");
        assert!(old.ci_markdown().contains("| base | – | – |"));
        let svg = t.to_svg();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(
            svg.matches("<rect x=").count(),
            4 + 2,
            "4 bars + 2 legend swatches"
        );
    }

    #[test]
    fn bad_tables_are_rejected() {
        assert!(
            ResultsTable::from_values("m", vec!["a".into()], vec!["x".into()], vec![vec![]])
                .is_err()
        );
        assert!(
            ResultsTable::from_values(
                "m",
                vec!["a".into()],
                vec!["x".into()],
                vec![vec![f64::NAN]]
            )
            .is_err()
        );
        let e = ResultsTable::from_per_query(
            "m",
            vec!["zzz".into()],
            vec!["sw".into()],
            &per_query(),
            None,
            SigTest::TTest,
            0.05,
        );
        assert!(e.is_err());
        let e = ResultsTable::from_per_query(
            "m",
            vec!["ot".into()],
            vec!["sw".into()],
            &per_query(),
            Some("nope"),
            SigTest::TTest,
            0.05,
        );
        assert!(e.is_err());
    }

    #[test]
    fn nice_axis() {
        assert_eq!(nice_ceiling(0.43), 0.5);
        assert_eq!(nice_ceiling(0.61), 0.8);
        assert_eq!(nice_ceiling(0.81), 1.0);
        assert_eq!(nice_ceiling(0.21), 0.25);
        assert_eq!(nice_ceiling(0.5042), 0.6);
        assert_eq!(nice_ceiling(0.0), 1.0);
    }
}
