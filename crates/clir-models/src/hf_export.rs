//! An [`Embedder`] written as a Hugging Face / sentence-transformers folder, readable by
//! [`Embedder::load_hf`], `transformers` and `sentence-transformers`:
//!
//! ```text
//! config.json                       BERT (model_type bert) or XLM-R (xlm-roberta) encoder
//! model.safetensors                 f32 weights under Hugging Face names, [out, in] matrices
//! tokenizer.json                    the full original tokenizer
//! tokenizer_config.json             tokenizer class, length and special tokens
//! modules.json                      Transformer → Pooling (→ Normalize)
//! 1_Pooling/config.json             mean or CLS pooling
//! sentence_bert_config.json         max_seq_length
//! config_sentence_transformers.json prompts {"query", "passage"} (non-empty prefixes only)
//! ```
//!
//! A trimmed vocabulary is restored to the full one: the trained rows are scattered back at
//! their original ids into the word-embedding table of the base model the student was
//! initialised from; every other tensor is the trained one.
//!
//! The family: an encoder with position offset 0 whose tokenizer pads with id 0 is written
//! as BERT; any other as XLM-R, whose position ids start at `pad_token_id + 1`, so the
//! position table is shifted (zero rows prepended, or unused leading rows dropped) to put
//! the rows this encoder reads at that offset.

use std::path::{Path, PathBuf};

use burn::nn::{LayerNorm, Linear};
use burn::prelude::*;
use safetensors::tensor::{Dtype, TensorView};

use crate::embedder::Embedder;
use crate::error::{ModelError, Result};
use crate::pooling::Pooling;
use crate::weights::transpose;

/// A named f32 tensor in Hugging Face layout.
struct HfTensor {
    name: String,
    shape: Vec<usize>,
    values: Vec<f32>,
}

fn values<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec()
        .map_err(|e| ModelError::Invalid(format!("reading a weight tensor: {e:?}")))
}

/// Appends `{prefix}.weight` (`shape`) and `{prefix}.bias` (a vector).
fn push_weight_bias(
    out: &mut Vec<HfTensor>,
    prefix: &str,
    shape: Vec<usize>,
    weight: Vec<f32>,
    bias: Vec<f32>,
) {
    out.push(HfTensor {
        name: format!("{prefix}.weight"),
        shape,
        values: weight,
    });
    out.push(HfTensor {
        name: format!("{prefix}.bias"),
        shape: vec![bias.len()],
        values: bias,
    });
}

/// A linear layer in PyTorch's `[out, in]` layout (burn stores `[in, out]`).
fn push_linear(out: &mut Vec<HfTensor>, prefix: &str, l: &Linear) -> Result<()> {
    let [d_in, d_out] = l.weight.dims();
    let weight = transpose(&values(l.weight.val())?, d_in, d_out);
    let bias = match &l.bias {
        Some(b) => values(b.val())?,
        None => vec![0.0; d_out],
    };
    push_weight_bias(out, prefix, vec![d_out, d_in], weight, bias);
    Ok(())
}

fn push_layer_norm(out: &mut Vec<HfTensor>, prefix: &str, ln: &LayerNorm) -> Result<()> {
    let gamma = values(ln.gamma.val())?;
    let d = gamma.len();
    let beta = match &ln.beta {
        Some(b) => values(b.val())?,
        None => vec![0.0; d],
    };
    push_weight_bias(out, prefix, vec![d], gamma, beta);
    Ok(())
}

/// The trained model's original vocabulary (token → id) must be the base model's, or the
/// kept rows would land on other tokens' ids: an error names how many tokens differ and one.
pub(crate) fn same_vocabulary(embedder: &Embedder, base: &Embedder) -> Result<()> {
    let ours = embedder.tokenizer.inner().get_vocab(true);
    let theirs = base.tokenizer.inner().get_vocab(true);
    if ours == theirs {
        return Ok(());
    }
    let mut differing: Vec<(&String, Option<u32>, Option<u32>)> = ours
        .iter()
        .filter(|(token, id)| theirs.get(*token) != Some(id))
        .map(|(token, &id)| (token, Some(id), theirs.get(token).copied()))
        .chain(
            theirs
                .iter()
                .filter(|(token, _)| !ours.contains_key(*token))
                .map(|(token, &id)| (token, None, Some(id))),
        )
        .collect();
    differing.sort();
    let (token, here, there) = differing[0];
    let id = |i: Option<u32>| i.map_or("absent".to_string(), |i| format!("id {i}"));
    Err(ModelError::Invalid(format!(
        "base model {} has another vocabulary than the trained model {}: {} tokens differ \
         (e.g. {token:?}: {} in the trained model's tokenizer, {} in the base's); pass the \
         model the student was initialised from as the base",
        base.config.name,
        embedder.config.name,
        differing.len(),
        id(here),
        id(there),
    )))
}

