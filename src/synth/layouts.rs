//! Layouts `ravdess` and `emodb`: small corpora with those corpora's naming and format quirks.

use anyhow::{bail, Result};

use super::voice::{Emotion, Sentence, Sex, Speaker, Style};
use super::{derive_rng, CorpusPlan, Format, Job};

// ---------------------------------------------------------------------------------------------
// RAVDESS
// ---------------------------------------------------------------------------------------------

/// RAVDESS emotion codes 01..08.
const RAVDESS_EMOTIONS: [Emotion; 8] = [
    Emotion::Neutral,
    Emotion::Calm,
    Emotion::Happiness,
    Emotion::Sadness,
    Emotion::Anger,
    Emotion::Fear,
    Emotion::Disgust,
    Emotion::Surprise,
];

/// Statements 01 and 02.
const RAVDESS_STATEMENTS: [(&str, &str); 2] = [
    (
        "Kids are talking by the door",
        "k.1ih.d.z er t.1ao k.ih.ng b.ay dh.ax d.2ao.r",
    ),
    (
        "Dogs are sitting by the door",
        "d.1aa.g.z er s.1ih t.ih.ng b.ay dh.ax d.2ao.r",
    ),
];

pub(crate) const RAVDESS_DEFAULT_ACTORS: usize = 4;
const RAVDESS_MAX_ACTORS: usize = 24;
/// The one speech file written as 16-bit stereo.
pub(crate) const RAVDESS_STEREO: &str = "03-01-03-01-02-01-01";
/// The one speech file written as 24-bit mono.
pub(crate) const RAVDESS_24BIT: &str = "03-01-06-02-01-01-01";
/// Song files (vocal channel 02), with their actor.
const RAVDESS_SONGS: [(&str, u32); 2] = [("03-02-03-01-01-01-01", 1), ("03-02-05-02-01-01-02", 2)];

fn ravdess_name(
    channel: u32,
    emotion: usize,
    intensity: u32,
    statement: u32,
    actor: u32,
) -> String {
    format!(
        "03-{channel:02}-{:02}-{intensity:02}-{statement:02}-01-{actor:02}",
        emotion + 1
    )
}

pub(crate) fn ravdess_plan(actors: Option<usize>, seed: u64) -> Result<CorpusPlan> {
    let actors = actors.unwrap_or(RAVDESS_DEFAULT_ACTORS);
    if actors == 0 || actors > RAVDESS_MAX_ACTORS {
        bail!("ravdess: actors must be 1..={RAVDESS_MAX_ACTORS}, got {actors}");
    }
    let speakers: Vec<Speaker> = (1..=actors as u32)
        .map(|a| {
            let sex = if a % 2 == 1 { Sex::Male } else { Sex::Female };
            let mut rng = derive_rng(seed, &format!("speaker:ravdess:{a}"));
            Speaker::sample(sex, None, (0.7, 1.5), &mut rng)
        })
        .collect();
    let sentences: Vec<Sentence> = RAVDESS_STATEMENTS
        .iter()
        .map(|s| Sentence::parse(s.1))
        .collect();
    let mono16 = Format {
        sample_rate: 48_000,
        channels: 1,
        bits: 16,
    };
    let mut jobs = Vec::new();
    for actor in 1..=actors as u32 {
        for (ei, &emotion) in RAVDESS_EMOTIONS.iter().enumerate() {
            let intensities: &[u32] = if ei == 0 { &[1] } else { &[1, 2] };
            for &intensity in intensities {
                for statement in 1..=2u32 {
                    let name = ravdess_name(1, ei, intensity, statement, actor);
                    let format = if name == RAVDESS_STEREO {
                        Format {
                            channels: 2,
                            ..mono16
                        }
                    } else if name == RAVDESS_24BIT {
                        Format { bits: 24, ..mono16 }
                    } else {
                        mono16
                    };
                    jobs.push(Job {
                        name,
                        speaker: (actor - 1) as usize,
                        sentence: (statement - 1) as usize,
                        style: Style {
                            emotion,
                            level: if intensity == 2 { 1.5 } else { 1.0 },
                            sung: false,
                            speech_secs: (1.2, 3.2),
                        },
                        format,
                    });
                }
            }
        }
    }
    for (name, actor) in RAVDESS_SONGS {
        if actor as usize > actors {
            continue;
        }
        let f: Vec<u32> = name.split('-').map(|x| x.parse().unwrap_or(0)).collect();
        jobs.push(Job {
            name: name.to_string(),
            speaker: (actor - 1) as usize,
            sentence: (f[4] - 1) as usize,
            style: Style {
                emotion: RAVDESS_EMOTIONS[(f[2] - 1) as usize],
                level: if f[3] == 2 { 1.5 } else { 1.0 },
                sung: true,
                speech_secs: (2.0, 5.0),
            },
            format: mono16,
        });
    }
    Ok(CorpusPlan {
        speakers,
        sentences,
        jobs,
        extra_files: Vec::new(),
    })
}

