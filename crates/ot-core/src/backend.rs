//! Run-time backend selection.
//!
//! burn 0.22 dispatches on a run-time [`Device`]; which backends exist is decided at compile
//! time by this crate's cargo features (`flex` default, `ndarray`, `wgpu`, `tch`). Every
//! binary of the workspace takes `--backend NAME` and resolves it here, so a backend that was
//! not compiled in yields one clear line naming the feature to build with.

use std::fmt;
use std::str::FromStr;

pub use burn::tensor::Device;

/// A compute backend a user can ask for by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// burn's embedded pure-Rust CPU backend (the default build).
    Flex,
    /// burn's ndarray CPU backend.
    Ndarray,
    /// wgpu (Vulkan/Metal/DX12; lavapipe on GPU-less Linux).
    Wgpu,
    /// libtorch through tch.
    Tch,
}

/// A backend name that is unknown, or known but not compiled into this binary.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BackendError {
    #[error("unknown backend '{0}': expected one of flex, ndarray, wgpu, tch")]
    Unknown(String),
    #[error(
        "backend '{0}' is not compiled into this binary: rebuild with `--features {0}` \
         (e.g. `cargo run --release -p xtask --features {0} -- ...`)"
    )]
    NotCompiled(Backend),
}

impl Backend {
    /// All backends, in the order they are listed to users.
    pub const ALL: [Backend; 4] = [Backend::Flex, Backend::Ndarray, Backend::Wgpu, Backend::Tch];

    /// The lowercase name used on command lines and in configs (equals the cargo feature).
    pub fn name(self) -> &'static str {
        match self {
            Backend::Flex => "flex",
            Backend::Ndarray => "ndarray",
            Backend::Wgpu => "wgpu",
            Backend::Tch => "tch",
        }
    }

    /// Whether this binary was built with the backend's cargo feature.
    pub fn is_compiled(self) -> bool {
        match self {
            Backend::Flex => cfg!(feature = "flex"),
            Backend::Ndarray => cfg!(feature = "ndarray"),
            Backend::Wgpu => cfg!(feature = "wgpu"),
            Backend::Tch => cfg!(feature = "tch"),
        }
    }

    /// Backends compiled into this binary.
    pub fn compiled() -> Vec<Backend> {
        Self::ALL.into_iter().filter(|b| b.is_compiled()).collect()
    }

    /// The embedded CPU default: flex when compiled in, otherwise the first compiled backend.
    pub fn cpu_default() -> Backend {
        Self::compiled().into_iter().next().unwrap_or(Backend::Flex)
    }

    /// The burn device (without autodiff) for this backend.
    pub fn device(self) -> Result<Device, BackendError> {
        match self {
            #[cfg(feature = "flex")]
            Backend::Flex => Ok(Device::flex()),
            #[cfg(feature = "ndarray")]
            Backend::Ndarray => Ok(Device::ndarray()),
            #[cfg(feature = "wgpu")]
            Backend::Wgpu => Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)),
            #[cfg(feature = "tch")]
            Backend::Tch => Ok(Device::libtorch()),
            #[allow(unreachable_patterns)]
            other => Err(BackendError::NotCompiled(other)),
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Backend {
    type Err = BackendError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "flex" | "cpu" => Ok(Backend::Flex),
            "ndarray" => Ok(Backend::Ndarray),
            "wgpu" => Ok(Backend::Wgpu),
            "tch" | "libtorch" | "torch" => Ok(Backend::Tch),
            _ => Err(BackendError::Unknown(s.to_string())),
        }
    }
}

/// The backend `device` belongs to (an autodiff device answers for the device it wraps);
/// `None` for a kind this crate does not select.
pub fn backend_of(device: &Device) -> Option<Backend> {
    #[allow(unused_imports)]
    use burn::backend::DispatchDevice as D;
    let plain = device.clone().without_autodiff();
    #[allow(unreachable_patterns)]
    match plain.as_dispatch() {
        #[cfg(feature = "flex")]
        D::Flex(_) => Some(Backend::Flex),
        #[cfg(feature = "ndarray")]
        D::NdArray(_) => Some(Backend::Ndarray),
        #[cfg(feature = "wgpu")]
        D::Cube(_) => Some(Backend::Wgpu),
        #[cfg(feature = "tch")]
        D::LibTorch(_) => Some(Backend::Tch),
        _ => None,
    }
}

/// The memory limits a device states, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceLimits {
    /// The largest single buffer (for wgpu the smaller of the adapter's `max_buffer_size` and
    /// `max_storage_buffer_binding_size`: cubecl requests the adapter's own limits, not
    /// wgpu's portable defaults).
    pub max_buffer: u64,
    /// The memory the device may hold at once, where its runtime reads a figure.
    pub max_memory: Option<u64>,
}

/// The limits `device` states, or `None` for a host backend (flex, ndarray, tch), whose
/// tensors live in host memory with no per-buffer limit. Opens the device.
pub fn device_limits(device: &Device) -> Option<DeviceLimits> {
    #[cfg(feature = "wgpu")]
    {
        let plain = device.clone().without_autodiff();
        #[allow(irrefutable_let_patterns)]
        if let burn::backend::DispatchDevice::Cube(cube) = plain.as_dispatch() {
            let client = cube.client();
            let memory = &client.properties().memory;
            return Some(DeviceLimits {
                max_buffer: memory.max_page_size,
                max_memory: memory.max_memory(),
            });
        }
    }
    let _ = device;
    None
}

/// Resolve a backend name (or `None` for the CPU default, honouring `OPTICAL_BACKEND`)
/// into a device.
pub fn select_device(name: Option<&str>) -> Result<(Backend, Device), BackendError> {
    let backend = match name {
        Some(n) => n.parse()?,
        None => match std::env::var("OPTICAL_BACKEND") {
            Ok(v) if !v.trim().is_empty() => v.parse()?,
            _ => Backend::cpu_default(),
        },
    };
    Ok((backend, backend.device()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for b in Backend::ALL {
            assert_eq!(b.name().parse::<Backend>().unwrap(), b);
        }
        assert!(matches!(
            "cuda".parse::<Backend>(),
            Err(BackendError::Unknown(_))
        ));
    }

    #[test]
    fn missing_backend_names_the_feature() {
        for b in Backend::ALL {
            if !b.is_compiled() {
                let err = b.device().unwrap_err().to_string();
                assert!(err.contains(&format!("--features {}", b.name())), "{err}");
            } else {
                assert!(b.device().is_ok());
            }
        }
    }

    /// A host backend states no limit; wgpu states the adapter's (on lavapipe, a buffer far
    /// smaller than e5-small's 384 MB embedding table, which is what the placement rule reads).
    #[test]
    fn every_compiled_backends_device_names_its_backend() {
        for b in Backend::compiled() {
            let device = b.device().unwrap();
            assert_eq!(backend_of(&device), Some(b));
            assert_eq!(backend_of(&device.autodiff()), Some(b));
        }
    }

    #[test]
    fn host_backends_state_no_limits_and_wgpu_states_the_adapters() {
        assert_eq!(
            device_limits(&Backend::cpu_default().device().unwrap()),
            None
        );
        #[cfg(feature = "wgpu")]
        {
            let device = Backend::Wgpu.device().unwrap();
            let limits = device_limits(&device).expect("wgpu states its limits");
            eprintln!("wgpu limits: {limits:?}");
            assert!(limits.max_buffer >= 128 << 20, "{limits:?}");
            assert_eq!(device_limits(&device.autodiff()), Some(limits));
        }
    }
}