/// The word-embedding table over the full vocabulary: the encoder's own when untrimmed,
/// otherwise `base`'s with row `kept[new]` replaced by the trained row `new`.
pub(crate) fn full_word_table(
    embedder: &Embedder,
    base: Option<&Embedder>,
) -> Result<(usize, Vec<f32>)> {
    let trained = values(embedder.encoder.embeddings.word.weight.val())?;
    let [rows, d] = embedder.encoder.embeddings.word.weight.dims();
    let Some(map) = embedder.tokenizer.vocab_map() else {
        return Ok((rows, trained));
    };
    let base = base.ok_or_else(|| {
        ModelError::Invalid(format!(
            "{}: the vocabulary is trimmed to {} tokens; restoring the full table needs the \
             base model it was initialised from",
            embedder.config.name,
            map.len()
        ))
    })?;
    if base.tokenizer.vocab_map().is_some() {
        return Err(ModelError::Invalid(format!(
            "base model {} is itself trimmed: it cannot restore the full vocabulary",
            base.config.name
        )));
    }
    same_vocabulary(embedder, base)?;
    let [base_rows, base_d] = base.encoder.embeddings.word.weight.dims();
    if base_d != d {
        return Err(ModelError::Invalid(format!(
            "base model {} has width {base_d} but the trained model {} has width {d}",
            base.config.name, embedder.config.name
        )));
    }
    if rows != map.len() {
        return Err(ModelError::Invalid(format!(
            "{}: {rows} embedding rows but its vocabulary map keeps {} ids",
            embedder.config.name,
            map.len()
        )));
    }
    let full_vocab = embedder.tokenizer.inner().get_vocab_size(true);
    if base_rows < full_vocab {
        return Err(ModelError::Invalid(format!(
            "base model {} has {base_rows} embedding rows but the tokenizer has {full_vocab} \
             tokens",
            base.config.name
        )));
    }
    let mut table = values(base.encoder.embeddings.word.weight.val())?;
    for (new, &old) in map.kept().iter().enumerate() {
        let old = old as usize;
        if old >= base_rows {
            return Err(ModelError::Invalid(format!(
                "vocabulary map keeps id {old} but base model {} has {base_rows} rows",
                base.config.name
            )));
        }
        table[old * d..(old + 1) * d].copy_from_slice(&trained[new * d..(new + 1) * d]);
    }
    Ok((base_rows, table))
}

/// Whether the encoder is written as XLM-R, and the position rows to prepend (positive) or
/// drop (negative) so that its first position row lands at `pad_token_id + 1`.
fn family(embedder: &Embedder) -> (bool, i64) {
    let offset = embedder.config.encoder.position_offset as i64;
    let pad = embedder.tokenizer.original_pad_id() as i64;
    if offset == 0 && pad == 0 {
        (false, 0)
    } else {
        (true, pad + 1 - offset)
    }
}

