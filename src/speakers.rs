//! Speaker statistics at inference: what a `normalize: speaker` model standardises new audio with.
//!
//! In a corpus experiment every speaker brings dozens of clips, and each is standardised on its
//! own speaker's statistics. New audio does not: one file, or a few clips of people the run never
//! heard. This module makes the choice explicit and independent of the rest of a call:
//!
//! * files are grouped by speaker: `--speaker ID` (all files), a CSV list `path,speaker`, or the
//!   run's corpus naming convention (EmoDB `03a01Wa.wav` → `03`); a file without a speaker is a
//!   group of its own;
//! * a group with at least [`DEFAULT_MIN_CLIPS`] clips (its files plus any `--enroll` clips of
//!   that speaker) is standardised on its own statistics;
//! * any other clip on [`TrainingSpeakers`]: the statistics of the run's *training* speakers'
//!   clips, stored in the run folder (`speaker_norm.json`), the same for every call.
//!
//! Every prediction names the statistics it used ([`Source`]). The minimum was chosen by
//! measurement (`emolab bench normalisation`, docs/benchmarks.md, "Predicting new audio").

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::corpus::parse::{parse_name, Format};
use crate::train::data::{Normalizer, SpeakerStats};

/// Clips of one speaker needed before their own statistics replace the training speakers'.
/// Chosen on EmoDB's validation speakers (docs/benchmarks.md, "Predicting new audio").
pub const DEFAULT_MIN_CLIPS: usize = 7;

/// The run-folder file holding [`TrainingSpeakers`].
pub const FILE: &str = "speaker_norm.json";

/// Statistics of a run's training speakers: one mean and standard deviation per feature over
/// all their clips (original variants). Chosen on validation speakers over the average
/// speaker's statistics (mean of means, root mean square of within-speaker spreads); see
/// docs/benchmarks.md, "Predicting new audio".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingSpeakers {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
    /// Training speakers and clips the statistics pool.
    pub speakers: usize,
    pub clips: usize,
}

impl TrainingSpeakers {
    /// Pool the training clips `(speaker, features)` (`f` values per frame).
    pub fn pooled<'a>(
        clips: impl IntoIterator<Item = (Option<&'a str>, &'a [f32])>,
        f: usize,
    ) -> Option<TrainingSpeakers> {
        let mut st = crate::train::data::FrameStats::new(f);
        let mut ids = std::collections::BTreeSet::new();
        let mut n = 0;
        for (s, x) in clips {
            st.add(x);
            ids.insert(s.unwrap_or(""));
            n += 1;
        }
        if n == 0 {
            return None;
        }
        let z = st.finish();
        Some(TrainingSpeakers {
            mean: z.mean,
            std: z.std,
            speakers: ids.len(),
            clips: n,
        })
    }

    /// The average speaker of `speakers` (ids in `stats`; unknown ids are skipped): the mean
    /// of their means and the root mean square of their standard deviations (the spread
    /// within a speaker). The alternative `emolab bench normalisation` compares.
    pub fn averaged<'a>(
        stats: &SpeakerStats,
        speakers: impl IntoIterator<Item = &'a str>,
    ) -> Option<TrainingSpeakers> {
        let mut ids: Vec<&str> = speakers.into_iter().collect();
        ids.sort_unstable();
        ids.dedup();
        let norms: Vec<&Arc<Normalizer>> = ids.iter().filter_map(|s| stats.0.get(*s)).collect();
        let first = norms.first()?;
        let f = first.mean.len();
        let n = norms.len() as f64;
        let (mut mean, mut var) = (vec![0f64; f], vec![0f64; f]);
        for z in &norms {
            for j in 0..f {
                mean[j] += z.mean[j] as f64 / n;
                var[j] += (z.std[j] as f64).powi(2) / n;
            }
        }
        Some(TrainingSpeakers {
            mean: mean.into_iter().map(|v| v as f32).collect(),
            std: var.into_iter().map(|v| v.sqrt().max(1e-5) as f32).collect(),
            speakers: norms.len(),
            clips: 0,
        })
    }

    pub fn normalizer(&self) -> Arc<Normalizer> {
        Arc::new(Normalizer {
            mean: self.mean.clone(),
            std: self.std.clone(),
        })
    }

    /// `<run>/speaker_norm.json`, when the run has one.
    pub fn load(run: &Path) -> Result<Option<TrainingSpeakers>> {
        let p = run.join(FILE);
        if !p.exists() {
            return Ok(None);
        }
        crate::results::read_json(&p).map(Some)
    }

    pub fn save(&self, run: &Path) -> Result<()> {
        crate::results::write_json(&run.join(FILE), self)
    }
}

/// Which statistics standardised a clip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The clip's speaker's own, from this many clips.
    Speaker { id: String, clips: usize },
    /// The run's training speakers (too few clips of the speaker, or no speaker known).
    Training,
    /// The mode needs no speaker: named as in the run's `train.normalize`.
    Mode(&'static str),
}

