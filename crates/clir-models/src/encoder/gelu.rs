//! The exact (erf-based) GELU, `GELU(x) = ½ x (1 + erf(x / √2))`, with fused CPU kernels.
//!
//! burn's flex backend evaluates GELU (and its gradient) element by element with a scalar
//! `libm::erff` on one thread; profiling showed that to be ~30 % of e5-small's forward pass
//! (`cargo xtask bench encode`) and ~15 % of a training step. On flex, [`gelu`] instead runs
//! a branch-free erf that the compiler vectorises, split across rayon's threads:
//! - without autodiff, on a tensor that owns its contiguous buffer: in place;
//! - under autodiff (no gradient checkpointing): as its own autodiff operation whose backward
//!   pass computes `∂GELU/∂x = Φ(x) + x φ(x)` with the same kernels.
//!
//! Everywhere else (wgpu, tch, ndarray, checkpointing, strided tensors) it calls burn's `gelu`.
//!
//! The erf is Abramowitz & Stegun 7.1.26, `erf(a) = 1 − (a₁t + a₂t² + a₃t³ + a₄t⁴ + a₅t⁵)
//! e^{−a²}` with `t = 1/(1 + p a)` for `a = |x| ≥ 0` (odd extension for `x < 0`), whose
//! absolute error is below 1.5e-7; it is evaluated in f64, with `e^{−a²}` from a range
//! reduction to `2ⁿ e^r` and a degree-10 Taylor polynomial. The tests bound the error against
//! an independent f64 erf and compare values and gradients with burn's libm-based GELU.

use burn::prelude::*;

/// `½ x (1 + erf(x / √2))`, fused on the flex backend when possible (see the module docs).
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    #[cfg(feature = "flex")]
    return flex::gelu(x);
    #[cfg(not(feature = "flex"))]
    burn::tensor::activation::gelu(x)
}

/// Branch-free `e^y` for `y ≤ 0` in f64 (inputs below −700 return a value below 2⁻¹⁰⁰⁹, ≈ 0).
///
/// `y = n ln 2 + r` with `n` rounded to nearest by the 1.5·2⁵² shift (the sum's low mantissa
/// bits then hold `n`, so `2ⁿ` is built with integer adds and shifts, which vectorise even
/// without SSE4.1 or AVX-512), and `e^r` by Taylor to `r¹⁰/10!` (truncation < 3e-12 relative
/// for `|r| ≤ ln2 / 2`).
#[inline(always)]
fn exp_nonpositive(y: f64) -> f64 {
    const SHIFT: f64 = 6_755_399_441_055_744.0; // 1.5 · 2⁵²
    let y = y.max(-700.0);
    let shifted = y * std::f64::consts::LOG2_E + SHIFT;
    let n = shifted - SHIFT;
    let r = y - n * std::f64::consts::LN_2;
    let mut p = 1.0 / 3_628_800.0;
    for k in (0..=9).rev() {
        p = p * r + 1.0 / FACTORIALS[k];
    }
    // bits(shifted) = bits(SHIFT) + n, so the exponent field of 2ⁿ is (that − bits(SHIFT) + 1023)
    let exponent = shifted
        .to_bits()
        .wrapping_sub(SHIFT.to_bits())
        .wrapping_add(1023);
    p * f64::from_bits(exponent << 52)
}

/// k! for k = 0..=9.
const FACTORIALS: [f64; 10] = [
    1.0, 1.0, 2.0, 6.0, 24.0, 120.0, 720.0, 5040.0, 40320.0, 362_880.0,
];

/// [`erf_as_f64`] rounded to f32.
#[cfg(test)]
fn erf_as(x: f32) -> f32 {
    erf_as_f64(x as f64) as f32
}