// ---------------------------------------------------------------------------------------------
// EmoDB
// ---------------------------------------------------------------------------------------------

/// EmoDB speakers and their sex.
const EMODB_SPEAKERS: [(&str, Sex); 10] = [
    ("03", Sex::Male),
    ("08", Sex::Female),
    ("09", Sex::Female),
    ("10", Sex::Male),
    ("11", Sex::Male),
    ("12", Sex::Male),
    ("13", Sex::Female),
    ("14", Sex::Female),
    ("15", Sex::Male),
    ("16", Sex::Female),
];

/// Speakers used by default (two of each sex).
const EMODB_DEFAULT_SPEAKERS: [&str; 4] = ["03", "08", "10", "16"];

/// EmoDB texts (code, German text, syllables).
const EMODB_TEXTS: [(&str, &str, &str); 10] = [
    (
        "a01",
        "Der Lappen liegt auf dem Eisschrank",
        "d.eh.r l.1ah.p ax.n l.iy.k.t 1aw.f d.eh.m 1ay.s sh.r.2ah.ng.k",
    ),
    (
        "a02",
        "Das will sie am Mittwoch abgeben",
        "d.ah.s v.ih.l z.iy ah.m m.1ih.t v.ao.x 1ah.p g.ey b.2ax.n",
    ),
    (
        "a04",
        "Heute abend koennte ich es ihm sagen",
        "h.1oy t.ax 1ah b.ax.n.t k.1oe.n t.ax ih.x eh.s iy.m z.2ah g.ax.n",
    ),
    (
        "a05",
        "Das schwarze Stueck Papier befindet sich da oben neben dem Holzstueck",
        "d.ah.s sh.v.1ah.r t.s.ax sh.t.1ue.k p.ah p.1iy.r b.ax f.1ih.n d.ax.t z.ih.x d.ah \
         1ow b.ax.n n.1ey b.ax.n d.eh.m h.1ao.l.t.s sh.t.2ue.k",
    ),
    (
        "a07",
        "In sieben Stunden wird es soweit sein",
        "ih.n z.1iy b.ax.n sh.t.1uh.n d.ax.n v.ih.r.t eh.s z.ow v.1ay.t z.2ay.n",
    ),
    (
        "b01",
        "Was sind denn das fuer Tueten, die da unter dem Tisch stehen?",
        "v.ah.s z.ih.n.t d.eh.n d.ah.s f.ue.r t.1ue t.ax.n | d.iy d.ah 1uh.n t.er d.eh.m \
         t.1ih.sh sh.t.2ey ax.n",
    ),
    (
        "b02",
        "Sie haben es gerade hochgetragen und jetzt gehen sie wieder runter",
        "z.iy h.ah b.ax.n eh.s g.ax r.1ah d.ax h.1ow.x g.ax t.r.ah g.ax.n | uh.n.t \
         y.1eh.t.s.t g.ey ax.n z.iy v.iy d.er r.2uh.n t.er",
    ),
    (
        "b03",
        "An den Wochenenden bin ich jetzt immer nach Hause gefahren und habe Agnes besucht",
        "ah.n d.eh.n v.1ao x.ax.n eh.n d.ax.n b.ih.n ih.x y.eh.t.s.t 1ih m.er n.ah.x h.1aw \
         z.ax g.ax f.1ah r.ax.n | uh.n.t h.ah b.ax 1ah.g n.ax.s b.ax z.2uh.x.t",
    ),
    (
        "b09",
        "Ich will das eben wegbringen und dann mit Karl was trinken gehen",
        "ih.x v.ih.l d.ah.s 1ey b.ax.n v.1eh.k b.r.ih ng.ax.n | uh.n.t d.ah.n m.ih.t \
         k.1ah.r.l v.ah.s t.r.1ih.ng k.ax.n g.2ey ax.n",
    ),
    (
        "b10",
        "Die wird auf dem Platz sein, wo wir sie immer hinlegen",
        "d.iy v.ih.r.t aw.f d.eh.m p.l.1ah.t.s z.ay.n | v.ow v.iy.r z.iy 1ih m.er h.ih.n \
         l.2ey g.ax.n",
    ),
];

