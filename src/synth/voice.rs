//! The synthetic voice: speakers, sentences, emotional styles and the source-filter renderer.
//!
//! Everything here is deterministic given the RNG handed in; no allocation happens per sample.
//!
//! # The voice
//!
//! A classic source-filter formant synthesiser (in the spirit of Klatt 1980), rendered sample
//! by sample with control parameters updated every 2 ms:
//!
//! - **Source.** A KLGLOTT88-style glottal pulse train (flow `27/4 x^2 (1-x)` over the open
//!   phase, its derivative used as excitation, so lip radiation is included) at a time-varying
//!   F0. The open quotient sets the voice quality (low = pressed, high = lax/breathy). Each
//!   period gets jitter (period perturbation) and shimmer (amplitude perturbation); creaky voice
//!   adds irregular long periods, alternating pulse amplitudes and a lower open quotient,
//!   mostly towards the end of the phrase. Aspiration noise, modulated by the glottal flow, is
//!   mixed in for breathiness, and a one-pole low-pass sets the extra spectral tilt.
//! - **Tract.** A cascade of five two-pole resonators (F1..F5 with bandwidths, unity gain at
//!   DC, then a one-zero emphasis standing in for the omitted higher poles) whose frequencies
//!   glide (one-pole smoothing, i.e. coarticulation) between targets: a vowel per syllable
//!   (diphthongs glide to a second target), consonant loci in between. Unstressed vowels are
//!   reduced towards schwa. Formants scale with vocal tract length.
//! - **Consonants.** Unvoiced stops are a silent closure, a noise burst and aspiration;
//!   voiced stops keep a weak voice bar; fricatives are noise through a parallel resonator at
//!   the place's centre frequency (/s/ high and narrow, /sh/ lower, /f/ /th/ weak and broad);
//!   nasals and approximants are weaker voiced segments with their own formants.
//! - **Prosody.** Syllable durations come from the speaking rate, stress (accented syllables
//!   longer) and phrase-final lengthening. F0 follows a declining line plus a Gaussian accent
//!   on every stressed syllable (the nuclear one largest), a final fall (or a rise for
//!   surprise), a slow random wander and, for fear, tremor. Each syllable has its own
//!   amplitude (stress, declination, random emphasis) with attack sharpness set by the emotion.
//!   Sung clips hold one note per syllable with vibrato.
//! - **Recording.** Leading and trailing near-silence (0.1-0.4 s each), a per-speaker
//!   high-pass and noise floor, and levelling: the speech part is scaled to the speaker's fixed
//!   level (-27..-21 dBFS RMS) *plus* the emotion's energy change, so loudness differences
//!   between emotions survive; only peaks above -1 dBFS are scaled down.
//!
//! **Speakers** differ in F0 (male 85-155 Hz, female 165-255 Hz), vocal tract length (formant
//! scale 0.85-1.0 male, 1.0-1.2 female), speaking rate, breathiness, tilt, open quotient,
//! jitter, shimmer, intonation range, level, channel and *expressiveness* (0.5-1.5: how
//! strongly they act). **Emotions** (relative to neutral; scaled by the level LO 0.5, MD 1.0,
//! HI 1.5, XX 1.0 and by the speaker's expressiveness): anger F0 +25 %, wide range, fast,
//! +6 dB, flat tilt, pressed, sharp attacks; happiness F0 +20 %, widest range, slightly fast,
//! +3 dB, raised formants (smile); fear F0 +30 %, moderate-narrow range, fast, jitter,
//! breathy, tremor; sadness F0 -10 %, narrow range, 20 % slower, -5 dB, breathy, steep tilt;
//! disgust F0 slightly down, slow, creaky, lengthened stressed syllables; boredom (EmoDB) slow,
//! quiet, very narrow range; calm (RAVDESS) a quieter, slower neutral; surprise (RAVDESS) high
//! F0 with a final rise. Every clip draws random variation on every parameter, and its overall
//! effect strength varies (some takes come out nearly neutral), so the classes overlap.
//!

use std::f32::consts::PI;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

/// Speaker sex, which sets F0 and vocal tract length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sex {
    Male,
    Female,
}

/// Every emotion any layout needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Emotion {
    Neutral,
    Calm,
    Happiness,
    Sadness,
    Anger,
    Fear,
    Disgust,
    Surprise,
    Boredom,
}

/// Fixed properties of one speaker (drawn once per speaker from a speaker-seeded RNG).
#[derive(Debug, Clone)]
pub(crate) struct Speaker {
    /// Mean F0 of neutral speech, Hz.
    pub f0: f32,
    /// Vocal tract scale applied to every formant (shorter tract, higher formants).
    pub formant_scale: f32,
    /// Neutral speaking rate, syllables per second.
    pub rate: f32,
    /// Aspiration noise mixed into the glottal source (0 modal .. ~0.35 very breathy).
    pub breathiness: f32,
    /// Corner of the extra source low-pass (spectral tilt), Hz; lower = steeper tilt.
    pub tilt_hz: f32,
    /// Glottal open quotient (fraction of the period the glottis is open).
    pub open_quotient: f32,
    /// How strongly this speaker acts emotions (multiplies every emotion effect).
    pub expressiveness: f32,
    /// Size of the speaker's intonation excursions (multiplies accent heights).
    pub f0_range: f32,
    /// Cycle-to-cycle period perturbation (fraction), baseline.
    pub jitter: f32,
    /// Cycle-to-cycle amplitude perturbation (fraction), baseline.
    pub shimmer: f32,
    /// RMS level of neutral speech, dBFS (the per-speaker fixed gain).
    pub level_db: f32,
    /// Recording noise floor, dBFS RMS.
    pub noise_floor_db: f32,
    /// Multiplies formant bandwidths.
    pub bandwidth_scale: f32,
    /// Corner of the recording chain high-pass, Hz.
    pub highpass_hz: f32,
}