impl Source {
    pub fn falls_back(&self) -> bool {
        *self == Source::Training
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Speaker { id, clips } => write!(f, "speaker {id} ({clips} clips)"),
            Source::Training => f.write_str("training speakers"),
            Source::Mode(m) => f.write_str(m),
        }
    }
}

/// Assign statistics to clips: `speaker[i]` is clip `i`'s speaker (`None`: unknown, a group of
/// its own); `enroll` adds clips of named speakers for statistics only. A speaker with at least
/// `min_clips` clips (own plus enrolled) gets their own statistics, every other clip the
/// training speakers'. A clip's result depends only on its own speaker's clips.
pub fn assign(
    speaker: &[Option<String>],
    features: &[&[f32]],
    enroll: &[(String, &[f32])],
    n_features: usize,
    min_clips: usize,
    fallback: &Arc<Normalizer>,
) -> Vec<(Arc<Normalizer>, Source)> {
    let mut groups: BTreeMap<&str, Vec<&[f32]>> = BTreeMap::new();
    for (s, x) in speaker.iter().zip(features) {
        if let Some(s) = s {
            groups.entry(s.as_str()).or_default().push(x);
        }
    }
    for (s, x) in enroll {
        groups.entry(s.as_str()).or_default().push(x);
    }
    let own: HashMap<&str, (Arc<Normalizer>, usize)> = groups
        .into_iter()
        .filter(|(_, xs)| xs.len() >= min_clips.max(1))
        .map(|(s, xs)| {
            let n = xs.len();
            (s, (Arc::new(Normalizer::fit_frames(xs, n_features)), n))
        })
        .collect();
    speaker
        .iter()
        .map(
            |s| match s.as_deref().and_then(|s| own.get(s).map(|o| (s, o))) {
                Some((id, (norm, n))) => (
                    norm.clone(),
                    Source::Speaker {
                        id: id.to_string(),
                        clips: *n,
                    },
                ),
                None => (fallback.clone(), Source::Training),
            },
        )
        .collect()
}

/// The speaker a file's name gives under `format` (a named corpus convention; `auto` tries
/// each), or `None`.
pub fn from_name(path: &Path, format: Format) -> Option<String> {
    let name = Path::new(path.file_name()?);
    let single = [format];
    let formats: &[Format] = match format {
        Format::Auto => &Format::NAMED,
        f if Format::NAMED.contains(&f) => &single,
        _ => &[],
    };
    formats
        .iter()
        .find_map(|&f| parse_name(f, name).ok().and_then(|p| p.speaker))
}

/// Files to predict with their speakers, from the command line: `files` (WAV files, or CSV
/// lists `path,speaker` whose relative paths are read from the list's folder); `speaker` names
/// the speaker of every file; otherwise a file's name is read with `format`.
pub fn speakers_of(
    files: &[PathBuf],
    speaker: Option<&str>,
    format: Format,
) -> Result<Vec<(PathBuf, Option<String>)>> {
    let mut out = Vec::new();
    for f in files {
        if f.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")) {
            out.extend(read_list(f)?);
        } else {
            out.push((f.clone(), None));
        }
    }
    for (path, s) in &mut out {
        if let Some(id) = speaker {
            *s = Some(id.to_string());
        } else if s.is_none() {
            *s = from_name(path, format);
        }
    }
    Ok(out)
}

