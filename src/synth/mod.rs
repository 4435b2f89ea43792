//! Synthetic emotional-speech corpora, for developing and testing the pipeline without the real
//! data.
//!
//! [`generate`] writes a corpus in the layout (file names, formats, side files) of CREMA-D,
//! RAVDESS or EmoDB, spoken by a small synthetic voice whose prosody and voice quality change
//! with the emotion the way acted emotions do. The result is a corpus on which emotion is
//! learnable but not trivial, and where speaker identity is a strong confound, as in real data.
//!
//! The voice itself (source, tract, consonants, prosody, recording, speakers and emotions) is
//! described in `voice.rs`.
//!
//! # Layouts
//!
//! - `cremad`: `{actor}_{sentence}_{EMO}_{LEVEL}.wav`, 16 kHz mono 16-bit, actors from 1001
//!   (default 91), 12 sentences, ANG DIS FEA HAP NEU SAD, levels LO/MD/HI on IEO only, plus
//!   `VideoDemographics.csv` (real rows for 1001..=1091, synthetic ones beyond). With 91 actors
//!   the names are exactly the 7,442 of the real release ([`cremad_clip_names`]): the full
//!   91 x 82 grid minus actor 1008's WSI, 1009's MTI and 1019's ITH sentences and the clips
//!   `1002_TIE_NEU_XX` and `1076_ITS_NEU_XX`, with `1040_ITH_SAD_XX` spelled
//!   `1040_ITH_SAD_X` as in the real audio files (`SentenceFilenames.csv` spells it `_XX`).
//!   `1076_MTI_SAD_XX`, which has no audio in the real corpus, is an ordinary clip here.
//! - `ravdess`: `03-01-EE-II-SS-01-AA.wav`, 48 kHz 16-bit mono, actors 01.. (default 4, odd
//!   male), 8 emotions (no strong neutral), statements 01/02, repetition 01; one file is
//!   stereo, one 24-bit; two sung files (vocal channel 02) for actors 01 and 02.
//! - `emodb`: `SSTTTEV.wav`, 16 kHz 16-bit mono, speakers 03 08 10 16 by default (or the first
//!   N of 03 08 09 10 11 12 13 14 15 16), texts a01 a02 a04 a05 a07, emotions W L E A F T N,
//!   version `a`.
//!
//! # Determinism
//!
//! Each clip's random generator is seeded from `(seed, clip name)` through FNV-1a and
//! SplitMix64 (fixed functions, not std's randomised hasher); each speaker's from `(seed,
//! layout, speaker id)`. Clips are rendered in parallel with rayon, and the bytes of every file
//! are identical for a given seed whatever the thread count or corpus size. Files are written
//! as `name.wav.tmp` and renamed; clips whose final file exists are skipped, so a killed run
//! resumes where it stopped.
//!
//! # Data
//!
//! `cremad_demographics.csv` is CREMA-D's `VideoDemographics.csv` (Cao, Cooper, Keutmann, Gur,
//! Nenkova, Verma: "CREMA-D: Crowd-sourced Emotional Multimodal Actors Dataset", IEEE Trans.
//! Affective Computing, 2014), made available under the Open Database License
//! (<http://opendatacommons.org/licenses/odbl/1.0/>); its contents under the Database Contents
//! License (<http://opendatacommons.org/licenses/dbcl/1.0/>).

mod cremad;
mod layouts;
mod voice;

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use voice::{Sentence, Speaker, Style};

/// Which real corpus the synthetic one imitates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// CREMA-D: `1001_DFA_ANG_XX.wav`, 16 kHz, plus `VideoDemographics.csv`.
    Cremad,
    /// RAVDESS: `03-01-05-02-01-01-01.wav`, 48 kHz (one stereo, one 24-bit file, two songs).
    Ravdess,
    /// EmoDB: `03a01Wa.wav`, 16 kHz.
    Emodb,
}

impl Layout {
    /// The name accepted by [`FromStr`].
    pub fn name(self) -> &'static str {
        match self {
            Layout::Cremad => "cremad",
            Layout::Ravdess => "ravdess",
            Layout::Emodb => "emodb",
        }
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Layout {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "cremad" => Ok(Layout::Cremad),
            "ravdess" => Ok(Layout::Ravdess),
            "emodb" => Ok(Layout::Emodb),
            _ => anyhow::bail!("unknown layout {s:?}: expected one of cremad, ravdess, emodb"),
        }
    }
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct SynthOptions {
    pub layout: Layout,
    /// Output directory (created if missing).
    pub out: PathBuf,
    /// Number of actors/speakers; `None` = the layout's default (CREMA-D 91, RAVDESS 4,
    /// EmoDB 4).
    pub actors: Option<usize>,
    pub seed: u64,
    /// Show a progress bar on stderr.
    pub progress: bool,
}

/// What [`generate`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthReport {
    pub clips_written: usize,
    /// Clips whose file already existed (left untouched).
    pub clips_skipped_existing: usize,
    pub speakers: usize,
    pub out: PathBuf,
}

/// The clip names (without `.wav`) of a synthetic CREMA-D with `actors` actors, in the order
/// of the real `SentenceFilenames.csv`. With 91 actors these are the 7,442 clips of the real
/// release (see the module `cremad` for the exceptions to the full grid); actors beyond 1091
/// get the full 82-clip grid.
pub fn cremad_clip_names(actors: usize) -> Vec<String> {
    cremad::clips(actors).into_iter().map(|c| c.name).collect()
}

