//! Experiment presets (`experiments/<name>.toml`): which pairs, methods, variants and seeds,
//! the evaluation settings every cell shares, and the training overrides.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clir_train::retrieval::{SetSample, Split};
use clir_train::{Method, TrainConfig};
use serde::{Deserialize, Serialize};

use super::slurm::SlurmSettings;
use super::workspace_root;

/// Evaluation settings of a preset: the same for every cell (zero-shot, English and every
/// trained student), so that cells differ only in the model.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalSection {
    /// The half of the Nave NT queries evaluated on: `dev` for presets that choose settings,
    /// `test` for those that report results (`all`: both halves).
    pub split: Split,
    /// Queries sampled per pair from the split (all when absent).
    pub queries: Option<usize>,
    /// Documents per pair (judged first, then seeded distractors; all when absent).
    pub documents: Option<usize>,
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Longest tokenised query or document (specials included) at evaluation, for every cell;
    /// absent: the pretrained model's own maximum (512 for e5). Training lengths
    /// (`train.model.max_len`) never apply here.
    pub max_len: Option<usize>,
    /// `t-test` or `randomization`.
    #[serde(default = "default_test")]
    pub test: String,
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    #[serde(default = "default_batch")]
    pub batch_size: usize,
}

fn default_seed() -> u64 {
    13
}
fn default_test() -> String {
    "t-test".into()
}
fn default_alpha() -> f64 {
    0.05
}
fn default_batch() -> usize {
    32
}

impl EvalSection {
    /// The sample of [`clir_train::retrieval::nave_set`].
    pub fn sample(&self) -> SetSample {
        SetSample {
            queries: self.queries,
            documents: self.documents,
            seed: self.seed,
            split: self.split,
        }
    }
}

/// A named change to the training configuration (e.g. a bitext budget or a depth).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    pub name: String,
    #[serde(default)]
    pub train: toml::Table,
    /// The trained methods the variant applies to (empty: every one). A trained method that no
    /// variant applies to runs once, with the preset's own settings.
    #[serde(default)]
    pub methods: Vec<String>,
    /// The pairs the variant applies to (empty: every one), e.g. a bitext source only some
    /// languages have.
    #[serde(default)]
    pub pairs: Vec<String>,
}

impl Variant {
    /// No name, no overrides.
    pub fn plain() -> Self {
        Variant {
            name: String::new(),
            train: toml::Table::new(),
            methods: Vec::new(),
            pairs: Vec::new(),
        }
    }

    /// Whether the variant's cells exist for `pair`.
    pub fn applies_to(&self, pair: &str) -> bool {
        self.pairs.is_empty() || self.pairs.iter().any(|p| p == pair)
    }
}

/// An experiment preset (`experiments/<name>.toml`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preset {
    pub name: String,
    pub description: String,
    /// Target languages of the documents (English queries).
    pub pairs: Vec<String>,
    /// The low-resource group (the others are high-resource).
    pub low_resource: Vec<String>,
    /// `zero-shot`, `optical`, `mse`, `kl`, `joint`, and the lexical `psq` (per pair) and
    /// `bm25-en` (one English→English cell).
    pub methods: Vec<String>,
    /// Evaluate the teacher on English documents too (the upper bound).
    #[serde(default = "yes")]
    pub english_reference: bool,
    /// Training seeds: every trained cell runs once per seed (the seed drives the bitext sample
    /// and the batch order; the evaluation sample stays fixed). Absent: `train.run.seed` only.
    #[serde(default)]
    pub seeds: Vec<u64>,
    pub eval: EvalSection,
    /// Overrides of the training configuration for every trained cell (same keys as
    /// `cargo xtask train` files).
    #[serde(default)]
    pub train: toml::Table,
    /// Variants of every trained method (default: one, unnamed).
    #[serde(default)]
    pub variants: Vec<Variant>,
    /// Training curves without retraining: every trained cell's run also saves its student
    /// after each of these steps, and each is a cell of its own (`METHOD[/VARIANT]@STEP`),
    /// evaluated like the final student. Each step must lie below every trained cell's
    /// `optim.steps`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub curve_steps: Vec<usize>,
    /// A settings study's reference: every trained row `METHOD/VARIANT[@STEP]` is compared
    /// with `METHOD/<reference_variant>` of the same method (paired test, Holm-adjusted, in
    /// the report's "against the reference variant" tables). Must name a variant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_variant: Option<String>,
    /// What a full run costs, in words (shown in results.md).
    #[serde(default)]
    pub cost: String,
    /// Settings of the `psq` cells.
    #[serde(default)]
    pub psq: PsqSettings,
    /// Data of the user's for a pair, in place of the built-in Bible bitext and Nave set:
    /// `[pair.NAME]` with `collection = "DIR"` and/or `bitext = "FILE"`; `[pair.english]`
    /// gives the English→English reference (and `bm25-en`) its collection.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pair: BTreeMap<String, PairData>,
    /// Resources and settings of `--emit slurm` (docs/scale-out.md).
    #[serde(default, skip_serializing_if = "SlurmSettings::is_default")]
    pub slurm: SlurmSettings,
    /// The file it was read from and its text (where errors in its training settings are
    /// located); empty for a preset built in code.
    #[serde(skip)]
    pub source: (PathBuf, String),
}

