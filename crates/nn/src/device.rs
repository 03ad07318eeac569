//! Device selection: `cpu` (default) or `cuda:N` behind the `cuda` cargo feature.

use crate::NnError;
use candle_core::Device;
use std::str::FromStr;

/// A device requested by the user, parsed from `cpu` or `cuda:N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceSpec {
    /// The CPU (default; uses the rayon/gemm thread pool).
    #[default]
    Cpu,
    /// CUDA device with the given ordinal.
    Cuda(usize),
}

impl FromStr for DeviceSpec {
    type Err = NnError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim().to_ascii_lowercase();
        if s == "cpu" {
            return Ok(Self::Cpu);
        }
        if s == "cuda" {
            return Ok(Self::Cuda(0));
        }
        if let Some(n) = s.strip_prefix("cuda:") {
            return n.parse().map(Self::Cuda).map_err(|_| NnError::BadDevice(s.clone()));
        }
        Err(NnError::BadDevice(s))
    }
}

impl std::fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Cpu => write!(f, "cpu"),
            Self::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

impl DeviceSpec {
    /// Open the candle device.
    ///
    /// # Errors
    /// [`NnError::NoCuda`] when CUDA is requested in a CPU-only build, or a candle error
    /// when the CUDA device cannot be opened.
    pub fn open(self) -> Result<Device, NnError> {
        match self {
            Self::Cpu => Ok(Device::Cpu),
            Self::Cuda(n) => {
                if candle_core::utils::cuda_is_available() {
                    Ok(Device::new_cuda(n)?)
                } else {
                    Err(NnError::NoCuda(self.to_string()))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_devices() {
        assert_eq!("cpu".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cpu);
        assert_eq!("CUDA:1".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cuda(1));
        assert_eq!("cuda".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cuda(0));
        assert!("gpu".parse::<DeviceSpec>().is_err());
        assert!("cuda:x".parse::<DeviceSpec>().is_err());
    }

    #[test]
    fn cpu_opens() {
        assert!(DeviceSpec::Cpu.open().unwrap().is_cpu());
    }

    #[test]
    fn cuda_in_cpu_build_is_a_clear_error() {
        if !candle_core::utils::cuda_is_available() {
            let err = DeviceSpec::Cuda(0).open().unwrap_err();
            assert!(err.to_string().contains("no CUDA support"), "{err}");
        }
    }
}