impl Speaker {
    /// Draw a speaker. `age` (years) adds slight lowering of female F0 and more jitter when old.
    pub(crate) fn sample(
        sex: Sex,
        age: Option<u32>,
        expressiveness: (f32, f32),
        rng: &mut ChaCha8Rng,
    ) -> Speaker {
        let (f0_lo, f0_hi, fs_lo, fs_hi, br_lo, br_hi) = match sex {
            Sex::Male => (85.0, 155.0, 0.85, 1.0, 0.03, 0.14),
            Sex::Female => (165.0, 255.0, 1.0, 1.2, 0.07, 0.24),
        };
        let mut f0 = rng.random_range(f0_lo..f0_hi);
        let mut jitter = rng.random_range(0.003..0.009);
        if let Some(age) = age {
            if age >= 50 {
                jitter += 0.002;
                if sex == Sex::Female {
                    f0 *= 0.94;
                }
            }
        }
        Speaker {
            f0,
            formant_scale: rng.random_range(fs_lo..fs_hi),
            rate: rng.random_range(3.9..5.3),
            breathiness: rng.random_range(br_lo..br_hi),
            tilt_hz: rng.random_range(2500.0..8000.0),
            open_quotient: rng.random_range(0.5..0.68),
            expressiveness: rng.random_range(expressiveness.0..expressiveness.1),
            f0_range: rng.random_range(0.7..1.3),
            jitter,
            shimmer: rng.random_range(0.02..0.05),
            level_db: rng.random_range(-27.0..-21.0),
            noise_floor_db: rng.random_range(-68.0..-52.0),
            bandwidth_scale: rng.random_range(0.85..1.2),
            highpass_hz: rng.random_range(40.0..100.0),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Phones and sentences
// ---------------------------------------------------------------------------------------------

/// Vowel nuclei: formant targets (F1, F2, F3) for an adult male tract; diphthongs glide to a
/// second target.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Vowel {
    a: [f32; 3],
    b: Option<[f32; 3]>,
}

const SCHWA: [f32; 3] = [500.0, 1450.0, 2450.0];

fn vowel(code: &str) -> Option<Vowel> {
    let mono = |a: [f32; 3]| Some(Vowel { a, b: None });
    let di = |a: [f32; 3], b: [f32; 3]| Some(Vowel { a, b: Some(b) });
    match code {
        "iy" => mono([300.0, 2300.0, 3000.0]),
        "ih" => mono([420.0, 1950.0, 2600.0]),
        "eh" => mono([560.0, 1800.0, 2550.0]),
        "ae" => mono([660.0, 1750.0, 2500.0]),
        "aa" => mono([720.0, 1150.0, 2500.0]),
        "ao" => mono([600.0, 900.0, 2500.0]),
        "ah" => mono([620.0, 1200.0, 2550.0]),
        "uh" => mono([460.0, 1100.0, 2400.0]),
        "uw" => mono([320.0, 950.0, 2300.0]),
        "er" => mono([480.0, 1350.0, 1650.0]),
        "ax" => mono(SCHWA),
        "oe" => mono([450.0, 1500.0, 2350.0]),
        "ue" => mono([300.0, 1650.0, 2100.0]),
        "ey" => di([500.0, 1900.0, 2600.0], [330.0, 2200.0, 2900.0]),
        "ay" => di([700.0, 1200.0, 2550.0], [420.0, 1950.0, 2600.0]),
        "aw" => di([700.0, 1200.0, 2550.0], [380.0, 900.0, 2300.0]),
        "oy" => di([550.0, 850.0, 2450.0], [420.0, 1950.0, 2600.0]),
        "ow" => di([520.0, 900.0, 2450.0], [360.0, 850.0, 2300.0]),
        _ => None,
    }
}

/// Consonant classes with their acoustic targets.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Manner {
    /// Stop: closure, burst (at `fc`, `bw`), aspiration when voiceless.
    Stop { voiced: bool },
    /// Fricative noise at `fc`, `bw`; voiced ones keep some voicing.
    Fric { voiced: bool },
    /// Affricate: short closure then a fricative.
    Affricate { voiced: bool },
    /// /h/: aspiration through the following vowel's formants.
    Aspirate,
    /// Nasal murmur.
    Nasal,
    /// Liquids and glides: weaker voiced vowel-like segment.
    Approximant,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Consonant {
    manner: Manner,
    /// Formant loci (F1, F2, F3).
    loci: [f32; 3],
    /// Noise centre and bandwidth (burst or frication), Hz.
    fc: f32,
    bw: f32,
    /// Noise gain relative to a sibilant.
    gain: f32,
}

fn consonant(code: &str) -> Option<Consonant> {
    use Manner::*;
    const LAB: [f32; 3] = [220.0, 900.0, 2200.0];
    const ALV: [f32; 3] = [250.0, 1750.0, 2700.0];
    const VEL: [f32; 3] = [250.0, 2000.0, 2300.0];
    const PAL: [f32; 3] = [260.0, 2100.0, 2800.0];
    let c = |manner, loci, fc, bw, gain| {
        Some(Consonant {
            manner,
            loci,
            fc,
            bw,
            gain,
        })
    };
    match code {
        "p" => c(Stop { voiced: false }, LAB, 1500.0, 2500.0, 0.5),
        "t" => c(Stop { voiced: false }, ALV, 4000.0, 2500.0, 0.8),
        "k" => c(Stop { voiced: false }, VEL, 2400.0, 1200.0, 0.8),
        "b" => c(Stop { voiced: true }, LAB, 1500.0, 2500.0, 0.3),
        "d" => c(Stop { voiced: true }, ALV, 4000.0, 2500.0, 0.45),
        "g" => c(Stop { voiced: true }, VEL, 2400.0, 1200.0, 0.45),
        "f" => c(Fric { voiced: false }, LAB, 5000.0, 4500.0, 0.15),
        "th" => c(Fric { voiced: false }, ALV, 5500.0, 4500.0, 0.16),
        "s" => c(Fric { voiced: false }, ALV, 5800.0, 1800.0, 1.0),
        "sh" => c(Fric { voiced: false }, PAL, 3000.0, 1400.0, 0.9),
        "x" => c(Fric { voiced: false }, VEL, 1900.0, 900.0, 0.45),
        "v" => c(Fric { voiced: true }, LAB, 5000.0, 4500.0, 0.12),
        "dh" => c(Fric { voiced: true }, ALV, 5500.0, 4500.0, 0.08),
        "z" => c(Fric { voiced: true }, ALV, 5800.0, 1800.0, 0.5),
        "zh" => c(Fric { voiced: true }, PAL, 3000.0, 1400.0, 0.45),
        "ch" => c(Affricate { voiced: false }, PAL, 3000.0, 1400.0, 0.9),
        "jh" => c(Affricate { voiced: true }, PAL, 3000.0, 1400.0, 0.45),
        "h" => c(Aspirate, SCHWA, 0.0, 0.0, 0.0),
        "m" => c(Nasal, [270.0, 1000.0, 2300.0], 0.0, 0.0, 0.0),
        "n" => c(Nasal, [270.0, 1500.0, 2500.0], 0.0, 0.0, 0.0),
        "ng" => c(Nasal, [270.0, 2000.0, 2600.0], 0.0, 0.0, 0.0),
        "l" => c(Approximant, [360.0, 1000.0, 2700.0], 0.0, 0.0, 0.0),
        "r" => c(Approximant, [400.0, 1100.0, 1550.0], 0.0, 0.0, 0.0),
        "w" => c(Approximant, [300.0, 650.0, 2200.0], 0.0, 0.0, 0.0),
        "y" => c(Approximant, [270.0, 2200.0, 3000.0], 0.0, 0.0, 0.0),
        _ => None,
    }
}

/// One syllable: onset consonants, a vowel nucleus, coda consonants, stress.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Syllable {
    onset: Vec<Consonant>,
    nucleus: Vowel,
    coda: Vec<Consonant>,
    /// 0 unstressed, 1 accented, 2 nuclear (strongest) accent.
    stress: u8,
    /// A short phrase pause follows this syllable.
    pause_after: bool,
}

/// A sentence as a syllable sequence (its "text").
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sentence {
    pub syllables: Vec<Syllable>,
}

impl Sentence {
    /// Parse a tiny phonetic notation: syllables separated by spaces, phones inside a syllable
    /// separated by dots, the vowel optionally prefixed by `1` (accent) or `2` (nuclear accent);
    /// a lone `|` marks a phrase pause after the previous syllable.
    pub(crate) fn parse(text: &str) -> Sentence {
        let mut syllables: Vec<Syllable> = Vec::new();
        for word in text.split_whitespace() {
            if word == "|" {
                if let Some(last) = syllables.last_mut() {
                    last.pause_after = true;
                }
                continue;
            }
            let mut onset = Vec::new();
            let mut coda = Vec::new();
            let mut nucleus = None;
            let mut stress = 0u8;
            for phone in word.split('.') {
                let (s, code) = match phone.as_bytes().first() {
                    Some(b'1') => (1, &phone[1..]),
                    Some(b'2') => (2, &phone[1..]),
                    _ => (0, phone),
                };
                if let Some(v) = vowel(code) {
                    assert!(nucleus.is_none(), "two vowels in syllable {word:?}");
                    nucleus = Some(v);
                    stress = s;
                } else if let Some(c) = consonant(code) {
                    if nucleus.is_none() {
                        onset.push(c);
                    } else {
                        coda.push(c);
                    }
                } else {
                    panic!("unknown phone {phone:?} in {text:?}");
                }
            }
            syllables.push(Syllable {
                onset,
                nucleus: nucleus.unwrap_or_else(|| panic!("no vowel in syllable {word:?}")),
                coda,
                stress,
                pause_after: false,
            });
        }
        Sentence { syllables }
    }
}

// ---------------------------------------------------------------------------------------------
// Emotional style
// ---------------------------------------------------------------------------------------------

/// How an emotion changes the voice relative to neutral, at strength 1.
/// Ratios are applied as `ratio^k`, deltas as `k * delta`, where `k` is the clip's effect
/// strength (level x speaker expressiveness x per-clip variation).
#[derive(Debug, Clone, Copy)]
struct Effect {
    f0_st: f32,
    range: f32,
    rate: f32,
    energy_db: f32,
    tilt: f32,
    oq: f32,
    breath: f32,
    jitter: f32,
    shimmer: f32,
    creak: f32,
    tremor_st: f32,
    attack: f32,
    stress_len: f32,
    final_rise_st: f32,
    formant: f32,
    f1: f32,
    reduction: f32,
}

const NEUTRAL: Effect = Effect {
    f0_st: 0.0,
    range: 1.0,
    rate: 1.0,
    energy_db: 0.0,
    tilt: 1.0,
    oq: 0.0,
    breath: 0.0,
    jitter: 0.0,
    shimmer: 0.0,
    creak: 0.0,
    tremor_st: 0.0,
    attack: 1.0,
    stress_len: 1.0,
    final_rise_st: 0.0,
    formant: 0.0,
    f1: 0.0,
    reduction: 1.0,
};

fn effect(e: Emotion) -> Effect {
    match e {
        Emotion::Neutral => NEUTRAL,
        // Hot anger: high F0, wide range, fast, loud, pressed (flat tilt, low open quotient),
        // sharp attacks, hyper-articulated, wider jaw (F1 up).
        Emotion::Anger => Effect {
            f0_st: 3.9,
            range: 1.45,
            rate: 1.12,
            energy_db: 6.0,
            tilt: 1.9,
            oq: -0.12,
            breath: -0.04,
            jitter: 0.002,
            shimmer: 0.01,
            attack: 2.2,
            stress_len: 1.08,
            formant: 0.02,
            f1: 0.08,
            reduction: 0.5,
            ..NEUTRAL
        },
        // Joy: high F0, the widest range, slightly fast, louder, smiling (formants up).
        Emotion::Happiness => Effect {
            f0_st: 3.2,
            range: 1.65,
            rate: 1.06,
            energy_db: 3.0,
            tilt: 1.3,
            oq: -0.04,
            attack: 1.4,
            formant: 0.04,
            f1: 0.02,
            reduction: 0.8,
            ..NEUTRAL
        },
        // Fear: highest F0, moderate-narrow range, fast, breathy, jittery, tremor.
        Emotion::Fear => Effect {
            f0_st: 4.5,
            range: 0.9,
            rate: 1.18,
            energy_db: 1.5,
            tilt: 1.1,
            oq: 0.06,
            breath: 0.12,
            jitter: 0.008,
            shimmer: 0.02,
            tremor_st: 0.45,
            attack: 1.2,
            stress_len: 0.95,
            formant: 0.02,
            ..NEUTRAL
        },
        // Sadness: low F0, narrow range, slow, quiet, breathy, steep tilt, lax articulation.
        Emotion::Sadness => Effect {
            f0_st: -1.8,
            range: 0.55,
            rate: 0.8,
            energy_db: -5.0,
            tilt: 0.6,
            oq: 0.08,
            breath: 0.1,
            jitter: 0.003,
            shimmer: 0.01,
            creak: 0.2,
            tremor_st: 0.1,
            attack: 0.6,
            stress_len: 1.05,
            formant: -0.03,
            f1: -0.04,
            reduction: 1.3,
            ..NEUTRAL
        },
        // Disgust: slightly low F0, slow, creaky (jitter, shimmer, fry), lengthened stresses.
        Emotion::Disgust => Effect {
            f0_st: -0.9,
            range: 0.95,
            rate: 0.85,
            energy_db: -1.0,
            tilt: 0.9,
            oq: -0.02,
            breath: 0.03,
            jitter: 0.012,
            shimmer: 0.05,
            creak: 0.6,
            attack: 0.9,
            stress_len: 1.35,
            formant: -0.01,
            ..NEUTRAL
        },
        // Calm: a quieter, slower, softer neutral.
        Emotion::Calm => Effect {
            f0_st: -0.6,
            range: 0.8,
            rate: 0.9,
            energy_db: -3.0,
            tilt: 0.8,
            oq: 0.04,
            breath: 0.05,
            attack: 0.8,
            reduction: 1.1,
            ..NEUTRAL
        },
        // Surprise: high F0, wide range, rising end.
        Emotion::Surprise => Effect {
            f0_st: 4.0,
            range: 1.7,
            energy_db: 3.0,
            tilt: 1.3,
            oq: -0.02,
            breath: 0.02,
            jitter: 0.002,
            attack: 1.5,
            stress_len: 1.05,
            final_rise_st: 6.0,
            formant: 0.02,
            f1: 0.04,
            ..NEUTRAL
        },
        // Boredom: low F0, very narrow range, slow, quiet, lax, some creak.
        Emotion::Boredom => Effect {
            f0_st: -1.5,
            range: 0.45,
            rate: 0.8,
            energy_db: -4.0,
            tilt: 0.65,
            oq: 0.05,
            breath: 0.04,
            jitter: 0.002,
            shimmer: 0.01,
            creak: 0.35,
            attack: 0.6,
            stress_len: 1.1,
            formant: -0.02,
            reduction: 1.4,
            ..NEUTRAL
        },
    }
}

/// What to say and how: everything the renderer needs besides the speaker and sentence.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Style {
    pub emotion: Emotion,
    /// Emotion intensity: 0.5 low, 1.0 medium/unspecified, 1.5 high.
    pub level: f32,
    /// Sung (sustained notes with vibrato) rather than spoken.
    pub sung: bool,
    /// Allowed range of the speech part (without leading/trailing silence), seconds.
    pub speech_secs: (f32, f32),
}