/// `[pair.NAME]`: a pair's own evaluation collection and training bitext. Relative paths are
/// relative to the preset file; [`Preset::load`] makes them absolute and checks they exist.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairData {
    /// A collection directory: `queries.tsv` (English queries), `docs.jsonl` or `docs.tsv`
    /// (documents in the pair's language) and `qrels.txt` (TREC format), as `data build`
    /// writes and ir_datasets exports (see `clir_train::retrieval::collection_set`).
    pub collection: Option<PathBuf>,
    /// Bitext (`.tsv` or `.jsonl`, English first) for the trained cells and PSQ, in place of
    /// the Bible's (`train.data.bitext_file` of the pair's cells).
    pub bitext: Option<PathBuf>,
}

/// `[psq]`: IBM Model 1 and pruning settings of the PSQ cells; every key is optional and
/// defaults to `clir_eval::lexical::psq`'s.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PsqSettings {
    /// Bitext pairs the table is learned from: a seeded sample of the trained cells' books
    /// (`train.data.books`, the Old Testament), or every pair of them when absent. Model 1
    /// costs seconds, so by default PSQ gets all of the bitext, not the trained cells' budget.
    pub max_pairs: Option<usize>,
    /// EM iterations of Model 1.
    pub iterations: Option<usize>,
    /// Whether English sentences get a NULL word.
    pub null_word: Option<bool>,
    /// Translations with a smaller probability are dropped.
    pub min_prob: Option<f64>,
    /// At most this many translations per English word.
    pub max_per_word: Option<usize>,
    /// Translations are kept (most probable first) until their mass reaches this.
    pub cumulative: Option<f64>,
}

impl PsqSettings {
    /// The Model 1 configuration.
    pub fn model1(&self) -> clir_eval::lexical::psq::Model1Config {
        let mut c = clir_eval::lexical::psq::Model1Config::default();
        if let Some(n) = self.iterations {
            c.iterations = n;
        }
        if let Some(b) = self.null_word {
            c.null_word = b;
        }
        c
    }

    /// The pruning configuration.
    pub fn prune(&self) -> clir_eval::lexical::psq::PruneConfig {
        let mut c = clir_eval::lexical::psq::PruneConfig::default();
        if let Some(p) = self.min_prob {
            c.min_prob = p;
        }
        if let Some(k) = self.max_per_word {
            c.max_per_word = k;
        }
        if let Some(m) = self.cumulative {
            c.cumulative = m;
        }
        c
    }
}

fn yes() -> bool {
    true
}

