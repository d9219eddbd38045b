//! What the student is trained towards, computed once per run before the first step: the
//! teacher's token states of the English side and their content masks, the joint objective's
//! query embeddings, the IDF token masses, and the student's frozen prefix (cached states of
//! its lowest frozen layers, computed by the pretrained student).

use burn::prelude::*;
use clir_models::{Embedder, TextKind};

use crate::config::{Marginal, Method, TrainConfig};
use crate::error::{Result, TrainError};
use crate::prefix_cache::PrefixCache;
use crate::teacher::{TeacherStates, teacher_states};

use super::TrainInputs;
use super::batches::BatchOrder;
use super::step::{IdfTables, MONO_SEED, MonoBatches, idf_table};
use super::student::{Student, content_mask, token_roles};
use clir_models::placement::host_for;

/// The frozen teacher's side of a run.
pub(crate) struct TeacherTargets {
    /// Token states of every English sentence (from the disk store when available).
    pub(crate) states: TeacherStates,
    /// Per sentence, which tokens carry mass (not specials, not the prefix).
    pub(crate) masks: Vec<Vec<bool>>,
    /// The joint objective's queries, encoded once by the teacher.
    pub(crate) mono: Option<MonoBatches>,
}

impl TeacherTargets {
    pub(crate) fn new(
        cfg: &TrainConfig,
        inputs: &TrainInputs,
        student: &Student,
        side: TextKind,
        english: &[String],
        device: &Device,
    ) -> Result<Self> {
        // Loaded on the host, then on `device` where the device's limits hold its untrimmed
        // vocabulary (250k × 384 for e5; not in lavapipe's buffers).
        let teacher = inputs
            .models
            .load(&cfg.model.teacher, &host_for(device))?
            .placed("teacher", device);
        let teacher_max = teacher.config.max_len.min(cfg.model.max_len);
        let teacher = Embedder {
            tokenizer: teacher.tokenizer.clone().with_max_len(teacher_max)?,
            config: clir_models::EmbedderConfig {
                max_len: teacher_max,
                ..teacher.config
            },
            ..teacher
        };
        let (t_specials, t_prefix) = token_roles(&teacher.tokenizer, teacher.config.prefix(side))?;
        let states = teacher_states(
            &teacher,
            english,
            side,
            cfg.model.teacher_layer,
            inputs.teacher_store.as_deref(),
            32,
            cfg.run.progress,
        )?;
        check_widths(cfg, &states, student)?;
        let masks = states
            .entries
            .iter()
            .map(|e| content_mask(&e.ids, &t_specials, &t_prefix))
            .collect();
        let mono = joint_queries(cfg, inputs, &teacher)?;
        Ok(TeacherTargets {
            states,
            masks,
            mono,
        })
    }
}

fn check_widths(cfg: &TrainConfig, states: &TeacherStates, student: &Student) -> Result<()> {
    let width = student.config.encoder.hidden_size;
    if states.dim != width
        && matches!(cfg.loss.method, Method::Optical | Method::Joint)
        && cfg.loss.optical.cost == ot_core::tensor::CostKind::SquaredEuclidean
    {
        return Err(TrainError::Invalid(format!(
            "squared-Euclidean cost needs equal widths: teacher {} vs student {width}",
            states.dim
        )));
    }
    if states.dim != width {
        return Err(TrainError::Invalid(format!(
            "teacher width {} differs from the student's {width}",
            states.dim
        )));
    }
    Ok(())
}

