//! File-name conventions of the supported corpora (the README's corpus table), one parser each.
//!
//! A parser turns a clip's path (relative to the corpus root) into its labels, or into a reason
//! why it cannot (`Err(String)`), which the scan reports as a problem for that file.

use std::path::Path;
use std::str::FromStr;
use std::sync::LazyLock;

use regex::Regex;

use super::labels::{Emotion, Sex};

/// A corpus naming convention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    #[default]
    Auto,
    Cremad,
    Ravdess,
    Emodb,
    Tess,
    Savee,
    /// One sub-folder per label.
    Folder,
    /// A CSV manifest with `path,label[,speaker][,sex]`.
    Csv,
}

impl Format {
    /// The formats recognisable from file names alone, in detection order.
    pub const NAMED: [Format; 5] = [
        Format::Cremad,
        Format::Ravdess,
        Format::Emodb,
        Format::Tess,
        Format::Savee,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Format::Auto => "auto",
            Format::Cremad => "cremad",
            Format::Ravdess => "ravdess",
            Format::Emodb => "emodb",
            Format::Tess => "tess",
            Format::Savee => "savee",
            Format::Folder => "folder",
            Format::Csv => "csv",
        }
    }
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s.to_ascii_lowercase().replace('-', "").as_str() {
            "auto" => Format::Auto,
            "cremad" | "crema" => Format::Cremad,
            "ravdess" => Format::Ravdess,
            "emodb" => Format::Emodb,
            "tess" => Format::Tess,
            "savee" => Format::Savee,
            "folder" => Format::Folder,
            "csv" => Format::Csv,
            _ => {
                return Err(format!(
                    "unknown corpus format '{s}' (expected auto, cremad, ravdess, emodb, tess, savee, folder or csv)"
                ))
            }
        })
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Labels read from a clip's name.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedName {
    pub speaker: Option<String>,
    pub sex: Option<Sex>,
    pub sentence: Option<String>,
    pub emotion: Emotion,
    /// The corpus's own code for the emotion (`ANG`, `05`, `W`, `angry`, ...).
    pub emotion_code: String,
    /// `low`/`medium`/`high` (CREMA-D), `normal`/`strong` (RAVDESS); None when unspecified.
    pub intensity: Option<String>,
    /// `speech` or `song` (RAVDESS).
    pub vocal_channel: Option<String>,
}

/// Parse a path relative to the corpus root with a named format.
/// `Folder` needs the label folder and is handled by [`parse_folder`]; `Csv` rows carry labels.
pub fn parse_name(format: Format, rel: &Path) -> Result<ParsedName, String> {
    let stem = rel
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    match format {
        Format::Cremad => parse_cremad(&stem),
        Format::Ravdess => parse_ravdess(&stem),
        Format::Emodb => parse_emodb(&stem),
        Format::Tess => parse_tess(&stem),
        Format::Savee => parse_savee(rel, &stem),
        Format::Folder => parse_folder(rel, None),
        Format::Auto | Format::Csv => Err(format!("format {format} has no file-name parser")),
    }
}

static CREMAD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{1,2})$").unwrap());

/// CREMA-D: `1001_DFA_ANG_XX` = actor_sentence_emotion_level.
pub fn parse_cremad(stem: &str) -> Result<ParsedName, String> {
    let c = CREMAD
        .captures(stem)
        .ok_or_else(|| format!("name '{stem}' is not CREMA-D's ACTOR_SENTENCE_EMOTION_LEVEL"))?;
    let code = &c[3];
    let emotion = match code {
        "ANG" => Emotion::Anger,
        "DIS" => Emotion::Disgust,
        "FEA" => Emotion::Fear,
        "HAP" => Emotion::Happiness,
        "NEU" => Emotion::Neutral,
        "SAD" => Emotion::Sadness,
        _ => return Err(format!("unknown CREMA-D emotion code '{code}'")),
    };
    let intensity = match &c[4] {
        "LO" => Some("low"),
        "MD" => Some("medium"),
        "HI" => Some("high"),
        // `X` occurs once in the real corpus (1040_ITH_SAD_X): same meaning as XX.
        "XX" | "X" => None,
        other => return Err(format!("unknown CREMA-D level '{other}'")),
    };
    Ok(ParsedName {
        speaker: Some(c[1].to_string()),
        sex: None,
        sentence: Some(c[2].to_string()),
        emotion,
        emotion_code: code.to_string(),
        intensity: intensity.map(String::from),
        vocal_channel: None,
    })
}