impl Preset {
    pub fn load(name_or_path: &str) -> anyhow::Result<(Self, PathBuf)> {
        let p = Path::new(name_or_path);
        let path = if p.extension().is_some_and(|e| e == "toml") {
            p.to_path_buf()
        } else {
            workspace_root()
                .join("experiments")
                .join(format!("{name_or_path}.toml"))
        };
        if !path.is_file() && p.extension().is_none() {
            bail!(
                "no preset named '{name_or_path}' (no {}); the presets are: {}",
                path.display(),
                preset_names().join(", ")
            );
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading preset {}", path.display()))?;
        let mut preset: Preset =
            toml::from_str(&text).with_context(|| format!("parsing preset {}", path.display()))?;
        preset.source = (path.clone(), text);
        for m in &mut preset.methods {
            *m = super::canonical_method(m).map_err(|e| {
                let line = preset_line(&preset.source.1, &["methods"]);
                anyhow::anyhow!("{}{line}: methods: {e}", path.display())
            })?;
        }
        preset.resolve_pair_data(&path)?;
        for l in &preset.low_resource {
            if !preset.pairs.contains(l) {
                bail!(
                    "{}: low-resource pair '{l}' is not among the pairs",
                    path.display()
                );
            }
        }
        if preset.eval.max_len.is_some_and(|n| n < 2) {
            bail!("{}: eval.max_len must be at least 2", path.display());
        }
        check_variants(&mut preset, &path)?;
        if let Some(r) = &preset.reference_variant
            && !preset.variants.iter().any(|v| &v.name == r)
        {
            bail!(
                "{}{}: reference_variant: '{r}' is not a variant of the preset (variants: {})",
                path.display(),
                preset_line(&preset.source.1, &["reference_variant"]),
                preset
                    .variants
                    .iter()
                    .map(|v| v.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        // Every cell's configuration must parse before hours are spent on the first ones.
        for v in preset.variant_list() {
            for pair in preset.pairs.iter().filter(|p| v.applies_to(p)) {
                preset.train_config(pair, Method::Optical, &v, None)?;
            }
        }
        preset.curve_steps.sort_unstable();
        preset.curve_steps.dedup();
        for m in preset
            .methods
            .iter()
            .filter_map(|m| m.parse::<Method>().ok())
        {
            for v in preset.variants_of(m) {
                let steps = preset
                    .train_config(preset.pair_of(&v), m, &v, None)?
                    .optim
                    .steps;
                if let Some(&s) = preset.curve_steps.iter().find(|&&s| s == 0 || s >= steps) {
                    bail!(
                        "{}{}: curve_steps: step {s} does not lie inside the {} steps of {}{} \
                         (1..{steps}; the last step is the trained cell itself)",
                        path.display(),
                        preset_line(&preset.source.1, &["curve_steps"]),
                        steps,
                        m.name(),
                        if v.name.is_empty() {
                            String::new()
                        } else {
                            format!("/{}", v.name)
                        }
                    );
                }
            }
        }
        if preset.seeds.is_empty() {
            let base =
                preset.train_config("swahili", Method::Optical, &preset.variant_list()[0], None)?;
            preset.seeds = vec![base.run.seed];
        }
        let mut seen = std::collections::BTreeSet::new();
        if let Some(s) = preset.seeds.iter().find(|s| !seen.insert(**s)) {
            bail!("{}: seed {s} is listed twice", path.display());
        }
        Ok((preset, path))
    }

    /// Makes the `[pair.NAME]` paths absolute (relative to the preset file) and checks them:
    /// every name is a pair of the preset or `english`, every path exists, and a preset whose
    /// pairs use their own collections does not compare them with the built-in English set.
    fn resolve_pair_data(&mut self, path: &Path) -> anyhow::Result<()> {
        let here = path.parent().unwrap_or(Path::new("."));
        for (name, data) in &mut self.pair {
            if name != super::ENGLISH && !self.pairs.contains(name) {
                bail!(
                    "{}: [pair.{name}] names no pair of the preset (pairs: {})",
                    path.display(),
                    self.pairs.join(", ")
                );
            }
            let resolve = |p: &mut PathBuf, key: &str, dir: bool| -> anyhow::Result<()> {
                if p.is_relative() {
                    *p = here.join(&*p);
                }
                let ok = if dir { p.is_dir() } else { p.is_file() };
                if !ok {
                    bail!(
                        "{}: [pair.{name}] {key} = {}: no such {}",
                        path.display(),
                        p.display(),
                        if dir { "directory" } else { "file" }
                    );
                }
                if p.to_str().is_none() {
                    bail!(
                        "{}: [pair.{name}] {key}: the path is not valid UTF-8",
                        path.display()
                    );
                }
                Ok(())
            };
            if let Some(c) = &mut data.collection {
                resolve(c, "collection", true)?;
            }
            if let Some(b) = &mut data.bitext {
                resolve(b, "bitext", false)?;
            }
        }
        let own = self
            .pairs
            .iter()
            .filter(|p| self.collection_of(p).is_some())
            .count();
        let english_needed =
            self.english_reference || self.methods.iter().any(|m| m == super::BM25_EN);
        if own > 0 && english_needed && self.collection_of(super::ENGLISH).is_none() {
            bail!(
                "{}: {own} pair(s) use their own collection, but the English reference would be \
                 the built-in Nave set: give [pair.english] collection = \"DIR\" (English \
                 documents of the same queries), or set english_reference = false and drop \
                 bm25-en",
                path.display()
            );
        }
        Ok(())
    }

    /// The collection directory of `pair` (`[pair.NAME] collection`), if it has its own.
    pub fn collection_of(&self, pair: &str) -> Option<&Path> {
        self.pair.get(pair)?.collection.as_deref()
    }

    /// The pair a variant's configuration is read on when no pair is given (labels,
    /// teachers, steps): its first pair, else the preset's.
    pub fn pair_of<'a>(&'a self, v: &'a Variant) -> &'a str {
        v.pairs
            .first()
            .or(self.pairs.first())
            .map_or("swahili", String::as_str)
    }

    pub fn variant_list(&self) -> Vec<Variant> {
        if self.variants.is_empty() {
            vec![Variant::plain()]
        } else {
            self.variants.clone()
        }
    }

    /// The variants method `method` runs under: those that apply to it, or the plain one.
    pub fn variants_of(&self, method: Method) -> Vec<Variant> {
        let mine: Vec<Variant> = self
            .variant_list()
            .into_iter()
            .filter(|v| {
                v.methods.is_empty()
                    || v.methods
                        .iter()
                        .any(|m| m.parse::<Method>().is_ok_and(|x| x == method))
            })
            .collect();
        if mine.is_empty() {
            vec![Variant::plain()]
        } else {
            mine
        }
    }

    /// The training configuration of one cell: defaults ← preset ← variant ← cell (its pair,
    /// method and, when given, seed).
    pub fn train_config(
        &self,
        pair: &str,
        method: Method,
        v: &Variant,
        seed: Option<u64>,
    ) -> anyhow::Result<TrainConfig> {
        let mut t = toml::Table::new();
        overlay(&mut t, &self.train);
        overlay(&mut t, &v.train);
        let mut data = toml::Table::new();
        data.insert("language".into(), toml::Value::String(pair.into()));
        if let Some(b) = self.pair.get(pair).and_then(|d| d.bitext.as_ref()) {
            let b = b.to_str().context("bitext path is not valid UTF-8")?;
            data.insert("bitext_file".into(), toml::Value::String(b.into()));
        }
        let mut loss = toml::Table::new();
        loss.insert("method".into(), toml::Value::String(format!("{method:?}")));
        let mut cell = toml::Table::new();
        cell.insert("data".into(), toml::Value::Table(data));
        cell.insert("loss".into(), toml::Value::Table(loss));
        if let Some(seed) = seed {
            let mut run = toml::Table::new();
            run.insert(
                "seed".into(),
                toml::Value::Integer(i64::try_from(seed).context("seed too large")?),
            );
            cell.insert("run".into(), toml::Value::Table(run));
        }
        overlay(&mut t, &cell);
        let text = toml::to_string(&t)?;
        TrainConfig::from_toml_keyed(&text).map_err(|e| self.locate(&e, v))
    }

    /// A training-settings error of variant `v` as `FILE:LINE: [variant 'NAME':]
    /// train.KEY: message`, the line that of the key in the variant's `train` table, else in
    /// the preset's own `[train]`.
    fn locate(&self, e: &clir_train::config::KeyError, v: &Variant) -> anyhow::Error {
        let (file, text) = &self.source;
        let key: Vec<&str> = e
            .key
            .as_deref()
            .map_or(Vec::new(), |k| k.split('.').collect());
        let index = self
            .variants
            .iter()
            .position(|x| x.name == v.name && !v.name.is_empty());
        let mut line = None;
        if let Some(i) = index {
            let i = i.to_string();
            let mut at = vec!["variants", i.as_str(), "train"];
            at.extend(&key);
            // Only a key the variant itself sets is located there.
            if preset_has(text, &at) {
                line = clir_train::config::toml_key_line(text, &at);
            }
        }
        if line.is_none() {
            let mut at = vec!["train"];
            at.extend(&key);
            if preset_has(text, &at) {
                line = clir_train::config::toml_key_line(text, &at);
            }
        }
        let place = match line {
            Some(l) => format!("{}:{l}", file.display()),
            None => file.display().to_string(),
        };
        let variant = if v.name.is_empty() {
            String::new()
        } else {
            format!("variant '{}': ", v.name)
        };
        let msg = e.keyed_message();
        let msg = if e.key.is_some() {
            format!("train.{msg}")
        } else {
            msg
        };
        anyhow::anyhow!("{place}: {variant}{msg}")
    }
}

/// `:LINE` of the key at `path` in the preset's TOML `text`, or nothing when not found.
/// Trained methods named by the variants in their canonical names, and pairs the preset has.
fn check_variants(preset: &mut Preset, path: &Path) -> anyhow::Result<()> {
    for (i, v) in preset.variants.iter_mut().enumerate() {
        for m in &mut v.methods {
            match m.parse::<Method>() {
                Ok(method) => *m = method.name().to_string(),
                Err(_) => {
                    let at = ["variants".to_string(), i.to_string(), "methods".into()];
                    let at: Vec<&str> = at.iter().map(String::as_str).collect();
                    bail!(
                        "{}{}: variant '{}' names '{m}', not a trained method (optical, mse, \
                             kl or joint)",
                        path.display(),
                        preset_line(&preset.source.1, &at),
                        v.name
                    );
                }
            }
        }
    }
    for (i, v) in preset.variants.iter().enumerate() {
        if let Some(p) = v.pairs.iter().find(|p| !preset.pairs.contains(p)) {
            let at = ["variants".to_string(), i.to_string(), "pairs".into()];
            let at: Vec<&str> = at.iter().map(String::as_str).collect();
            bail!(
                "{}{}: variant '{}' names pair '{p}', not one of the preset's ({})",
                path.display(),
                preset_line(&preset.source.1, &at),
                v.name,
                preset.pairs.join(", ")
            );
        }
    }
    Ok(())
}

fn preset_line(text: &str, path: &[&str]) -> String {
    clir_train::config::toml_key_line(text, path).map_or(String::new(), |l| format!(":{l}"))
}

/// Whether the preset's TOML `text` sets the key at `path` (a number indexes an array).
fn preset_has(text: &str, path: &[&str]) -> bool {
    let Ok(mut value) = text.parse::<toml::Table>().map(toml::Value::Table) else {
        return false;
    };
    for seg in path {
        let next = match &value {
            toml::Value::Table(t) => t.get(*seg).cloned(),
            toml::Value::Array(a) => seg.parse::<usize>().ok().and_then(|i| a.get(i).cloned()),
            _ => None,
        };
        match next {
            Some(v) => value = v,
            None => return false,
        }
    }
    true
}

/// The names of the presets under experiments/ (files with a `pairs` key).
pub fn preset_names() -> Vec<String> {
    let dir = workspace_root().join("experiments");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .filter(|p| {
            std::fs::read_to_string(p)
                .ok()
                .and_then(|t| t.parse::<toml::Table>().ok())
                .is_some_and(|t| t.contains_key("pairs"))
        })
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    names.sort();
    names
}

fn overlay(base: &mut toml::Table, over: &toml::Table) {
    for (k, v) in over {
        match (base.get_mut(k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => overlay(b, o),
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `text` as a preset file in a fresh directory; `load`'s error (with its causes) must name
    /// the file, and a TOML syntax error a line of the text.
    fn check_load(text: &[u8]) -> Result<Option<Preset>, TestCaseError> {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("my preset.toml");
        std::fs::write(&p, text).unwrap();
        let r = Preset::load(p.to_str().unwrap());
        match r {
            Ok((preset, _)) => Ok(Some(preset)),
            Err(e) => {
                let (short, full) = (format!("{e}"), format!("{e:#}"));
                let name = p.display().to_string();
                prop_assert!(short.contains(&name), "{:?} lacks {:?}", short, name);
                let tag = "TOML parse error at line ";
                if let Some(at) = full.find(tag) {
                    let digits: String = full[at + tag.len()..]
                        .chars()
                        .take_while(char::is_ascii_digit)
                        .collect();
                    let line: usize = digits.parse().unwrap();
                    let lines = text.iter().filter(|&&b| b == b'\n').count() + 1;
                    prop_assert!(
                        (1..=lines).contains(&line),
                        "line {} of {}: {}",
                        line,
                        lines,
                        full
                    );
                }
                Ok(None)
            }
        }
    }

    fn quick() -> toml::Table {
        let text = std::fs::read_to_string(workspace_root().join("experiments/quick.toml"));
        toml::from_str(&text.unwrap()).unwrap()
    }

    /// Key paths of the leaves (non-table values) of `t`.
    fn leaves(t: &toml::Table, at: &[String], out: &mut Vec<Vec<String>>) {
        for (k, v) in t {
            let mut path = at.to_vec();
            path.push(k.clone());
            match v {
                toml::Value::Table(sub) => leaves(sub, &path, out),
                _ => out.push(path),
            }
        }
    }

    fn toml_value() -> impl Strategy<Value = toml::Value> {
        use toml::Value;
        prop_oneof![
            (-3i64..300).prop_map(Value::Integer),
            any::<i64>().prop_map(Value::Integer),
            prop_oneof![any::<f64>(), Just(f64::NAN), 0.0f64..2.0].prop_map(Value::Float),
            any::<bool>().prop_map(Value::Boolean),
            proptest::sample::select(vec![
                "zero-shot",
                "optical",
                "kl",
                "swahili",
                "test",
                "dev",
                "t-test",
                "",
                "nope",
            ])
            .prop_map(|s| Value::String(s.to_string())),
            Just(Value::Array(vec![])),
            Just(Value::Array(vec![Value::String("optical".into())])),
            Just(Value::Array(vec![Value::Integer(7), Value::Integer(7)])),
            Just(Value::Table(toml::Table::new())),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 128,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        /// Arbitrary bytes and TOML-like text as a preset: no panic, errors name the file.
        #[test]
        fn arbitrary_presets_name_the_file(
            text in prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..200),
                "(\\[[a-z.]{0,10}\\]\n|[a-z_]{1,10} = [-0-9a-z.\"\\[\\]]{0,8}\n){0,8}"
                    .prop_map(String::into_bytes),
            ],
        ) {
            check_load(&text)?;
        }

        /// The quick preset with up to three values changed, removed or joined by an unknown
        /// sibling: loads, or names the file.
        #[test]
        fn changed_presets_load_or_name_the_file(
            changes in proptest::collection::vec(
                (any::<prop::sample::Index>(), 0u8..4, toml_value()),
                0..4,
            ),
        ) {
            let mut t = quick();
            let mut paths = Vec::new();
            leaves(&t, &[], &mut paths);
            let unchanged = changes.is_empty();
            for (at, how, value) in changes {
                let path = &paths[at.index(paths.len())];
                let (key, up) = path.split_last().unwrap();
                let mut parent = &mut t;
                for k in up {
                    parent = parent.get_mut(k).unwrap().as_table_mut().unwrap();
                }
                match how {
                    0 => {
                        parent.remove(key);
                    }
                    1 => {
                        parent.insert(format!("{key}_x"), value);
                    }
                    _ => {
                        parent.insert(key.clone(), value);
                    }
                }
            }
            let text = toml::to_string(&t).unwrap();
            let loaded = check_load(text.as_bytes())?;
            prop_assert!(!unchanged || loaded.is_some(), "quick does not load:\n{}", text);
        }
    }

    /// A preset in a fresh folder, loaded; the error text when it fails.
    fn load_text(name: &str, text: &str) -> (std::path::PathBuf, Result<Preset, String>) {
        let d = tempfile::tempdir().unwrap().keep();
        let p = d.join(name);
        std::fs::write(&p, text).unwrap();
        let r = Preset::load(p.to_str().unwrap())
            .map(|(preset, _)| preset)
            .map_err(|e| format!("{e:#}"));
        (p, r)
    }

    const SMALL: &str = "name = \"x\"\ndescription = \"d\"\npairs = [\"swahili\"]\n\
        low_resource = []\nmethods = [\"zero-shot\", \"Optical\", \"MSE\"]\n\
        [eval]\nsplit = \"dev\"\n";

    #[test]
    fn a_reference_variant_must_name_a_variant() {
        let variants = "\n[[variants]]\nname = \"base\"\n\n[[variants]]\nname = \"idf\"\n\
                        methods = [\"optical\"]\ntrain.loss.marginal = \"idf\"\n";
        let text = format!("reference_variant = \"base\"\n{SMALL}{variants}");
        let (_, r) = load_text("a.toml", &text);
        assert_eq!(r.unwrap().reference_variant.as_deref(), Some("base"));
        let text = format!("reference_variant = \"bse\"\n{SMALL}{variants}");
        let (p, r) = load_text("b.toml", &text);
        assert_eq!(
            r.unwrap_err(),
            format!(
                "{}:1: reference_variant: 'bse' is not a variant of the preset (variants: base, \
                 idf)",
                p.display()
            )
        );
    }

    #[test]
    fn training_errors_name_the_preset_line_and_the_variant() {
        let text = format!("{SMALL}[train.optim]\nlr = \"fast\"\n");
        let (p, r) = load_text("a.toml", &text);
        assert_eq!(
            r.unwrap_err(),
            format!(
                "{}:9: train.optim.lr: invalid type: string \"fast\", expected a number",
                p.display()
            )
        );
        let text = format!(
            "{SMALL}[train.optim]\nlr = 1e-4\n\n[[variants]]\nname = \"ok\"\n\n\
             [[variants]]\nname = \"bad\"\ntrain.optim.lr = \"fast\"\n"
        );
        let (p, r) = load_text("b.toml", &text);
        let e = r.unwrap_err();
        assert_eq!(
            e,
            format!(
                "{}:16: variant 'bad': train.optim.lr: invalid type: string \"fast\", expected a \
                 number",
                p.display()
            )
        );
        assert!(!e.contains("variant ''"), "{e}");
        // Unknown keys likewise.
        let text = format!("{SMALL}[train.model]\nmax_lenn = 3\n");
        let (p, r) = load_text("c.toml", &text);
        let e = r.unwrap_err();
        assert!(
            e.starts_with(&format!(
                "{}:9: train.model.max_lenn: unknown key",
                p.display()
            )),
            "{e}"
        );
    }

    #[test]
    fn method_names_are_read_in_any_case() {
        let (_, r) = load_text("m.toml", SMALL);
        let preset = r.unwrap();
        assert_eq!(preset.methods, ["zero-shot", "optical", "mse"]);
        let text = SMALL.replace("\"MSE\"", "\"sgd\"");
        let (p, r) = load_text("n.toml", &text);
        let e = r.unwrap_err();
        assert!(
            e.starts_with(&format!("{}:5: methods: ", p.display())) && e.contains("sgd"),
            "{e}"
        );
    }

    #[test]
    fn an_unknown_preset_name_lists_the_presets() {
        let e = Preset::load("no-such-preset").unwrap_err().to_string();
        assert!(
            e.contains("no preset named 'no-such-preset'")
                && e.contains("quick, ")
                && e.contains("standard"),
            "{e}"
        );
    }
}
