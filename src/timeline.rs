//! The emotion timeline of a long recording: a saved run scores every window (`window` seconds,
//! every `hop` seconds) of a WAV file of any length, read and resampled a block at a time so
//! memory stays bounded (an hour is never held whole).
//!
//! - Windows start at 0, `hop`, `2·hop`, … and cover the recording up to its last full window;
//!   a recording shorter than one window is scored as one window padded with silence.
//! - Voice activity (`skip_silence`): a window whose RMS level is below `silence_db` dBFS
//!   (default −45; 16-bit silence with dither sits near −90, quiet speech near −35) is marked
//!   `speech = false` and not scored.
//! - A model trained with `normalize: speaker` standardises every window on the statistics of
//!   the whole recording (taken as one speaker's speech): a first pass over the file computes
//!   them over back-to-back windows (speech windows only), the second scores.
//! - Probabilities are temperature-scaled with the run's validation temperature, as `predict`.
//!
//! Output (`out/`): `timeline.csv` and `timeline.parquet` (one row per window: `window`,
//! `start_s`, `end_s`, `speech`, `level_db`, `prediction`, `prob_<class>`), `timeline.svg`
//! (probability of each emotion over time, averaged into at most 600 points), and
//! `summary.json` (duration, windows, share of speech windows per predicted emotion, seconds,
//! realtime factor).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use polars::prelude::*;
use rayon::prelude::*;
use serde::Serialize;

use crate::audio::WavStream;
use crate::dsp::resample::StreamResampler;
use crate::features::FeatureExtractor;
use crate::train::data::{FrameStats, Normalizer};
use crate::train::{Dataset, NormMode};

/// How a timeline is made.
#[derive(Debug, Clone)]
pub struct TimelineOptions {
    /// Window length, seconds.
    pub window: f64,
    /// Seconds between window starts.
    pub hop: f64,
    pub skip_silence: bool,
    /// Level (dBFS) under which a window is silence.
    pub silence_db: f64,
    /// Windows scored per batch.
    pub batch: usize,
}

impl Default for TimelineOptions {
    fn default() -> Self {
        TimelineOptions {
            window: 2.0,
            hop: 0.5,
            skip_silence: false,
            silence_db: -45.0,
            batch: 64,
        }
    }
}

/// `summary.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub file: String,
    pub run: String,
    pub duration_s: f64,
    pub window_s: f64,
    pub hop_s: f64,
    pub windows: usize,
    pub speech_windows: usize,
    /// Share of the scored windows whose top emotion is each class.
    pub share: BTreeMap<String, f64>,
    pub seconds: f64,
    /// Seconds of audio per second of compute.
    pub realtime: f64,
    /// The process's peak resident memory (Linux `VmHWM`), MB.
    pub peak_rss_mb: Option<f64>,
    pub out: PathBuf,
}

/// Peak resident memory of this process, MB (Linux).
fn peak_rss_mb() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 = s
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

/// One window's row.
struct Row {
    start: f64,
    end: f64,
    speech: bool,
    level_db: f32,
    probs: Option<Vec<f32>>,
}

/// Target-rate mono samples of a WAV file, a block at a time.
struct Source {
    wav: WavStream,
    rs: StreamResampler,
    done: bool,
    pending: Vec<f32>,
}

impl Source {
    fn open(path: &Path, rate: u32) -> Result<Source> {
        let wav = WavStream::open(path).with_context(|| path.display().to_string())?;
        let rs = StreamResampler::new(wav.sample_rate, rate)?.with_context(|| {
            format!(
                "{}: {} Hz to {rate} Hz has no exact streaming resampler; convert it first, e.g. `ffmpeg -i in.wav -ar {rate} out.wav`",
                path.display(),
                wav.sample_rate
            )
        })?;
        Ok(Source {
            wav,
            rs,
            done: false,
            pending: Vec::new(),
        })
    }

    /// Append the next samples to `out`; false at the end.
    fn next(&mut self, out: &mut Vec<f32>) -> Result<bool> {
        if self.done {
            return Ok(false);
        }
        self.pending.clear();
        let n = self.wav.read_mono(1 << 16, &mut self.pending)?;
        if n == 0 {
            self.rs.finish(out);
            self.done = true;
        } else {
            self.rs.push(&self.pending, out);
        }
        Ok(true)
    }
}

