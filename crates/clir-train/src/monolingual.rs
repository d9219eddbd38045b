//! English relevance data for the joint objective's monolingual term.
//!
//! Nave's Topical Bible subtopics whose judged verses all lie in the **Old** Testament give
//! English queries (`"TOPIC: subtopic"`) with relevant English (WEB) OT verses. Evaluation
//! uses only subtopics whose verses all lie in the **New** Testament, so the two query sets
//! are disjoint by construction (a subtopic cannot be both), no training document is an
//! evaluation document, and a training query whose *text* equals an evaluation query's text
//! (Nave repeats some subtopic lines under several topics) is left out and counted.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;

use clir_data::bible::{BibleDb, ENGLISH_VERSION, OLD_TESTAMENT};
use clir_data::naves::{
    NaveCollection, NaveOptions, TestamentFilter, Topic, Versification, build_collection,
    read_topics,
};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::config::{Method, TrainConfig};
use crate::error::{Result, TrainError};

/// One English query and the texts of its relevant English documents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonoQuery {
    pub id: String,
    pub text: String,
    /// Relevant documents (at least one), in verse order.
    pub docs: Vec<String>,
}

/// What [`ot_training_queries`] kept and left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MonoReport {
    /// OT-only subtopics with 1..=100 judged verses.
    pub ot_subtopics: usize,
    /// Of those, left out because their text equals a New Testament (evaluation) query's.
    pub same_text_as_evaluation: usize,
    /// Judgments of verses the English version lacks (dropped; a query left with none is
    /// dropped and counted in `without_documents`).
    pub missing_verses: usize,
    pub without_documents: usize,
    /// Queries kept (before any sampling).
    pub kept: usize,
}

/// Nave options of the training queries: every verse in the Old Testament, 1..=100 verses.
pub const TRAINING_OPTIONS: NaveOptions = NaveOptions {
    testament: TestamentFilter::Old,
    min_relevant: 1,
    max_relevant: 100,
};

/// The training queries of `topics`: OT-only subtopics (see the module doc) whose text is not
/// an evaluation query's, each with the texts of its judged verses from `verse_text` (verse
/// id → text).
pub fn ot_training_queries(
    topics: &[Topic],
    v11n: &Versification,
    verse_text: &BTreeMap<String, String>,
) -> (Vec<MonoQuery>, MonoReport) {
    let ot = build_collection(topics, v11n, TRAINING_OPTIONS);
    let nt = build_collection(topics, v11n, NaveOptions::default());
    queries_from(&ot, &nt, verse_text)
}

fn queries_from(
    ot: &NaveCollection,
    nt: &NaveCollection,
    verse_text: &BTreeMap<String, String>,
) -> (Vec<MonoQuery>, MonoReport) {
    let evaluation: HashSet<&str> = nt.queries.iter().map(|q| q.text.as_str()).collect();
    let mut judged: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (qid, docno, _) in ot.qrels.iter() {
        judged.entry(qid).or_default().insert(docno);
    }
    let mut report = MonoReport {
        ot_subtopics: ot.queries.len(),
        ..MonoReport::default()
    };
    let mut out = Vec::new();
    for q in &ot.queries {
        if evaluation.contains(q.text.as_str()) {
            report.same_text_as_evaluation += 1;
            continue;
        }
        let mut docs = Vec::new();
        for d in judged.get(q.id.as_str()).into_iter().flatten() {
            match verse_text.get(*d) {
                Some(t) => docs.push(t.clone()),
                None => report.missing_verses += 1,
            }
        }
        if docs.is_empty() {
            report.without_documents += 1;
            continue;
        }
        out.push(MonoQuery {
            id: q.id.clone(),
            text: q.text.clone(),
            docs,
        });
    }
    report.kept = out.len();
    (out, report)
}

/// The training queries from the fetched Bible database (WEB OT verses) and Nave module,
/// cut to `max` with `seed` (kept in id order).
pub fn nave_training_queries(
    db: &BibleDb,
    naves_dir: &Path,
    max: Option<usize>,
    seed: u64,
) -> Result<(Vec<MonoQuery>, MonoReport)> {
    let topics = read_topics(naves_dir)?;
    let v11n = Versification::from_db(db, ENGLISH_VERSION)?;
    let (verses, _) = db.verses(ENGLISH_VERSION, OLD_TESTAMENT)?;
    let text: BTreeMap<String, String> = verses
        .into_iter()
        .map(|v| (v.r.to_string(), v.text))
        .collect();
    let (mut queries, report) = ot_training_queries(&topics, &v11n, &text);
    if let Some(n) = max.filter(|&n| n < queries.len()) {
        queries.shuffle(&mut ChaCha8Rng::seed_from_u64(seed ^ 0x4D4F_4E4F));
        queries.truncate(n);
        queries.sort_by(|a, b| a.id.cmp(&b.id));
    }
    Ok((queries, report))
}