static RAVDESS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})$").unwrap()
});

/// RAVDESS: `03-01-06-01-02-01-12` = modality-channel-emotion-intensity-statement-repetition-actor.
pub fn parse_ravdess(stem: &str) -> Result<ParsedName, String> {
    let c = RAVDESS
        .captures(stem)
        .ok_or_else(|| format!("name '{stem}' is not RAVDESS's seven two-digit fields"))?;
    if &c[1] != "03" {
        return Err(format!("RAVDESS modality {} is not audio-only (03)", &c[1]));
    }
    let vocal_channel = match &c[2] {
        "01" => "speech",
        "02" => "song",
        other => return Err(format!("unknown RAVDESS vocal channel '{other}'")),
    };
    let code = &c[3];
    let emotion = match code {
        "01" => Emotion::Neutral,
        "02" => Emotion::Calm,
        "03" => Emotion::Happiness,
        "04" => Emotion::Sadness,
        "05" => Emotion::Anger,
        "06" => Emotion::Fear,
        "07" => Emotion::Disgust,
        "08" => Emotion::Surprise,
        _ => return Err(format!("unknown RAVDESS emotion code '{code}'")),
    };
    let intensity = match &c[4] {
        "01" => "normal",
        "02" => "strong",
        other => return Err(format!("unknown RAVDESS intensity '{other}'")),
    };
    let actor: u32 = c[7].parse().map_err(|_| "bad actor number".to_string())?;
    if actor == 0 {
        return Err("RAVDESS actor 00 does not exist".into());
    }
    Ok(ParsedName {
        speaker: Some(c[7].to_string()),
        sex: Some(if actor % 2 == 1 {
            Sex::Male
        } else {
            Sex::Female
        }),
        sentence: Some(c[5].to_string()),
        emotion,
        emotion_code: code.to_string(),
        intensity: Some(intensity.to_string()),
        vocal_channel: Some(vocal_channel.to_string()),
    })
}

static EMODB: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(\d{2})([ab]\d{2})([WLEAFTN])([a-z])$").unwrap());

/// Sex of the ten EmoDB speakers.
pub fn emodb_sex(speaker: &str) -> Option<Sex> {
    match speaker {
        "03" | "10" | "11" | "12" | "15" => Some(Sex::Male),
        "08" | "09" | "13" | "14" | "16" => Some(Sex::Female),
        _ => None,
    }
}

/// EmoDB: `03a01Wa` = speaker(2) text(3) emotion(1) version(1).
pub fn parse_emodb(stem: &str) -> Result<ParsedName, String> {
    let c = EMODB
        .captures(stem)
        .ok_or_else(|| format!("name '{stem}' is not EmoDB's SSTTTEV"))?;
    let code = &c[3];
    let emotion = match code {
        "W" => Emotion::Anger,
        "L" => Emotion::Boredom,
        "E" => Emotion::Disgust,
        "A" => Emotion::Fear,
        "F" => Emotion::Happiness,
        "T" => Emotion::Sadness,
        "N" => Emotion::Neutral,
        _ => unreachable!("regex admits only WLEAFTN"),
    };
    let speaker = c[1].to_string();
    let sex = emodb_sex(&speaker);
    if sex.is_none() {
        return Err(format!("'{speaker}' is not one of EmoDB's ten speakers"));
    }
    Ok(ParsedName {
        speaker: Some(speaker),
        sex,
        sentence: Some(c[2].to_string()),
        emotion,
        emotion_code: code.to_string(),
        intensity: None,
        vocal_channel: None,
    })
}

