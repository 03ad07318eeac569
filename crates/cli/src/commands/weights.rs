//! Locating shipped weights: `--weights DIR`, then `$PROTFORGE_WEIGHTS/<model>`, then the
//! `weights/<model>` folder of the source tree this binary was built from.

use crate::cli::GlobalArgs;
use anyhow::bail;
use std::path::PathBuf;

/// The weights directory of `model` (e.g. "par"). Errors name every place that was tried.
pub(crate) fn locate(model: &str, global: &GlobalArgs) -> anyhow::Result<PathBuf> {
    if let Some(dir) = &global.weights {
        if dir.join("model.safetensors").is_file() {
            return Ok(dir.clone());
        }
        bail!("{}: no model.safetensors here (--weights must name a folder with config.json and model.safetensors)", dir.display());
    }
    let mut tried = Vec::new();
    if let Some(env) = std::env::var_os("PROTFORGE_WEIGHTS") {
        tried.push(PathBuf::from(env).join(model));
    }
    tried.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../weights").join(model));
    tried.push(PathBuf::from("weights").join(model));
    for dir in &tried {
        if dir.join("model.safetensors").is_file() {
            return Ok(dir.canonicalize().unwrap_or_else(|_| dir.clone()));
        }
    }
    let list: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
    bail!("no {model} weights found (tried {}); pass --weights DIR or set PROTFORGE_WEIGHTS", list.join(", "))
}
