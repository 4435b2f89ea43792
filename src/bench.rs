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

/// What an encoder timing run measured.
#[derive(Debug, Clone, Serialize)]
pub struct EncoderBench {
    pub framework: &'static str,
    pub model: String,
    pub arch: String,
    pub device: String,
    pub threads: i32,
    pub batch: usize,
    pub clip_s: f32,
    pub clips: usize,
    pub load_s: f64,
    pub seconds: f64,
    pub clips_per_s: f64,
    /// Seconds of audio embedded per second.
    pub realtime: f64,
}

/// A deterministic speech-like test signal (the same one `benches/encoders.py` feeds
/// `transformers`): a rising harmonic tone of `n` samples at 16 kHz.
pub fn test_tone(n: usize) -> Vec<f32> {
    let mut phase = 0f64;
    (0..n)
        .map(|i| {
            let t = i as f64 / 16000.0;
            phase += 2.0 * std::f64::consts::PI * (140.0 + 60.0 * t) / 16000.0;
            let y: f64 = (1..6).map(|k| (k as f64 * phase).sin() / k as f64).sum();
            (0.2 * y) as f32
        })
        .collect()
}

/// Time the hidden states of `clips` clips of `clip_s` seconds, `batch` at a time, after one
/// warm-up batch: the part `emolab featurize` spends in the encoder.
pub fn encoder_speed(
    model: &Path,
    clip_s: f32,
    clips: usize,
    batch: usize,
    threads: i32,
    device: tch::Device,
    whisper_input: crate::encoders::WhisperInput,
) -> Result<EncoderBench> {
    if clips == 0 || batch == 0 {
        bail!("--clips and --batch must be >= 1");
    }
    tch::set_num_threads(threads);
    let start = std::time::Instant::now();
    let enc = crate::encoders::Encoder::load(model, device)?;
    let load_s = start.elapsed().as_secs_f64();
    let y = test_tone((clip_s * 16000.0) as usize);
    let group: Vec<&[f32]> = vec![&y[..]; batch];
    let sync = || {
        if let tch::Device::Cuda(i) = device {
            tch::Cuda::synchronize(i as i64);
        }
    };
    enc.forward(&group, whisper_input)?;
    sync();
    let start = std::time::Instant::now();
    let mut done = 0;
    while done < clips {
        let n = batch.min(clips - done);
        let out = enc.forward(&group[..n], whisper_input)?;
        let _ = out.last.sum(tch::Kind::Float).double_value(&[]);
        done += n;
    }
    sync();
    let seconds = start.elapsed().as_secs_f64();
    Ok(EncoderBench {
        framework: "emolab",
        model: model.display().to_string(),
        arch: enc.arch().name().into(),
        device: format!("{device:?}"),
        threads,
        batch,
        clip_s,
        clips,
        load_s,
        seconds,
        clips_per_s: clips as f64 / seconds,
        realtime: clips as f64 * clip_s as f64 / seconds,
    })
}