/// Generate a corpus; see the module documentation.
pub fn generate(opts: &SynthOptions) -> Result<SynthReport> {
    let plan = match opts.layout {
        Layout::Cremad => cremad::plan(opts.actors, opts.seed)?,
        Layout::Ravdess => layouts::ravdess_plan(opts.actors, opts.seed)?,
        Layout::Emodb => layouts::emodb_plan(opts.actors, opts.seed)?,
    };
    fs::create_dir_all(&opts.out)
        .with_context(|| format!("creating output directory {}", opts.out.display()))?;
    for (name, content) in &plan.extra_files {
        write_atomic(&opts.out.join(name), content.as_bytes())?;
    }

    let pb = if opts.progress {
        let pb = ProgressBar::new(plan.jobs.len() as u64);
        pb.set_style(
            ProgressStyle::with_template(
                "{msg} [{elapsed_precise}] {wide_bar} {pos}/{len} clips ({per_sec}, ETA {eta})",
            )
            .context("progress bar template")?,
        );
        pb.set_message(format!("synth {}", opts.layout));
        pb
    } else {
        ProgressBar::hidden()
    };

    let written: Vec<bool> = plan
        .jobs
        .par_iter()
        .map(|job| {
            let r = write_clip(&plan, job, &opts.out, opts.seed);
            pb.inc(1);
            r
        })
        .collect::<Result<_>>()?;
    pb.finish_and_clear();

    let clips_written = written.iter().filter(|&&w| w).count();
    Ok(SynthReport {
        clips_written,
        clips_skipped_existing: written.len() - clips_written,
        speakers: plan.speakers.len(),
        out: opts.out.clone(),
    })
}

// ---------------------------------------------------------------------------------------------
// Engine shared by the layouts
// ---------------------------------------------------------------------------------------------

/// Output format of one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Format {
    pub sample_rate: u32,
    pub channels: u16,
    pub bits: u16,
}

/// One clip to render.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    /// File name without `.wav`.
    pub name: String,
    /// Index into [`CorpusPlan::speakers`].
    pub speaker: usize,
    /// Index into [`CorpusPlan::sentences`].
    pub sentence: usize,
    pub style: Style,
    pub format: Format,
}

/// Everything a layout produces.
pub(crate) struct CorpusPlan {
    pub speakers: Vec<Speaker>,
    pub sentences: Vec<Sentence>,
    pub jobs: Vec<Job>,
    /// Side files (name, content) written into the output directory.
    pub extra_files: Vec<(String, String)>,
}

/// FNV-1a, 64 bit.
fn fnv1a64(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// SplitMix64 finaliser.
fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A random generator determined by `(seed, key)` only.
pub(crate) fn derive_rng(seed: u64, key: &str) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(splitmix64(splitmix64(seed) ^ fnv1a64(key)))
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = tmp_path(path);
    fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
    Ok(())
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".tmp");
    PathBuf::from(s)
}

/// Render and write one clip; `Ok(false)` if its file already existed.
fn write_clip(plan: &CorpusPlan, job: &Job, out: &Path, seed: u64) -> Result<bool> {
    let path = out.join(format!("{}.wav", job.name));
    if path.exists() {
        return Ok(false);
    }
    let mut rng = derive_rng(seed, &job.name);
    let f = job.format;
    let mono = voice::render(
        &plan.speakers[job.speaker],
        &plan.sentences[job.sentence],
        &job.style,
        f.sample_rate,
        &mut rng,
    );
    let spec = hound::WavSpec {
        channels: f.channels,
        sample_rate: f.sample_rate,
        bits_per_sample: f.bits,
        sample_format: hound::SampleFormat::Int,
    };
    let tmp = tmp_path(&path);
    let mut w = hound::WavWriter::create(&tmp, spec)
        .with_context(|| format!("creating {}", tmp.display()))?;
    let to_i16 = |v: f32| (v * 32767.0).round().clamp(-32768.0, 32767.0) as i16;
    match (f.channels, f.bits) {
        (1, 16) => {
            let mut sw = w.get_i16_writer(mono.len() as u32);
            for &v in &mono {
                sw.write_sample(to_i16(v));
            }
            sw.flush()?;
        }
        (2, 16) => {
            // The same voice in both channels, the right one slightly delayed, quieter and
            // with its own faint noise (two microphones).
            let mut sw = w.get_i16_writer(2 * mono.len() as u32);
            for i in 0..mono.len() {
                let r = if i >= 3 { mono[i - 3] } else { 0.0 } * 0.93
                    + (rng.random::<f32>() - 0.5) * 2e-4;
                sw.write_sample(to_i16(mono[i]));
                sw.write_sample(to_i16(r));
            }
            sw.flush()?;
        }
        (1, 24) => {
            for &v in &mono {
                let s = (v * 8_388_607.0).round().clamp(-8_388_608.0, 8_388_607.0) as i32;
                w.write_sample(s)?;
            }
        }
        other => anyhow::bail!("unsupported format {other:?} for {}", job.name),
    }
    w.finalize()
        .with_context(|| format!("finishing {}", tmp.display()))?;
    fs::rename(&tmp, &path).with_context(|| format!("renaming to {}", path.display()))?;
    Ok(true)
}

#[cfg(test)]
mod tests;
