//! The canonical label set every corpus is mapped onto, and speaker sex.
//!
//! Corpora spell emotions differently (`ANG`, `W`, `05`, `angry`); the manifest always stores the
//! canonical name next to the corpus's own code, so experiments can keep or merge labels across
//! corpora without knowing their conventions.

use serde::{Deserialize, Serialize};

/// Canonical emotion labels, shared by every corpus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Emotion {
    Anger,
    Disgust,
    Fear,
    Happiness,
    Neutral,
    Sadness,
    Calm,
    Surprise,
    Boredom,
}

impl Emotion {
    pub const ALL: [Emotion; 9] = [
        Emotion::Anger,
        Emotion::Disgust,
        Emotion::Fear,
        Emotion::Happiness,
        Emotion::Neutral,
        Emotion::Sadness,
        Emotion::Calm,
        Emotion::Surprise,
        Emotion::Boredom,
    ];

    /// The canonical lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Emotion::Anger => "anger",
            Emotion::Disgust => "disgust",
            Emotion::Fear => "fear",
            Emotion::Happiness => "happiness",
            Emotion::Neutral => "neutral",
            Emotion::Sadness => "sadness",
            Emotion::Calm => "calm",
            Emotion::Surprise => "surprise",
            Emotion::Boredom => "boredom",
        }
    }

    /// Parse a free-form label word, as used in folder names and CSV manifests
    /// (`angry`, `Anger`, `ang`, `ps`, `pleasant_surprise`, ...). Case-insensitive.
    pub fn from_word(word: &str) -> Option<Emotion> {
        let w = word.trim().to_ascii_lowercase().replace(['-', ' '], "_");
        Some(match w.as_str() {
            "anger" | "angry" | "ang" | "mad" => Emotion::Anger,
            "disgust" | "disgusted" | "dis" => Emotion::Disgust,
            "fear" | "fearful" | "fea" | "afraid" | "scared" => Emotion::Fear,
            "happiness" | "happy" | "hap" | "joy" | "joyful" => Emotion::Happiness,
            "neutral" | "neu" => Emotion::Neutral,
            "sadness" | "sad" => Emotion::Sadness,
            "calm" => Emotion::Calm,
            "surprise" | "surprised" | "sur" | "ps" | "pleasant_surprise"
            | "pleasant_surprised" => Emotion::Surprise,
            "boredom" | "bored" => Emotion::Boredom,
            _ => return None,
        })
    }
}

impl std::fmt::Display for Emotion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Speaker sex, where the corpus documents it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sex {
    Female,
    Male,
}

impl Sex {
    pub fn name(self) -> &'static str {
        match self {
            Sex::Female => "female",
            Sex::Male => "male",
        }
    }

    /// `Male`, `female`, `m`, `F`, ...
    pub fn from_word(word: &str) -> Option<Sex> {
        match word.trim().to_ascii_lowercase().as_str() {
            "male" | "m" | "man" => Some(Sex::Male),
            "female" | "f" | "woman" => Some(Sex::Female),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_map_to_canonical_labels() {
        assert_eq!(Emotion::from_word("Angry"), Some(Emotion::Anger));
        assert_eq!(Emotion::from_word("ps"), Some(Emotion::Surprise));
        assert_eq!(
            Emotion::from_word("pleasant-surprise"),
            Some(Emotion::Surprise)
        );
        assert_eq!(Emotion::from_word("bored"), Some(Emotion::Boredom));
        assert_eq!(Emotion::from_word("contempt"), None);
        for e in Emotion::ALL {
            assert_eq!(Emotion::from_word(e.name()), Some(e));
        }
    }
}
