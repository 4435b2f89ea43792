//! An experiment's data, ready to split and train on: the corpus scanned (or its manifest read),
//! labels mapped to the experiment's classes, every clip's features read from the cache (computed
//! first where missing), and the speaker-disjoint folds of its protocol.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use anyhow::Result;

use crate::cache::{row_key, Cache, CacheRow};
use crate::config::ConfigError;
use crate::corpus::{self, ClipRecord, ScanOptions};
use crate::experiment::{Experiment, Target};
use crate::features::{self};
use crate::split::{make_folds, Fold, SplitError};
use crate::train::SpeakerStats;

/// A corpus made ready for an experiment: kept clips, their labels and cached features.
pub struct Prepared {
    pub clips: Vec<ClipRecord>,
    pub labels: Vec<usize>,
    pub classes: Vec<String>,
    /// Per clip (same order as `clips`): the original variant first, then augmented ones.
    pub rows: Vec<Vec<CacheRow>>,
    /// Clips left out: no label for the target, label not kept, duplicate content, or
    /// features failed.
    pub skipped: BTreeMap<String, usize>,
    /// Byte-identical clips found in the corpus (one copy of each was kept).
    pub duplicates: corpus::Duplicates,
}

/// A clip's label for `target`, after `merge`.
pub fn label_of(
    c: &ClipRecord,
    target: Target,
    merge: &BTreeMap<String, String>,
) -> Option<String> {
    let raw = match target {
        Target::Emotion => Some(c.emotion.clone()),
        Target::Sentence => c.sentence.clone(),
        Target::Intensity => c.intensity.clone(),
        Target::Sex => c.sex.clone(),
    }?;
    Some(merge.get(&raw).cloned().unwrap_or(raw))
}

/// Clips from a manifest (`.parquet`), or by scanning a folder; scan problems are counted on
/// stderr and left out.
pub fn clips_from(path: &Path, opts: &ScanOptions) -> Result<Vec<ClipRecord>> {
    if path.extension().is_some_and(|e| e == "parquet") {
        return corpus::read_manifest(path);
    }
    let scan = corpus::scan(path, opts)?;
    if !scan.problems.is_empty() {
        eprintln!(
            "scan: {} files skipped (run `emolab corpus scan {}` for the list)",
            scan.problems.len(),
            path.display()
        );
    }
    Ok(scan.clips)
}

/// An experiment's corpus (or another one at `path`, read with the experiment's settings).
pub fn load_corpus(exp: &Experiment, path: &Path, progress: bool) -> Result<Vec<ClipRecord>> {
    clips_from(
        path,
        &ScanOptions {
            format: exp.corpus.format,
            demographics: exp.corpus.demographics.clone(),
            speaker_pattern: exp
                .corpus
                .speaker_pattern
                .as_deref()
                .map(regex::Regex::new)
                .transpose()?,
            progress,
        },
    )
}

/// Scan, label, featurize (cached) and load the features of an experiment's corpus.
pub fn prepare(exp: &Experiment, progress: bool) -> Result<Prepared> {
    prepare_with(exp, progress, true)
}

/// [`prepare`], or with `features: false` only the clips and labels (no feature is computed or
/// read; `rows` is empty): enough to plan the folds, as a Slurm submission does before the
/// features exist.
pub fn prepare_with(exp: &Experiment, progress: bool, features: bool) -> Result<Prepared> {
    let all = load_corpus(exp, &exp.corpus.path, progress)?;
    prepare_from(exp, all, progress, features)
}