/// Calls `each` with batches of (start sample, window samples), in order.
fn windows(
    path: &Path,
    rate: u32,
    win: usize,
    hop: usize,
    batch: usize,
    mut each: impl FnMut(Vec<(usize, Vec<f32>)>) -> Result<()>,
) -> Result<f64> {
    let mut src = Source::open(path, rate)?;
    let duration = src.wav.duration();
    let mut audio: Vec<f32> = Vec::new();
    // Absolute index of audio[0]; next window start.
    let (mut off, mut next) = (0usize, 0usize);
    let mut group = Vec::with_capacity(batch);
    loop {
        let more = src.next(&mut audio)?;
        while next + win <= off + audio.len() {
            group.push((next, audio[next - off..next - off + win].to_vec()));
            next += hop;
            if group.len() == batch {
                each(std::mem::take(&mut group))?;
            }
        }
        if next > off + (1 << 20) {
            let cut = (next - off).min(audio.len());
            audio.drain(..cut);
            off += cut;
        }
        if !more {
            break;
        }
    }
    if next == 0 {
        // Shorter than one window: that window, padded with silence.
        let mut y = audio;
        y.resize(win, 0.0);
        group.push((0, y));
    }
    if !group.is_empty() {
        each(group)?;
    }
    Ok(duration)
}

fn level_db(y: &[f32]) -> f32 {
    let ms = y.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>() / y.len().max(1) as f64;
    (10.0 * ms.max(1e-20).log10()) as f32
}

/// Score every window of `file` with the run in `run`, writing into `out`.
pub fn timeline(run: &Path, file: &Path, out: &Path, opts: &TimelineOptions) -> Result<Summary> {
    anyhow::ensure!(
        opts.window > 0.0 && opts.hop > 0.0,
        "--window and --hop must be positive"
    );
    let started = Instant::now();
    let lr = crate::infer::load_run(run, tch::Device::cuda_if_available())?;
    let p = &lr.exp.pipeline;
    let fx = FeatureExtractor::new(p).map_err(|e| anyhow::anyhow!("pipeline {}: {e}", p.name))?;
    let rate = p.sample_rate;
    let win = (opts.window * rate as f64).round() as usize;
    let hop = ((opts.hop * rate as f64).round() as usize).max(1);
    let classes = lr.meta.classes.clone();
    let fixed = lr.model.fixed_frames();
    let features = |y: &[f32]| -> Result<Vec<f32>> {
        let (frames, feats) = fx.compute(y).map_err(|e| anyhow::anyhow!("{e}"))?;
        if let Some(want) = fixed {
            anyhow::ensure!(
                frames == want,
                "a {} s window gives {frames} frames, the model takes {want}: give --window the clip length it was trained on",
                opts.window
            );
        }
        Ok(feats)
    };
    let silent_at = |db: f32| opts.skip_silence && (db as f64) < opts.silence_db;
    let silent = |y: &[f32]| silent_at(level_db(y));
    // Pass 1, for speaker-normalised models: the recording's own statistics.
    let file_norm: Option<Arc<Normalizer>> = if lr.model.normalize() == NormMode::Speaker {
        let mut st = FrameStats::new(fx.n_features());
        // Back-to-back windows see every frame once (and cost a quarter of hop = window / 4).
        windows(file, rate, win, win, opts.batch, |group| {
            let feats: Vec<Result<Vec<f32>>> = group
                .par_iter()
                .filter(|(_, y)| !silent(y))
                .map(|(_, y)| features(y))
                .collect();
            for f in feats {
                st.add(&f?);
            }
            Ok(())
        })?;
        Some(Arc::new(st.finish()))
    } else {
        None
    };
    // Pass 2: score.
    let t = crate::infer::run_temperature(run);
    let mut rows: Vec<Row> = Vec::new();
    let duration = windows(file, rate, win, hop, opts.batch, |group| {
        let scored: Vec<(usize, f32, Option<Result<Vec<f32>>>)> = group
            .par_iter()
            .map(|(start, y)| {
                let db = level_db(y);
                (*start, db, (!silent_at(db)).then(|| features(y)))
            })
            .collect();
        let mut clips = Vec::new();
        let mut windows = Vec::with_capacity(scored.len());
        for (start, db, f) in scored {
            let speech = f.is_some();
            if let Some(f) = f {
                clips.push(f.map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?);
            }
            windows.push((start, db, speech));
        }
        let mut probs = Vec::new().into_iter();
        if !clips.is_empty() {
            let n = clips.len();
            let mut ds = Dataset::unlabelled(
                clips,
                fx.n_features(),
                p.channels(),
                Some("recording".into()),
            );
            if let Some(norm) = &file_norm {
                ds.clip_norm = Some(vec![norm.clone(); n]);
            }
            let (pr, _) = lr.model.predict(&ds)?;
            probs = pr
                .into_iter()
                .map(|x| crate::calibration::scale(&x, t))
                .collect::<Vec<_>>()
                .into_iter();
        }
        for (start, db, speech) in windows {
            rows.push(Row {
                start: start as f64 / rate as f64,
                end: (start + win) as f64 / rate as f64,
                speech,
                level_db: db,
                probs: if speech { probs.next() } else { None },
            });
        }
        Ok(())
    })?;
    let seconds = started.elapsed().as_secs_f64();
    write_outputs(out, file, run, &classes, &rows)?;
    let speech: Vec<&Row> = rows.iter().filter(|r| r.probs.is_some()).collect();
    let mut share: BTreeMap<String, f64> = classes.iter().map(|c| (c.clone(), 0.0)).collect();
    for r in &speech {
        let k = crate::metrics::argmax(r.probs.as_ref().expect("scored"));
        *share.get_mut(&classes[k]).expect("class") += 1.0 / speech.len() as f64;
    }
    let summary = Summary {
        file: file.display().to_string(),
        run: run.display().to_string(),
        duration_s: duration,
        window_s: opts.window,
        hop_s: opts.hop,
        windows: rows.len(),
        speech_windows: speech.len(),
        share,
        seconds,
        realtime: duration / seconds.max(1e-9),
        peak_rss_mb: peak_rss_mb(),
        out: out.to_path_buf(),
    };
    crate::results::write_json(&out.join("summary.json"), &summary)?;
    Ok(summary)
}

