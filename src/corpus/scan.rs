//! Scanning a corpus folder (or CSV manifest) into clip records, in parallel.
//!
//! Bad input never aborts a scan: each unusable file becomes a [`Problem`] with its reason and
//! the rest are scanned. The only fatal errors are a folder that cannot be read or that holds no
//! audio at all.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use indicatif::ParallelProgressIterator;
use rayon::prelude::*;
use regex::Regex;
use serde::Serialize;

use super::labels::{Emotion, Sex};
use super::manifest::ClipRecord;
use super::parse::{self, Format, ParsedName};
use crate::audio::{self, AudioError};

/// Peak level below which a clip counts as silent (-80 dBFS, librosa's default dB floor).
pub const SILENCE_PEAK: f32 = 1e-4;

/// Extensions of audio formats emolab does not decode; such files are reported, not ignored.
const OTHER_AUDIO: [&str; 9] = [
    "mp3", "flac", "ogg", "m4a", "aac", "aif", "aiff", "opus", "wma",
];

/// How to scan.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    pub format: Format,
    /// CREMA-D's `VideoDemographics.csv`; default: next to the audio.
    pub demographics: Option<PathBuf>,
    /// Folder format: regex whose first group is the speaker, applied to the file stem.
    pub speaker_pattern: Option<Regex>,
    pub progress: bool,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            format: Format::Auto,
            demographics: None,
            speaker_pattern: None,
            progress: false,
        }
    }
}

/// A file left out of the manifest, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub path: String,
    pub reason: String,
}

/// The result of a scan.
#[derive(Debug, Clone)]
pub struct Scan {
    pub root: PathBuf,
    pub format: Format,
    pub clips: Vec<ClipRecord>,
    pub problems: Vec<Problem>,
    /// Files that are not audio (CSV, text, ...), skipped silently.
    pub ignored: usize,
    /// Where CREMA-D demographics came from, if joined.
    pub demographics: Option<PathBuf>,
    /// Clips kept but worth a look: a folder named for one actor holding another's file.
    pub warnings: Vec<Problem>,
}

/// A candidate clip: path and the labels it carries (from a CSV row) or none (parse the name).
struct Candidate {
    path: PathBuf,
    rel: PathBuf,
    labels: Option<Result<ParsedName, String>>,
}

/// Scan a folder, or a CSV manifest (`path,label[,speaker][,sex]`).
pub fn scan(input: &Path, opts: &ScanOptions) -> Result<Scan> {
    let is_csv = input.is_file()
        && input
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    if opts.format == Format::Csv || is_csv {
        return scan_candidates(input, Format::Csv, read_csv_manifest(input)?, 0, opts);
    }
    let root = input
        .canonicalize()
        .with_context(|| format!("cannot read corpus folder {}", input.display()))?;
    if !root.is_dir() {
        bail!(
            "{} is not a folder (give a corpus folder, or a .csv manifest)",
            input.display()
        );
    }
    let (candidates, ignored) = list_files(&root)?;
    if candidates.is_empty() {
        bail!(
            "no audio files found in {} ({ignored} other files); expected .wav clips",
            root.display()
        );
    }
    let format = match opts.format {
        Format::Auto => detect_format(&root, &candidates)?,
        f => f,
    };
    scan_candidates(&root, format, candidates, ignored, opts)
}

fn scan_candidates(
    root: &Path,
    format: Format,
    candidates: Vec<Candidate>,
    ignored: usize,
    opts: &ScanOptions,
) -> Result<Scan> {
    let (demo, demo_path) = if format == Format::Cremad {
        load_demographics(root, opts.demographics.as_deref())?
    } else {
        (HashMap::new(), None)
    };
    let bar = crate::util::progress_bar(candidates.len() as u64, "scan", opts.progress);
    let results: Vec<Result<ClipRecord, Problem>> = candidates
        .par_iter()
        .progress_with(bar.clone())
        .map(|c| {
            scan_one(c, format, opts, &demo).map_err(|reason| Problem {
                path: c.path.display().to_string(),
                reason,
            })
        })
        .collect();
    bar.finish_and_clear();
    let mut clips = Vec::new();
    let mut problems = Vec::new();
    for r in results {
        match r {
            Ok(c) => clips.push(c),
            Err(p) => problems.push(p),
        }
    }
    clips.sort_by(|a, b| a.path.cmp(&b.path));
    problems.sort_by(|a, b| a.path.cmp(&b.path));
    let warnings = folder_speaker_mismatches(&clips);
    Ok(Scan {
        root: root.to_path_buf(),
        format,
        clips,
        problems,
        ignored,
        demographics: demo_path,
        warnings,
    })
}