/// All tensors under Hugging Face BERT names (no `bert.` / `roberta.` prefix).
fn hf_tensors(embedder: &Embedder, base: Option<&Embedder>) -> Result<Vec<HfTensor>> {
    let enc = &embedder.encoder;
    let d = embedder.config.encoder.hidden_size;
    let (vocab, word) = full_word_table(embedder, base)?;
    let mut out = vec![HfTensor {
        name: "embeddings.word_embeddings.weight".into(),
        shape: vec![vocab, d],
        values: word,
    }];
    let (_, shift) = family(embedder);
    let mut pos = values(enc.embeddings.position.weight.val())?;
    if shift >= 0 {
        let mut shifted = vec![0.0; shift as usize * d];
        shifted.extend(pos);
        pos = shifted;
    } else {
        pos.drain(..(-shift) as usize * d);
    }
    out.push(HfTensor {
        name: "embeddings.position_embeddings.weight".into(),
        shape: vec![pos.len() / d, d],
        values: pos,
    });
    let [types, _] = enc.embeddings.token_type.weight.dims();
    out.push(HfTensor {
        name: "embeddings.token_type_embeddings.weight".into(),
        shape: vec![types, d],
        values: values(enc.embeddings.token_type.weight.val())?,
    });
    push_layer_norm(&mut out, "embeddings.LayerNorm", &enc.embeddings.norm)?;
    for (i, layer) in enc.layers.iter().enumerate() {
        let p = format!("encoder.layer.{i}");
        let a = &layer.attention;
        push_linear(&mut out, &format!("{p}.attention.self.query"), &a.query)?;
        push_linear(&mut out, &format!("{p}.attention.self.key"), &a.key)?;
        push_linear(&mut out, &format!("{p}.attention.self.value"), &a.value)?;
        push_linear(&mut out, &format!("{p}.attention.output.dense"), &a.output)?;
        push_layer_norm(
            &mut out,
            &format!("{p}.attention.output.LayerNorm"),
            &a.norm,
        )?;
        let f = &layer.feed_forward;
        push_linear(
            &mut out,
            &format!("{p}.intermediate.dense"),
            &f.intermediate,
        )?;
        push_linear(&mut out, &format!("{p}.output.dense"), &f.output)?;
        push_layer_norm(&mut out, &format!("{p}.output.LayerNorm"), &f.norm)?;
    }
    Ok(out)
}

/// `config.json` for `vocab` word rows and `positions` position rows.
fn hf_config(embedder: &Embedder, vocab: usize, positions: usize) -> serde_json::Value {
    let c = &embedder.config.encoder;
    let (xlmr, _) = family(embedder);
    let tok = embedder.tokenizer.inner();
    let pad = embedder.tokenizer.original_pad_id();
    let (model_type, arch) = if xlmr {
        ("xlm-roberta", "XLMRobertaModel")
    } else {
        ("bert", "BertModel")
    };
    let mut cfg = serde_json::json!({
        "_name_or_path": embedder.config.name,
        "architectures": [arch],
        "model_type": model_type,
        "vocab_size": vocab,
        "hidden_size": c.hidden_size,
        "num_hidden_layers": c.num_layers,
        "num_attention_heads": c.num_heads,
        "intermediate_size": c.intermediate_size,
        "max_position_embeddings": positions,
        "type_vocab_size": c.type_vocab_size,
        "layer_norm_eps": c.layer_norm_eps,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "initializer_range": 0.02,
        "position_embedding_type": "absolute",
        "pad_token_id": pad,
        "use_cache": true,
        "classifier_dropout": null,
        "torch_dtype": "float32",
    });
    for (key, names) in [
        ("bos_token_id", ["<s>", "[CLS]"]),
        ("eos_token_id", ["</s>", "[SEP]"]),
    ] {
        if xlmr && let Some(id) = names.iter().find_map(|t| tok.token_to_id(t)) {
            cfg[key] = serde_json::json!(id);
        }
    }
    cfg
}

/// `tokenizer_config.json`: the tokenizer class of the family, the length, and the special
/// tokens the vocabulary has, so that `transformers` builds the fast tokenizer with the right
/// specials from `tokenizer.json`.
fn tokenizer_config(embedder: &Embedder) -> serde_json::Value {
    let (xlmr, _) = family(embedder);
    let tok = embedder.tokenizer.inner();
    let (class, specials) = if xlmr {
        (
            "XLMRobertaTokenizer",
            [
                ("bos_token", "<s>"),
                ("cls_token", "<s>"),
                ("eos_token", "</s>"),
                ("sep_token", "</s>"),
                ("pad_token", "<pad>"),
                ("unk_token", "<unk>"),
                ("mask_token", "<mask>"),
            ]
            .as_slice(),
        )
    } else {
        (
            "BertTokenizer",
            [
                ("cls_token", "[CLS]"),
                ("sep_token", "[SEP]"),
                ("pad_token", "[PAD]"),
                ("unk_token", "[UNK]"),
                ("mask_token", "[MASK]"),
            ]
            .as_slice(),
        )
    };
    let mut cfg = serde_json::json!({
        "tokenizer_class": class,
        "model_max_length": embedder.config.max_len,
    });
    for (key, token) in specials {
        if tok.token_to_id(token).is_some() {
            cfg[*key] = serde_json::json!(token);
        }
    }
    cfg
}

