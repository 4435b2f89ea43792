//! Helpers shared by the integration tests that drive the `emolab` binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use polars::prelude::*;

pub const BIN: &str = env!("CARGO_BIN_EXE_emolab");

/// Run `emolab --quiet ARGS`: (success, stdout, stderr).
pub fn emolab(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN)
        .arg("--quiet")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn read_parquet(path: &Path) -> DataFrame {
    ParquetReader::new(std::fs::File::open(path).unwrap())
        .finish()
        .unwrap()
}

/// A small, fast experiment on `corpus` writing into `dir/{cache,results}`: 6 emotions, 32 mels,
/// a tiny CNN, 2 epochs. `protocol` is a YAML line (`protocol: {...}`) or empty for the default.
pub fn write_exp(dir: &Path, name: &str, corpus: &Path, protocol: &str, extra: &str) -> PathBuf {
    let text = format!(
        "corpus: {{path: {corpus}, format: cremad, labels: [anger, disgust, fear, happiness, neutral, sadness]}}
pipeline: {{file: {pipelines}/logmel64.yaml, n_mels: 32, augment: []}}
{protocol}
model: {{preset: cnn_v1, channels: [8, 16], dense: 32}}
train: {{epochs: 2, batch_size: 64, threads: 2, device: cpu}}
seeds: [0]
cache: {cache}
results: {results}
{extra}",
        corpus = corpus.display(),
        pipelines = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines").display(),
        cache = dir.join("cache").display(),
        results = dir.join("results").display(),
    );
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// The real EmoDB folder (`$EMODB`, or the shared corpora folder next to the project), when
/// present: real-data tests skip with a message without it.
pub fn emodb() -> Option<PathBuf> {
    let p = std::env::var_os("EMODB")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpora/emodb/wav")
        });
    p.is_dir().then_some(p)
}