const EMODB_DEFAULT_TEXTS: usize = 5;

/// EmoDB emotion letters.
const EMODB_EMOTIONS: [(char, Emotion); 7] = [
    ('W', Emotion::Anger),
    ('L', Emotion::Boredom),
    ('E', Emotion::Disgust),
    ('A', Emotion::Fear),
    ('F', Emotion::Happiness),
    ('T', Emotion::Sadness),
    ('N', Emotion::Neutral),
];

pub(crate) fn emodb_plan(actors: Option<usize>, seed: u64) -> Result<CorpusPlan> {
    let chosen: Vec<(&str, Sex)> = match actors {
        None => EMODB_SPEAKERS
            .iter()
            .filter(|(id, _)| EMODB_DEFAULT_SPEAKERS.contains(id))
            .copied()
            .collect(),
        Some(n) if (1..=EMODB_SPEAKERS.len()).contains(&n) => EMODB_SPEAKERS[..n].to_vec(),
        Some(n) => bail!(
            "emodb: actors must be 1..={}, got {n}",
            EMODB_SPEAKERS.len()
        ),
    };
    let speakers: Vec<Speaker> = chosen
        .iter()
        .map(|(id, sex)| {
            let mut rng = derive_rng(seed, &format!("speaker:emodb:{id}"));
            Speaker::sample(*sex, None, (0.9, 1.6), &mut rng)
        })
        .collect();
    let texts = &EMODB_TEXTS[..EMODB_DEFAULT_TEXTS];
    let sentences: Vec<Sentence> = texts.iter().map(|t| Sentence::parse(t.2)).collect();
    let format = Format {
        sample_rate: 16_000,
        channels: 1,
        bits: 16,
    };
    let mut jobs = Vec::new();
    for (si, (id, _)) in chosen.iter().enumerate() {
        for (ti, (code, _, _)) in texts.iter().enumerate() {
            for (letter, emotion) in EMODB_EMOTIONS {
                jobs.push(Job {
                    name: format!("{id}{code}{letter}a"),
                    speaker: si,
                    sentence: ti,
                    style: Style {
                        emotion,
                        level: 1.0,
                        sung: false,
                        speech_secs: (0.8, 6.5),
                    },
                    format,
                });
            }
        }
    }
    Ok(CorpusPlan {
        speakers,
        sentences,
        jobs,
        extra_files: Vec::new(),
    })
}

/// Texts of all layouts' sentences, for tests.
#[cfg(test)]
pub(crate) fn all_phonetic_texts() -> Vec<&'static str> {
    RAVDESS_STATEMENTS
        .iter()
        .map(|s| s.1)
        .chain(EMODB_TEXTS.iter().map(|t| t.2))
        .collect()
}