/// [`prepare_with`] on clips already scanned from `exp.corpus.path` ([`load_corpus`]).
pub fn prepare_from(
    exp: &Experiment,
    all: Vec<ClipRecord>,
    progress: bool,
    features: bool,
) -> Result<Prepared> {
    if all.is_empty() {
        return Err(exp
            .error(
                "corpus.path",
                format!("{} has no usable clips", exp.corpus.path.display()),
            )
            .into());
    }
    let mut skipped = BTreeMap::new();
    // The same audio twice (possibly under two speakers) would sit on both sides of a
    // speaker-independent split: keep one copy of each content.
    let (all, duplicates) = corpus::dedupe(all);
    if let Some(line) = duplicates.summary() {
        eprintln!(
            "corpus: {line}; one copy of each kept (`emolab corpus scan {}` lists them)",
            exp.corpus.path.display()
        );
        skipped.insert("duplicate content".into(), duplicates.extra_copies());
    }
    let mut labelled = Vec::new();
    for c in all {
        if let Some(want) = &exp.corpus.vocal_channel {
            if c.vocal_channel.as_deref() != Some(want.as_str()) {
                *skipped.entry(format!("not {want}")).or_insert(0) += 1;
                continue;
            }
        }
        match label_of(&c, exp.corpus.target, &exp.corpus.merge) {
            Some(l) => labelled.push((c, l)),
            None => {
                *skipped
                    .entry(format!("no {}", exp.corpus.target.name()))
                    .or_insert(0) += 1
            }
        }
    }
    let present: std::collections::BTreeSet<String> =
        labelled.iter().map(|(_, l)| l.clone()).collect();
    let classes: Vec<String> = match &exp.corpus.labels {
        Some(keep) => {
            for l in keep {
                if !present.contains(l) {
                    return Err(ConfigError {
                        file: exp.file.clone(),
                        key: Some("corpus.labels".into()),
                        message: format!(
                            "no clip has {} `{l}` (present: {})",
                            exp.corpus.target.name(),
                            present.iter().cloned().collect::<Vec<_>>().join(", ")
                        ),
                        hint: crate::config::closest(
                            l,
                            present.iter().map(String::as_str),
                            l.len() / 2 + 1,
                        )
                        .map(|b| format!("did you mean `{b}`?")),
                    }
                    .into());
                }
            }
            keep.clone()
        }
        None => present.into_iter().collect(),
    };
    if classes.len() < 2 {
        return Err(exp
            .error(
                "corpus.labels",
                format!("needs at least 2 classes, has {classes:?}"),
            )
            .into());
    }
    let (mut clips, mut labels) = (Vec::new(), Vec::new());
    for (c, l) in labelled {
        match classes.iter().position(|k| *k == l) {
            Some(i) => {
                clips.push(c);
                labels.push(i);
            }
            None => *skipped.entry(format!("label {l} not kept")).or_insert(0) += 1,
        }
    }
    if !features {
        return Ok(Prepared {
            clips,
            labels,
            classes,
            rows: Vec::new(),
            skipped,
            duplicates,
        });
    }
    let rows = cached_features(&clips, &exp.pipeline, &exp.cache, progress)?;
    let mut out = Prepared {
        clips: Vec::new(),
        labels: Vec::new(),
        classes,
        rows: Vec::new(),
        skipped,
        duplicates,
    };
    for ((c, l), rows) in clips.into_iter().zip(labels).zip(rows) {
        match rows {
            Some(rows) => {
                out.clips.push(c);
                out.labels.push(l);
                out.rows.push(rows);
            }
            None => *out.skipped.entry("features failed".into()).or_insert(0) += 1,
        }
    }
    Ok(out)
}

/// Compute what the cache lacks for `clips` under `pipeline`, then read every variant of each
/// clip (original first), in clip order: `None` for a clip whose features failed.
pub(crate) fn cached_features(
    clips: &[ClipRecord],
    pipeline: &features::Pipeline,
    cache_root: &Path,
    progress: bool,
) -> Result<Vec<Option<Vec<CacheRow>>>> {
    let report = features::featurize(clips, pipeline, cache_root, progress)?;
    if !report.failed.is_empty() {
        eprintln!("{report}");
    }
    let failed: HashSet<&str> = report.failed.iter().map(|p| p.path.as_str()).collect();
    let variants = pipeline.variants();
    let key = |c: &ClipRecord, v: &features::pipeline::Variant| row_key(&c.content_hash, &v.key);
    let wanted: HashSet<String> = clips
        .iter()
        .flat_map(|c| variants.iter().map(move |v| key(c, v)))
        .collect();
    let by_key: HashMap<String, CacheRow> = Cache::open(cache_root, &pipeline.feature_key())?
        .read_all(Some(&wanted))?
        .into_iter()
        .map(|r| (r.key.clone(), r))
        .collect();
    Ok(clips
        .iter()
        .map(|c| {
            if failed.contains(c.path.as_str()) {
                return None;
            }
            // Two identical files share rows: clone (the features buffer is shared).
            variants
                .iter()
                .map(|v| by_key.get(&key(c, v)).cloned())
                .collect()
        })
        .collect())
}

/// Folds of a seed, with protocol errors turned into config errors on the right key.
pub fn folds_for(exp: &Experiment, prep: &Prepared, split_seed: u64) -> Result<Vec<Fold>> {
    make_folds(
        &prep.clips,
        &prep.labels,
        &prep.classes,
        &exp.protocol,
        split_seed,
    )
    .map_err(|e| {
        let key = match &e {
            SplitError::TooFewSpeakers { .. } | SplitError::MissingClass { .. } => "protocol.k",
            SplitError::NoSpeaker(_) => "protocol.kind",
            SplitError::Invalid(_) => "protocol",
        };
        exp.error(key, e.to_string()).into()
    })
}

/// Per-speaker statistics of every clip's original variant.
pub fn speaker_stats(prep: &Prepared) -> SpeakerStats {
    let f = prep.rows.first().map_or(0, |r| r[0].n_features as usize);
    SpeakerStats::fit(prep.rows.iter().map(|r| (&r[0].speaker, &r[0].features)), f)
}
