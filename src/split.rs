//! Evaluation protocols: which clips train, validate and test in each fold.
//!
//! - `speaker_kfold` (the default): folds are disjoint sets of speakers, balanced per sex and by
//!   clip count (acted corpora give every speaker every emotion, so the emotion mix follows);
//!   every test fold must hold every class. Validation speakers are carved from each fold's
//!   training speakers.
//! - `loso`: one speaker per test fold. `speaker_holdout`: one fixed speaker split.
//! - `random`: clip-level split (the seed's protocol). Speakers leak across train and test;
//!   [`Protocol::speaker_leaky`] says so and reports must show it.
//!
//! Splits depend only on (clips, labels, protocol, seed): the same inputs give the same folds,
//! so every model of an experiment is compared on the same folds.

use std::collections::{BTreeMap, BTreeSet};

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::corpus::ClipRecord;

fn d_k() -> usize {
    5
}
fn d_val() -> f64 {
    0.15
}
fn d_test() -> f64 {
    0.2
}

/// An evaluation protocol.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Protocol {
    SpeakerKfold {
        #[serde(default = "d_k")]
        k: usize,
        #[serde(default = "d_val")]
        val_fraction: f64,
    },
    Loso {
        #[serde(default = "d_val")]
        val_fraction: f64,
    },
    SpeakerHoldout {
        #[serde(default = "d_test")]
        test_fraction: f64,
        #[serde(default = "d_val")]
        val_fraction: f64,
    },
    /// Folds given as lists of test speakers (a published split, e.g. EmoBox's RAVDESS folds):
    /// `{kind: folds, file: folds/x.yaml}` (read when the experiment loads, relative to the
    /// experiment file) or `test_speakers: [[a, b], [c, d]]`. Validation speakers are carved from
    /// each fold's training speakers as in the other protocols.
    Folds {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        file: Option<std::path::PathBuf>,
        #[serde(default)]
        test_speakers: Vec<Vec<String>>,
        #[serde(default = "d_val")]
        val_fraction: f64,
    },
    Random {
        #[serde(default = "d_test")]
        test_fraction: f64,
        #[serde(default)]
        val_fraction: f64,
        /// The seed's mistake, on purpose: validate (and select) on the test clips.
        #[serde(default)]
        test_as_val: bool,
    },
}

impl Protocol {
    /// True when one speaker can be in both training and test data.
    pub fn speaker_leaky(&self) -> bool {
        matches!(self, Protocol::Random { .. })
    }

    pub fn name(&self) -> &'static str {
        match self {
            Protocol::SpeakerKfold { .. } => "speaker_kfold",
            Protocol::Loso { .. } => "loso",
            Protocol::SpeakerHoldout { .. } => "speaker_holdout",
            Protocol::Folds { .. } => "folds",
            Protocol::Random { .. } => "random",
        }
    }
}

/// One fold: indices into the clip list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fold {
    pub index: usize,
    pub train: Vec<usize>,
    pub val: Vec<usize>,
    pub test: Vec<usize>,
}

/// A protocol that cannot be applied to these clips.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SplitError {
    #[error("clip {0} has no speaker: speaker-independent protocols need one (use protocol `random`, speaker-leaky)")]
    NoSpeaker(String),
    #[error("k = {k} is larger than the number of speakers ({speakers})")]
    TooFewSpeakers { k: usize, speakers: usize },
    #[error("fold {fold}'s test speakers have no clip of class(es) {missing:?}; use a smaller k")]
    MissingClass { fold: usize, missing: Vec<String> },
    #[error("{0}")]
    Invalid(String),
}

struct Speaker {
    id: String,
    sex: String,
    clips: Vec<usize>,
}

fn speakers(clips: &[ClipRecord]) -> Result<Vec<Speaker>, SplitError> {
    let mut map: BTreeMap<String, Speaker> = BTreeMap::new();
    for (i, c) in clips.iter().enumerate() {
        let id = c
            .speaker
            .clone()
            .ok_or_else(|| SplitError::NoSpeaker(c.clip_id.clone()))?;
        map.entry(id.clone())
            .or_insert_with(|| Speaker {
                id,
                sex: c.sex.clone().unwrap_or_else(|| "unknown".into()),
                clips: Vec::new(),
            })
            .clips
            .push(i);
    }
    Ok(map.into_values().collect())
}

