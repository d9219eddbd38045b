//! The encoder, pooling and scoring heads on tiny random configurations, checked against a
//! plain host implementation written out loop by loop below.

mod common;

use burn::prelude::*;
use clir_models::encoder::Encoder;
use clir_models::pooling::{Pooling, l2_normalize, pool};
use clir_models::scoring::{
    cosine_scores, dot_scores, late_interaction, late_interaction_matrix, paired_dot,
};
use clir_models::{EncoderConfig, TokenBatch};
use common::*;

// ----------------------------------------------------------------- host reference forward
struct Lin {
    w: Vec<f32>, // [in, out]
    b: Vec<f32>,
    d_in: usize,
    d_out: usize,
}

impl Lin {
    fn of(l: &burn::nn::Linear) -> Self {
        let [d_in, d_out] = l.weight.dims();
        Lin {
            w: to_vec(l.weight.val()),
            b: to_vec(l.bias.as_ref().unwrap().val()),
            d_in,
            d_out,
        }
    }
    fn apply(&self, x: &[f32]) -> Vec<f32> {
        let rows = x.len() / self.d_in;
        let mut y = vec![0.0; rows * self.d_out];
        for r in 0..rows {
            for o in 0..self.d_out {
                let mut s = self.b[o] as f64;
                for i in 0..self.d_in {
                    s += x[r * self.d_in + i] as f64 * self.w[i * self.d_out + o] as f64;
                }
                y[r * self.d_out + o] = s as f32;
            }
        }
        y
    }
}

fn ln(x: &mut [f32], norm: &burn::nn::LayerNorm, eps: f64) {
    let g = to_vec(norm.gamma.val());
    let b = to_vec(norm.beta.as_ref().unwrap().val());
    let d = g.len();
    for row in x.chunks_mut(d) {
        let mean = row.iter().map(|&v| v as f64).sum::<f64>() / d as f64;
        let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / d as f64;
        for (i, v) in row.iter_mut().enumerate() {
            *v = (((*v as f64 - mean) / (var + eps).sqrt()) * g[i] as f64 + b[i] as f64) as f32;
        }
    }
}

