//! The feature stage: every clip and augmented variant → cached spectrogram, in parallel.
//!
//! Work is grouped by clip (decode and resample once, then every missing variant), spread over
//! rayon's threads, and written to the cache as a new part file every [`FLUSH_ROWS`] rows (each batch
//! writes its own part, in parallel with the others), so a killed run keeps what it finished. Clips that fail (unreadable audio, ...) are counted and
//! listed; the batch goes on.

use std::collections::HashSet;
use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use rayon::prelude::*;

use super::pipeline::{Pipeline, Variant};
use super::{augment, FeatureExtractor};
use crate::cache::{row_key, Cache, CacheRow};
use crate::corpus::{ClipRecord, Problem};
use crate::dsp;

/// Rows per part file written by one featurize run.
pub const FLUSH_ROWS: usize = 512;

/// Clips per group (and part file) of an encoder pipeline.
pub const ENCODER_GROUP_CLIPS: usize = 32;

/// What a featurize run did.
#[derive(Debug, Clone)]
pub struct FeaturizeReport {
    pub clips: usize,
    /// Variants wanted (clips × variants per clip).
    pub wanted: usize,
    pub cached: usize,
    pub computed: usize,
    pub failed: Vec<Problem>,
    pub cache_dir: std::path::PathBuf,
    pub seconds: f64,
}

impl std::fmt::Display for FeaturizeReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} clips, {} variants: {} cached, {} computed, {} skipped in {:.1} s ({:.1} variants/s) → {}",
            self.clips,
            self.wanted,
            self.cached,
            self.computed,
            self.failed.len(),
            self.seconds,
            self.computed as f64 / self.seconds.max(1e-9),
            self.cache_dir.display()
        )?;
        for p in &self.failed {
            write!(f, "\n  skipped {}: {}", p.path, p.reason)?;
        }
        Ok(())
    }
}

/// Load a clip as mono at the pipeline's rate.
pub fn load_clip(path: &Path, sample_rate: u32) -> Result<Vec<f32>, String> {
    let audio = crate::audio::read_wav(path).map_err(|e| e.to_string())?;
    let mono = audio.to_mono();
    Ok(if audio.sample_rate == sample_rate {
        mono
    } else {
        dsp::resample(&mono, audio.sample_rate, sample_rate).map_err(|e| e.to_string())?
    })
}

/// The keys of every variant of every clip under this pipeline.
pub fn wanted_keys(clips: &[ClipRecord], pipeline: &Pipeline) -> HashSet<String> {
    let variants = pipeline.variants();
    clips
        .iter()
        .flat_map(|c| variants.iter().map(|v| row_key(&c.content_hash, &v.key)))
        .collect()
}