fn rng(seed: u64, salt: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// Deal speakers into `k` groups: per sex, largest first (shuffled among equals), each to the
/// group with the fewest speakers of that sex, then the fewest clips.
fn deal(speakers: &[Speaker], k: usize, rng: &mut ChaCha8Rng) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..speakers.len()).collect();
    order.shuffle(rng);
    order.sort_by_key(|&s| {
        (
            speakers[s].sex.clone(),
            std::cmp::Reverse(speakers[s].clips.len()),
        )
    });
    let mut groups = vec![Vec::new(); k];
    let mut clips = vec![0usize; k];
    let mut by_sex: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for s in order {
        let sex = speakers[s].sex.as_str();
        let counts = by_sex.entry(sex).or_insert_with(|| vec![0; k]);
        let g = (0..k)
            .min_by_key(|&g| (counts[g], clips[g], g))
            .expect("k >= 1");
        counts[g] += 1;
        clips[g] += speakers[s].clips.len();
        groups[g].push(s);
    }
    groups
}

/// Pick `n` of `pool` speakers, alternating sexes, in a seeded order.
fn pick(speakers: &[Speaker], pool: &[usize], n: usize, rng: &mut ChaCha8Rng) -> Vec<usize> {
    let mut by_sex: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    let mut shuffled = pool.to_vec();
    shuffled.shuffle(rng);
    for s in shuffled {
        by_sex.entry(speakers[s].sex.as_str()).or_default().push(s);
    }
    let mut queues: Vec<Vec<usize>> = by_sex.into_values().collect();
    let mut out = Vec::new();
    while out.len() < n && queues.iter().any(|q| !q.is_empty()) {
        for q in queues.iter_mut() {
            if out.len() < n {
                if let Some(s) = q.pop() {
                    out.push(s);
                }
            }
        }
    }
    out
}

fn count(fraction: f64, n: usize) -> usize {
    if fraction <= 0.0 {
        0
    } else {
        ((fraction * n as f64).round() as usize).clamp(1, n.saturating_sub(1).max(1))
    }
}

fn check_fraction(name: &str, f: f64) -> Result<(), SplitError> {
    if (0.0..1.0).contains(&f) {
        Ok(())
    } else {
        Err(SplitError::Invalid(format!(
            "{name} must be in [0, 1), got {f}"
        )))
    }
}