/// The WAV files of a folder (sorted, not recursive), or the file itself (`--enroll`).
pub fn wav_files(p: &Path) -> Result<Vec<PathBuf>> {
    if p.is_file() {
        return Ok(vec![p.to_path_buf()]);
    }
    let mut out: Vec<PathBuf> = std::fs::read_dir(p)
        .with_context(|| format!("--enroll {}: not a folder or a file", p.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|f| f.extension().is_some_and(|e| e.eq_ignore_ascii_case("wav")))
        .collect();
    out.sort();
    if out.is_empty() {
        bail!("--enroll {}: no .wav file in it", p.display());
    }
    Ok(out)
}

/// A CSV list `path,speaker` (a header row naming `path` is skipped; an empty speaker is
/// unknown).
fn read_list(list: &Path) -> Result<Vec<(PathBuf, Option<String>)>> {
    let text = std::fs::read_to_string(list)
        .with_context(|| format!("cannot read the file list {}", list.display()))?;
    let base = list.parent().unwrap_or(Path::new("."));
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let mut cells = line.splitn(2, ',').map(|c| c.trim().trim_matches('"'));
        let path = cells.next().unwrap_or("");
        let speaker = cells.next().unwrap_or("");
        if i == 0 && path.eq_ignore_ascii_case("path") {
            continue;
        }
        if path.is_empty() {
            bail!("{} line {}: no path", list.display(), i + 1);
        }
        let p = Path::new(path);
        let p = if p.is_absolute() {
            p.to_path_buf()
        } else {
            base.join(p)
        };
        out.push((p, (!speaker.is_empty()).then(|| speaker.to_string())));
    }
    if out.is_empty() {
        bail!(
            "{} lists no file (expected lines `path,speaker`)",
            list.display()
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(m: f32, s: f32) -> Arc<Normalizer> {
        Arc::new(Normalizer {
            mean: vec![m; 2],
            std: vec![s; 2],
        })
    }

    #[test]
    fn training_speakers_pool_or_average() {
        let mut st = SpeakerStats::default();
        st.0.insert("a".into(), norm(0.0, 1.0));
        st.0.insert("b".into(), norm(2.0, 7f32.sqrt()));
        st.0.insert("test".into(), norm(100.0, 100.0));
        let t = TrainingSpeakers::averaged(&st, ["a", "b", "a"]).unwrap();
        assert_eq!(t.speakers, 2);
        assert_eq!(t.mean, vec![1.0; 2]);
        assert!((t.std[0] - 2.0).abs() < 1e-6, "{:?}", t.std);
        assert!(TrainingSpeakers::averaged(&st, ["nobody"]).is_none());
        // Pooled: every frame of every clip counts once.
        let (x, y) = ([0.0f32, 0.0, 2.0, 2.0], [4.0f32, 4.0]);
        let p = TrainingSpeakers::pooled([(Some("a"), &x[..]), (Some("b"), &y[..])], 2).unwrap();
        assert_eq!((p.speakers, p.clips), (2, 2));
        assert_eq!(p.mean, vec![2.0; 2]);
        assert!((p.std[0] - (8f32 / 3.0).sqrt()).abs() < 1e-6, "{:?}", p.std);
        assert!(TrainingSpeakers::pooled([], 2).is_none());
    }

    #[test]
    fn a_clip_depends_only_on_its_own_speakers_clips() {
        let fb = norm(0.0, 1.0);
        let x: Vec<Vec<f32>> = (0..6).map(|i| vec![i as f32, 2.0 * i as f32]).collect();
        let refs: Vec<&[f32]> = x.iter().map(|v| &v[..]).collect();
        let sp = |v: &[Option<&str>]| -> Vec<Option<String>> {
            v.iter().map(|s| s.map(str::to_string)).collect()
        };
        // Alone: the training speakers.
        let alone = assign(&sp(&[Some("a")]), &refs[..1], &[], 2, 3, &fb);
        assert_eq!(alone[0].1, Source::Training);
        // Beside clips of other speakers (and unknown ones): the same.
        let mixed = assign(
            &sp(&[Some("a"), Some("b"), Some("b"), Some("b"), None]),
            &refs[..5],
            &[],
            2,
            3,
            &fb,
        );
        assert_eq!(mixed[0], alone[0]);
        assert_eq!(mixed[4].1, Source::Training);
        assert_eq!(
            mixed[1].1,
            Source::Speaker {
                id: "b".into(),
                clips: 3
            }
        );
        assert_eq!(mixed[1].0, mixed[3].0);
        // Enrolled clips count for statistics.
        let enrolled = [("a".to_string(), refs[4]), ("a".to_string(), refs[5])];
        let e = assign(&sp(&[Some("a")]), &refs[..1], &enrolled, 2, 3, &fb);
        assert_eq!(e[0].1.to_string(), "speaker a (3 clips)");
        assert_eq!(
            *e[0].0,
            Normalizer::fit_frames([refs[0], refs[4], refs[5]], 2)
        );
    }

    #[test]
    fn names_give_speakers() {
        assert_eq!(
            from_name(Path::new("x/03a01Wa.wav"), Format::Auto).as_deref(),
            Some("03")
        );
        assert_eq!(
            from_name(Path::new("1001_DFA_ANG_XX.wav"), Format::Cremad).as_deref(),
            Some("1001")
        );
        assert_eq!(from_name(Path::new("clip.wav"), Format::Auto), None);
        assert_eq!(from_name(Path::new("03a01Wa.wav"), Format::Folder), None);
    }

    #[test]
    fn lists_read_paths_and_speakers() {
        let d = tempfile::tempdir().unwrap();
        let list = d.path().join("l.csv");
        std::fs::write(&list, "path,speaker\na.wav,s1\n/abs/b.wav,\n\nc.wav, s2\n").unwrap();
        let got = speakers_of(&[list.clone()], None, Format::Auto).unwrap();
        assert_eq!(got[0], (d.path().join("a.wav"), Some("s1".into())));
        assert_eq!(got[1], (PathBuf::from("/abs/b.wav"), None));
        assert_eq!(got[2].1.as_deref(), Some("s2"));
        let forced = speakers_of(&[list], Some("me"), Format::Auto).unwrap();
        assert!(forced.iter().all(|(_, s)| s.as_deref() == Some("me")));
        std::fs::write(d.path().join("e.csv"), "path,speaker\n").unwrap();
        assert!(speakers_of(&[d.path().join("e.csv")], None, Format::Auto).is_err());
    }
}
