//! Checkpoint directories: `config.json` (architecture and training settings) beside
//! `model.safetensors` (tensors named after the module tree, `vb.pp` paths).
//!
//! Architecture lives in the config, never in file names (DESIGN.md, "Weights").

use crate::NnError;
use candle_core::{DType, Device, Tensor};
use serde::{Serialize, de::DeserializeOwned};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// File name of the architecture/training config inside a checkpoint directory.
pub const CONFIG_FILE: &str = "config.json";
/// File name of the tensors inside a checkpoint directory.
pub const WEIGHTS_FILE: &str = "model.safetensors";

/// A checkpoint directory on disk.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    dir: PathBuf,
}

/// Summary of a checkpoint, for manifests and `protforge inspect`.
#[derive(Debug, Clone, Serialize)]
pub struct CheckpointInfo {
    /// Directory of the checkpoint.
    pub dir: PathBuf,
    /// Hex SHA-256 of `model.safetensors`.
    pub sha256: String,
    /// Number of tensors.
    pub n_tensors: usize,
    /// Total number of scalar parameters.
    pub n_params: usize,
    /// Size of `model.safetensors` in bytes.
    pub bytes: u64,
}

impl Checkpoint {
    /// Refer to a checkpoint directory; nothing is read yet.
    #[must_use]
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The checkpoint directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of `config.json`.
    #[must_use]
    pub fn config_path(&self) -> PathBuf {
        self.dir.join(CONFIG_FILE)
    }

    /// Path of `model.safetensors`.
    #[must_use]
    pub fn weights_path(&self) -> PathBuf {
        self.dir.join(WEIGHTS_FILE)
    }

    /// Read and deserialize `config.json`.
    ///
    /// # Errors
    /// [`NnError::MissingWeights`] if absent, [`NnError::BadConfig`] if it does not parse as `C`.
    pub fn load_config<C: DeserializeOwned>(&self) -> Result<C, NnError> {
        let path = self.config_path();
        if !path.is_file() {
            return Err(NnError::MissingWeights { path, what: "config.json" });
        }
        let text = std::fs::read_to_string(&path).map_err(|source| NnError::Io { path: path.clone(), source })?;
        serde_json::from_str(&text).map_err(|e| NnError::BadConfig { path, message: e.to_string() })
    }

    /// Load every tensor of `model.safetensors` onto `device`.
    ///
    /// # Errors
    /// [`NnError::MissingWeights`] if absent, [`NnError::BadTensors`] if unreadable.
    pub fn load_tensors(&self, device: &Device) -> Result<HashMap<String, Tensor>, NnError> {
        let path = self.weights_path();
        if !path.is_file() {
            return Err(NnError::MissingWeights { path, what: "model.safetensors" });
        }
        candle_core::safetensors::load(&path, device)
            .map_err(|e| NnError::BadTensors { path, message: e.to_string() })
    }

    /// Write `config.json` and `model.safetensors` atomically (temp file + rename each),
    /// creating the directory if needed.
    ///
    /// # Errors
    /// I/O errors name the file; candle errors if a tensor cannot be serialised.
    pub fn save<C: Serialize>(&self, config: &C, tensors: &HashMap<String, Tensor>) -> Result<(), NnError> {
        std::fs::create_dir_all(&self.dir).map_err(|source| NnError::Io { path: self.dir.clone(), source })?;
        let cfg = serde_json::to_string_pretty(config)
            .map_err(|e| NnError::BadConfig { path: self.config_path(), message: e.to_string() })?;
        write_atomic(&self.config_path(), cfg.as_bytes())?;
        let weights = self.weights_path();
        let tmp = tmp_path(&weights);
        candle_core::safetensors::save(tensors, &tmp)?;
        std::fs::rename(&tmp, &weights).map_err(|source| NnError::Io { path: weights.clone(), source })?;
        Ok(())
    }

    /// Checksum and size summary of `model.safetensors`.
    ///
    /// # Errors
    /// As [`Self::load_tensors`].
    pub fn info(&self) -> Result<CheckpointInfo, NnError> {
        let path = self.weights_path();
        if !path.is_file() {
            return Err(NnError::MissingWeights { path, what: "model.safetensors" });
        }
        let bytes = std::fs::read(&path).map_err(|source| NnError::Io { path: path.clone(), source })?;
        let st = safetensors::SafeTensors::deserialize(&bytes)
            .map_err(|e| NnError::BadTensors { path: path.clone(), message: e.to_string() })?;
        let n_params = st.tensors().iter().map(|(_, v)| v.shape().iter().product::<usize>()).sum();
        Ok(CheckpointInfo {
            dir: self.dir.clone(),
            sha256: sha256_hex(&bytes),
            n_tensors: st.len(),
            n_params,
            bytes: bytes.len() as u64,
        })
    }
}

/// Hex SHA-256 of a byte slice.
#[must_use]
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(format!(".tmp{}", std::process::id()));
    path.with_file_name(name)
}

/// Write bytes to `path` atomically ([`protforge_structure::io::write_file_atomic`]).
///
/// # Errors
/// [`NnError::Io`] naming `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), NnError> {
    protforge_structure::io::write_file_atomic(path, bytes).map_err(|source| NnError::Io { path: path.to_path_buf(), source })
}

/// Cast a tensor map to f32 (weights are always stored and used as f32 on CPU).
///
/// # Errors
/// Candle dtype conversion errors.
pub fn to_f32(tensors: HashMap<String, Tensor>) -> Result<HashMap<String, Tensor>, NnError> {
    tensors
        .into_iter()
        .map(|(k, v)| Ok((k, if v.dtype() == DType::F32 { v } else { v.to_dtype(DType::F32)? })))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Serialize, serde::Deserialize, PartialEq)]
    struct Cfg {
        d_model: usize,
    }

    #[test]
    fn save_load_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let ck = Checkpoint::new(dir.path().join("m"));
        let w = Tensor::from_vec(vec![1f32, 2.0, 3.0, 4.0, 5.0, 6.0], (2, 3), &Device::Cpu).unwrap();
        let tensors = HashMap::from([("blocks.0.fc1.weight".to_string(), w.clone())]);
        ck.save(&Cfg { d_model: 7 }, &tensors).unwrap();
        assert_eq!(ck.load_config::<Cfg>().unwrap(), Cfg { d_model: 7 });
        let back = ck.load_tensors(&Device::Cpu).unwrap();
        let diff = (back["blocks.0.fc1.weight"].clone() - w).unwrap().abs().unwrap().sum_all().unwrap();
        assert_eq!(diff.to_scalar::<f32>().unwrap(), 0.0);
        let info = ck.info().unwrap();
        assert_eq!((info.n_tensors, info.n_params), (1, 6));
        assert_eq!(info.sha256.len(), 64);
    }

    #[test]
    fn missing_and_bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let ck = Checkpoint::new(dir.path());
        let err = ck.load_config::<Cfg>().unwrap_err().to_string();
        assert!(err.contains("config.json") && err.contains("missing"), "{err}");
        std::fs::write(ck.weights_path(), b"not safetensors").unwrap();
        let err = ck.load_tensors(&Device::Cpu).unwrap_err().to_string();
        assert!(err.contains("model.safetensors") && err.contains("invalid"), "{err}");
        std::fs::write(ck.config_path(), b"{\"d_model\": \"x\"}").unwrap();
        assert!(matches!(ck.load_config::<Cfg>(), Err(NnError::BadConfig { .. })));
    }

    #[test]
    fn sha256_known_value() {
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
