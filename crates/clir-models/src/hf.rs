//! Hugging Face BERT / XLM-R checkpoints: `config.json` + `model.safetensors`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::prelude::*;
use safetensors::{Dtype, SafeTensors};
use serde::Deserialize;

use crate::encoder::{Encoder, EncoderConfig};
use crate::error::{ModelError, Result};
use crate::weights::WeightSource;

/// The fields of a Hugging Face `config.json` this crate reads.
#[derive(Debug, Deserialize)]
struct HfConfig {
    model_type: Option<String>,
    vocab_size: usize,
    hidden_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    intermediate_size: usize,
    max_position_embeddings: usize,
    #[serde(default = "two")]
    type_vocab_size: usize,
    #[serde(default = "eps")]
    layer_norm_eps: f64,
    #[serde(default)]
    hidden_act: Option<String>,
    #[serde(default)]
    pad_token_id: Option<usize>,
    #[serde(default)]
    position_embedding_type: Option<String>,
}

fn two() -> usize {
    2
}
fn eps() -> f64 {
    1e-12
}

/// Reads a Hugging Face `config.json` into an [`EncoderConfig`]. Only absolute position
/// embeddings and exact GELU are accepted; XLM-R's position offset (`pad_token_id + 1`) is
/// applied for `model_type` `xlm-roberta` / `roberta`.
pub fn read_hf_config(path: &Path) -> Result<EncoderConfig> {
    let text = std::fs::read_to_string(path).map_err(|e| ModelError::io(path, e))?;
    let hf: HfConfig =
        serde_json::from_str(&text).map_err(|e| ModelError::config(path, e.to_string()))?;
    if let Some(act) = &hf.hidden_act
        && act != "gelu"
    {
        return Err(ModelError::config(
            path,
            format!("hidden_act '{act}' is not supported (only exact 'gelu')"),
        ));
    }
    if let Some(p) = &hf.position_embedding_type
        && p != "absolute"
    {
        return Err(ModelError::config(
            path,
            format!("position_embedding_type '{p}' is not supported (only 'absolute')"),
        ));
    }
    let position_offset = match hf.model_type.as_deref() {
        Some("xlm-roberta") | Some("roberta") => hf
            .pad_token_id
            .unwrap_or(1)
            .checked_add(1)
            .ok_or_else(|| ModelError::config(path, "pad_token_id is out of range"))?,
        Some("bert") | None => 0,
        Some(other) => {
            return Err(ModelError::config(
                path,
                format!("model_type '{other}' is not a BERT / XLM-R encoder"),
            ));
        }
    };
    let config = EncoderConfig::new(
        hf.vocab_size,
        hf.hidden_size,
        hf.num_hidden_layers,
        hf.num_attention_heads,
        hf.intermediate_size,
        hf.max_position_embeddings,
    )
    .with_type_vocab_size(hf.type_vocab_size)
    .with_layer_norm_eps(hf.layer_norm_eps)
    .with_position_offset(position_offset);
    config.validate().map_err(|m| ModelError::config(path, m))?;
    Ok(config)
}

/// A parsed safetensors file serving tensors under BERT names (a `bert.` / `roberta.` /
/// `model.` prefix and the old `gamma` / `beta` LayerNorm names are accepted).
pub struct SafetensorsSource {
    path: PathBuf,
    bytes: Vec<u8>,
    /// canonical name → name in the file
    names: HashMap<String, String>,
}

impl SafetensorsSource {
    /// Reads and validates the safetensors header of `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| ModelError::io(path, e))?;
        Self::from_bytes(path, bytes)
    }

    /// Parses an in-memory safetensors image (`path` only names it in errors).
    pub fn from_bytes(path: &Path, bytes: Vec<u8>) -> Result<Self> {
        check_data_offsets(path, &bytes)?;
        let st = SafeTensors::deserialize(&bytes)
            .map_err(|e| ModelError::format(path, format!("not a valid safetensors file: {e}")))?;
        let mut names = HashMap::new();
        for name in st.names() {
            let mut canon = name.to_string();
            for prefix in ["bert.", "roberta.", "model.", "encoder_model."] {
                if let Some(rest) = canon.strip_prefix(prefix) {
                    canon = rest.to_string();
                    break;
                }
            }
            canon = canon
                .replace("LayerNorm.gamma", "LayerNorm.weight")
                .replace("LayerNorm.beta", "LayerNorm.bias");
            names.insert(canon, name.to_string());
        }
        Ok(Self {
            path: path.to_path_buf(),
            bytes,
            names,
        })
    }
}

/// Checks that no tensor of a safetensors header ends past the end of the file, before
/// `safetensors` sees it: its own check adds the last tensor's end offset to the header size
/// unchecked, which overflows (a panic, or a wrapped sum that can pass) on offsets near
/// `u64::MAX`. Anything else wrong is left to `safetensors` to report.
fn check_data_offsets(path: &Path, bytes: &[u8]) -> Result<()> {
    let Some(n) = bytes.get(..8) else {
        return Ok(());
    };
    let n = u64::from_le_bytes(n.try_into().expect("8 bytes"));
    let Some(header) = usize::try_from(n)
        .ok()
        .and_then(|n| bytes.get(8..n.checked_add(8)?))
    else {
        return Ok(());
    };
    let Ok(entries) = serde_json::from_slice::<HashMap<String, serde_json::Value>>(header) else {
        return Ok(());
    };
    let data_len = (bytes.len() - 8 - header.len()) as u64;
    for (name, entry) in &entries {
        let end = entry
            .get("data_offsets")
            .and_then(|o| o.get(1))
            .and_then(serde_json::Value::as_u64);
        if let Some(end) = end
            && end > data_len
        {
            return Err(ModelError::format(
                path,
                format!(
                    "not a valid safetensors file: tensor '{name}' ends at byte {end} of a \
                     {data_len}-byte data section"
                ),
            ));
        }
    }
    Ok(())
}

impl WeightSource for SafetensorsSource {
    fn path(&self) -> &Path {
        &self.path
    }

    fn tensor(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let st = SafeTensors::deserialize(&self.bytes)
            .map_err(|e| ModelError::format(&self.path, e.to_string()))?;
        let file_name = self
            .names
            .get(name)
            .ok_or_else(|| ModelError::MissingTensor {
                path: self.path.clone(),
                name: name.to_string(),
            })?;
        let view = st
            .tensor(file_name)
            .map_err(|e| ModelError::format(&self.path, e.to_string()))?;
        if view.shape() != shape {
            return Err(ModelError::Shape {
                path: self.path.clone(),
                name: file_name.clone(),
                found: view.shape().to_vec(),
                expected: shape.to_vec(),
            });
        }
        let data = view.data();
        let values = match view.dtype() {
            Dtype::F32 => data
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            Dtype::F16 => data
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            Dtype::BF16 => data
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            other => {
                return Err(ModelError::DType {
                    path: self.path.clone(),
                    name: file_name.clone(),
                    found: format!("{other:?}"),
                    expected: "F32, F16 or BF16".into(),
                });
            }
        };
        Ok(values)
    }
}

/// Loads a Hugging Face BERT directory (`config.json` + `model.safetensors`).
pub fn load_hf_encoder(dir: &Path, device: &Device) -> Result<(EncoderConfig, Encoder)> {
    let config = read_hf_config(&dir.join("config.json"))?;
    let mut src = SafetensorsSource::open(&dir.join("model.safetensors"))?;
    let encoder = config.init_from_weights(&mut src, device)?;
    Ok((config, encoder))
}
