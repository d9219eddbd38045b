//! Blocked dense top-k equals brute force (exact f64 scoring, full sort) whatever the blocking.

use clir_eval::dense::{
    DenseConfig, Matrix, Similarity, dense_top_k, dense_top_k_naive, hits_to_run, write_trec_run,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn random(rows: usize, dim: usize, seed: u64, integer: bool) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..rows * dim)
        .map(|_| {
            if integer {
                rng.random_range(-2i32..=2) as f32 // small integers: many exact score ties
            } else {
                rng.random_range(-1.0f32..1.0)
            }
        })
        .collect()
}

#[test]
fn blocked_equals_brute_force_with_ties() {
    let (nq, nd, dim) = (37, 301, 8);
    let q = random(nq, dim, 1, true);
    let d = random(nd, dim, 2, true);
    let qm = Matrix::new(&q, nq, dim, "q").unwrap();
    let dm = Matrix::new(&d, nd, dim, "d").unwrap();
    let want = dense_top_k_naive(qm, dm, 10, Similarity::Dot);
    for (qb, db) in [(1, 1), (5, 17), (64, 64), (128, 2048)] {
        let cfg = DenseConfig {
            query_block: qb,
            doc_block: db,
            ..DenseConfig::new(10, Similarity::Dot)
        };
        assert_eq!(dense_top_k(qm, dm, &cfg).unwrap(), want, "blocks {qb}x{db}");
    }
}

#[test]
fn cosine_matches_brute_force() {
    let (nq, nd, dim) = (20, 500, 24);
    let q = random(nq, dim, 3, false);
    let d = random(nd, dim, 4, false);
    let qm = Matrix::new(&q, nq, dim, "q").unwrap();
    let dm = Matrix::new(&d, nd, dim, "d").unwrap();
    let want = dense_top_k_naive(qm, dm, 7, Similarity::Cosine);
    let cfg = DenseConfig {
        doc_block: 64,
        ..DenseConfig::new(7, Similarity::Cosine)
    };
    let got = dense_top_k(qm, dm, &cfg).unwrap();
    for (g, w) in got.iter().zip(&want) {
        let gd: Vec<usize> = g.iter().map(|h| h.doc).collect();
        let wd: Vec<usize> = w.iter().map(|h| h.doc).collect();
        assert_eq!(gd, wd);
        for (a, b) in g.iter().zip(w) {
            assert!((a.score - b.score).abs() < 1e-5);
        }
    }
}

#[test]
fn k_larger_than_collection_returns_everything_sorted() {
    let d = [1.0f32, 0.0, 0.0, 1.0, 1.0, 1.0];
    let q = [1.0f32, 2.0];
    let hits = dense_top_k(
        Matrix::new(&q, 1, 2, "q").unwrap(),
        Matrix::new(&d, 3, 2, "d").unwrap(),
        &DenseConfig::new(10, Similarity::Dot),
    )
    .unwrap();
    let docs: Vec<(usize, f32)> = hits[0].iter().map(|h| (h.doc, h.score)).collect();
    assert_eq!(docs, [(2, 3.0), (1, 2.0), (0, 1.0)]);
}

#[test]
fn bad_matrices_are_rejected() {
    assert!(Matrix::new(&[1.0, 2.0, 3.0], 2, 2, "q").is_err());
    let e = Matrix::new(&[1.0, f32::NAN], 1, 2, "docs")
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "invalid input: docs: non-finite value NaN at row 0, column 1"
    );
    let z = [0.0f32, 0.0];
    let q = [1.0f32, 0.0];
    let e = dense_top_k(
        Matrix::new(&q, 1, 2, "q").unwrap(),
        Matrix::new(&z, 1, 2, "d").unwrap(),
        &DenseConfig::new(1, Similarity::Cosine),
    )
    .unwrap_err();
    assert!(e.to_string().contains("row 0 has zero norm"), "{e}");
    let q3 = [1.0f32, 0.0, 0.0];
    assert!(
        dense_top_k(
            Matrix::new(&q3, 1, 3, "q").unwrap(),
            Matrix::new(&q, 1, 2, "d").unwrap(),
            &DenseConfig::new(1, Similarity::Dot)
        )
        .is_err()
    );
}

#[test]
fn trec_run_round_trips_through_the_evaluator() {
    let d = [1.0f32, 0.0, 0.0, 1.0, 0.5, 0.5];
    let q = [1.0f32, 0.0, 0.0, 1.0];
    let hits = dense_top_k(
        Matrix::new(&q, 2, 2, "q").unwrap(),
        Matrix::new(&d, 3, 2, "d").unwrap(),
        &DenseConfig::new(2, Similarity::Dot),
    )
    .unwrap();
    let qids = vec!["qa".to_string(), "qb".to_string()];
    let docids = vec!["d0".to_string(), "d1".to_string(), "d2".to_string()];
    let mut out = Vec::new();
    write_trec_run(&mut out, &hits, &qids, &docids, "dense").unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(
        text,
        "qa Q0 d0 1 1 dense\nqa Q0 d2 2 0.5 dense\nqb Q0 d1 1 1 dense\nqb Q0 d2 2 0.5 dense\n"
    );
    let parsed = clir_eval::Run::parse(&text, "mem").unwrap();
    assert_eq!(parsed, hits_to_run(&hits, &qids, &docids).unwrap());
    assert!(hits_to_run(&hits, &qids[..1], &docids).is_err());
    assert!(write_trec_run(Vec::new(), &hits, &qids, &docids[..1], "x").is_err());
}