fn write_outputs(
    out: &Path,
    file: &Path,
    run: &Path,
    classes: &[String],
    rows: &[Row],
) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let pick = |r: &Row| {
        r.probs
            .as_ref()
            .map(|p| classes[crate::metrics::argmax(p)].clone())
    };
    crate::util::atomic_write(&out.join("timeline.csv"), |w| {
        write!(w, "window,start_s,end_s,speech,level_db,prediction")?;
        for c in classes {
            write!(w, ",prob_{c}")?;
        }
        writeln!(w)?;
        for (i, r) in rows.iter().enumerate() {
            write!(
                w,
                "{i},{:.3},{:.3},{},{:.1},{}",
                r.start,
                r.end,
                r.speech,
                r.level_db,
                pick(r).unwrap_or_default()
            )?;
            for k in 0..classes.len() {
                match &r.probs {
                    Some(p) => write!(w, ",{:.5}", p[k])?,
                    None => write!(w, ",")?,
                }
            }
            writeln!(w)?;
        }
        Ok(())
    })?;
    let mut cols = vec![
        Column::new("window".into(), (0..rows.len() as u32).collect::<Vec<_>>()),
        Column::new(
            "start_s".into(),
            rows.iter().map(|r| r.start).collect::<Vec<_>>(),
        ),
        Column::new(
            "end_s".into(),
            rows.iter().map(|r| r.end).collect::<Vec<_>>(),
        ),
        Column::new(
            "speech".into(),
            rows.iter().map(|r| r.speech).collect::<Vec<_>>(),
        ),
        Column::new(
            "level_db".into(),
            rows.iter().map(|r| r.level_db).collect::<Vec<_>>(),
        ),
        Column::new(
            "prediction".into(),
            rows.iter().map(pick).collect::<Vec<_>>(),
        ),
    ];
    for (k, c) in classes.iter().enumerate() {
        cols.push(Column::new(
            format!("prob_{c}").into(),
            rows.iter()
                .map(|r| r.probs.as_ref().map(|p| p[k]))
                .collect::<Vec<_>>(),
        ));
    }
    let mut df = DataFrame::new(cols)?;
    crate::util::atomic_write(&out.join("timeline.parquet"), |w| {
        ParquetWriter::new(w).finish(&mut df)?;
        Ok(())
    })?;
    crate::util::atomic_write_bytes(
        &out.join("timeline.svg"),
        chart(file, run, classes, rows)?.as_bytes(),
    )
}

/// Probability of each emotion over time, windows averaged into at most 600 points.
fn chart(file: &Path, run: &Path, classes: &[String], rows: &[Row]) -> Result<String> {
    use crate::charts::{self, palette, LineChart, Series};
    let scored: Vec<&Row> = rows.iter().filter(|r| r.probs.is_some()).collect();
    let per = scored.len().div_ceil(600).max(1);
    let minutes = rows.last().is_some_and(|r| r.end > 600.0);
    let unit = if minutes { 60.0 } else { 1.0 };
    let series = classes
        .iter()
        .enumerate()
        .map(|(k, c)| Series {
            name: c.clone(),
            points: scored
                .chunks(per)
                .map(|g| {
                    let x = g.iter().map(|r| (r.start + r.end) / 2.0).sum::<f64>() / g.len() as f64;
                    let y = g
                        .iter()
                        .map(|r| r.probs.as_ref().expect("scored")[k] as f64)
                        .sum::<f64>()
                        / g.len() as f64;
                    (x / unit, y)
                })
                .collect(),
            color: palette::SERIES[k % palette::SERIES.len()],
            dashed: k >= palette::SERIES.len(),
            dots: false,
        })
        .collect();
    let name = |p: &Path| {
        p.file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    Ok(charts::lines(&LineChart {
        title: format!("Emotion over time: {} ({})", name(file), name(run)),
        x_axis: if minutes { "minutes" } else { "seconds" }.into(),
        y_axis: "probability".into(),
        series,
        y_range: Some((0.0, 1.0)),
        hlines: Vec::new(),
        x_names: None,
        percent: false,
    })?)
}
