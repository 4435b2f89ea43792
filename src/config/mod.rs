//! Parse YAML once into validated, typed structs, with errors a user can act on.
//!
//! Every config type derives `Deserialize` with `deny_unknown_fields`; [`load_yaml`] reports a
//! failure as [`ConfigError`]: the file, the key path (`db.top_db`), what is wrong, and for an
//! unknown key the closest known one ("did you mean `top_db`?"). Semantic checks after parsing
//! return the same error type through [`ConfigError::invalid`].

mod tree;

pub use tree::{apply_set, expand_env, locate, merge, read_tree, set_path};

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;
use serde::de::DeserializeOwned;

/// A config file that cannot be used, and why.
#[derive(Debug, thiserror::Error)]
#[error("{}: {}{}{}", file.display(), key.as_ref().map(|k| format!("key `{k}`: ")).unwrap_or_default(), message, hint.as_ref().map(|h| format!("; {h}")).unwrap_or_default())]
pub struct ConfigError {
    pub file: PathBuf,
    pub key: Option<String>,
    pub message: String,
    pub hint: Option<String>,
}

impl ConfigError {
    /// A semantic error found after parsing.
    pub fn invalid(file: &Path, key: &str, message: impl Into<String>) -> Self {
        ConfigError {
            file: file.to_path_buf(),
            key: Some(key.to_string()),
            message: message.into(),
            hint: None,
        }
    }
}

/// What to say about a YAML file that cannot be opened: the closest `.yaml` name in its
/// folder, `experiments/NAME.yaml` for a bare name, or that its folder is not here.
pub fn missing_file_hint(file: &Path) -> Option<String> {
    if file.exists() {
        return None;
    }
    let parent = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let stem = file.file_stem()?.to_string_lossy().to_string();
    if file.extension().is_none() && file.parent().is_none_or(|p| p.as_os_str().is_empty()) {
        let shipped = Path::new("experiments").join(format!("{stem}.yaml"));
        if shipped.is_file() {
            return Some(format!("did you mean `{}`?", shipped.display()));
        }
    }
    if !parent.is_dir() {
        let here = std::env::current_dir().map_or_else(|_| ".".into(), |d| d.display().to_string());
        return Some(format!(
            "there is no folder `{}` in {here}: run from the emolab checkout, or give the \
             file's full path",
            parent.display()
        ));
    }
    let mut files: Vec<(PathBuf, String)> = std::fs::read_dir(parent)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .filter_map(|p| {
            let s = p.file_stem()?.to_string_lossy().to_string();
            Some((p, s))
        })
        .collect();
    files.sort();
    let best = closest(
        &stem,
        files.iter().map(|(_, s)| s.as_str()),
        stem.len().max(3) / 3 + 1,
    )?;
    let (path, _) = files.iter().find(|(_, s)| s == best)?;
    Some(format!("did you mean `{}`?", path.display()))
}

/// The candidate closest to `given` by edit distance (the first of equally close ones), if it
/// is at most `max` edits away: what every "did you mean" names.
pub fn closest<'a>(
    given: &str,
    candidates: impl IntoIterator<Item = &'a str>,
    max: usize,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (edit_distance(given, c), c))
        .min_by_key(|(d, _)| *d)
        .filter(|(d, _)| *d <= max)
        .map(|(_, c)| c)
}

/// Read and parse a YAML file into `T`.
pub fn load_yaml<T: DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.to_path_buf(),
        key: None,
        message: format!("cannot read: {e}"),
        hint: missing_file_hint(path),
    })?;
    parse_yaml(path, &text)
}

/// Parse YAML text (named `path` in errors) into `T`.
pub fn parse_yaml<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, ConfigError> {
    let de = serde_yaml::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let key = e.path().to_string();
        let inner = e.into_inner();
        let message = inner.to_string();
        let hint = did_you_mean(&message);
        ConfigError {
            file: path.to_path_buf(),
            key: (key != "." && !key.is_empty()).then_some(key),
            message: message.trim().to_string(),
            hint,
        }
    })
}

/// Deserialize an already parsed (and edited) YAML tree from `path` into `T`, with the key
/// path and a did-you-mean hint in errors, as [`parse_yaml`].
pub fn from_value<T: DeserializeOwned>(
    path: &Path,
    tree: serde_yaml::Value,
) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(tree).map_err(|e| {
        let key = e.path().to_string();
        let message = e.into_inner().to_string();
        let hint = did_you_mean(&message);
        ConfigError {
            file: path.to_path_buf(),
            key: (key != "." && !key.is_empty()).then_some(key),
            message: message.trim().to_string(),
            hint,
        }
    })
}

static UNKNOWN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"unknown (?:field|variant) `([^`]*)`, expected (.*)").unwrap());
static TICKED: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"`([^`]*)`").unwrap());

/// For serde's "unknown field `x`, expected one of `a`, `b`", the closest expected name.
fn did_you_mean(message: &str) -> Option<String> {
    let c = UNKNOWN.captures(message)?;
    let given = &c[1];
    let expected: Vec<&str> = TICKED
        .captures_iter(&c[2])
        .map(|m| m.get(1).map_or("", |g| g.as_str()))
        .collect();
    closest(given, expected, given.len().max(3) / 2 + 1).map(|b| format!("did you mean `{b}`?"))
}

/// Levenshtein distance.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        top_db: Option<f32>,
        amin: f32,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        hop: usize,
        db: Inner,
    }

    #[test]
    fn unknown_key_names_path_and_suggests() {
        let e = parse_yaml::<Outer>(Path::new("p.yaml"), "hop: 3\ndb: {amin: 1, topdb: 80}\n")
            .unwrap_err();
        let s = e.to_string();
        assert!(s.starts_with("p.yaml: key `db.topdb`"), "{s}");
        assert!(s.contains("did you mean `top_db`?"), "{s}");
    }

    #[test]
    fn a_missing_file_gets_the_closest_name_or_says_where_it_looked() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("emodb_functionals_svm.yaml"), "x: 1").unwrap();
        let typo = d.path().join("emodb_funtionals_svm.yaml");
        let h = missing_file_hint(&typo).unwrap();
        assert!(h.contains("emodb_functionals_svm.yaml"), "{h}");
        assert_eq!(
            missing_file_hint(&d.path().join("unrelated_name.yaml")),
            None
        );
        let h = missing_file_hint(&d.path().join("nowhere/x.yaml")).unwrap();
        assert!(h.contains("no folder"), "{h}");
    }

    #[test]
    fn wrong_type_names_path() {
        let e = parse_yaml::<Outer>(Path::new("p.yaml"), "hop: many\ndb: {amin: 1}\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("hop"));
        assert!(e.message.contains("invalid type"), "{e}");
    }

    #[test]
    fn distance() {
        assert_eq!(edit_distance("hop_len", "hop"), 4);
        assert_eq!(edit_distance("nmels", "n_mels"), 1);
    }
}

/// Where the feature cache lives (`EMOLAB_CACHE`, default `data/cache`).
pub fn cache_dir() -> std::path::PathBuf {
    std::env::var_os("EMOLAB_CACHE")
        .map(Into::into)
        .unwrap_or_else(|| "data/cache".into())
}

/// Where run folders go (`EMOLAB_RESULTS`, default `results`).
pub fn results_dir() -> std::path::PathBuf {
    std::env::var_os("EMOLAB_RESULTS")
        .map(Into::into)
        .unwrap_or_else(|| "results".into())
}