/// erf by Abramowitz & Stegun 7.1.26 (absolute error < 1.5e-7), branch-free, evaluated in
/// f64 so that rounding adds nothing visible in an f32 result.
#[inline(always)]
fn erf_as_f64(x: f64) -> f64 {
    const P: f64 = 0.327_591_1;
    const A1: f64 = 0.254_829_592;
    const A2: f64 = -0.284_496_736;
    const A3: f64 = 1.421_413_741;
    const A4: f64 = -1.453_152_027;
    const A5: f64 = 1.061_405_429;
    let a = x.abs();
    let t = 1.0 / (1.0 + P * a);
    let poly = ((((A5 * t + A4) * t + A3) * t + A2) * t + A1) * t;
    let e = 1.0 - poly * exp_nonpositive(-a * a);
    e.copysign(x)
}

/// GELU of one value through [`erf_as_f64`].
#[inline(always)]
pub(crate) fn gelu_scalar(x: f32) -> f32 {
    let x = x as f64;
    (0.5 * x * (1.0 + erf_as_f64(x * std::f64::consts::FRAC_1_SQRT_2))) as f32
}

/// `g · ∂GELU/∂x = g (Φ(x) + x φ(x))` with `Φ(x) = ½(1 + erf(x/√2))`, `φ(x) = e^{−x²/2}/√(2π)`.
#[inline(always)]
pub(crate) fn gelu_grad_scalar(x: f32, g: f32) -> f32 {
    const INV_SQRT_2PI: f64 = 0.398_942_280_401_432_7;
    let x = x as f64;
    let cdf = 0.5 * (1.0 + erf_as_f64(x * std::f64::consts::FRAC_1_SQRT_2));
    let pdf = INV_SQRT_2PI * exp_nonpositive(-0.5 * x * x);
    (g as f64 * (cdf + x * pdf)) as f32
}

/// Values per rayon task.
const CHUNK: usize = 1 << 14;

/// In-place GELU over a slice, split across rayon's threads.
pub fn gelu_slice(values: &mut [f32]) {
    use rayon::prelude::*;
    values.par_chunks_mut(CHUNK).for_each(|c| {
        run_vectorised(c, &[], |v: &mut [f32], _: &[f32]| {
            v.iter_mut().for_each(|v| *v = gelu_scalar(*v))
        })
    });
}

/// `grad ← grad · ∂GELU/∂x` elementwise, split across rayon's threads.
pub fn gelu_backward_slice(x: &[f32], grad: &mut [f32]) {
    use rayon::prelude::*;
    assert_eq!(
        x.len(),
        grad.len(),
        "GELU backward: input and gradient sizes"
    );
    grad.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK))
        .for_each(|(g, x)| {
            run_vectorised(g, x, |g: &mut [f32], x: &[f32]| {
                g.iter_mut()
                    .zip(x)
                    .for_each(|(g, &x)| *g = gelu_grad_scalar(x, *g))
            })
        });
}

/// Runs `kernel` compiled for AVX2 where the CPU has it (same arithmetic and no FMA
/// contraction, so the same bits as the baseline build), the baseline build otherwise.
#[inline(always)]
fn run_vectorised<K: Fn(&mut [f32], &[f32])>(out: &mut [f32], input: &[f32], kernel: K) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 is present on this CPU (checked just above).
        unsafe { run_avx2(out, input, kernel) };
        return;
    }
    kernel(out, input)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn run_avx2<K: Fn(&mut [f32], &[f32])>(out: &mut [f32], input: &[f32], kernel: K) {
    kernel(out, input)
}

#[cfg(feature = "flex")]
mod flex {
    use burn::tensor::{DType, TensorData};
    use burn_dispatch::backends::autodiff::checkpoint::base::Checkpointer;
    use burn_dispatch::backends::autodiff::checkpoint::strategy::NoCheckpointing;
    use burn_dispatch::backends::autodiff::grads::Gradients;
    use burn_dispatch::backends::autodiff::ops::{Backward, Ops, OpsKind, unary};
    use burn_dispatch::backends::flex::FlexTensor;
    use burn_dispatch::backends::{Autodiff, Flex};
    use burn_dispatch::{
        BackendTensor, DispatchAutodiffContext, DispatchTensor, DispatchTensorKind,
        GradientCheckpointingStrategy,
    };

    use super::*;