/// Clips in a folder named `Actor_NN` (RAVDESS) whose file name says another actor.
fn folder_speaker_mismatches(clips: &[ClipRecord]) -> Vec<Problem> {
    let actor = regex::Regex::new(r"^Actor_(\d+)$").expect("valid");
    clips
        .iter()
        .filter_map(|c| {
            let folder = Path::new(&c.path).parent()?.file_name()?.to_str()?;
            let n: u32 = actor.captures(folder)?[1].parse().ok()?;
            let spk: u32 = c.speaker.as_deref()?.parse().ok()?;
            (n != spk).then(|| Problem {
                path: c.path.clone(),
                reason: format!(
                    "in folder {folder} but the file name says actor {:02}: the speaker is taken from the file name",
                    spk
                ),
            })
        })
        .collect()
}

fn scan_one(
    c: &Candidate,
    format: Format,
    opts: &ScanOptions,
    demo: &HashMap<String, (Option<u32>, Option<Sex>)>,
) -> Result<ClipRecord, String> {
    let ext = c
        .path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    if OTHER_AUDIO.contains(&ext.as_str()) {
        return Err(format!(
            "unsupported audio format (.{ext}); convert it to WAV"
        ));
    }
    let labels = match &c.labels {
        Some(l) => l.clone()?,
        None if format == Format::Folder => {
            parse::parse_folder(&c.rel, opts.speaker_pattern.as_ref())?
        }
        None => parse::parse_name(format, &c.rel)?,
    };
    let bytes = std::fs::read(&c.path).map_err(|e| format!("cannot read file: {e}"))?;
    let audio = audio::decode_wav(&bytes).map_err(|e: AudioError| e.to_string())?;
    let peak = audio.peak();
    if peak < SILENCE_PEAK {
        return Err(if peak == 0.0 {
            "silent: every sample is zero".to_string()
        } else {
            format!("silent: peak {:.1} dBFS", 20.0 * peak.log10())
        });
    }
    let (mut age, mut sex) = (None, labels.sex);
    if let Some(spk) = &labels.speaker {
        if let Some((a, s)) = demo.get(spk) {
            age = *a;
            sex = s.or(sex);
        }
    }
    Ok(ClipRecord {
        path: c.path.display().to_string(),
        corpus: format.name().to_string(),
        clip_id: c
            .path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
        speaker: labels.speaker,
        sex: sex.map(|s| s.name().to_string()),
        age,
        sentence: labels.sentence,
        emotion: labels.emotion.name().to_string(),
        emotion_code: labels.emotion_code,
        intensity: labels.intensity,
        vocal_channel: labels.vocal_channel,
        sample_rate: audio.sample_rate,
        channels: audio.channels as u32,
        bits: audio.bits as u32,
        duration_s: audio.duration(),
        content_hash: crate::util::content_hash(&bytes),
    })
}

/// All audio-looking files below `root` (sorted), and the count of other files.
fn list_files(root: &Path) -> Result<(Vec<Candidate>, usize)> {
    let mut out = Vec::new();
    let mut ignored = 0;
    for entry in walkdir::WalkDir::new(root).sort_by_file_name() {
        let entry =
            entry.with_context(|| format!("cannot read corpus folder {}", root.display()))?;
        if !entry.file_type().is_file() {
            continue;
        }
        let name = entry.file_name().to_string_lossy();
        if name.starts_with('.') {
            continue;
        }
        let ext = entry
            .path()
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        if ext == "wav" || ext == "wave" || OTHER_AUDIO.contains(&ext.as_str()) {
            out.push(Candidate {
                path: entry.path().to_path_buf(),
                rel: entry
                    .path()
                    .strip_prefix(root)
                    .unwrap_or(entry.path())
                    .to_path_buf(),
                labels: None,
            });
        } else {
            ignored += 1;
        }
    }
    Ok((out, ignored))
}

/// Pick the naming convention most file names follow; fall back to label folders.
fn detect_format(root: &Path, candidates: &[Candidate]) -> Result<Format> {
    let wavs: Vec<&Candidate> = candidates
        .iter()
        .filter(|c| {
            c.path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("wav"))
        })
        .collect();
    let score = |f: Format| {
        wavs.iter()
            .filter(|c| parse::parse_name(f, &c.rel).is_ok())
            .count()
    };
    let (best, n) = Format::NAMED
        .iter()
        .map(|&f| (f, score(f)))
        .max_by_key(|&(_, n)| n)
        .expect("non-empty");
    let folder = score(Format::Folder);
    if folder > n && folder * 2 >= wavs.len() {
        return Ok(Format::Folder);
    }
    if n > 0 && n * 2 >= wavs.len() {
        return Ok(best);
    }
    if folder > 0 && folder * 2 >= wavs.len() {
        return Ok(Format::Folder);
    }
    bail!(
        "cannot tell the naming convention of {} (best guess {best} fits {n} of {} .wav files); pass --format",
        root.display(),
        wavs.len()
    )
}