fn write_json(
    dir: &Path,
    rel: &str,
    v: &serde_json::Value,
    written: &mut Vec<PathBuf>,
) -> Result<()> {
    let path = dir.join(rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| ModelError::io(parent, e))?;
    }
    let text =
        serde_json::to_string_pretty(v).map_err(|e| ModelError::format(&path, e.to_string()))?;
    std::fs::write(&path, text + "\n").map_err(|e| ModelError::io(&path, e))?;
    written.push(path);
    Ok(())
}

/// Writes `embedder` into `dir` as a Hugging Face / sentence-transformers folder (see the
/// module docs) and returns the files written. A trimmed embedder needs `base`, the untrimmed
/// model it was initialised from, whose word-embedding table supplies the rows trimming
/// dropped; its width and row count must fit, or this fails naming both models.
pub fn export_hf(embedder: &Embedder, base: Option<&Embedder>, dir: &Path) -> Result<Vec<PathBuf>> {
    let tensors = hf_tensors(embedder, base)?;
    std::fs::create_dir_all(dir).map_err(|e| ModelError::io(dir, e))?;
    let mut written = Vec::new();

    let st_path = dir.join("model.safetensors");
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|t| t.values.iter().flat_map(|x| x.to_le_bytes()).collect())
        .collect();
    let views = tensors
        .iter()
        .zip(&bytes)
        .map(|(t, b)| {
            TensorView::new(Dtype::F32, t.shape.clone(), b)
                .map(|v| (t.name.clone(), v))
                .map_err(|e| ModelError::format(&st_path, format!("{}: {e}", t.name)))
        })
        .collect::<Result<Vec<_>>>()?;
    let metadata = Some(std::collections::HashMap::from([(
        "format".to_string(),
        "pt".to_string(),
    )]));
    let data = safetensors::serialize(views, metadata)
        .map_err(|e| ModelError::format(&st_path, e.to_string()))?;
    std::fs::write(&st_path, data).map_err(|e| ModelError::io(&st_path, e))?;
    written.push(st_path);

    let vocab = tensors[0].shape[0];
    let positions = tensors[1].shape[0];
    write_json(
        dir,
        "config.json",
        &hf_config(embedder, vocab, positions),
        &mut written,
    )?;

    let tok = dir.join("tokenizer.json");
    embedder.tokenizer.write_json(&tok)?;
    written.push(tok);
    write_json(
        dir,
        "tokenizer_config.json",
        &tokenizer_config(embedder),
        &mut written,
    )?;

    let mut modules = vec![
        serde_json::json!({"idx": 0, "name": "0", "path": "",
            "type": "sentence_transformers.models.Transformer"}),
        serde_json::json!({"idx": 1, "name": "1", "path": "1_Pooling",
            "type": "sentence_transformers.models.Pooling"}),
    ];
    if embedder.config.normalize {
        modules.push(
            serde_json::json!({"idx": 2, "name": "2", "path": "2_Normalize",
            "type": "sentence_transformers.models.Normalize"}),
        );
    }
    write_json(
        dir,
        "modules.json",
        &serde_json::json!(modules),
        &mut written,
    )?;
    let cls = embedder.config.pooling == Pooling::Cls;
    let pooling = serde_json::json!({
        "word_embedding_dimension": embedder.config.encoder.hidden_size,
        "pooling_mode_cls_token": cls,
        "pooling_mode_mean_tokens": !cls,
        "pooling_mode_max_tokens": false,
        "pooling_mode_mean_sqrt_len_tokens": false,
        "pooling_mode_weightedmean_tokens": false,
        "pooling_mode_lasttoken": false,
        "include_prompt": true,
    });
    write_json(dir, "1_Pooling/config.json", &pooling, &mut written)?;
    let sbert = serde_json::json!({
        "max_seq_length": embedder.config.max_len,
        "do_lower_case": false,
    });
    write_json(dir, "sentence_bert_config.json", &sbert, &mut written)?;
    let mut prompts = serde_json::Map::new();
    for (key, p) in [
        ("query", &embedder.config.query_prefix),
        ("passage", &embedder.config.passage_prefix),
    ] {
        if !p.is_empty() {
            prompts.insert(key.into(), serde_json::json!(p));
        }
    }
    let st_config = serde_json::json!({
        "prompts": prompts,
        "default_prompt_name": null,
        "similarity_fn_name": "cosine",
    });
    write_json(
        dir,
        "config_sentence_transformers.json",
        &st_config,
        &mut written,
    )?;
    Ok(written)
}