/// Build the folds of `protocol` for `clips` with class indices `labels`.
pub fn make_folds(
    clips: &[ClipRecord],
    labels: &[usize],
    class_names: &[String],
    protocol: &Protocol,
    seed: u64,
) -> Result<Vec<Fold>, SplitError> {
    assert_eq!(clips.len(), labels.len());
    if let Protocol::Random {
        test_fraction,
        val_fraction,
        test_as_val,
    } = protocol
    {
        check_fraction("test_fraction", *test_fraction)?;
        check_fraction("val_fraction", *val_fraction)?;
        let mut idx: Vec<usize> = (0..clips.len()).collect();
        idx.shuffle(&mut rng(seed, 0));
        let n_test = count(*test_fraction, idx.len());
        let test = idx[..n_test].to_vec();
        let rest = &idx[n_test..];
        let (val, train) = if *test_as_val {
            (test.clone(), rest.to_vec())
        } else {
            let n_val = count(*val_fraction, rest.len());
            (rest[..n_val].to_vec(), rest[n_val..].to_vec())
        };
        return Ok(vec![sorted(Fold {
            index: 0,
            train,
            val,
            test,
        })]);
    }
    let spk = speakers(clips)?;
    let (groups, val_fraction) = match protocol {
        Protocol::SpeakerKfold { k, val_fraction } => {
            if *k < 2 || *k > spk.len() {
                return Err(SplitError::TooFewSpeakers {
                    k: *k,
                    speakers: spk.len(),
                });
            }
            (deal(&spk, *k, &mut rng(seed, 1)), *val_fraction)
        }
        Protocol::Loso { val_fraction } => {
            ((0..spk.len()).map(|s| vec![s]).collect(), *val_fraction)
        }
        Protocol::SpeakerHoldout {
            test_fraction,
            val_fraction,
        } => {
            check_fraction("test_fraction", *test_fraction)?;
            let all: Vec<usize> = (0..spk.len()).collect();
            let test = pick(
                &spk,
                &all,
                count(*test_fraction, spk.len()),
                &mut rng(seed, 2),
            );
            (vec![test], *val_fraction)
        }
        Protocol::Folds {
            test_speakers,
            val_fraction,
            ..
        } => (given_folds(&spk, test_speakers)?, *val_fraction),
        Protocol::Random { .. } => unreachable!("handled above"),
    };
    check_fraction("val_fraction", val_fraction)?;
    let all_classes: BTreeSet<usize> = labels.iter().copied().collect();
    let mut folds = Vec::new();
    for (f, test_spk) in groups.iter().enumerate() {
        let train_spk: Vec<usize> = (0..spk.len()).filter(|s| !test_spk.contains(s)).collect();
        let n_val = count(val_fraction, train_spk.len());
        let val_spk = pick(&spk, &train_spk, n_val, &mut rng(seed, 100 + f as u64));
        let clips_of = |set: &[usize]| -> Vec<usize> {
            set.iter()
                .flat_map(|&s| spk[s].clips.iter().copied())
                .collect()
        };
        let test = clips_of(test_spk);
        if matches!(
            protocol,
            Protocol::SpeakerKfold { .. } | Protocol::SpeakerHoldout { .. }
        ) {
            let have: BTreeSet<usize> = test.iter().map(|&i| labels[i]).collect();
            let missing: Vec<String> = all_classes
                .difference(&have)
                .map(|&c| class_names.get(c).cloned().unwrap_or_else(|| c.to_string()))
                .collect();
            if !missing.is_empty() {
                return Err(SplitError::MissingClass { fold: f, missing });
            }
        }
        let train: Vec<usize> = train_spk
            .iter()
            .filter(|s| !val_spk.contains(s))
            .copied()
            .collect();
        folds.push(sorted(Fold {
            index: f,
            train: clips_of(&train),
            val: clips_of(&val_spk),
            test,
        }));
    }
    Ok(folds)
}

/// Speaker ids match as written, or as numbers (`1` and `01`).
fn same_speaker(a: &str, b: &str) -> bool {
    a == b || matches!((a.parse::<u64>(), b.parse::<u64>()), (Ok(x), Ok(y)) if x == y)
}

/// The speaker groups of `test_speakers`: every listed speaker must exist, and be listed once.
fn given_folds(
    spk: &[Speaker],
    test_speakers: &[Vec<String>],
) -> Result<Vec<Vec<usize>>, SplitError> {
    if test_speakers.is_empty() {
        return Err(SplitError::Invalid(
            "protocol folds: give `file` or `test_speakers` (a list of test-speaker lists)".into(),
        ));
    }
    let mut seen: BTreeMap<usize, usize> = BTreeMap::new();
    let mut groups = Vec::new();
    for (f, ids) in test_speakers.iter().enumerate() {
        if ids.is_empty() {
            return Err(SplitError::Invalid(format!(
                "protocol folds: fold {f} has no test speakers"
            )));
        }
        let mut g = Vec::new();
        for id in ids {
            let Some(s) = spk.iter().position(|s| same_speaker(&s.id, id)) else {
                let known: Vec<&str> = spk.iter().map(|s| s.id.as_str()).collect();
                return Err(SplitError::Invalid(format!(
                    "protocol folds: fold {f} names speaker {id}, who has no clips here (speakers: {})",
                    known.join(", ")
                )));
            };
            if let Some(other) = seen.insert(s, f) {
                return Err(SplitError::Invalid(format!(
                    "protocol folds: speaker {id} is in the test speakers of folds {other} and {f}"
                )));
            }
            g.push(s);
        }
        groups.push(g);
    }
    Ok(groups)
}

