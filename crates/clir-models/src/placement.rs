//! Which device a model runs on: the chosen one, unless that device's own limits cannot hold
//! it.
//!
//! Models are loaded on the host (the CPU default backend) and then placed. A GPU states
//! its limits ([`ot_core::backend::device_limits`]: the largest single buffer, and the
//! memory where its runtime reads one); a model goes to the device when its largest tensor
//! fits a buffer and all its weights fit the memory, and otherwise stays on the host. The
//! decision is one line on stderr naming the limit. On a real GPU e5-small's 250,037 × 384
//! f32 word-embedding table (384 MB) fits; lavapipe's 128 MiB buffers do not hold it, so
//! there the pretrained models stay on the host and trimmed students move.
//!
//! ```
//! use clir_models::EncoderConfig;
//! use clir_models::placement::{Decision, decide};
//! use ot_core::backend::DeviceLimits;
//!
//! let e5 = EncoderConfig::new(250_002, 384, 12, 12, 1536, 512);
//! let lavapipe = DeviceLimits { max_buffer: 128 << 20, max_memory: None };
//! let d = decide("teacher e5-small", &e5, 117_653_760, "wgpu", "flex", Some(lavapipe));
//! assert_eq!(d.decision, Decision::Host);
//! assert!(d.line.contains("exceeds the device's 134.2 MB buffer limit"), "{}", d.line);
//!
//! let gpu = DeviceLimits { max_buffer: 2 << 30, max_memory: Some(80 << 30) };
//! let d = decide("teacher e5-small", &e5, 117_653_760, "wgpu", "flex", Some(gpu));
//! assert_eq!(d.decision, Decision::Device);
//! ```

use burn::module::Module;
use ot_core::backend::{Backend, Device, DeviceLimits, device_limits};

use crate::{Embedder, EncoderConfig};

/// Where a model goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The chosen device.
    Device,
    /// The host (the CPU default backend), because the device cannot hold it.
    Host,
}

/// A decision and the line that says why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub decision: Decision,
    pub line: String,
}

const F32: u64 = 4;