/// CREMA-D demographics: actor id → (age, sex). Looks next to the audio unless given.
fn load_demographics(
    root: &Path,
    given: Option<&Path>,
) -> Result<(HashMap<String, (Option<u32>, Option<Sex>)>, Option<PathBuf>)> {
    let path = match given {
        Some(p) => p.to_path_buf(),
        None => {
            let here = root.join("VideoDemographics.csv");
            if !here.exists() {
                return Ok((HashMap::new(), None));
            }
            here
        }
    };
    let mut rdr = csv::Reader::from_path(&path)
        .with_context(|| format!("cannot read demographics {}", path.display()))?;
    let headers = rdr.headers()?.clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h.eq_ignore_ascii_case(name))
            .with_context(|| format!("{}: no column '{name}'", path.display()))
    };
    let (id, age, sex) = (col("ActorID")?, col("Age")?, col("Sex")?);
    let mut map = HashMap::new();
    for (i, row) in rdr.records().enumerate() {
        let row = row.with_context(|| format!("{}: bad row {}", path.display(), i + 2))?;
        let actor = row.get(id).unwrap_or("").trim().to_string();
        map.insert(
            actor,
            (
                row.get(age).and_then(|a| a.trim().parse().ok()),
                row.get(sex).and_then(Sex::from_word),
            ),
        );
    }
    Ok((map, Some(path)))
}

/// Rows of a CSV manifest as candidates carrying their labels.
fn read_csv_manifest(csv_path: &Path) -> Result<Vec<Candidate>> {
    let base = csv_path.parent().unwrap_or(Path::new("."));
    let mut rdr = csv::Reader::from_path(csv_path)
        .with_context(|| format!("cannot read CSV manifest {}", csv_path.display()))?;
    let headers = rdr.headers()?.clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim().eq_ignore_ascii_case(name))
    };
    let (Some(pc), Some(lc)) = (col("path"), col("label")) else {
        bail!(
            "{}: a CSV manifest needs 'path' and 'label' columns (found: {})",
            csv_path.display(),
            headers.iter().collect::<Vec<_>>().join(", ")
        );
    };
    let (spk, sex) = (col("speaker"), col("sex"));
    let mut out = Vec::new();
    for (i, row) in rdr.records().enumerate() {
        let row = row.with_context(|| format!("{}: bad row {}", csv_path.display(), i + 2))?;
        let rel = PathBuf::from(row.get(pc).unwrap_or("").trim());
        let path = if rel.is_absolute() {
            rel.clone()
        } else {
            base.join(&rel)
        };
        let label = row.get(lc).unwrap_or("").trim().to_string();
        let labels = Emotion::from_word(&label)
            .map(|emotion| ParsedName {
                speaker: spk
                    .and_then(|c| row.get(c))
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty()),
                sex: sex.and_then(|c| row.get(c)).and_then(Sex::from_word),
                sentence: None,
                emotion,
                emotion_code: label.clone(),
                intensity: None,
                vocal_channel: None,
            })
            .ok_or_else(|| format!("unknown label '{label}' (row {})", i + 2));
        out.push(Candidate {
            path,
            rel,
            labels: Some(labels),
        });
    }
    if out.is_empty() {
        bail!("{}: the CSV manifest has no rows", csv_path.display());
    }
    Ok(out)
}

/// Scan summary (also the `--json` output).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub root: String,
    pub format: String,
    pub clips: usize,
    pub speakers: usize,
    pub speakers_by_sex: BTreeMap<String, usize>,
    pub clips_by_sex: BTreeMap<String, usize>,
    pub emotions: BTreeMap<String, usize>,
    pub sentences: usize,
    pub duration_s: DurationStats,
    pub sample_rates: BTreeMap<u32, usize>,
    pub channels: BTreeMap<u32, usize>,
    pub bits: BTreeMap<u32, usize>,
    pub ignored_files: usize,
    pub demographics: Option<String>,
    pub problems: Vec<Problem>,
    pub warnings: Vec<Problem>,
    /// Byte-identical clips under more than one name.
    pub duplicates: super::Duplicates,
}

#[derive(Debug, Clone, Serialize)]
pub struct DurationStats {
    pub min: f64,
    pub mean: f64,
    pub max: f64,
    pub total_hours: f64,
}