static TESS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)^([A-Z]{2,3})_([A-Za-z']+)_([A-Za-z]+)$").unwrap());

/// TESS: `OAF_back_angry` = speaker_word_emotion (both speakers female).
pub fn parse_tess(stem: &str) -> Result<ParsedName, String> {
    let c = TESS
        .captures(stem)
        .ok_or_else(|| format!("name '{stem}' is not TESS's SPEAKER_word_emotion"))?;
    let code = c[3].to_ascii_lowercase();
    let emotion = match code.as_str() {
        "angry" => Emotion::Anger,
        "disgust" => Emotion::Disgust,
        "fear" => Emotion::Fear,
        "happy" => Emotion::Happiness,
        "neutral" => Emotion::Neutral,
        "ps" => Emotion::Surprise,
        "sad" => Emotion::Sadness,
        _ => return Err(format!("unknown TESS emotion '{}'", &c[3])),
    };
    Ok(ParsedName {
        speaker: Some(c[1].to_ascii_uppercase()),
        sex: Some(Sex::Female),
        sentence: Some(c[2].to_ascii_lowercase()),
        emotion,
        emotion_code: code,
        intensity: None,
        vocal_channel: None,
    })
}

static SAVEE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(?:([A-Z]{2})_)?(sa|su|a|d|f|h|n)(\d{2})$").unwrap());

/// SAVEE: `DC_a01` (flattened) or `DC/a01` (original folders); all four speakers male.
pub fn parse_savee(rel: &Path, stem: &str) -> Result<ParsedName, String> {
    let c = SAVEE
        .captures(stem)
        .ok_or_else(|| format!("name '{stem}' is not SAVEE's SPEAKER_eNN"))?;
    let speaker = match c.get(1) {
        Some(m) => m.as_str().to_string(),
        None => rel
            .parent()
            .and_then(|p| p.file_name())
            .map(|s| s.to_string_lossy().into_owned())
            .filter(|s| s.len() == 2 && s.chars().all(|ch| ch.is_ascii_uppercase()))
            .ok_or_else(|| {
                format!("SAVEE clip '{stem}' has no speaker prefix or speaker folder")
            })?,
    };
    let code = &c[2];
    let emotion = match code {
        "a" => Emotion::Anger,
        "d" => Emotion::Disgust,
        "f" => Emotion::Fear,
        "h" => Emotion::Happiness,
        "n" => Emotion::Neutral,
        "sa" => Emotion::Sadness,
        "su" => Emotion::Surprise,
        _ => unreachable!("regex admits only SAVEE codes"),
    };
    Ok(ParsedName {
        speaker: Some(speaker),
        sex: Some(Sex::Male),
        sentence: Some(format!("{code}{}", &c[3])),
        emotion,
        emotion_code: code.to_string(),
        intensity: None,
        vocal_channel: None,
    })
}

/// Folder per label: the first path component is the label; the speaker, when a pattern is given,
/// is its first capture group on the file stem (e.g. `^(\w+?)_`).
pub fn parse_folder(rel: &Path, speaker_pattern: Option<&Regex>) -> Result<ParsedName, String> {
    let mut comps = rel.components();
    let label = match (comps.next(), comps.next()) {
        (Some(first), Some(_)) => first.as_os_str().to_string_lossy().into_owned(),
        _ => return Err("file is not inside a label folder".into()),
    };
    let emotion =
        Emotion::from_word(&label).ok_or_else(|| format!("unknown label folder '{label}'"))?;
    let stem = rel
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let speaker = match speaker_pattern {
        None => None,
        Some(re) => Some(
            re.captures(&stem)
                .and_then(|c| c.get(1))
                .map(|m| m.as_str().to_string())
                .ok_or_else(|| format!("speaker pattern '{re}' does not match '{stem}'"))?,
        ),
    };
    Ok(ParsedName {
        speaker,
        sex: None,
        sentence: None,
        emotion,
        emotion_code: label,
        intensity: None,
        vocal_channel: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cremad_real_names() {
        let p = parse_cremad("1001_DFA_ANG_XX").unwrap();
        assert_eq!(p.speaker.as_deref(), Some("1001"));
        assert_eq!(p.sentence.as_deref(), Some("DFA"));
        assert_eq!(p.emotion, Emotion::Anger);
        assert_eq!(p.intensity, None);
        let p = parse_cremad("1001_IEO_HAP_HI").unwrap();
        assert_eq!(
            (p.emotion, p.intensity.as_deref()),
            (Emotion::Happiness, Some("high"))
        );
        // The one odd name in the real corpus.
        let p = parse_cremad("1040_ITH_SAD_X").unwrap();
        assert_eq!((p.emotion, p.intensity), (Emotion::Sadness, None));
        assert!(parse_cremad("1001_DFA_XYZ_XX")
            .unwrap_err()
            .contains("emotion code"));
        assert!(parse_cremad("1001_DFA_ANG_QQ")
            .unwrap_err()
            .contains("level"));
        assert!(parse_cremad("1001-DFA-ANG-XX").is_err());
    }

    #[test]
    fn ravdess_speech_and_song() {
        let p = parse_ravdess("03-01-06-01-02-01-12").unwrap();
        assert_eq!(p.emotion, Emotion::Fear);
        assert_eq!(p.speaker.as_deref(), Some("12"));
        assert_eq!(p.sex, Some(Sex::Female));
        assert_eq!(p.intensity.as_deref(), Some("normal"));
        assert_eq!(p.sentence.as_deref(), Some("02"));
        assert_eq!(p.vocal_channel.as_deref(), Some("speech"));
        // Song files: vocal channel 02.
        let p = parse_ravdess("03-02-05-02-01-01-01").unwrap();
        assert_eq!(p.vocal_channel.as_deref(), Some("song"));
        assert_eq!((p.emotion, p.sex), (Emotion::Anger, Some(Sex::Male)));
        assert_eq!(p.intensity.as_deref(), Some("strong"));
        assert!(parse_ravdess("01-01-06-01-02-01-12")
            .unwrap_err()
            .contains("audio-only"));
        assert!(parse_ravdess("03-01-09-01-02-01-12")
            .unwrap_err()
            .contains("emotion"));
        assert_eq!(
            parse_ravdess("03-01-02-01-01-01-03").unwrap().emotion,
            Emotion::Calm
        );
    }

    #[test]
    fn emodb_tess_savee() {
        let p = parse_emodb("03a01Wa").unwrap();
        assert_eq!((p.emotion, p.sex), (Emotion::Anger, Some(Sex::Male)));
        assert_eq!(p.sentence.as_deref(), Some("a01"));
        assert_eq!(parse_emodb("16b10Lb").unwrap().emotion, Emotion::Boredom);
        assert_eq!(parse_emodb("08a02Ac").unwrap().sex, Some(Sex::Female));
        assert!(parse_emodb("99a01Wa").unwrap_err().contains("speakers"));
        let p = parse_tess("OAF_back_angry").unwrap();
        assert_eq!(
            (p.emotion, p.speaker.as_deref()),
            (Emotion::Anger, Some("OAF"))
        );
        assert_eq!(
            parse_tess("YAF_youth_ps").unwrap().emotion,
            Emotion::Surprise
        );
        assert!(parse_tess("OAF_back_bored").is_err());
        let p = parse_savee(Path::new("DC_sa03.wav"), "DC_sa03").unwrap();
        assert_eq!(
            (p.emotion, p.speaker.as_deref()),
            (Emotion::Sadness, Some("DC"))
        );
        let p = parse_savee(Path::new("KL/su12.wav"), "su12").unwrap();
        assert_eq!(
            (p.emotion, p.speaker.as_deref()),
            (Emotion::Surprise, Some("KL"))
        );
        assert!(parse_savee(Path::new("x1.wav"), "x1").is_err());
    }

    #[test]
    fn folder_labels_and_speaker_pattern() {
        let re = Regex::new(r"^(\w+?)_").unwrap();
        let p = parse_folder(Path::new("Angry/spk7_001.wav"), Some(&re)).unwrap();
        assert_eq!(
            (p.emotion, p.speaker.as_deref()),
            (Emotion::Anger, Some("spk7"))
        );
        assert!(parse_folder(Path::new("loose.wav"), None).is_err());
        assert!(parse_folder(Path::new("contempt/a.wav"), None)
            .unwrap_err()
            .contains("unknown label"));
    }
}
