//! `emolab bench train`: time emolab's training pass on a feature cache, for `make bench-train`
//! to set beside the same model in plain PyTorch (`benches/train_torch.py`) on the same rows,
//! batch size and threads. Only the training pass (forward, backward, update) is timed.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::cache::{Cache, CacheRow};
use crate::models::ModelSpec;
use crate::train::{self, Dataset, DeviceChoice, FitConfig, Precision};

/// What a timing run measured.
#[derive(Debug, Clone, Serialize)]
pub struct TrainBench {
    pub framework: &'static str,
    pub model: String,
    pub device: String,
    pub threads: i32,
    pub precision: String,
    pub batch_size: usize,
    pub n_train: usize,
    pub n_mels: usize,
    pub frames: usize,
    pub classes: usize,
    pub parameters: i64,
    pub load_s: f64,
    /// Training-pass seconds per epoch.
    pub epoch_s: Vec<f64>,
    pub train_loss: Vec<f64>,
}

/// Train `preset` on every row of a pipeline cache folder (labels: sorted unique emotions) for
/// `epochs` epochs and report the per-epoch training time.
#[allow(clippy::too_many_arguments)]
pub fn train_speed(
    cache_dir: &Path,
    preset: &str,
    epochs: usize,
    batch_size: usize,
    threads: usize,
    device: DeviceChoice,
    precision: Precision,
    originals_only: bool,
) -> Result<TrainBench> {
    let spec = ModelSpec::preset(preset).with_context(|| {
        format!(
            "unknown preset {preset} ({})",
            ModelSpec::PRESETS.join(", ")
        )
    })?;
    let t0 = std::time::Instant::now();
    let (root, key) = (
        cache_dir.parent().unwrap_or(Path::new(".")),
        cache_dir
            .file_name()
            .context("cache folder has no name")?
            .to_string_lossy()
            .into_owned(),
    );
    let mut rows: Vec<CacheRow> = Cache::open(root, &key)?.read_all(None)?;
    if originals_only {
        rows.retain(|r| r.variant == "original");
    }
    rows.sort_by(|a, b| a.key.cmp(&b.key));
    if rows.is_empty() {
        bail!("{}: no cached rows", cache_dir.display());
    }
    let mut classes: Vec<String> = rows.iter().map(|r| r.emotion.clone()).collect();
    classes.sort();
    classes.dedup();
    let index: HashMap<&str, usize> = classes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.as_str(), i))
        .collect();
    let labels: Vec<usize> = rows.iter().map(|r| index[r.emotion.as_str()]).collect();
    let refs: Vec<&CacheRow> = rows.iter().collect();
    let all = Dataset::from_rows(&refs, &labels)?;
    let k = 64.min(refs.len());
    let small = Dataset::from_rows(&refs[..k], &labels[..k])?;
    let load_s = t0.elapsed().as_secs_f64();
    let cfg = FitConfig {
        epochs,
        batch_size,
        patience: epochs + 1,
        threads: Some(threads),
        device,
        precision,
        ..Default::default()
    };
    let r = train::fit(&spec, &classes, &all, &small, &small, &cfg)?;
    let dev = device.resolve().map_err(anyhow::Error::msg)?;
    Ok(TrainBench {
        framework: "emolab",
        model: preset.into(),
        device: train::device::device_name(dev),
        threads: tch::get_num_threads(),
        precision: format!("{precision:?}").to_lowercase(),
        batch_size,
        n_train: all.len(),
        n_mels: all.n_features,
        frames: all.frames,
        classes: classes.len(),
        parameters: r.model.parameters(),
        load_s,
        epoch_s: r.history.iter().map(|h| h.train_seconds).collect(),
        train_loss: r.history.iter().map(|h| h.train_loss).collect(),
    })
}
