//! Property tests of the training configuration reader, `TrainConfig::load` (issue 16):
//! arbitrary bytes and TOML text, and a real configuration with keys changed, retyped, removed
//! or added, never panic; every error starts with the file's path, and a TOML syntax error
//! points at a line of the file. A configuration that loads saves (`to_toml`) to a text that
//! loads again.

use std::path::{Path, PathBuf};

use clir_train::TrainConfig;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

type PropResult<T = ()> = Result<T, TestCaseError>;

/// 256 cases, and no regression files written next to the tests.
fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// `bytes` written to a `.toml` file in a fresh directory, removed when the guard drops.
fn file_with(bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("train config.toml");
    std::fs::write(&p, bytes).unwrap();
    (d, p)
}

/// Loads `bytes` from a file: an error starts with the path, and a TOML syntax error names a
/// line of the text; a configuration that loads is valid and survives `to_toml`.
fn check_load(bytes: &[u8]) -> PropResult<Option<TrainConfig>> {
    let (_dir, p) = file_with(bytes);
    let r = TrainConfig::load(&p);
    match r {
        Ok(c) => {
            prop_assert!(c.validate().is_ok());
            let again = TrainConfig::from_toml(&c.to_toml(), Path::new("saved.toml"));
            prop_assert!(again.is_ok(), "{:?}", again.err());
            Ok(Some(c))
        }
        Err(e) => {
            let shown = e.to_string();
            let name = p.display().to_string();
            prop_assert!(shown.starts_with(&name), "{:?} lacks {:?}", shown, name);
            // `FILE: message`, or `FILE:LINE: key: message`; every line named is one of the text.
            let rest = &shown[name.len()..];
            let mut named = Vec::new();
            match rest.strip_prefix(':').and_then(|r| r.split_once(": ")) {
                Some((digits, _))
                    if !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()) =>
                {
                    named.push(digits.parse::<usize>().unwrap())
                }
                _ => prop_assert!(
                    rest.starts_with(": "),
                    "{:?} lacks ': ' after the file",
                    shown
                ),
            }
            let tag = "TOML parse error at line ";
            if let Some(at) = shown.find(tag) {
                let digits: String = shown[at + tag.len()..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                named.push(digits.parse().unwrap());
            }
            let lines = bytes.iter().filter(|&&b| b == b'\n').count() + 1;
            for line in named {
                prop_assert!(
                    (1..=lines).contains(&line),
                    "line {} of {}: {}",
                    line,
                    lines,
                    shown
                );
            }
            Ok(None)
        }
    }
}

/// The shipped example configuration over the defaults: every key the reader knows.
fn full_table() -> toml::Table {
    let example =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../experiments/train-swahili.toml");
    let text = std::fs::read_to_string(&example).unwrap();
    let mut t: toml::Table = toml::from_str(&TrainConfig::new().to_toml()).unwrap();
    overlay(&mut t, &toml::from_str(&text).unwrap());
    t
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

/// The table holding the leaf at `path`.
fn parent_of<'a>(t: &'a mut toml::Table, path: &[String]) -> &'a mut toml::Table {
    let mut t = t;
    for k in &path[..path.len() - 1] {
        t = t.get_mut(k).unwrap().as_table_mut().unwrap();
    }
    t
}

/// Any TOML value, leaning to the kinds and ranges a configuration holds.
fn toml_value() -> impl Strategy<Value = toml::Value> {
    use toml::Value;
    prop_oneof![
        (-3i64..300).prop_map(Value::Integer),
        any::<i64>().prop_map(Value::Integer),
        prop_oneof![
            any::<f64>(),
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(-0.0),
            0.0f64..2.0
        ]
        .prop_map(Value::Float),
        any::<bool>().prop_map(Value::Boolean),
        proptest::sample::select(vec![
            "Optical", "Kl", "Mse", "Joint", "Uniform", "Query", "Passage", "Absolute", "e5-small",
            "swahili", "1-39", "", "nope",
        ])
        .prop_map(|s| Value::String(s.to_string())),
        "\\PC{0,8}".prop_map(Value::String),
        Just(Value::Array(vec![Value::Integer(1)])),
        Just(Value::Table(toml::Table::new())),
        Just(Value::Datetime("1979-05-27T07:32:00Z".parse().unwrap())),
    ]
}

proptest! {
    #![proptest_config(config())]

    /// Arbitrary bytes and text: no panic, errors name the file (and a line, for syntax).
    #[test]
    fn arbitrary_text_never_panics(
        bytes in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..300),
            any::<String>().prop_map(String::into_bytes),
            "(\\[[a-z.]{0,12}\\]\n|[a-z_.]{1,12} = [-0-9a-z.\"]{0,8}\n){0,8}".prop_map(String::into_bytes),
        ],
    ) {
        check_load(&bytes)?;
    }

    /// The example configuration with up to three keys changed to any value, removed, or
    /// joined by an unknown sibling: loads (valid, and savable) or names the file.
    #[test]
    fn changed_keys_load_or_name_the_file(
        changes in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..4, toml_value()), 0..4),
    ) {
        let mut t = full_table();
        let mut paths = Vec::new();
        leaves(&t, &[], &mut paths);
        let unchanged = changes.is_empty();
        for (at, how, value) in changes {
            let path = &paths[at.index(paths.len())];
            let key = path.last().unwrap().clone();
            let parent = parent_of(&mut t, path);
            match how {
                0 => {
                    parent.remove(&key);
                }
                1 => {
                    parent.insert(format!("{key}_x"), value);
                }
                _ => {
                    parent.insert(key, value);
                }
            }
        }
        let text = toml::to_string(&t).unwrap();
        let loaded = check_load(text.as_bytes())?;
        prop_assert!(!unchanged || loaded.is_some(), "the example does not load:\n{}", text);
    }

    /// The example file's text with one line replaced or cut: loads or names the file.
    #[test]
    fn broken_lines_load_or_name_the_file(
        at in any::<prop::sample::Index>(),
        replacement in "\\PC{0,16}",
        cut in any::<prop::sample::Index>(),
        how in 0u8..3,
    ) {
        let text = toml::to_string(&full_table()).unwrap();
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        let k = at.index(lines.len());
        match how {
            0 => lines[k] = replacement,
            1 => {
                let l = &lines[k];
                let ends: Vec<usize> = l.char_indices().map(|(i, _)| i).collect();
                let end = if ends.is_empty() { 0 } else { ends[cut.index(ends.len())] };
                lines[k] = l[..end].to_string();
            }
            _ => lines.insert(k, replacement),
        }
        check_load(lines.join("\n").as_bytes())?;
    }
}

/// The base of the changes above loads as it is.
#[test]
fn the_shipped_example_loads() {
    let example =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../experiments/train-swahili.toml");
    let c = TrainConfig::load(&example).unwrap();
    assert_eq!(c.optim.steps, 120);
}
