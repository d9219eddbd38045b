//! Writes a demo report (Markdown, CSV, JSON, SVG) from seeded synthetic per-query scores:
//! `cargo run -p clir-eval --example report_demo -- OUT_DIR`.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use clir_eval::report::{PerQuery, ResultsTable, SigTest};

fn main() -> anyhow::Result<()> {
    let out = std::path::PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "target/report-demo".into()),
    );
    std::fs::create_dir_all(&out)?;
    let methods: Vec<String> = ["mBERT", "XLM-R", "OPTICAL"].map(String::from).to_vec();
    let languages: Vec<String> = ["sw", "so", "fi", "de", "fr"].map(String::from).to_vec();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut pq = PerQuery::new();
    for (mi, m) in methods.iter().enumerate() {
        for (li, l) in languages.iter().enumerate() {
            let base = 0.25 + 0.04 * li as f64 + 0.05 * mi as f64;
            let v = (0..50)
                .map(|q| {
                    (
                        format!("q{q}"),
                        (base + rng.random_range(-0.2..0.2f64)).clamp(0.0, 1.0),
                    )
                })
                .collect();
            pq.insert((m.clone(), l.clone()), v);
        }
    }
    let t = ResultsTable::from_per_query(
        "nDCG@10",
        methods,
        languages,
        &pq,
        Some("mBERT"),
        SigTest::TTest,
        0.05,
    )?;
    std::fs::write(out.join("ndcg10.md"), t.to_markdown())?;
    t.write_csv(std::fs::File::create(out.join("ndcg10.csv"))?)?;
    std::fs::write(out.join("ndcg10.json"), t.to_json()?)?;
    std::fs::write(out.join("ndcg10.svg"), t.to_svg())?;
    print!("{}", t.to_markdown());
    Ok(())
}
