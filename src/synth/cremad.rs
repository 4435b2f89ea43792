//! Layout `cremad`: a synthetic CREMA-D (Cao et al. 2014).
//!
//! Clip names follow the real corpus exactly: the full grid of 91 actors x 12 sentences x
//! (IEO: NEU_XX + 5 emotions x LO/MD/HI; other sentences: 6 emotions x XX) has 7,462 names, and
//! the real release differs from it in a fixed, small way (see [`MISSING_SENTENCES`],
//! [`MISSING_CLIPS`] and [`RENAMED`]), giving its 7,442 clips in the order of
//! `SentenceFilenames.csv`.

use anyhow::{bail, Context, Result};
use rand::Rng;

use super::voice::{Emotion, Sentence, Sex, Speaker, Style};
use super::{derive_rng, CorpusPlan, Format, Job};

/// Number of actors in the real corpus (ids 1001..=1091).
pub(crate) const REAL_ACTORS: usize = 91;
const FIRST_ACTOR: u32 = 1001;

/// Sentence codes, texts and their syllables in the voice's phonetic notation.
pub(crate) const SENTENCES: [(&str, &str, &str); 12] = [
    (
        "IEO",
        "It's eleven o'clock",
        "ih.t.s l.1eh.v ax.n ow k.l.2aa.k",
    ),
    (
        "TIE",
        "That is exactly what happened",
        "dh.1ae.t ih.z ih.g z.1ae.k t.l.iy w.ah.t h.2ae.p ax.n.d",
    ),
    (
        "IOM",
        "I'm on my way to the meeting",
        "1ay.m aa.n m.ay w.1ey t.ax dh.ax m.2iy t.ih.ng",
    ),
    (
        "IWW",
        "I wonder what this is about",
        "1ay w.1ah.n d.er w.ah.t dh.ih.s ih.z ax b.2aw.t",
    ),
    (
        "TAI",
        "The airplane is almost full",
        "dh.ax 1eh.r p.l.ey.n ih.z 1ao.l m.ow.s.t f.2uh ax.l",
    ),
    (
        "MTI",
        "Maybe tomorrow it will be cold",
        "m.1ey b.iy t.ax m.1aa r.ow ih.t.l b.iy k.2ow.l.d",
    ),
    (
        "IWL",
        "I would like a new alarm clock",
        "ay w.uh.d l.1ay.k ax n.1uw ax l.1aa.r ax.m k.l.2aa.k",
    ),
    (
        "ITH",
        "I think I have a doctor's appointment",
        "1ay th.ih.ng.k ay h.ae.v ax d.1aa.k t.er.z ax p.2oy.n.t m.ax.n.t",
    ),
    (
        "DFA",
        "Don't forget a jacket",
        "d.1ow.n.t f.g.1eh t.ax jh.2ae k.ih.t",
    ),
    (
        "ITS",
        "I think I've seen this before",
        "ay th.1ih.ng.k ay.v s.1iy.n dh.ih.s b.f.2ao.r",
    ),
    (
        "TSI",
        "The surface is slick",
        "dh.ax s.1er f.ax.s ih.z s.l.2ih.k",
    ),
    (
        "WSI",
        "We'll stop in a couple of minutes",
        "w.iy.l s.t.1aa.p ih n.ax k.1ah p.l.ax m.2ih n.ih.t.s",
    ),
];

/// Emotion codes in the order the real corpus lists them within a sentence.
pub(crate) const EMOTIONS: [(&str, Emotion); 6] = [
    ("NEU", Emotion::Neutral),
    ("HAP", Emotion::Happiness),
    ("SAD", Emotion::Sadness),
    ("ANG", Emotion::Anger),
    ("FEA", Emotion::Fear),
    ("DIS", Emotion::Disgust),
];

/// Intensity levels (only on sentence IEO, not for NEU) and their effect scale.
pub(crate) const LEVELS: [(&str, f32); 3] = [("LO", 0.5), ("MD", 1.0), ("HI", 1.5)];

/// (actor, sentence) pairs the real corpus lacks entirely.
pub(crate) const MISSING_SENTENCES: [(u32, &str); 3] =
    [(1008, "WSI"), (1009, "MTI"), (1019, "ITH")];

/// Single grid clips the real corpus lacks.
pub(crate) const MISSING_CLIPS: [&str; 2] = ["1002_TIE_NEU_XX", "1076_ITS_NEU_XX"];

/// Grid names whose file in the real audio release is spelled differently.
/// `SentenceFilenames.csv` lists `1040_ITH_SAD_XX`, the released file is `1040_ITH_SAD_X.wav`.
pub(crate) const RENAMED: [(&str, &str); 1] = [("1040_ITH_SAD_XX", "1040_ITH_SAD_X")];

/// Demographics of the 91 real actors (ODbL, from CREMA-D's `VideoDemographics.csv`).
const DEMOGRAPHICS: &str = include_str!("cremad_demographics.csv");

/// Speech duration range (seconds, without leading/trailing silence).
const SPEECH_SECS: (f32, f32) = (1.05, 3.65);

