//! Criterion benchmarks: metric evaluation, dense top-k, BM25 search (seeded synthetic data).

use criterion::{Criterion, criterion_group, criterion_main};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use clir_eval::dense::{DenseConfig, Matrix, Similarity, dense_top_k};
use clir_eval::lexical::bm25::{Bm25Index, Bm25Params};
use clir_eval::metrics::{EvalOptions, MeasureSet, evaluate};
use clir_eval::trec::{Qrels, Run};

fn metrics(c: &mut Criterion) {
    let dir = std::env::temp_dir().join("clir-eval-criterion");
    std::fs::create_dir_all(&dir).unwrap();
    let (qp, rp) = clir_eval::bench::write_metric_files(&dir, 500, 1000, 7).unwrap();
    let qrels = Qrels::from_path(&qp).unwrap();
    let run = Run::from_path(&rp).unwrap();
    let ms = MeasureSet::standard();
    c.bench_function("evaluate 500q x 1000d", |b| {
        b.iter(|| evaluate(&qrels, &run, &ms, &EvalOptions::default()).unwrap())
    });
    let text = std::fs::read_to_string(&rp).unwrap();
    c.bench_function("parse run 500q x 1000d", |b| {
        b.iter(|| Run::parse(&text, "run").unwrap())
    });
}

fn dense(c: &mut Criterion) {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let (nq, nd, dim) = (256, 20_000, 384);
    let q: Vec<f32> = (0..nq * dim).map(|_| rng.random_range(-1.0..1.0)).collect();
    let d: Vec<f32> = (0..nd * dim).map(|_| rng.random_range(-1.0..1.0)).collect();
    let qm = Matrix::new(&q, nq, dim, "q").unwrap();
    let dm = Matrix::new(&d, nd, dim, "d").unwrap();
    let mut g = c.benchmark_group("dense");
    g.sample_size(10);
    for sim in [Similarity::Dot, Similarity::Cosine] {
        let cfg = DenseConfig::new(100, sim);
        g.bench_function(format!("top100 {sim:?} 256q x 20000d x 384"), |b| {
            b.iter(|| dense_top_k(qm, dm, &cfg).unwrap())
        });
    }
    g.finish();
}

fn bm25(c: &mut Criterion) {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let word = |rng: &mut ChaCha8Rng| {
        format!(
            "w{}",
            (rng.random_range(0.0f64..1.0).powi(3) * 20_000.0) as u32
        )
    };
    let docs: Vec<String> = (0..20_000)
        .map(|_| {
            (0..60)
                .map(|_| word(&mut rng))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    let ids: Vec<String> = (0..docs.len()).map(|i| format!("d{i}")).collect();
    let idx = Bm25Index::build(&docs, &ids, Bm25Params::default()).unwrap();
    let queries: Vec<String> = (0..200)
        .map(|_| (0..8).map(|_| word(&mut rng)).collect::<Vec<_>>().join(" "))
        .collect();
    let qids: Vec<String> = (0..queries.len()).map(|i| format!("q{i}")).collect();
    c.bench_function("bm25 200q over 20000 docs", |b| {
        b.iter(|| idx.search(&queries, &qids, 100, false).unwrap())
    });
}

criterion_group!(benches, metrics, dense, bm25);
criterion_main!(benches);