/// The monolingual queries a run of `cfg` needs: none unless its method is `joint`, else the
/// Nave OT training queries cut to `data.monolingual_queries` with the run's seed.
pub fn load_monolingual(cfg: &TrainConfig) -> Result<Vec<MonoQuery>> {
    if cfg.loss.method != Method::Joint {
        return Ok(Vec::new());
    }
    let fetch = |e: clir_data::fetch::FetchError| TrainError::Invalid(format!("fetching: {e}"));
    let db = BibleDb::open(&clir_data::fetch::bible_db().map_err(fetch)?)?;
    let naves = clir_data::fetch::naves_module_dir().map_err(fetch)?;
    let (queries, _) =
        nave_training_queries(&db, &naves, cfg.data.monolingual_queries, cfg.run.seed)?;
    Ok(queries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clir_data::bible::VerseRef;
    use clir_data::naves::Subtopic;

    fn line(text: &str, refs: &[&str]) -> Subtopic {
        Subtopic {
            text: text.into(),
            refs: refs.iter().map(|r| r.to_string()).collect(),
            see_also: 0,
            malformed: None,
        }
    }

    /// Made-up topics over Gen 1 (OT, 5 verses) and Matt 1 (NT, 5 verses).
    fn topics() -> (Vec<Topic>, Versification, BTreeMap<String, String>) {
        let refs: Vec<VerseRef> = (1..=5)
            .flat_map(|v| {
                [
                    VerseRef {
                        book: 1,
                        chapter: 1,
                        verse: v,
                    },
                    VerseRef {
                        book: 40,
                        chapter: 1,
                        verse: v,
                    },
                ]
            })
            .collect();
        let v11n = Versification::from_refs(refs.iter().copied());
        let text = refs
            .iter()
            .map(|r| (r.to_string(), format!("text of {r}")))
            .collect();
        let topics = vec![
            Topic {
                number: 1,
                name: "LIGHT".into(),
                lines: vec![
                    line("Created", &["Gen.1.3", "Gen.1.4"]), // OT only: kept
                    line("Of the world", &["Matt.1.2", "Matt.1.3"]), // NT only: evaluation
                    line("Both", &["Gen.1.5", "Matt.1.4"]),   // mixed: neither
                    line("Single", &["Gen.1.1"]),             // OT, one verse: kept
                ],
            },
            Topic {
                number: 2,
                name: "LIGHT".into(),
                // The same text as the NT query above, but judged in the OT: left out.
                lines: vec![line("Of the world", &["Gen.1.2"])],
            },
        ];
        (topics, v11n, text)
    }

    #[test]
    fn only_old_testament_subtopics_not_worded_like_evaluation_queries() {
        let (topics, v11n, text) = topics();
        let (queries, report) = ot_training_queries(&topics, &v11n, &text);
        let ids: Vec<&str> = queries.iter().map(|q| q.id.as_str()).collect();
        assert_eq!(ids, ["nave0001.01", "nave0001.04"]);
        assert_eq!(queries[0].text, "LIGHT: Created");
        assert_eq!(queries[0].docs, ["text of Gen.1.3", "text of Gen.1.4"]);
        assert_eq!(report.ot_subtopics, 3);
        assert_eq!(report.same_text_as_evaluation, 1);
        assert_eq!(report.kept, 2);
        // Every document is an OT verse, and no query is an evaluation query.
        let nt = build_collection(&topics, &v11n, NaveOptions::default());
        for q in &queries {
            assert!(q.docs.iter().all(|d| d.contains("Gen.")), "{q:?}");
            assert!(nt.queries.iter().all(|e| e.id != q.id && e.text != q.text));
        }
    }

    #[test]
    fn missing_verse_texts_are_counted_and_empty_queries_dropped() {
        let (topics, v11n, mut text) = topics();
        text.remove("Gen.1.1");
        text.remove("Gen.1.3");
        let (queries, report) = ot_training_queries(&topics, &v11n, &text);
        assert_eq!(queries.len(), 1);
        assert_eq!(queries[0].docs, ["text of Gen.1.4"]);
        assert_eq!(report.missing_verses, 2);
        assert_eq!(report.without_documents, 1);
    }
}