fn gauss(rng: &mut ChaCha8Rng) -> f32 {
    rng.sample::<f32, _>(StandardNormal)
}

fn lognorm(rng: &mut ChaCha8Rng, sigma: f32) -> f32 {
    (sigma * gauss(rng)).exp()
}

/// The per-clip realisation of speaker x emotion x level, with random performance variation.
#[derive(Debug, Clone)]
struct Params {
    f0: f32,
    range: f32,
    rate: f32,
    energy_db: f32,
    tilt_hz: f32,
    oq: f32,
    breath: f32,
    jitter: f32,
    shimmer: f32,
    creak: f32,
    tremor_st: f32,
    tremor_hz: f32,
    attack: f32,
    stress_len: f32,
    final_rise_st: f32,
    formant_scale: f32,
    f1_scale: f32,
    reduction: f32,
    bw_scale: f32,
}

impl Params {
    fn new(spk: &Speaker, style: &Style, rng: &mut ChaCha8Rng) -> Params {
        let e = effect(style.emotion);
        // Effect strength: level x expressiveness x how well this take came off. Some takes
        // are weak portrayals that sound nearly neutral (as in real acted corpora).
        let mut k = style.level * spk.expressiveness * lognorm(rng, 0.35);
        if rng.random_bool(0.18) {
            k *= 0.3;
        }
        let pow = |r: f32, k: f32| r.powf(k);
        let f0_st = k * e.f0_st + 1.3 * gauss(rng);
        let f0 = (spk.f0 * 2f32.powf(f0_st / 12.0)).clamp(60.0, 520.0);
        let range = spk.f0_range * pow(e.range, k) * lognorm(rng, 0.22);
        let rate = (spk.rate * pow(e.rate, k) * lognorm(rng, 0.08)).clamp(2.6, 7.5);
        let energy_db = (k * e.energy_db + 2.0 * gauss(rng)).clamp(-12.0, 9.0);
        let tilt_hz = (spk.tilt_hz * pow(e.tilt, k) * lognorm(rng, 0.15)).clamp(600.0, 9000.0);
        let oq = (spk.open_quotient + k * e.oq + 0.03 * gauss(rng)).clamp(0.32, 0.85);
        let breath = ((spk.breathiness + k * e.breath).max(0.01) * lognorm(rng, 0.25)).min(0.45);
        let jitter = ((spk.jitter + k * e.jitter) * lognorm(rng, 0.3)).clamp(0.001, 0.06);
        let shimmer = ((spk.shimmer + k * e.shimmer) * lognorm(rng, 0.3)).clamp(0.005, 0.3);
        let creak = (k * e.creak + 0.05 * gauss(rng).abs()).clamp(0.0, 1.0);
        let tremor_st = (k * e.tremor_st * lognorm(rng, 0.3)).min(1.2);
        Params {
            f0,
            range,
            rate,
            energy_db,
            tilt_hz,
            oq,
            breath,
            jitter,
            shimmer,
            creak,
            tremor_st,
            tremor_hz: rng.random_range(4.5..7.5),
            attack: pow(e.attack, k) * lognorm(rng, 0.15),
            stress_len: pow(e.stress_len, k),
            final_rise_st: k * e.final_rise_st,
            formant_scale: spk.formant_scale * (1.0 + k * e.formant + 0.015 * gauss(rng)),
            f1_scale: 1.0 + k * e.f1,
            reduction: (0.35 * pow(e.reduction, k)).clamp(0.0, 0.8),
            bw_scale: spk.bandwidth_scale,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Segment timeline
// ---------------------------------------------------------------------------------------------

/// Acoustic targets the synthesiser moves towards during one segment.
#[derive(Debug, Clone, Copy)]
struct Target {
    voice: f32,
    asp: f32,
    fric: f32,
    fric_fc: f32,
    fric_bw: f32,
    f: [f32; 3],
}

const SILENT: Target = Target {
    voice: 0.0,
    asp: 0.0,
    fric: 0.0,
    fric_fc: 3000.0,
    fric_bw: 2000.0,
    f: SCHWA,
};

#[derive(Debug, Clone, Copy)]
struct Seg {
    dur: f32,
    t: Target,
    /// Time constant of amplitude changes towards this segment's targets, seconds.
    tau_a: f32,
    /// Time constant of formant movements, seconds.
    tau_f: f32,
}

#[derive(Debug, Clone, Copy)]
struct Accent {
    centre: f32,
    width: f32,
    height: f32,
}

#[derive(Debug, Clone, Copy)]
struct Note {
    start: f32,
    end: f32,
    st: f32,
}

struct Plan {
    segs: Vec<Seg>,
    accents: Vec<Accent>,
    notes: Vec<Note>,
    speech: f32,
}

fn mix3(a: [f32; 3], b: [f32; 3], w: f32) -> [f32; 3] {
    [
        a[0] + (b[0] - a[0]) * w,
        a[1] + (b[1] - a[1]) * w,
        a[2] + (b[2] - a[2]) * w,
    ]
}

fn build_plan(sent: &Sentence, p: &Params, style: &Style, rng: &mut ChaCha8Rng) -> Plan {
    let n = sent.syllables.len();
    let sung_rate = if style.sung { 0.55 } else { 1.0 };
    let rate = p.rate * sung_rate;
    // Consonants shrink less than vowels when speaking fast.
    let c_scale = (4.6 / rate).powf(0.55);
    let tau_a_vowel = 0.007 / p.attack;
    let melody = [0.0f32, 2.0, 4.0, 5.0, 7.0, 5.0, 4.0, 2.0, 0.0, -1.0];
    let mut segs = Vec::with_capacity(n * 6);
    let mut accents = Vec::new();
    let mut notes = Vec::new();
    let mut t = 0.0f32;
    for (i, syl) in sent.syllables.iter().enumerate() {
        let mut syl_len = match syl.stress {
            0 => 0.82,
            1 => 1.2 * p.stress_len,
            _ => 1.3 * p.stress_len,
        } / rate;
        if i + 1 == n {
            syl_len *= 1.35;
        } else if i + 2 == n {
            syl_len *= 1.1;
        }
        syl_len *= 1.0 + 0.1 * gauss(rng).clamp(-2.0, 2.0);
        let v_amp = match syl.stress {
            0 => 0.62,
            1 => 0.92,
            _ => 1.0,
        } * (1.0 - 0.25 * i as f32 / n as f32)
            * (1.0 + 0.12 * gauss(rng)).clamp(0.6, 1.4);
        let reduce = if syl.stress == 0 { p.reduction } else { 0.0 };
        let va = mix3(syl.nucleus.a, SCHWA, reduce);
        let vb = syl.nucleus.b.map(|b| mix3(b, SCHWA, reduce));

        let syl_start = t;
        let mut onset_segs = Vec::with_capacity(4);
        let mut onset_len = 0.0;
        for (j, c) in syl.onset.iter().enumerate() {
            let cluster = j + 1 < syl.onset.len();
            onset_len += push_consonant(&mut onset_segs, c, va, c_scale, cluster, true);
        }
        let mut coda_segs = Vec::with_capacity(4);
        let mut coda_len = 0.0;
        for c in syl.coda.iter() {
            coda_len += push_consonant(&mut coda_segs, c, vb.unwrap_or(va), c_scale, false, false);
        }
        let v_len = (syl_len - onset_len - coda_len)
            .max(0.35 * syl_len)
            .max(0.045);
        let v_t0 = syl_start + onset_len;
        // The vowel swells at its onset and decays towards its end.
        let vt = |f, amp| Target {
            voice: amp,
            asp: 0.0,
            fric: 0.0,
            fric_fc: 3000.0,
            fric_bw: 2000.0,
            f,
        };
        segs.extend(onset_segs);
        let b = vb.unwrap_or(va);
        let glide_tau = if vb.is_some() { 0.045 } else { 0.018 };
        segs.push(Seg {
            dur: v_len * 0.55,
            t: vt(va, v_amp),
            tau_a: tau_a_vowel,
            tau_f: 0.018,
        });
        segs.push(Seg {
            dur: v_len * 0.45,
            t: vt(b, v_amp * 0.75),
            tau_a: 0.03,
            tau_f: glide_tau,
        });
        segs.extend(coda_segs);
        t = v_t0 + v_len + coda_len;
        if syl.pause_after {
            let d = rng.random_range(0.12..0.22) / sung_rate;
            segs.push(Seg {
                dur: d,
                t: SILENT,
                tau_a: 0.02,
                tau_f: 0.05,
            });
            t += d;
        }
        if syl.stress > 0 {
            let jitter = rng.random_range(0.7..1.3);
            accents.push(Accent {
                centre: v_t0 + 0.45 * v_len,
                width: 0.35 * v_len + 0.03,
                height: if syl.stress == 2 { 3.2 } else { 2.3 } * jitter,
            });
        } else if rng.random_bool(0.25) {
            accents.push(Accent {
                centre: v_t0 + 0.5 * v_len,
                width: 0.3 * v_len + 0.02,
                height: rng.random_range(0.4..1.1),
            });
        }
        notes.push(Note {
            start: syl_start,
            end: t,
            st: melody[i % melody.len()],
        });
    }
    let speech = t;
    // Fit the speech part into the allowed duration range by uniform stretching.
    let (lo, hi) = style.speech_secs;
    let target = speech.clamp(lo, hi);
    let s = target / speech;
    if (s - 1.0).abs() > 1e-6 {
        for seg in &mut segs {
            seg.dur *= s;
        }
        for a in &mut accents {
            a.centre *= s;
            a.width *= s;
        }
        for nt in &mut notes {
            nt.start *= s;
            nt.end *= s;
        }
    }
    Plan {
        segs,
        accents,
        notes,
        speech: speech * s,
    }
}

/// Push the segments of one consonant; returns their total duration.
fn push_consonant(
    out: &mut Vec<Seg>,
    c: &Consonant,
    vowel_f: [f32; 3],
    c_scale: f32,
    in_cluster: bool,
    onset: bool,
) -> f32 {
    let before = out.len();
    let fc = c.fc;
    let noise = |fric: f32, voice: f32, f: [f32; 3]| Target {
        voice,
        asp: 0.0,
        fric,
        fric_fc: fc,
        fric_bw: c.bw,
        f,
    };
    let closure = |voice: f32| Target {
        voice,
        asp: 0.0,
        fric: 0.0,
        fric_fc: fc,
        fric_bw: c.bw,
        f: [200.0, c.loci[1], c.loci[2]],
    };
    let seg = |dur: f32, t: Target, tau_a: f32, tau_f: f32| Seg {
        dur: dur * c_scale,
        t,
        tau_a,
        tau_f,
    };
    match c.manner {
        Manner::Stop { voiced } => {
            let (cl, vb) = if voiced { (0.045, 0.14) } else { (0.06, 0.0) };
            out.push(seg(cl, closure(vb), 0.003, 0.015));
            let burst_gain = if onset { 1.0 } else { 0.6 };
            out.push(seg(
                0.012,
                noise(c.gain * burst_gain * 0.1, vb, c.loci),
                0.0008,
                0.01,
            ));
            if !voiced && onset && !in_cluster {
                out.push(seg(
                    0.03,
                    Target {
                        voice: 0.0,
                        asp: 0.5,
                        fric: 0.0,
                        fric_fc: fc,
                        fric_bw: c.bw,
                        f: vowel_f,
                    },
                    0.002,
                    0.012,
                ));
            }
        }
        Manner::Fric { voiced } => {
            let (d, v) = if voiced { (0.065, 0.3) } else { (0.09, 0.0) };
            out.push(seg(d, noise(c.gain, v, c.loci), 0.006, 0.02));
        }
        Manner::Affricate { voiced } => {
            let v = if voiced { 0.14 } else { 0.0 };
            out.push(seg(0.045, closure(v), 0.003, 0.015));
            out.push(seg(0.06, noise(c.gain, v * 1.5, c.loci), 0.002, 0.015));
        }
        Manner::Aspirate => {
            out.push(seg(
                0.06,
                Target {
                    voice: 0.0,
                    asp: 0.45,
                    fric: 0.0,
                    fric_fc: fc,
                    fric_bw: 1000.0,
                    f: vowel_f,
                },
                0.008,
                0.01,
            ));
        }
        Manner::Nasal => {
            out.push(seg(0.06, noise(0.0, 0.33, c.loci), 0.01, 0.012));
        }
        Manner::Approximant => {
            out.push(seg(0.052, noise(0.0, 0.55, c.loci), 0.012, 0.02));
        }
    }
    out[before..].iter().map(|s| s.dur).sum()
}

// ---------------------------------------------------------------------------------------------
// Renderer
// ---------------------------------------------------------------------------------------------

/// Gain of the glottal flow derivative entering the tract.
const SRC_GAIN: f32 = 0.25;
/// Gain of aspiration noise (unit-variance noise) entering the tract.
const ASP_GAIN: f32 = 1.0;
/// Gain of frication noise (unit-variance noise) entering the parallel fricative resonator.
const FRIC_GAIN: f32 = 1.0;
/// Fourth and fifth formants of the reference (male) tract, Hz.
const F4: f32 = 3350.0;
const F5: f32 = 4400.0;
/// Reference formant bandwidths F1..F5, Hz.
const BANDWIDTHS: [f32; 5] = [70.0, 100.0, 140.0, 220.0, 320.0];
/// Largest peak allowed in the output (-1 dBFS).
const PEAK_LIMIT: f32 = 0.891;

/// Cheap deterministic noise (xorshift64*), unit variance, uniform distribution.
struct Noise(u64);

impl Noise {
    #[inline(always)]
    fn next(&mut self) -> f32 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        let v = x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40; // 24 bits
                                                             // uniform in [-1, 1) scaled to unit variance
        (v as f32 * (2.0 / 16_777_216.0) - 1.0) * 1.732_050_8
    }
}

/// Two-pole resonator (Klatt): y = a x + b y1 + c y2.
#[derive(Default, Clone, Copy)]
struct Resonator {
    a: f32,
    b: f32,
    c: f32,
    y1: f32,
    y2: f32,
}

impl Resonator {
    /// Set centre frequency and bandwidth. `peak_unity`: normalise the gain at the centre to 1
    /// (for the parallel fricative branch); otherwise unity gain at DC (cascade branch).
    fn set(&mut self, f: f32, bw: f32, sr: f32, peak_unity: bool) {
        let f = f.clamp(50.0, 0.45 * sr);
        let r = (-PI * bw / sr).exp();
        let theta = 2.0 * PI * f / sr;
        self.c = -r * r;
        self.b = 2.0 * r * theta.cos();
        self.a = if peak_unity {
            // |1 - b e^{-jw} - c e^{-2jw}| at w = theta
            let re = 1.0 - self.b * theta.cos() - self.c * (2.0 * theta).cos();
            let im = self.b * theta.sin() + self.c * (2.0 * theta).sin();
            (re * re + im * im).sqrt()
        } else {
            1.0 - self.b - self.c
        };
    }

    #[inline(always)]
    fn tick(&mut self, x: f32) -> f32 {
        let y = self.a * x + self.b * self.y1 + self.c * self.y2;
        self.y2 = self.y1;
        self.y1 = y;
        y
    }
}

fn smoothstep(e0: f32, e1: f32, x: f32) -> f32 {
    let t = ((x - e0) / (e1 - e0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

/// Smoothed synthesis controls.
#[derive(Clone, Copy)]
struct Controls {
    voice: f32,
    asp: f32,
    fric: f32,
    fric_fc: f32,
    fric_bw: f32,
    f: [f32; 3],
}

/// Render one utterance: mono samples in [-1, 1] at `sr`, levelled to the speaker's gain plus
/// the emotion's energy change, with leading/trailing near-silence and a noise floor.
pub(crate) fn render(
    spk: &Speaker,
    sent: &Sentence,
    style: &Style,
    sr: u32,
    rng: &mut ChaCha8Rng,
) -> Vec<f32> {
    let p = Params::new(spk, style, rng);
    let plan = build_plan(sent, &p, style, rng);
    let srf = sr as f32;
    let lead = rng.random_range(0.1..0.4f32);
    let trail = rng.random_range(0.1..0.4f32);
    let n_lead = (lead * srf).round() as usize;
    let n_speech = (plan.speech * srf).round() as usize;
    let n = n_lead + n_speech + (trail * srf).round() as usize;
    let mut out = vec![0.0f32; n];

    // Per-pulse randomness comes from a child ChaCha stream; per-sample noise from xorshift.
    let mut prng = ChaCha8Rng::seed_from_u64(rng.random());
    let mut noise = Noise(rng.random::<u64>() | 1);
    let noise_scale = (srf / 16_000.0).sqrt();

    let block = (sr / 500).max(1) as usize;
    let dt_block = block as f32 / srf;
    let alpha = |tau: f32| 1.0 - (-dt_block / tau.max(1e-4)).exp();
    let fs = p.formant_scale;
    let bw1 = BANDWIDTHS[0] * p.bw_scale * (1.0 + 2.0 * p.breath);
    let bws = [
        bw1,
        BANDWIDTHS[1] * p.bw_scale,
        BANDWIDTHS[2] * p.bw_scale,
        BANDWIDTHS[3] * p.bw_scale,
        BANDWIDTHS[4] * p.bw_scale,
    ];
    let a_tilt = (-2.0 * PI * p.tilt_hz / srf).exp();
    let r_hp = (-2.0 * PI * spk.highpass_hz / srf).exp();
    let a_emph = (-2.0 * PI * 1500.0 / srf).exp();
    let emph_gain = 1.0 / (1.0 - a_emph);
    let mut emph_x1 = 0.0f32;
    let alpha_f0 = alpha(if style.sung { 0.035 } else { 0.02 });
    let wander_tau = 0.15f32;
    let wander_k = (2.0 * dt_block / wander_tau).sqrt() * 0.35;

    let mut ctl = Controls {
        voice: 0.0,
        asp: 0.0,
        fric: 0.0,
        fric_fc: 3000.0,
        fric_bw: 2000.0,
        f: SCHWA,
    };
    let mut cascade = [Resonator::default(); 5];
    let mut fric_res = Resonator::default();
    let mut phase = 0.0f32;
    let mut fm = 1.0f32;
    let mut pulse_amp = 1.0f32;
    let mut odd = false;
    let mut tl = 0.0f32;
    let (mut hp_x1, mut hp_y1) = (0.0f32, 0.0f32);
    let mut wander = 0.0f32;
    let mut f0s = p.f0;
    let mut seg_i = 0usize;
    let mut seg_end = plan.segs.first().map_or(0.0, |s| s.dur);

    let mut b0 = 0usize;
    while b0 < n {
        let b1 = (b0 + block).min(n);
        let t = b0 as f32 / srf;
        let ts = t - lead; // time within the speech part
                           // Current segment.
        let (target, tau_a, tau_f) = if ts < 0.0 || ts >= plan.speech {
            (SILENT, 0.01, 0.05)
        } else {
            while ts >= seg_end && seg_i + 1 < plan.segs.len() {
                seg_i += 1;
                seg_end += plan.segs[seg_i].dur;
            }
            let s = &plan.segs[seg_i];
            (s.t, s.tau_a, s.tau_f)
        };
        let prev = ctl;
        let aa = alpha(tau_a);
        let af = alpha(tau_f);
        let afr = alpha(0.003);
        ctl.voice += (target.voice - ctl.voice) * aa;
        ctl.asp += (target.asp - ctl.asp) * aa;
        ctl.fric += (target.fric - ctl.fric) * aa;
        ctl.fric_fc += (target.fric_fc - ctl.fric_fc) * afr;
        ctl.fric_bw += (target.fric_bw - ctl.fric_bw) * afr;
        for k in 0..3 {
            ctl.f[k] += (target.f[k] - ctl.f[k]) * af;
        }

        // F0 contour in semitones relative to the clip's mean F0.
        let u = (ts / plan.speech).clamp(0.0, 1.0);
        wander += -wander * dt_block / wander_tau + wander_k * gauss(&mut prng);
        let mut st = wander + p.tremor_st * (2.0 * PI * p.tremor_hz * t).sin();
        if style.sung {
            let note = plan
                .notes
                .iter()
                .find(|nt| ts < nt.end)
                .or(plan.notes.last())
                .map_or(0.0, |nt| nt.st);
            let start = plan
                .notes
                .iter()
                .find(|nt| ts < nt.end)
                .map_or(0.0, |nt| nt.start);
            let vib = 0.4 * smoothstep(0.08, 0.25, ts - start) * (2.0 * PI * 5.5 * t).sin();
            st = 0.3 * wander + note - 2.0 + vib;
        } else {
            st += p.range * (1.0 - 2.6 * u);
            for a in &plan.accents {
                let z = (ts - a.centre) / a.width;
                if z.abs() < 4.0 {
                    st += p.range * a.height * (-0.5 * z * z).exp();
                }
            }
            if p.final_rise_st > 0.0 {
                st += p.final_rise_st * smoothstep(0.75, 1.0, u);
            } else {
                st -= p.range * 2.0 * smoothstep(0.8, 1.0, u);
            }
        }
        let creak = if style.sung {
            0.0
        } else {
            p.creak * (0.3 + 0.7 * smoothstep(0.55, 1.0, u))
        };
        let f0_target = p.f0 * (st / 12.0).exp2() * (1.0 - 0.3 * creak);
        f0s += (f0_target - f0s) * alpha_f0;
        let finc = f0s / srf;
        let tremor_amp = 1.0 + 0.25 * p.tremor_st * (2.0 * PI * p.tremor_hz * t).sin();

        // Filter coefficients for this block.
        for (k, res) in cascade.iter_mut().enumerate() {
            let f = match k {
                0..=2 => ctl.f[k],
                3 => F4,
                _ => F5,
            };
            let scale = if k == 0 { fs * p.f1_scale } else { fs };
            res.set(f * scale, bws[k], srf, false);
        }
        fric_res.set(ctl.fric_fc * fs, ctl.fric_bw * fs, srf, true);
        let oq = (p.oq - 0.15 * creak).clamp(0.3, 0.9);
        let inv_oq = 1.0 / oq;

        let len = (b1 - b0) as f32;
        for (j, o) in out[b0..b1].iter_mut().enumerate() {
            let w = (j as f32 + 1.0) / len;
            let voice = (prev.voice + (ctl.voice - prev.voice) * w) * tremor_amp;
            let asp = prev.asp + (ctl.asp - prev.asp) * w;
            let fric = prev.fric + (ctl.fric - prev.fric) * w;

            phase += finc * fm;
            if phase >= 1.0 {
                phase -= 1.0;
                fm = (1.0 + p.jitter * gauss(&mut prng)).clamp(0.7, 1.3);
                if creak > 0.0 && prng.random::<f32>() < 0.7 * creak {
                    fm *= prng.random_range(0.45..0.8f32);
                }
                pulse_amp = (1.0 + p.shimmer * gauss(&mut prng)).max(0.2);
                odd = !odd;
                if odd {
                    pulse_amp *= 1.0 - 0.5 * creak;
                }
            }
            let x = phase * inv_oq;
            let (flow, dflow) = if x < 1.0 {
                (
                    6.75 * x * x * (1.0 - x),
                    6.75 * (2.0 * x - 3.0 * x * x) * inv_oq,
                )
            } else {
                (0.0, 0.0)
            };
            let nz = noise.next() * noise_scale;
            let src = voice * pulse_amp * dflow * SRC_GAIN
                + nz * ASP_GAIN * (asp + voice * p.breath * (0.25 + flow));
            tl = a_tilt * tl + (1.0 - a_tilt) * src;
            let mut y = tl;
            for res in cascade.iter_mut() {
                y = res.tick(y);
            }
            // Higher-pole correction: the formants above F5 that the cascade omits lift the
            // upper spectrum (a one-zero emphasis, normalised to unity gain near 0 Hz).
            let emph = (y - a_emph * emph_x1) * emph_gain;
            emph_x1 = y;
            y = emph;
            let nf = noise.next() * noise_scale;
            y += fric_res.tick(nf * fric * FRIC_GAIN);
            // Recording-chain high-pass (also removes DC).
            let hp = r_hp * (hp_y1 + y - hp_x1);
            hp_x1 = y;
            hp_y1 = hp;
            *o = hp;
        }
        b0 = b1;
    }

    // Level: speech RMS to the speaker's level plus the emotion's energy change.
    let speech = &out[n_lead..(n_lead + n_speech).min(n)];
    let rms = (speech.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>()
        / speech.len().max(1) as f64)
        .sqrt() as f32;
    let level = 10f32.powf((spk.level_db + p.energy_db) / 20.0);
    let mut gain = if rms > 0.0 { level / rms } else { 0.0 };
    let peak = out.iter().fold(0.0f32, |m, &v| m.max(v.abs())) * gain;
    if peak > PEAK_LIMIT {
        gain *= PEAK_LIMIT / peak;
    }
    // Noise floor: gently low-passed white noise.
    let floor = 10f32.powf((spk.noise_floor_db + rng.random_range(-2.0..2.0f32)) / 20.0);
    let a_floor = (-2.0 * PI * 5000.0 / srf).exp();
    let mut lp = 0.0f32;
    for o in out.iter_mut() {
        lp = a_floor * lp + (1.0 - a_floor) * noise.next();
        *o = (*o * gain + lp * floor * 1.6).clamp(-0.999, 0.999);
    }
    out
}