/// Compute what is missing from the cache for `clips` under `pipeline`.
pub fn featurize(
    clips: &[ClipRecord],
    pipeline: &Pipeline,
    cache_root: &Path,
    progress: bool,
) -> Result<FeaturizeReport> {
    let start = Instant::now();
    let mut cache = Cache::open(cache_root, &pipeline.feature_key())?;
    let spec = cache.dir.join("pipeline.yaml");
    if !spec.exists() {
        crate::util::atomic_write_bytes(&spec, serde_yaml::to_string(pipeline)?.as_bytes())?;
    }
    cache.feature_names = pipeline.feature_names();
    if let Some(names) = &cache.feature_names {
        let listing = cache.dir.join("feature_names.json");
        if !listing.exists() {
            crate::util::atomic_write_bytes(
                &listing,
                serde_json::to_string_pretty(names)?.as_bytes(),
            )?;
        }
    }
    let present = cache.keys()?;
    let variants = pipeline.variants();
    // Per clip, the variants still to compute.
    let todo: Vec<(&ClipRecord, Vec<&Variant>)> = clips
        .iter()
        .map(|c| {
            let missing = variants
                .iter()
                .filter(|v| !present.contains(&row_key(&c.content_hash, &v.key)))
                .collect::<Vec<_>>();
            (c, missing)
        })
        .filter(|(_, m)| !m.is_empty())
        .collect();
    let wanted = clips.len() * variants.len();
    let missing: usize = todo.iter().map(|(_, m)| m.len()).sum();
    let extractor = FeatureExtractor::new(pipeline)?;
    let bar = crate::util::progress_bar(missing as u64, "featurize", progress);
    // Batches of clips are computed and written as their own part files inside the rayon pool,
    // so writing one part overlaps with computing the next.
    // Encoders: groups of clips embedded together (and written) a few at a time, so a slow
    // model still shows progress and keeps its finished parts.
    let per_batch = if extractor.uses_encoder() {
        ENCODER_GROUP_CLIPS
    } else {
        (FLUSH_ROWS / variants.len()).max(1)
    };
    let batches: Vec<Result<(usize, Vec<Problem>)>> =
        todo.par_chunks(per_batch)
            .map(|batch| {
                let results: Vec<Result<Vec<CacheRow>, Problem>> = if extractor.uses_encoder() {
                    let r = embed_group(batch, pipeline, &extractor);
                    bar.inc(batch.iter().map(|(_, m)| m.len() as u64).sum());
                    r
                } else {
                    batch
                        .par_iter()
                        .map(|(clip, missing)| {
                            let rows = compute_clip(clip, missing, pipeline, &extractor).map_err(
                                |reason| Problem {
                                    path: clip.path.clone(),
                                    reason,
                                },
                            );
                            bar.inc(missing.len() as u64);
                            rows
                        })
                        .collect()
                };
                let mut rows = Vec::new();
                let mut failed = Vec::new();
                for r in results {
                    match r {
                        Ok(mut v) => rows.append(&mut v),
                        Err(p) => failed.push(p),
                    }
                }
                if !rows.is_empty() {
                    cache.write_part(&rows)?;
                }
                Ok((rows.len(), failed))
            })
            .collect();
    let mut computed = 0;
    let mut failed = Vec::new();
    for b in batches {
        let (n, mut f) = b?;
        computed += n;
        failed.append(&mut f);
    }
    failed.sort_by(|a, b| a.path.cmp(&b.path));
    bar.finish_and_clear();
    Ok(FeaturizeReport {
        clips: clips.len(),
        wanted,
        cached: wanted - missing,
        computed,
        failed,
        cache_dir: cache.dir,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// The augmented samples of one variant of a clip (`None`: the original, `y` itself) and the
/// augmentation's drawn parameters.
fn variant_wave(
    clip: &ClipRecord,
    v: &Variant,
    y: &[f32],
    pipeline: &Pipeline,
) -> Result<(Option<Vec<f32>>, serde_json::Value), String> {
    match &v.augment {
        None => Ok((None, serde_json::json!({}))),
        Some(a) => {
            let mut rng = augment::variant_rng(&clip.content_hash, &v.key);
            let (s, p) = augment::apply(a, v.copy, y, pipeline.sample_rate, &mut rng)
                .map_err(|e| format!("variant {}: {e}", v.name))?;
            Ok((Some(s), p))
        }
    }
}

/// A clip's samples and each wanted variant's augmented samples and parameters.
type ClipWaves = (Vec<f32>, Vec<(Option<Vec<f32>>, serde_json::Value)>);

fn clip_waves(
    clip: &ClipRecord,
    variants: &[&Variant],
    pipeline: &Pipeline,
) -> Result<ClipWaves, String> {
    let y = load_clip(Path::new(&clip.path), pipeline.sample_rate)?;
    let v = variants
        .iter()
        .map(|v| variant_wave(clip, v, &y, pipeline))
        .collect::<Result<_, _>>()?;
    Ok((y, v))
}

/// The cache row of one computed variant.
fn cache_row(
    clip: &ClipRecord,
    v: &Variant,
    params: &serde_json::Value,
    pipeline: &Pipeline,
    (n_frames, features): (usize, Vec<f32>),
) -> Result<CacheRow, String> {
    if let Some(i) = features.iter().position(|x| !x.is_finite()) {
        return Err(format!("variant {}: non-finite feature at {i}", v.name));
    }
    Ok(CacheRow {
        key: row_key(&clip.content_hash, &v.key),
        clip_id: clip.clip_id.clone(),
        path: clip.path.clone(),
        content_hash: clip.content_hash.clone(),
        corpus: clip.corpus.clone(),
        speaker: clip.speaker.clone(),
        sex: clip.sex.clone(),
        sentence: clip.sentence.clone(),
        emotion: clip.emotion.clone(),
        intensity: clip.intensity.clone(),
        variant: v.name.clone(),
        variant_params: params.to_string(),
        n_frames: n_frames as u32,
        n_mels: pipeline.n_mels as u32,
        n_features: pipeline.n_features() as u32,
        features: features.into(),
    })
}

/// Every wanted variant of a group of clips through an encoder, batched across clips: the
/// waveforms are made in parallel, then embedded together. Per clip, its rows or the problem.
fn embed_group(
    group: &[(&ClipRecord, Vec<&Variant>)],
    pipeline: &Pipeline,
    extractor: &FeatureExtractor,
) -> Vec<Result<Vec<CacheRow>, Problem>> {
    let waves: Vec<Result<ClipWaves, String>> = group
        .par_iter()
        .map(|(clip, missing)| clip_waves(clip, missing, pipeline))
        .collect();
    let refs: Vec<&[f32]> = waves
        .iter()
        .flatten()
        .flat_map(|(y, vs)| vs.iter().map(move |(s, _)| s.as_deref().unwrap_or(y)))
        .collect();
    let mut feats = extractor.compute_many(&refs).into_iter();
    group
        .iter()
        .zip(&waves)
        .map(|((clip, missing), w)| {
            let problem = |reason: String| Problem {
                path: clip.path.clone(),
                reason,
            };
            let (_, w) = w.as_ref().map_err(|e| problem(e.clone()))?;
            let mut rows = Vec::new();
            let mut err = None;
            for ((v, (_, params)), f) in missing.iter().zip(w).zip(feats.by_ref()) {
                match f {
                    Ok(f) => match cache_row(clip, v, params, pipeline, f) {
                        Ok(r) => rows.push(r),
                        Err(e) => err = Some(e),
                    },
                    Err(e) => err = Some(format!("variant {}: {e}", v.name)),
                }
            }
            match err {
                Some(e) => Err(problem(e)),
                None => Ok(rows),
            }
        })
        .collect()
}

/// A clip's variants one at a time: only one augmented copy is in memory at once.
fn compute_clip(
    clip: &ClipRecord,
    variants: &[&Variant],
    pipeline: &Pipeline,
    extractor: &FeatureExtractor,
) -> Result<Vec<CacheRow>, String> {
    let y = load_clip(Path::new(&clip.path), pipeline.sample_rate)?;
    variants
        .iter()
        .map(|v| {
            let (samples, params) = variant_wave(clip, v, &y, pipeline)?;
            let f = extractor
                .compute(samples.as_deref().unwrap_or(&y))
                .map_err(|e| format!("variant {}: {e}", v.name))?;
            cache_row(clip, v, &params, pipeline, f)
        })
        .collect()
}