    /// Calls that took a fused path (in place, autodiff forward, autodiff backward), so the
    /// tests can tell the fused kernels ran rather than burn's fallback.
    #[cfg(test)]
    pub(super) static FUSED: [std::sync::atomic::AtomicUsize; 3] =
        [const { std::sync::atomic::AtomicUsize::new(0) }; 3];

    fn count(_path: usize) {
        #[cfg(test)]
        FUSED[_path].fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// The fused GELU where it applies (see the module docs), burn's `gelu` otherwise.
    pub(super) fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
        let fallback = burn::tensor::activation::gelu;
        match x.into_dispatch() {
            DispatchTensor {
                kind: DispatchTensorKind::Flex(BackendTensor::Float(mut t)),
                autodiff: DispatchAutodiffContext::Disabled,
            } if dense(&t) && t.is_unique() => {
                let n = t.layout().num_elements();
                match t.try_storage_mut::<f32>() {
                    Some(values) => {
                        gelu_slice(&mut values[..n]);
                        count(0);
                        plain(t)
                    }
                    None => fallback(plain(t)),
                }
            }
            DispatchTensor {
                kind: DispatchTensorKind::Autodiff(inner),
                autodiff:
                    context @ DispatchAutodiffContext::Enabled(GradientCheckpointingStrategy::Disabled),
            } => match *inner {
                DispatchTensorKind::Flex(BackendTensor::Autodiff(t)) if dense(t.primitive()) => {
                    tracked(fused_tracked(t), context)
                }
                other => fallback(Tensor::from_dispatch(DispatchTensor {
                    kind: DispatchTensorKind::Autodiff(Box::new(other)),
                    autodiff: context,
                })),
            },
            other => fallback(Tensor::from_dispatch(other)),
        }
    }

    /// f32, contiguous from the start of its buffer.
    fn dense(t: &FlexTensor) -> bool {
        t.dtype() == DType::F32 && t.layout().is_contiguous() && t.layout().start_offset() == 0
    }

    fn values(t: &FlexTensor) -> &[f32] {
        &t.storage::<f32>()[..t.layout().num_elements()]
    }

    fn plain<const D: usize>(t: FlexTensor) -> Tensor<D> {
        Tensor::from_dispatch(DispatchTensor {
            kind: DispatchTensorKind::Flex(BackendTensor::Float(t)),
            autodiff: DispatchAutodiffContext::Disabled,
        })
    }

    /// burn_autodiff's tensor over flex (its type is only reachable through the alias).
    type AutodiffFlexTensor = burn_backend::tensor::FloatTensor<Autodiff<Flex>>;

    fn tracked<const D: usize>(
        t: AutodiffFlexTensor,
        context: DispatchAutodiffContext,
    ) -> Tensor<D> {
        Tensor::from_dispatch(DispatchTensor {
            kind: DispatchTensorKind::Autodiff(Box::new(DispatchTensorKind::Flex(
                BackendTensor::Autodiff(t),
            ))),
            autodiff: context,
        })
    }

    /// GELU as an autodiff operation of its own; the backward state is the input.
    #[derive(Debug)]
    struct FusedGeluBackward;

    impl Backward<Flex, 1> for FusedGeluBackward {
        type State = FlexTensor;

        fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
            let input = ops.state;
            unary::<Flex, _>(ops.parents, ops.node, grads, |grad| backward(&input, grad));
        }
    }

    fn fused_tracked(t: AutodiffFlexTensor) -> AutodiffFlexTensor {
        let input = t.primitive().clone();
        let mut out = values(&input).to_vec();
        gelu_slice(&mut out);
        count(1);
        let output = FlexTensor::from_data(TensorData::new(out, input.layout().shape().clone()));
        match FusedGeluBackward
            .prepare::<NoCheckpointing>([t.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(input, output),
            OpsKind::UnTracked(prep) => prep.finish(output),
        }
    }

    /// `grad · ∂GELU/∂x`, in the gradient's buffer when it owns one.
    fn backward(input: &FlexTensor, mut grad: FlexTensor) -> FlexTensor {
        count(2);
        let shape = input.layout().shape().clone();
        if dense(&grad) && grad.layout().shape() == &shape {
            let n = shape.num_elements();
            if let Some(g) = grad.try_storage_mut::<f32>() {
                gelu_backward_slice(values(input), &mut g[..n]);
                return grad;
            }
        }
        let mut g: Vec<f32> = grad
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .expect("an f32 gradient");
        gelu_backward_slice(values(input), &mut g);
        FlexTensor::from_data(TensorData::new(g, shape))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference GELU in f64 through [`reference_erf`] (independent of libm and of the kernel).
    fn gelu_f64(x: f64) -> f64 {
        0.5 * x * (1.0 + reference_erf(x / std::f64::consts::SQRT_2))
    }

    /// erf in f64 via its Maclaurin series (|x| ≤ 3) or continued fraction of erfc (|x| > 3):
    /// an independent reference accurate to ~1e-15 on the tested range.
    fn reference_erf(x: f64) -> f64 {
        let a = x.abs();
        let v = if a <= 3.0 {
            // erf(a) = 2/√π Σ (−1)ⁿ a^{2n+1} / (n! (2n+1))
            let mut term = a;
            let mut sum = a;
            let mut n = 0.0;
            loop {
                n += 1.0;
                term *= -a * a / n;
                let add = term / (2.0 * n + 1.0);
                sum += add;
                if add.abs() < 1e-18 {
                    break;
                }
            }
            sum * 2.0 / std::f64::consts::PI.sqrt()
        } else {
            // erfc(a) = e^{−a²}/√π · 1/(a + ½/(a + 1/(a + 3/2/(a + …))))
            let mut f = a;
            for k in (1..60).rev() {
                f = a + (k as f64 / 2.0) / f;
            }
            1.0 - (-a * a).exp() / (std::f64::consts::PI.sqrt() * f)
        };
        v.copysign(x)
    }

    #[test]
    fn erf_within_abramowitz_stegun_bound() {
        let mut worst = 0.0f64;
        for i in -80_000..=80_000 {
            let x = i as f32 * 1e-4; // [-8, 8]
            let err = (erf_as(x) as f64 - reference_erf(x as f64)).abs();
            worst = worst.max(err);
        }
        // A&S bound 1.5e-7 plus the final rounding to f32
        assert!(worst < 2e-7, "max |erf error| = {worst:e}");
    }

    #[test]
    fn gelu_matches_f64_reference_and_limits() {
        let mut worst = 0.0f64;
        for i in -200_000..=200_000 {
            let x = i as f32 * 1e-4; // [-20, 20]
            let err = (gelu_scalar(x) as f64 - gelu_f64(x as f64)).abs();
            worst = worst.max(err / (1.0 + (x as f64).abs()));
        }
        assert!(worst < 2e-7, "max scaled |GELU error| = {worst:e}");
        assert_eq!(gelu_scalar(0.0), 0.0);
        assert_eq!(gelu_scalar(-100.0), 0.0);
        assert_eq!(gelu_scalar(100.0), 100.0);
        assert!(
            gelu_scalar(f32::NAN).is_nan(),
            "NaN must propagate, not vanish"
        );
    }

    #[test]
    fn fused_path_matches_burn_gelu_on_every_layout() {
        let device = Device::flex();
        let values: Vec<f32> = (0..3 * 5 * 7).map(|i| (i as f32 - 50.0) * 0.173).collect();
        let make = || Tensor::<3>::from_data(TensorData::new(values.clone(), [3, 5, 7]), &device);
        let reference: Vec<f32> = burn::tensor::activation::gelu(make())
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let fused: Vec<f32> = gelu(make()).into_data().try_to_vec::<f32>().unwrap();
        // a shared buffer (the original stays alive) and a strided view take burn's path
        let shared_src = make();
        let shared: Vec<f32> = gelu(shared_src.clone())
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let src_after: Vec<f32> = shared_src.into_data().try_to_vec::<f32>().unwrap();
        let strided: Vec<f32> = gelu(make().swap_dims(0, 2))
            .swap_dims(0, 2)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        for (name, got) in [
            ("fused", &fused),
            ("shared", &shared),
            ("strided", &strided),
        ] {
            for (a, b) in got.iter().zip(&reference) {
                assert!(
                    (a - b).abs() <= 1e-6 * (1.0 + b.abs()),
                    "{name}: {a} vs {b}"
                );
            }
        }
        assert_eq!(
            src_after, values,
            "an input still in use must not be overwritten"
        );
    }

    fn fused_calls(path: usize) -> usize {
        flex::FUSED[path].load(std::sync::atomic::Ordering::SeqCst)
    }

    #[test]
    fn in_place_path_runs_without_autodiff() {
        let before = fused_calls(0);
        let x = Tensor::<2>::from_data(TensorData::new(vec![0.5f32; 6], [2, 3]), &Device::flex());
        let y: Vec<f32> = gelu(x).into_data().try_to_vec::<f32>().unwrap();
        assert!((y[0] - gelu_f64(0.5) as f32).abs() < 1e-7);
        assert!(fused_calls(0) > before, "the in-place kernel did not run");
    }

    /// Values and gradients of `Σ w ⊙ GELU(x)` (a non-uniform upstream gradient) against
    /// burn's own GELU, and the gradient against `Φ(x) + x φ(x)` in f64.
    #[test]
    fn autodiff_path_matches_burn_values_and_gradients() {
        let device = Device::flex().autodiff();
        let xs: Vec<f32> = (0..4 * 9).map(|i| (i as f32 - 17.0) * 0.31).collect();
        let ws: Vec<f32> = (0..4 * 9).map(|i| 1.0 + (i % 5) as f32 * 0.25).collect();
        let w = Tensor::<2>::from_data(TensorData::new(ws.clone(), [4, 9]), &device);
        let run = |fused: bool| {
            let x =
                Tensor::<2>::from_data(TensorData::new(xs.clone(), [4, 9]), &device).require_grad();
            let y = if fused {
                gelu(x.clone())
            } else {
                burn::tensor::activation::gelu(x.clone())
            };
            let values: Vec<f32> = y.clone().into_data().try_to_vec::<f32>().unwrap();
            let grads = (y * w.clone()).sum().backward();
            let g: Vec<f32> = x
                .grad(&grads)
                .unwrap()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap();
            (values, g)
        };
        let (forward_before, backward_before) = (fused_calls(1), fused_calls(2));
        let (v_fused, g_fused) = run(true);
        assert!(
            fused_calls(1) > forward_before,
            "the fused autodiff forward did not run"
        );
        assert!(
            fused_calls(2) > backward_before,
            "the fused backward did not run"
        );
        let (v_burn, g_burn) = run(false);
        for i in 0..xs.len() {
            assert!((v_fused[i] - v_burn[i]).abs() <= 1e-6 * (1.0 + v_burn[i].abs()));
            assert!((g_fused[i] - g_burn[i]).abs() <= 1e-6 * (1.0 + g_burn[i].abs()));
            let x = xs[i] as f64;
            let cdf = 0.5 * (1.0 + reference_erf(x / std::f64::consts::SQRT_2));
            let pdf = (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
            let exact = ws[i] as f64 * (cdf + x * pdf);
            assert!(
                (g_fused[i] as f64 - exact).abs() < 1e-6 * (1.0 + exact.abs()),
                "grad at {x}: {} vs {exact}",
                g_fused[i]
            );
        }
    }

    #[test]
    fn untracked_input_on_an_autodiff_device() {
        let device = Device::flex().autodiff();
        let x = Tensor::<1>::from_data(TensorData::new(vec![-1.0f32, 0.25, 3.0], [3]), &device);
        let y: Vec<f32> = gelu(x).into_data().try_to_vec::<f32>().unwrap();
        for (x, y) in [-1.0f64, 0.25, 3.0].iter().zip(&y) {
            assert!(
                (*y as f64 - gelu_f64(*x)).abs() < 2e-7 * (1.0 + x.abs()),
                "{x}: {y}"
            );
        }
    }
}