/// The joint objective's queries, encoded once by the frozen teacher (`None` for the other
/// methods).
fn joint_queries(
    cfg: &TrainConfig,
    inputs: &TrainInputs,
    teacher: &Embedder,
) -> Result<Option<MonoBatches>> {
    if cfg.loss.method != Method::Joint {
        return Ok(None);
    }
    if inputs.monolingual.len() < 2 {
        return Err(TrainError::Invalid(format!(
            "the joint objective needs at least 2 monolingual queries (in-batch negatives), got {}",
            inputs.monolingual.len()
        )));
    }
    if let Some(q) = inputs.monolingual.iter().find(|q| q.docs.is_empty()) {
        return Err(TrainError::Invalid(format!(
            "monolingual query {} has no relevant document",
            q.id
        )));
    }
    let texts: Vec<&str> = inputs.monolingual.iter().map(|q| q.text.as_str()).collect();
    let queries = teacher.embed(&texts, TextKind::Query, 32)?;
    let batch = cfg
        .loss
        .joint_batch_size
        .unwrap_or(cfg.optim.batch_size)
        .min(queries.len());
    Ok(Some(MonoBatches {
        queries,
        order: BatchOrder::new(inputs.monolingual.len(), batch, cfg.run.seed ^ MONO_SEED),
        seed: cfg.run.seed,
    }))
}

/// The student's frozen prefix, computed once per sentence by the pretrained student (every
/// text the run's steps will read), when its embeddings and lowest layers stay frozen.
pub(crate) fn student_prefix(
    cfg: &TrainConfig,
    inputs: &TrainInputs,
    student: &Student,
    side: TextKind,
    english: &[String],
    device: &Device,
) -> Result<Option<PrefixCache>> {
    let Some(k) = frozen_prefix_layers(cfg, student).filter(|_| inputs.prefix_cache) else {
        return Ok(None);
    };
    let source = inputs
        .models
        .load(&cfg.model.student, &host_for(device))?
        .placed("frozen-prefix model", device)
        .with_max_len(student.train_len())?;
    student.to_embedder()?.check_shares_prefix(&source, k)?;
    let mut cache = PrefixCache::new(source, k, inputs.prefix_store.as_deref())?;
    let targets: Vec<&str> = inputs.pairs.iter().map(|p| p.tgt.as_str()).collect();
    let mut texts: Vec<String> = student.prefixed(&targets, side);
    let mse_steps = cfg.loss.method == Method::Mse || cfg.loss.warm_start_mse_steps > 0;
    if mse_steps && cfg.loss.mse_english_term {
        texts.extend(student.prefixed(english, side));
    }
    if cfg.loss.method == Method::Joint {
        let docs: Vec<&str> = inputs
            .monolingual
            .iter()
            .flat_map(|q| q.docs.iter().map(String::as_str))
            .collect();
        texts.extend(student.prefixed(&docs, TextKind::Passage));
    }
    cache.fill(&texts, 32, cfg.run.progress)?;
    Ok(Some(cache))
}

/// IDF token masses of the teacher's English token ids and of the student's target-language
/// ones (`marginal = "idf"`; `None` for uniform marginals).
pub(crate) fn idf_tables(
    cfg: &TrainConfig,
    inputs: &TrainInputs,
    states: &TeacherStates,
    student: &Student,
    side: TextKind,
) -> Result<Option<IdfTables>> {
    if cfg.loss.marginal == Marginal::Uniform {
        return Ok(None);
    }
    let t = idf_table(states.entries.iter().map(|e| e.ids.as_slice()));
    let tgt: Vec<Vec<u32>> = inputs
        .pairs
        .iter()
        .map(|p| {
            student
                .tokenizer
                .encode(&format!("{}{}", student.config.prefix(side), p.tgt))
        })
        .collect::<clir_models::Result<_>>()?;
    let s = idf_table(tgt.iter().map(Vec::as_slice));
    Ok(Some((t, s)))
}

/// The frozen prefix a run may cache: `k` = the frozen layers when the embeddings are frozen
/// too, capped at the layer the OT methods read; `None` when nothing is frozen below a
/// trained layer.
fn frozen_prefix_layers(cfg: &TrainConfig, student: &Student) -> Option<usize> {
    let n = student.encoder.num_layers();
    let mut k = cfg.model.freeze_layers.min(n);
    if matches!(cfg.loss.method, Method::Optical | Method::Joint) {
        k = k.min(cfg.model.student_layer.unwrap_or(n));
    }
    (cfg.model.freeze_embeddings && k > 0).then_some(k)
}