impl Scan {
    pub fn summary(&self) -> Summary {
        let mut emotions = BTreeMap::new();
        let mut speakers: BTreeMap<String, Option<String>> = BTreeMap::new();
        let mut clips_by_sex = BTreeMap::new();
        let mut sentences = std::collections::BTreeSet::new();
        let (mut sr, mut ch, mut bits) = (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
        for c in &self.clips {
            *emotions.entry(c.emotion.clone()).or_insert(0) += 1;
            if let Some(s) = &c.speaker {
                speakers.insert(s.clone(), c.sex.clone());
            }
            *clips_by_sex
                .entry(c.sex.clone().unwrap_or_else(|| "unknown".into()))
                .or_insert(0) += 1;
            if let Some(s) = &c.sentence {
                sentences.insert(s.clone());
            }
            *sr.entry(c.sample_rate).or_insert(0) += 1;
            *ch.entry(c.channels).or_insert(0) += 1;
            *bits.entry(c.bits).or_insert(0) += 1;
        }
        let mut speakers_by_sex = BTreeMap::new();
        for sex in speakers.values() {
            *speakers_by_sex
                .entry(sex.clone().unwrap_or_else(|| "unknown".into()))
                .or_insert(0) += 1;
        }
        let durs: Vec<f64> = self.clips.iter().map(|c| c.duration_s).collect();
        let total: f64 = durs.iter().sum();
        Summary {
            root: self.root.display().to_string(),
            format: self.format.name().to_string(),
            clips: self.clips.len(),
            speakers: speakers.len(),
            speakers_by_sex,
            clips_by_sex,
            emotions,
            sentences: sentences.len(),
            duration_s: DurationStats {
                min: durs.iter().cloned().reduce(f64::min).unwrap_or(0.0),
                mean: if durs.is_empty() {
                    0.0
                } else {
                    total / durs.len() as f64
                },
                max: durs.iter().cloned().fold(0.0, f64::max),
                total_hours: total / 3600.0,
            },
            sample_rates: sr,
            channels: ch,
            bits,
            ignored_files: self.ignored,
            demographics: self.demographics.as_ref().map(|p| p.display().to_string()),
            problems: self.problems.clone(),
            warnings: self.warnings.clone(),
            duplicates: super::Duplicates::find(&self.clips),
        }
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let join = |m: &BTreeMap<String, usize>| {
            m.iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let joinu = |m: &BTreeMap<u32, usize>, unit: &str| {
            m.iter()
                .map(|(k, v)| format!("{k}{unit}: {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        writeln!(f, "corpus      {} ({})", self.root, self.format)?;
        writeln!(
            f,
            "clips       {} usable, {} problems, {} non-audio files ignored",
            self.clips,
            self.problems.len(),
            self.ignored_files
        )?;
        writeln!(
            f,
            "speakers    {} ({})",
            self.speakers,
            join(&self.speakers_by_sex)
        )?;
        writeln!(f, "clips/sex   {}", join(&self.clips_by_sex))?;
        writeln!(f, "emotions    {}", join(&self.emotions))?;
        if self.sentences > 0 {
            writeln!(f, "sentences   {}", self.sentences)?;
        }
        writeln!(
            f,
            "duration    {:.2}-{:.2} s, mean {:.2} s, total {:.2} h",
            self.duration_s.min,
            self.duration_s.max,
            self.duration_s.mean,
            self.duration_s.total_hours
        )?;
        writeln!(f, "rates       {}", joinu(&self.sample_rates, " Hz"))?;
        writeln!(f, "channels    {}", joinu(&self.channels, ""))?;
        writeln!(f, "bits        {}", joinu(&self.bits, "-bit"))?;
        if let Some(d) = &self.demographics {
            writeln!(f, "demography  {d}")?;
        }
        if !self.warnings.is_empty() {
            writeln!(f, "warnings ({}):", self.warnings.len())?;
            for p in &self.warnings {
                writeln!(f, "  {}: {}", p.path, p.reason)?;
            }
        }
        if !self.duplicates.is_empty() {
            writeln!(f, "duplicates  {}", self.duplicates)?;
            if self.duplicates.cross_speaker() > 0 {
                writeln!(
                    f,
                    "WARNING     the same audio is filed under different speakers: experiments keep one copy of each content (the first by path)"
                )?;
            }
        }
        if !self.problems.is_empty() {
            writeln!(f, "problems ({}):", self.problems.len())?;
            for p in &self.problems {
                writeln!(f, "  {}: {}", p.path, p.reason)?;
            }
        }
        Ok(())
    }
}
