//! The YAML tree under every experiment and pipeline file: `extends:` chains merged key by
//! key, `--set key.path=value` overrides, `${VAR:-default}` expansion, and errors pointed back
//! at the file and line (or the `--set`) that wrote the key.

use std::path::{Path, PathBuf};

use serde_yaml::{Mapping, Value};

use super::ConfigError;

fn err(file: &Path, key: &str, msg: impl Into<String>) -> ConfigError {
    ConfigError::invalid(file, key, msg)
}

/// Merge `over` into `base`: mappings key by key, anything else replaces. A mapping that names
/// another variant (`kind`, `family` or `type` differs, e.g. a plateau schedule over a cosine
/// one) replaces the base instead of mixing fields of both.
pub fn merge(base: &mut Value, over: Value) {
    let other_variant = |b: &Mapping, o: &Mapping| {
        ["kind", "family", "type"]
            .iter()
            .any(|t| matches!((b.get(*t), o.get(*t)), (Some(x), Some(y)) if x != y))
    };
    match (base, over) {
        (Value::Mapping(b), Value::Mapping(o)) if other_variant(b, &o) => *b = o,
        (Value::Mapping(b), Value::Mapping(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

pub fn read_tree(file: &Path, chain: &mut Vec<PathBuf>) -> Result<Value, ConfigError> {
    let canon = file.canonicalize().map_err(|e| ConfigError {
        file: file.to_path_buf(),
        key: None,
        message: format!("cannot read: {e}"),
        hint: super::missing_file_hint(file),
    })?;
    if chain.contains(&canon) {
        return Err(err(file, "extends", "extends itself (a cycle of extends)"));
    }
    chain.push(canon);
    let text = std::fs::read_to_string(file).map_err(|e| ConfigError {
        file: file.to_path_buf(),
        key: None,
        message: format!("cannot read: {e}"),
        hint: None,
    })?;
    let mut doc: Value = super::parse_yaml(file, &text)?;
    if doc.is_null() {
        doc = Value::Mapping(Mapping::new());
    }
    let Value::Mapping(map) = &mut doc else {
        return Err(ConfigError {
            file: file.to_path_buf(),
            key: None,
            message: "an experiment is a YAML mapping".into(),
            hint: None,
        });
    };
    if let Some(base) = map.remove("extends") {
        let Value::String(base) = base else {
            return Err(err(file, "extends", "must be a file name"));
        };
        let base_path = file.parent().unwrap_or(Path::new(".")).join(&base);
        if !base_path.exists() {
            return Err(err(
                file,
                "extends",
                format!("{} does not exist", base_path.display()),
            ));
        }
        let mut tree = read_tree(&base_path, chain)?;
        merge(&mut tree, doc);
        return Ok(tree);
    }
    Ok(doc)
}

/// Apply `key.path=value` (value parsed as YAML; `a.b=` sets null).
pub fn apply_set(tree: &mut Value, assignment: &str) -> Result<(), String> {
    let (key, value) = assignment
        .split_once('=')
        .ok_or_else(|| format!("`{assignment}`: expected key.path=value"))?;
    let value: Value = if value.trim().is_empty() {
        Value::Null
    } else {
        serde_yaml::from_str(value).map_err(|e| format!("`{assignment}`: {e}"))?
    };
    set_path(tree, key.trim(), value)
}

/// Set `key.path` in a tree, creating mappings on the way.
pub fn set_path(tree: &mut Value, key: &str, value: Value) -> Result<(), String> {
    let mut node = tree;
    let parts: Vec<&str> = key.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(format!("`{key}`: empty key segment"));
    }
    for (i, part) in parts.iter().enumerate() {
        if node.is_null() {
            *node = Value::Mapping(Mapping::new());
        }
        let Value::Mapping(map) = node else {
            return Err(format!(
                "`{key}`: `{}` is not a mapping",
                parts[..i].join(".")
            ));
        };
        let k = Value::String(part.to_string());
        if i + 1 == parts.len() {
            map.insert(k, value);
            return Ok(());
        }
        node = map.entry(k).or_insert(Value::Null);
    }
    unreachable!("the loop returns at the last segment")
}

/// Point an error about the merged experiment at what the user wrote: the `--set` that gave
/// the key, or `file:line` of the first file of the `extends` chain (the experiment first)
/// that writes it.
pub fn locate(mut e: ConfigError, file: &Path, chain: &[PathBuf], sets: &[String]) -> ConfigError {
    let Some(key) = e.key.clone() else { return e };
    if e.file != file {
        return e;
    }
    for s in sets.iter().rev() {
        let k = s.split('=').next().unwrap_or("").trim();
        if !k.is_empty()
            && (key == k || key.starts_with(&format!("{k}.")) || k.starts_with(&format!("{key}.")))
        {
            e.file = PathBuf::from(format!("--set {s}"));
            return e;
        }
    }
    let Some(last) = key.rsplit('.').find(|p| !p.is_empty() && *p != "?") else {
        return e;
    };
    let Ok(re) = regex::Regex::new(&format!(r"(^|[\s{{,\-])\s*{}\s*:", regex::escape(last))) else {
        return e;
    };
    let canon_file = file.canonicalize().ok();
    for path in chain {
        let Ok(text) = std::fs::read_to_string(path) else {
            continue;
        };
        if let Some(n) = text.lines().position(|l| {
            let code = l.split(" #").next().unwrap_or(l);
            !l.trim_start().starts_with('#') && re.is_match(code)
        }) {
            let shown = if canon_file.as_ref() == Some(path) {
                file.to_path_buf()
            } else {
                path.clone()
            };
            e.file = PathBuf::from(format!("{}:{}", shown.display(), n + 1));
            return e;
        }
    }
    e
}

/// Replace `${VAR}` / `${VAR:-default}` in every string of the tree.
pub fn expand_env(v: &mut Value, file: &Path) -> Result<(), ConfigError> {
    match v {
        Value::String(s) if s.contains("${") => {
            let re = regex::Regex::new(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}").unwrap();
            let mut missing = None;
            let out = re.replace_all(s, |c: &regex::Captures| {
                match (std::env::var(&c[1]), c.get(2)) {
                    (Ok(v), _) if !v.is_empty() => v,
                    (_, Some(d)) => d.as_str().to_string(),
                    _ => {
                        missing = Some(c[1].to_string());
                        String::new()
                    }
                }
            });
            if let Some(var) = missing {
                return Err(ConfigError {
                    file: file.to_path_buf(),
                    key: None,
                    message: format!("`{s}`: environment variable {var} is not set and has no default (write ${{{var}:-default}})"),
                    hint: None,
                });
            }
            *s = out.into_owned();
        }
        Value::Mapping(m) => {
            for (_, x) in m.iter_mut() {
                expand_env(x, file)?;
            }
        }
        Value::Sequence(xs) => {
            for x in xs {
                expand_env(x, file)?;
            }
        }
        _ => {}
    }
    Ok(())
}