fn erf(x: f64) -> f64 {
    // Abramowitz & Stegun 7.1.26 is too coarse; use the series / continued fraction split.
    if x.abs() < 2.5 {
        let mut sum = x;
        let mut term = x;
        let x2 = x * x;
        for n in 1..80 {
            term *= -x2 / n as f64;
            sum += term / (2 * n + 1) as f64;
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    } else {
        let t = 1.0 / (1.0 + 0.5 * x.abs());
        let y = 1.0
            - t * (-x * x - 1.26551223
                + t * (1.00002368
                    + t * (0.37409196
                        + t * (0.09678418
                            + t * (-0.18628806
                                + t * (0.27886807
                                    + t * (-1.13520398
                                        + t * (1.48851587
                                            + t * (-0.82215223 + t * 0.17087277)))))))))
                .exp();
        y.copysign(x)
    }
}

/// Last-layer states of one unpadded sequence, computed on the host.
fn host_forward(enc: &Encoder, cfg: &EncoderConfig, ids: &[usize]) -> Vec<f32> {
    let d = cfg.hidden_size;
    let l = ids.len();
    let word = to_vec(enc.embeddings.word.weight.val());
    let pos = to_vec(enc.embeddings.position.weight.val());
    let typ = to_vec(enc.embeddings.token_type.weight.val());
    let mut x = vec![0.0f32; l * d];
    for (t, &id) in ids.iter().enumerate() {
        for k in 0..d {
            x[t * d + k] = word[id * d + k] + pos[(t + cfg.position_offset) * d + k] + typ[k];
        }
    }
    ln(&mut x, &enc.embeddings.norm, cfg.layer_norm_eps);
    let nh = cfg.num_heads;
    let hd = d / nh;
    for layer in &enc.layers {
        let a = &layer.attention;
        let (q, k, v) = (
            Lin::of(&a.query).apply(&x),
            Lin::of(&a.key).apply(&x),
            Lin::of(&a.value).apply(&x),
        );
        let mut ctx = vec![0.0f32; l * d];
        for h in 0..nh {
            for i in 0..l {
                let s: Vec<f64> = (0..l)
                    .map(|j| {
                        (0..hd)
                            .map(|e| q[i * d + h * hd + e] as f64 * k[j * d + h * hd + e] as f64)
                            .sum::<f64>()
                            / (hd as f64).sqrt()
                    })
                    .collect();
                let m = s.iter().cloned().fold(f64::MIN, f64::max);
                let z: f64 = s.iter().map(|v| (v - m).exp()).sum();
                for e in 0..hd {
                    ctx[i * d + h * hd + e] = (0..l)
                        .map(|j| (s[j] - m).exp() / z * v[j * d + h * hd + e] as f64)
                        .sum::<f64>() as f32;
                }
            }
        }
        let o = Lin::of(&a.output).apply(&ctx);
        for (xi, oi) in x.iter_mut().zip(&o) {
            *xi += oi;
        }
        ln(&mut x, &a.norm, cfg.layer_norm_eps);
        let f = &layer.feed_forward;
        let mut inner = Lin::of(&f.intermediate).apply(&x);
        for v in inner.iter_mut() {
            let z = *v as f64;
            *v = (0.5 * z * (1.0 + erf(z / std::f64::consts::SQRT_2))) as f32;
        }
        let o = Lin::of(&f.output).apply(&inner);
        for (xi, oi) in x.iter_mut().zip(&o) {
            *xi += oi;
        }
        ln(&mut x, &f.norm, cfg.layer_norm_eps);
    }
    x
}

fn batch(seqs: &[Vec<u32>]) -> TokenBatch {
    TokenBatch::from_sequences(seqs, 0)
}

#[test]
fn forward_matches_host_reference_and_ignores_padding() {
    let device = flex();
    let cfg = tiny_config()
        .with_position_offset(2)
        .with_layer_norm_eps(1e-5);
    let enc = cfg.init(&device);
    let seqs = vec![
        vec![2u32, 7, 9, 11, 3],
        vec![2, 30, 3],
        vec![2, 5, 6, 7, 8, 9, 10, 3],
    ];
    let b = batch(&seqs);
    let out = enc.forward(b.ids_tensor(&device), b.mask_tensor(&device));
    assert_eq!(out.hidden_states.len(), cfg.num_layers + 1);
    let last = to_vec(out.last());
    let (d, len) = (cfg.hidden_size, b.len);
    for (r, s) in seqs.iter().enumerate() {
        let ids: Vec<usize> = s.iter().map(|&i| i as usize).collect();
        let want = host_forward(&enc, &cfg, &ids);
        let got = &last[r * len * d..(r * len + s.len()) * d];
        let diff = max_abs_diff(got, &want);
        assert!(diff < 1e-4, "row {r}: max |Δ| = {diff}");
    }
    // states of a layer computed alone equal the ones returned by the full forward
    for l in 0..=cfg.num_layers {
        let alone = enc
            .forward_layer(b.ids_tensor(&device), b.mask_tensor(&device), l)
            .unwrap();
        assert!(max_abs_diff(&to_vec(alone), &to_vec(out.layer(l).unwrap())) < 1e-6);
    }
    assert!(out.layer(cfg.num_layers + 1).is_err());
    assert!(
        enc.forward_layer(b.ids_tensor(&device), b.mask_tensor(&device), 3)
            .is_err()
    );
}

#[test]
fn mean_and_cls_pooling_skip_padding() {
    let device = flex();
    let cfg = tiny_config();
    let enc = cfg.init(&device);
    let seqs = vec![vec![2u32, 7, 9, 3], vec![2, 8, 3]];
    let b = batch(&seqs);
    let mask = b.mask_tensor(&device);
    let h = enc.forward_last(b.ids_tensor(&device), mask.clone());
    let hv = to_vec(h.clone());
    let mean = to_vec(pool(h.clone(), mask.clone(), Pooling::Mean));
    let cls = to_vec(pool(h.clone(), mask.clone(), Pooling::Cls));
    let d = cfg.hidden_size;
    for (r, s) in seqs.iter().enumerate() {
        for k in 0..d {
            let want: f32 = (0..s.len())
                .map(|t| hv[(r * b.len + t) * d + k])
                .sum::<f32>()
                / s.len() as f32;
            assert!((mean[r * d + k] - want).abs() < 1e-5);
            assert_eq!(cls[r * d + k], hv[r * b.len * d + k]);
        }
    }
    // the second row padded or alone gives the same pooled vector
    let alone = batch(&seqs[1..]);
    let m2 = alone.mask_tensor(&device);
    let h2 = enc.forward_last(alone.ids_tensor(&device), m2.clone());
    let mean2 = to_vec(pool(h2, m2, Pooling::Mean));
    assert!(max_abs_diff(&mean[d..], &mean2) < 1e-5);
    let n = to_vec(l2_normalize(pool(h, mask, Pooling::Mean)));
    for r in 0..2 {
        let norm: f32 = n[r * d..(r + 1) * d]
            .iter()
            .map(|v| v * v)
            .sum::<f32>()
            .sqrt();
        assert!((norm - 1.0).abs() < 1e-5);
    }
}

fn t2(v: Vec<f32>, shape: [usize; 2]) -> Tensor<2> {
    Tensor::from_data(TensorData::new(v, shape), &flex())
}
fn t3(v: Vec<f32>, shape: [usize; 3]) -> Tensor<3> {
    Tensor::from_data(TensorData::new(v, shape), &flex())
}

#[test]
fn bi_encoder_scores_match_definitions() {
    let (nq, nd, d) = (3, 4, 5);
    let q = seeded(nq * d, 1, 1.0);
    let p = seeded(nd * d, 2, 1.0);
    let dot = to_vec(dot_scores(t2(q.clone(), [nq, d]), t2(p.clone(), [nd, d])));
    let cos = to_vec(cosine_scores(
        t2(q.clone(), [nq, d]),
        t2(p.clone(), [nd, d]),
    ));
    for i in 0..nq {
        for j in 0..nd {
            let a = &q[i * d..(i + 1) * d];
            let b = &p[j * d..(j + 1) * d];
            let want: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
            assert!((dot[i * nd + j] - want).abs() < 1e-5);
            assert!((cos[i * nd + j] - cosine(a, b)).abs() < 1e-5);
        }
    }
    let pd = to_vec(paired_dot(
        t2(q.clone(), [nq, d]),
        t2(p[..nq * d].to_vec(), [nq, d]),
    ));
    for i in 0..nq {
        assert!((pd[i] - dot[i * nd + i]).abs() < 1e-5);
    }
}

#[test]
fn late_interaction_is_sum_of_max_sim_over_real_tokens() {
    let (n, lq, ld, d) = (2, 3, 4, 5);
    let q = seeded(n * lq * d, 3, 1.0);
    let p = seeded(n * ld * d, 4, 1.0);
    let qm = vec![1.0, 1.0, 0.0, 1.0, 1.0, 1.0];
    let dm = vec![1.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0];
    let got = to_vec(late_interaction(
        t3(q.clone(), [n, lq, d]),
        t2(qm.clone(), [n, lq]),
        t3(p.clone(), [n, ld, d]),
        t2(dm.clone(), [n, ld]),
    ));
    let mat = to_vec(late_interaction_matrix(
        t3(q.clone(), [n, lq, d]),
        t2(qm.clone(), [n, lq]),
        t3(p.clone(), [n, ld, d]),
        t2(dm.clone(), [n, ld]),
    ));
    let score = |qi: usize, di: usize| -> f32 {
        let mut s = 0.0;
        for i in 0..lq {
            if qm[qi * lq + i] == 0.0 {
                continue;
            }
            let mut best = f32::MIN;
            for j in 0..ld {
                if dm[di * ld + j] == 0.0 {
                    continue;
                }
                let v: f32 = (0..d)
                    .map(|k| q[(qi * lq + i) * d + k] * p[(di * ld + j) * d + k])
                    .sum();
                best = best.max(v);
            }
            s += best;
        }
        s
    };
    for i in 0..n {
        assert!(
            (got[i] - score(i, i)).abs() < 1e-4,
            "{} vs {}",
            got[i],
            score(i, i)
        );
        for j in 0..n {
            assert!((mat[i * n + j] - score(i, j)).abs() < 1e-4);
        }
    }
}

#[test]
fn invalid_configs_are_rejected() {
    assert!(EncoderConfig::new(10, 15, 1, 4, 8, 8).validate().is_err());
    assert!(EncoderConfig::new(0, 16, 1, 4, 8, 8).validate().is_err());
    assert!(
        EncoderConfig::new(10, 16, 1, 4, 8, 3)
            .with_position_offset(2)
            .validate()
            .is_err()
    );
    assert!(tiny_config().validate().is_ok());
}