fn sorted(mut f: Fold) -> Fold {
    f.train.sort_unstable();
    f.val.sort_unstable();
    f.test.sort_unstable();
    f
}

/// Speakers of a set of clip indices.
pub fn speakers_of(clips: &[ClipRecord], idx: &[usize]) -> BTreeSet<String> {
    idx.iter()
        .filter_map(|&i| clips[i].speaker.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 12 speakers (6 f, 6 m), 6 classes, 5 clips per class each.
    fn corpus() -> (Vec<ClipRecord>, Vec<usize>, Vec<String>) {
        let names: Vec<String> = (0..6).map(|c| format!("e{c}")).collect();
        let mut clips = Vec::new();
        let mut labels = Vec::new();
        for s in 0..12 {
            for c in 0..6 {
                for r in 0..5 {
                    clips.push(ClipRecord {
                        path: format!("/x/{s}_{c}_{r}.wav"),
                        corpus: "t".into(),
                        clip_id: format!("{s}_{c}_{r}"),
                        speaker: Some(format!("spk{s:02}")),
                        sex: Some(if s % 2 == 0 { "female" } else { "male" }.into()),
                        age: None,
                        sentence: None,
                        emotion: names[c].clone(),
                        emotion_code: names[c].clone(),
                        intensity: None,
                        vocal_channel: None,
                        sample_rate: 16000,
                        channels: 1,
                        bits: 16,
                        duration_s: 2.0,
                        content_hash: format!("h{s}_{c}_{r}"),
                    });
                    labels.push(c);
                }
            }
        }
        (clips, labels, names)
    }

    #[test]
    fn given_folds_test_exactly_the_listed_speakers_and_reject_unknown_or_repeated_ones() {
        let (clips, labels, names) = corpus();
        let folds_of = |t: &[&[&str]]| {
            let p = Protocol::Folds {
                file: None,
                test_speakers: t
                    .iter()
                    .map(|f| f.iter().map(|s| s.to_string()).collect())
                    .collect(),
                val_fraction: 0.2,
            };
            make_folds(&clips, &labels, &names, &p, 3)
        };
        let folds = folds_of(&[&["spk00", "spk05"], &["spk11"]]).unwrap();
        assert_eq!(folds.len(), 2);
        let want: [BTreeSet<String>; 2] = [
            ["spk00".to_string(), "spk05".to_string()].into(),
            ["spk11".to_string()].into(),
        ];
        for (f, w) in folds.iter().zip(&want) {
            assert_eq!(&speakers_of(&clips, &f.test), w);
            let (tr, va) = (speakers_of(&clips, &f.train), speakers_of(&clips, &f.val));
            assert!(tr.is_disjoint(w) && va.is_disjoint(w) && tr.is_disjoint(&va));
            assert_eq!(f.train.len() + f.val.len() + f.test.len(), clips.len());
        }
        let e = folds_of(&[&["spk00"], &["spk99"]]).unwrap_err().to_string();
        assert!(e.contains("fold 1") && e.contains("spk99"), "{e}");
        let e = folds_of(&[&["spk03"], &["spk03"]]).unwrap_err().to_string();
        assert!(e.contains("spk03") && e.contains("folds 0 and 1"), "{e}");
        assert!(folds_of(&[]).is_err());
        assert!(same_speaker("01", "1") && !same_speaker("01", "10"));
    }

    #[test]
    fn speaker_kfold_is_speaker_disjoint_balanced_and_reproducible() {
        let (clips, labels, names) = corpus();
        let p = Protocol::SpeakerKfold {
            k: 4,
            val_fraction: 0.2,
        };
        let folds = make_folds(&clips, &labels, &names, &p, 7).unwrap();
        assert_eq!(folds.len(), 4);
        let mut tested = BTreeSet::new();
        for f in &folds {
            let (tr, va, te) = (
                speakers_of(&clips, &f.train),
                speakers_of(&clips, &f.val),
                speakers_of(&clips, &f.test),
            );
            assert!(tr.is_disjoint(&va) && tr.is_disjoint(&te) && va.is_disjoint(&te));
            assert_eq!(f.train.len() + f.val.len() + f.test.len(), clips.len());
            assert_eq!(te.len(), 3);
            assert!(!va.is_empty());
            let sexes: BTreeSet<_> = f.test.iter().map(|&i| clips[i].sex.clone()).collect();
            assert_eq!(sexes.len(), 2, "both sexes in every test fold");
            let classes: BTreeSet<_> = f.test.iter().map(|&i| labels[i]).collect();
            assert_eq!(classes.len(), 6);
            tested.extend(te);
        }
        assert_eq!(tested.len(), 12, "every speaker is tested once");
        assert_eq!(folds, make_folds(&clips, &labels, &names, &p, 7).unwrap());
        assert_ne!(folds, make_folds(&clips, &labels, &names, &p, 8).unwrap());
    }

    #[test]
    fn impossible_protocols_are_errors() {
        let (clips, labels, names) = corpus();
        let e = make_folds(
            &clips,
            &labels,
            &names,
            &Protocol::SpeakerKfold {
                k: 13,
                val_fraction: 0.1,
            },
            0,
        )
        .unwrap_err();
        assert_eq!(
            e,
            SplitError::TooFewSpeakers {
                k: 13,
                speakers: 12
            }
        );
        // Speaker spk00 alone has class e5: a fold without spk00 lacks it.
        let keep: Vec<usize> = (0..clips.len())
            .filter(|&i| labels[i] != 5 || clips[i].speaker.as_deref() == Some("spk00"))
            .collect();
        let c2: Vec<_> = keep.iter().map(|&i| clips[i].clone()).collect();
        let l2: Vec<_> = keep.iter().map(|&i| labels[i]).collect();
        let e = make_folds(
            &c2,
            &l2,
            &names,
            &Protocol::SpeakerKfold {
                k: 3,
                val_fraction: 0.1,
            },
            0,
        )
        .unwrap_err();
        assert!(
            matches!(e, SplitError::MissingClass { ref missing, .. } if missing == &vec!["e5".to_string()]),
            "{e}"
        );
        let mut c3 = clips.clone();
        c3[5].speaker = None;
        assert!(matches!(
            make_folds(
                &c3,
                &labels,
                &names,
                &Protocol::Loso { val_fraction: 0.1 },
                0
            ),
            Err(SplitError::NoSpeaker(_))
        ));
    }

    #[test]
    fn loso_and_holdout() {
        let (clips, labels, names) = corpus();
        let folds = make_folds(
            &clips,
            &labels,
            &names,
            &Protocol::Loso { val_fraction: 0.1 },
            1,
        )
        .unwrap();
        assert_eq!(folds.len(), 12);
        assert!(folds
            .iter()
            .all(|f| speakers_of(&clips, &f.test).len() == 1));
        let h = make_folds(
            &clips,
            &labels,
            &names,
            &Protocol::SpeakerHoldout {
                test_fraction: 0.25,
                val_fraction: 0.1,
            },
            1,
        )
        .unwrap();
        assert_eq!(h.len(), 1);
        assert_eq!(speakers_of(&clips, &h[0].test).len(), 3);
    }

    #[test]
    fn random_mixes_speakers_and_is_flagged() {
        let (clips, labels, names) = corpus();
        let p = Protocol::Random {
            test_fraction: 0.2,
            val_fraction: 0.0,
            test_as_val: true,
        };
        assert!(p.speaker_leaky());
        assert!(!Protocol::SpeakerKfold {
            k: 5,
            val_fraction: 0.1
        }
        .speaker_leaky());
        let f = &make_folds(&clips, &labels, &names, &p, 42).unwrap()[0];
        assert_eq!(f.test.len(), 72);
        assert_eq!(f.val, f.test, "the seed validated on its test set");
        let shared = speakers_of(&clips, &f.train)
            .intersection(&speakers_of(&clips, &f.test))
            .count();
        assert_eq!(shared, 12, "every speaker is in both train and test");
    }
}