/// The largest tensor of an encoder of this shape: its name and `rows × cols`.
pub fn largest_tensor(c: &EncoderConfig) -> (&'static str, usize, usize) {
    [
        ("word-embedding table", c.vocab_size, c.hidden_size),
        ("position table", c.max_position, c.hidden_size),
        ("feed-forward matrix", c.intermediate_size, c.hidden_size),
    ]
    .into_iter()
    .max_by_key(|&(_, r, k)| r * k)
    .expect("three candidates")
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// Whether a model of shape `c` with `params` f32 parameters fits a device with `limits`
/// (`None`: a host backend, which states none). `what` names the model, `device` and `host`
/// the two backends, for the line.
pub fn decide(
    what: &str,
    c: &EncoderConfig,
    params: usize,
    device: &str,
    host: &str,
    limits: Option<DeviceLimits>,
) -> Placement {
    let (name, rows, cols) = largest_tensor(c);
    let largest = (rows * cols) as u64 * F32;
    let tensor = format!(
        "its largest tensor, the {name} {rows} × {cols} f32 ({})",
        mb(largest)
    );
    let Some(limits) = limits else {
        return Placement {
            decision: Decision::Device,
            line: format!("placement: {what} on {device} (a host backend: no buffer limit)"),
        };
    };
    let total = params as u64 * F32;
    let (decision, why) = if largest > limits.max_buffer {
        let why = format!(
            "{tensor}, exceeds the device's {} buffer limit",
            mb(limits.max_buffer)
        );
        (Decision::Host, why)
    } else if let Some(memory) = limits.max_memory.filter(|&m| total > m) {
        let why = format!(
            "its {} of weights exceed the device's {} of memory",
            mb(total),
            mb(memory)
        );
        (Decision::Host, why)
    } else {
        let memory = limits.max_memory.map_or(String::new(), |m| {
            format!(", weights {} ≤ memory {}", mb(total), mb(m))
        });
        let why = format!(
            "{tensor}, fits the device's {} buffer limit{memory}",
            mb(limits.max_buffer)
        );
        (Decision::Device, why)
    };
    let line = match decision {
        Decision::Device => format!("placement: {what} on {device}: {why}"),
        Decision::Host => format!("placement: {what} stays on the host ({host}): {why}"),
    };
    Placement { decision, line }
}

/// The host a model is loaded on before it is placed: the CPU default backend when one is
/// compiled in, else `device` itself.
pub fn host_for(device: &Device) -> Device {
    Backend::cpu_default()
        .device()
        .unwrap_or_else(|_| device.clone())
}

/// [`load_named`](crate::embedder::load_named) on the host, then [`placed`](Embedder::placed)
/// on `device` as its limits allow; `what` names the model's role for the line.
pub fn load_placed(
    name: &str,
    tokenizer: Option<&std::path::Path>,
    what: &str,
    device: &Device,
) -> crate::Result<Embedder> {
    Ok(crate::embedder::load_named(name, tokenizer, &host_for(device))?.placed(what, device))
}

/// The backend of a device as `--backend` names it (`flex`, `wgpu`, …): where a placed
/// model really runs, for messages.
pub fn backend_of(device: &Device) -> String {
    ot_core::backend::backend_of(device).map_or_else(|| format!("{device:?}"), |b| b.to_string())
}

impl Embedder {
    /// This model on `device` when the device's limits hold it, otherwise left where it is
    /// (the host); says which, in one line on stderr, unless the model is already there.
    /// `what` names the model's role, e.g. `"teacher"`.
    pub fn placed(self, what: &str, device: &Device) -> Embedder {
        if &self.device == device {
            return self;
        }
        self.placed_within(what, device, device_limits(device))
    }

    /// Where this model goes on `device` with `limits`, and the line; nothing moves.
    pub fn placement(
        &self,
        what: &str,
        device: &Device,
        limits: Option<DeviceLimits>,
    ) -> Placement {
        decide(
            &format!("{what} {}", self.config.name),
            &self.config.encoder,
            self.encoder.num_params(),
            &backend_of(device),
            &backend_of(&self.device),
            limits,
        )
    }

    /// [`placed`](Self::placed) against the given limits instead of the device's own.
    pub fn placed_within(
        self,
        what: &str,
        device: &Device,
        limits: Option<DeviceLimits>,
    ) -> Embedder {
        let p = self.placement(what, device, limits);
        eprintln!("{}", p.line);
        match p.decision {
            Decision::Host => self,
            Decision::Device => Embedder {
                encoder: self.encoder.to_device(device),
                device: device.clone(),
                ..self
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e5() -> EncoderConfig {
        EncoderConfig::new(250_002, 384, 12, 12, 1536, 512)
    }

    #[test]
    fn a_table_larger_than_the_buffer_limit_stays_on_the_host_and_the_line_names_the_limit() {
        let table = 250_002 * 384 * 4;
        let at = |max_buffer| DeviceLimits {
            max_buffer,
            max_memory: None,
        };
        let d = decide("teacher x", &e5(), 1, "wgpu", "flex", Some(at(table - 1)));
        assert_eq!(d.decision, Decision::Host);
        assert_eq!(
            d.line,
            "placement: teacher x stays on the host (flex): its largest tensor, the \
             word-embedding table 250002 × 384 f32 (384.0 MB), exceeds the device's 384.0 MB \
             buffer limit"
        );
        let d = decide("teacher x", &e5(), 1, "wgpu", "flex", Some(at(table)));
        assert_eq!(d.decision, Decision::Device, "{}", d.line);
        assert!(
            d.line.starts_with("placement: teacher x on wgpu: "),
            "{}",
            d.line
        );
    }

    #[test]
    fn weights_beyond_the_devices_memory_stay_on_the_host() {
        let limits = DeviceLimits {
            max_buffer: 1 << 40,
            max_memory: Some(100_000_000),
        };
        let d = decide("student y", &e5(), 25_000_001, "wgpu", "flex", Some(limits));
        assert_eq!(d.decision, Decision::Host);
        assert!(
            d.line
                .contains("100.0 MB of weights exceed the device's 100.0 MB"),
            "{}",
            d.line
        );
        let d = decide("student y", &e5(), 25_000_000, "wgpu", "flex", Some(limits));
        assert_eq!(d.decision, Decision::Device, "{}", d.line);
    }

    #[test]
    fn the_largest_tensor_is_whichever_table_is_largest() {
        assert_eq!(
            largest_tensor(&e5()),
            ("word-embedding table", 250_002, 384)
        );
        let trimmed = EncoderConfig::new(300, 384, 12, 12, 1536, 512);
        assert_eq!(largest_tensor(&trimmed), ("feed-forward matrix", 1536, 384));
    }

    #[test]
    fn a_host_backend_takes_every_model() {
        let d = decide("teacher x", &e5(), 1, "tch", "flex", None);
        assert_eq!(d.decision, Decision::Device);
        assert!(d.line.contains("no buffer limit"), "{}", d.line);
    }
}