/// One clip of the layout.
#[derive(Debug, Clone)]
pub(crate) struct Clip {
    pub name: String,
    pub actor: u32,
    pub sentence: usize,
    pub emotion: Emotion,
    pub level: f32,
}

/// All clips for `actors` actors, in the real corpus order.
pub(crate) fn clips(actors: usize) -> Vec<Clip> {
    let mut out = Vec::with_capacity(actors * 82);
    for a in 0..actors {
        let actor = FIRST_ACTOR + a as u32;
        let real = a < REAL_ACTORS;
        for (si, (code, _, _)) in SENTENCES.iter().enumerate() {
            if real && MISSING_SENTENCES.contains(&(actor, *code)) {
                continue;
            }
            for (ecode, emotion) in EMOTIONS {
                let levels: &[(&str, f32)] = if si == 0 && emotion != Emotion::Neutral {
                    &LEVELS
                } else {
                    &[("XX", 1.0)]
                };
                for (lcode, level) in levels {
                    let mut name = format!("{actor}_{code}_{ecode}_{lcode}");
                    if real {
                        if MISSING_CLIPS.contains(&name.as_str()) {
                            continue;
                        }
                        if let Some((_, to)) = RENAMED.iter().find(|(from, _)| *from == name) {
                            name = (*to).to_string();
                        }
                    }
                    out.push(Clip {
                        name,
                        actor,
                        sentence: si,
                        emotion,
                        level: *level,
                    });
                }
            }
        }
    }
    out
}

/// One row of `VideoDemographics.csv`.
#[derive(Debug, Clone)]
pub(crate) struct Demographic {
    pub actor: u32,
    pub age: u32,
    pub sex: Sex,
    /// The row exactly as it appears in the CSV.
    pub line: String,
}

fn unquote(s: &str) -> &str {
    s.trim().trim_matches('"')
}

/// The embedded demographics of the real actors.
pub(crate) fn real_demographics() -> Result<Vec<Demographic>> {
    let mut rows = Vec::new();
    for (i, line) in DEMOGRAPHICS.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split(',').collect();
        if f.len() != 5 {
            bail!("cremad_demographics.csv line {}: expected 5 fields", i + 1);
        }
        let sex = match unquote(f[2]) {
            "Male" => Sex::Male,
            "Female" => Sex::Female,
            other => bail!("cremad_demographics.csv line {}: sex {other:?}", i + 1),
        };
        rows.push(Demographic {
            actor: unquote(f[0]).parse().context("ActorID")?,
            age: unquote(f[1]).parse().context("Age")?,
            sex,
            line: line.to_string(),
        });
    }
    Ok(rows)
}

/// Demographics for actors 1001..1001+actors: real rows, then synthetic ones.
pub(crate) fn demographics(actors: usize, seed: u64) -> Result<Vec<Demographic>> {
    let real = real_demographics()?;
    let mut out = Vec::with_capacity(actors);
    for a in 0..actors {
        let actor = FIRST_ACTOR + a as u32;
        if let Some(r) = real.iter().find(|r| r.actor == actor) {
            out.push(r.clone());
            continue;
        }
        let sex = if (actor - FIRST_ACTOR - REAL_ACTORS as u32).is_multiple_of(2) {
            Sex::Male
        } else {
            Sex::Female
        };
        let age = derive_rng(seed, &format!("cremad:age:{actor}")).random_range(20..=74u32);
        let sex_s = if sex == Sex::Male { "Male" } else { "Female" };
        out.push(Demographic {
            actor,
            age,
            sex,
            line: format!("{actor},{age},\"{sex_s}\",\"Unknown\",\"Unknown\""),
        });
    }
    Ok(out)
}

pub(crate) fn plan(actors: Option<usize>, seed: u64) -> Result<CorpusPlan> {
    let actors = actors.unwrap_or(REAL_ACTORS);
    if actors == 0 {
        bail!("cremad: actors must be at least 1");
    }
    let demo = demographics(actors, seed)?;
    let speakers: Vec<Speaker> = demo
        .iter()
        .map(|d| {
            let mut rng = derive_rng(seed, &format!("speaker:cremad:{}", d.actor));
            Speaker::sample(d.sex, Some(d.age), (0.5, 1.5), &mut rng)
        })
        .collect();
    let sentences: Vec<Sentence> = SENTENCES.iter().map(|s| Sentence::parse(s.2)).collect();
    let format = Format {
        sample_rate: 16_000,
        channels: 1,
        bits: 16,
    };
    let jobs = clips(actors)
        .into_iter()
        .map(|c| Job {
            name: c.name,
            speaker: (c.actor - FIRST_ACTOR) as usize,
            sentence: c.sentence,
            style: Style {
                emotion: c.emotion,
                level: c.level,
                sung: false,
                speech_secs: SPEECH_SECS,
            },
            format,
        })
        .collect();
    let mut csv = String::from("\"ActorID\",\"Age\",\"Sex\",\"Race\",\"Ethnicity\"\n");
    for d in &demo {
        csv.push_str(&d.line);
        csv.push('\n');
    }
    Ok(CorpusPlan {
        speakers,
        sentences,
        jobs,
        extra_files: vec![("VideoDemographics.csv".to_string(), csv)],
    })
}
