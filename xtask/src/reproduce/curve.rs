//! Training curves (a preset's `curve_steps`): each trained run's student evaluated after
//! those steps (cells labelled `LABEL@STEP`) and at its end (the cell `LABEL`), as a Markdown
//! table and an SVG line chart of MAP against steps (`curve.svg`).

use super::report::Aggregate;

/// One point of a curve: a pair and trained label (`optical`, `optical/v`) after `step`.
#[derive(Debug, Clone, PartialEq)]
pub struct CurvePoint {
    pub pair: String,
    pub label: String,
    pub step: usize,
    pub map: f64,
    pub ndcg_10: f64,
}

/// The curve points among `aggs`: `LABEL@STEP` at STEP, and `LABEL` at `last_step(LABEL)`
/// when some `LABEL@…` exists (a label without a curve is left out). Sorted by pair, label
/// and step.
pub fn points(aggs: &[Aggregate], last_step: impl Fn(&str) -> Option<usize>) -> Vec<CurvePoint> {
    let curved: Vec<(&str, &str)> = aggs
        .iter()
        .filter_map(|a| Some((a.pair.as_str(), a.method.split_once('@')?.0)))
        .collect();
    let mut out: Vec<CurvePoint> = aggs
        .iter()
        .filter_map(|a| {
            let (label, step) = match a.method.split_once('@') {
                Some((l, s)) => (l, s.parse().ok()?),
                None if curved.contains(&(a.pair.as_str(), a.method.as_str())) => {
                    (a.method.as_str(), last_step(&a.method)?)
                }
                None => return None,
            };
            Some(CurvePoint {
                pair: a.pair.clone(),
                label: label.to_string(),
                step,
                map: a.map,
                ndcg_10: a.ndcg_10,
            })
        })
        .collect();
    out.sort_by(|x, y| (&x.pair, &x.label, x.step).cmp(&(&y.pair, &y.label, y.step)));
    out
}

/// The series `(pair, label)` of `points`, in order.
fn series(points: &[CurvePoint]) -> Vec<(&str, &str)> {
    let mut s: Vec<(&str, &str)> = Vec::new();
    for p in points {
        if !s.contains(&(p.pair.as_str(), p.label.as_str())) {
            s.push((p.pair.as_str(), p.label.as_str()));
        }
    }
    s
}

/// A table: one row per (pair, label), `MAP / nDCG@10` per step (means over seeds).
pub fn markdown(points: &[CurvePoint]) -> String {
    let mut steps: Vec<usize> = points.iter().map(|p| p.step).collect();
    steps.sort_unstable();
    steps.dedup();
    let mut md = String::from("| pair | method |");
    for s in &steps {
        md.push_str(&format!(" step {s} |"));
    }
    md.push_str("\n|---|---|");
    md.push_str(&"---:|".repeat(steps.len()));
    md.push('\n');
    for (pair, label) in series(points) {
        md.push_str(&format!("| {pair} | {label} |"));
        for s in &steps {
            match points
                .iter()
                .find(|p| p.pair == pair && p.label == label && p.step == *s)
            {
                Some(p) => md.push_str(&format!(" {:.4} / {:.4} |", p.map, p.ndcg_10)),
                None => md.push_str(" |"),
            }
        }
        md.push('\n');
    }
    md
}

/// A line chart of MAP against steps, one line per (pair, label).
pub fn svg(points: &[CurvePoint]) -> String {
    const PALETTE: [&str; 8] = [
        "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#9c755f",
    ];
    let (left, top, w, h, legend) = (60.0, 30.0, 420.0, 240.0, 200.0);
    let max_step = points.iter().map(|p| p.step).max().unwrap_or(1).max(1) as f64;
    let max_map = points.iter().map(|p| p.map).fold(0.0, f64::max).max(1e-6) * 1.1;
    let x = |s: usize| left + w * s as f64 / max_step;
    let y = |m: f64| top + h * (1.0 - m / max_map);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" font-family=\"sans-serif\" font-size=\"11\">\n",
        left + w + 20.0 + legend,
        top + h + 40.0
    );
    svg.push_str(&format!(
        "<line x1=\"{left}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>\n<line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{}\" stroke=\"black\"/>\n",
        top + h,
        left + w,
        top + h,
        top + h
    ));
    svg.push_str(&format!(
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">step</text>\n<text x=\"12\" y=\"{}\" transform=\"rotate(-90 12 {})\" text-anchor=\"middle\">MAP</text>\n",
        left + w / 2.0,
        top + h + 32.0,
        top + h / 2.0,
        top + h / 2.0
    ));
    for t in 0..=4 {
        let m = max_map * t as f64 / 4.0;
        svg.push_str(&format!(
            "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{m:.3}</text>\n",
            left - 4.0,
            y(m) + 4.0
        ));
    }
    let mut ticks: Vec<usize> = points.iter().map(|p| p.step).collect();
    ticks.sort_unstable();
    ticks.dedup();
    for s in ticks {
        svg.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{s}</text>\n",
            x(s),
            top + h + 14.0
        ));
    }
    for (i, (pair, label)) in series(points).into_iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        let line: Vec<String> = points
            .iter()
            .filter(|p| p.pair == pair && p.label == label)
            .map(|p| format!("{:.1},{:.1}", x(p.step), y(p.map)))
            .collect();
        svg.push_str(&format!(
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>\n",
            line.join(" ")
        ));
        for pt in &line {
            let (cx, cy) = pt.split_once(',').expect("x,y");
            svg.push_str(&format!(
                "<circle cx=\"{cx}\" cy=\"{cy}\" r=\"3\" fill=\"{colour}\"/>\n"
            ));
        }
        let ly = top + 14.0 * i as f64;
        svg.push_str(&format!(
            "<rect x=\"{}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{colour}\"/><text x=\"{}\" y=\"{}\">{} {}</text>\n",
            left + w + 20.0,
            ly,
            left + w + 34.0,
            ly + 9.0,
            xml(pair),
            xml(label)
        ));
    }
    svg.push_str("</svg>\n");
    svg
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agg(pair: &str, method: &str, map: f64) -> Aggregate {
        Aggregate {
            pair: pair.into(),
            method: method.into(),
            seeds: vec![42],
            map,
            ndcg_10: map * 2.0,
            mrr_10: 0.0,
            seed_sd: None,
            per_query: Vec::new(),
            collection: String::new(),
        }
    }

    #[test]
    fn curve_points_join_the_snapshots_and_the_final_cell() {
        let aggs = [
            agg("sw", "zero-shot", 0.05),
            agg("sw", "optical", 0.30),
            agg("sw", "optical@50", 0.10),
            agg("sw", "optical@100", 0.20),
            agg("sw", "mse", 0.25),
        ];
        let pts = points(&aggs, |l| (l == "optical").then_some(150));
        let got: Vec<(usize, f64)> = pts.iter().map(|p| (p.step, p.map)).collect();
        assert_eq!(got, [(50, 0.10), (100, 0.20), (150, 0.30)]);
        let md = markdown(&pts);
        assert!(md.contains("| step 50 | step 100 | step 150 |"), "{md}");
        assert!(
            md.contains("| sw | optical | 0.1000 / 0.2000 | 0.2000 / 0.4000 | 0.3000 / 0.6000 |"),
            "{md}"
        );
        let svg = svg(&pts);
        assert!(
            svg.contains("<polyline") && svg.matches("<circle").count() == 3,
            "{svg}"
        );
    }
}
