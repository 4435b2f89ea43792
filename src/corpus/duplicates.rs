//! Byte-identical clips under more than one name.
//!
//! Real corpus copies contain the same recording twice, sometimes filed under two speakers
//! (a file copied into another actor's folder and renamed). Every clip's content hash is known
//! from the scan; [`Duplicates::find`] groups clips by it. A speaker-independent split is broken
//! by one such pair (the same audio in train and test), so experiments keep one copy of each
//! content ([`dedupe`]: the first by path) and say so in every run's `meta.json`; `corpus scan`
//! lists the groups, flagging those whose copies disagree on speaker or label.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::ClipRecord;

/// Clips with one content.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DuplicateGroup {
    pub content_hash: String,
    /// Paths, sorted; the first is the copy experiments keep.
    pub paths: Vec<String>,
    pub speakers: BTreeSet<String>,
    pub emotions: BTreeSet<String>,
}

impl DuplicateGroup {
    /// The copies carry different speakers: a speaker-independent split could put the same
    /// audio on both sides.
    pub fn cross_speaker(&self) -> bool {
        self.speakers.len() > 1
    }

    /// The copies carry different labels: at least one is mislabelled.
    pub fn cross_label(&self) -> bool {
        self.emotions.len() > 1
    }
}

/// Every group of byte-identical clips in a corpus.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Duplicates {
    pub groups: Vec<DuplicateGroup>,
}

impl Duplicates {
    pub fn find(clips: &[ClipRecord]) -> Duplicates {
        let mut by_hash: BTreeMap<&str, Vec<&ClipRecord>> = BTreeMap::new();
        for c in clips {
            by_hash.entry(c.content_hash.as_str()).or_default().push(c);
        }
        let mut groups: Vec<DuplicateGroup> = by_hash
            .into_iter()
            .filter(|(_, v)| v.len() > 1)
            .map(|(h, v)| {
                let mut paths: Vec<String> = v.iter().map(|c| c.path.clone()).collect();
                paths.sort();
                DuplicateGroup {
                    content_hash: h.to_string(),
                    paths,
                    speakers: v.iter().filter_map(|c| c.speaker.clone()).collect(),
                    emotions: v.iter().map(|c| c.emotion.clone()).collect(),
                }
            })
            .collect();
        groups.sort_by(|a, b| a.paths[0].cmp(&b.paths[0]));
        Duplicates { groups }
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Extra copies (clips beyond the first of each group).
    pub fn extra_copies(&self) -> usize {
        self.groups.iter().map(|g| g.paths.len() - 1).sum()
    }

    pub fn cross_speaker(&self) -> usize {
        self.groups.iter().filter(|g| g.cross_speaker()).count()
    }

    pub fn cross_label(&self) -> usize {
        self.groups.iter().filter(|g| g.cross_label()).count()
    }

    /// One line for logs and reports; `None` when there is nothing to say.
    pub fn summary(&self) -> Option<String> {
        (!self.is_empty()).then(|| {
            format!(
                "{} byte-identical extra cop{} of {} clip{} ({} filed under different speakers, {} with different labels)",
                self.extra_copies(),
                if self.extra_copies() == 1 { "y" } else { "ies" },
                self.groups.len(),
                if self.groups.len() == 1 { "" } else { "s" },
                self.cross_speaker(),
                self.cross_label()
            )
        })
    }
}

impl std::fmt::Display for Duplicates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Some(line) = self.summary() else {
            return write!(f, "no duplicate content");
        };
        write!(f, "{line}")?;
        for g in &self.groups {
            let flag = match (g.cross_speaker(), g.cross_label()) {
                (true, true) => "DIFFERENT SPEAKERS AND LABELS: ",
                (true, false) => "DIFFERENT SPEAKERS: ",
                (false, true) => "DIFFERENT LABELS: ",
                _ => "",
            };
            write!(f, "\n  {flag}{}", g.paths.join(" = "))?;
        }
        Ok(())
    }
}

/// Keep the first copy (by path) of every content: what an experiment trains and tests on.
pub fn dedupe(clips: Vec<ClipRecord>) -> (Vec<ClipRecord>, Duplicates) {
    let dups = Duplicates::find(&clips);
    if dups.is_empty() {
        return (clips, dups);
    }
    let keep: BTreeMap<&str, &str> = dups
        .groups
        .iter()
        .map(|g| (g.content_hash.as_str(), g.paths[0].as_str()))
        .collect();
    let kept = clips
        .iter()
        .filter(|c| {
            keep.get(c.content_hash.as_str())
                .is_none_or(|p| *p == c.path)
        })
        .cloned()
        .collect();
    (kept, dups)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clip(path: &str, speaker: &str, emotion: &str, hash: &str) -> ClipRecord {
        ClipRecord {
            path: path.into(),
            corpus: "ravdess".into(),
            clip_id: path.into(),
            speaker: Some(speaker.into()),
            sex: None,
            age: None,
            sentence: None,
            emotion: emotion.into(),
            emotion_code: String::new(),
            intensity: None,
            vocal_channel: None,
            sample_rate: 16000,
            channels: 1,
            bits: 16,
            duration_s: 1.0,
            content_hash: hash.into(),
        }
    }

    #[test]
    fn finds_groups_flags_disagreements_and_keeps_the_first_copy() {
        let clips = vec![
            clip("b/x.wav", "05", "anger", "h1"),
            clip("a/x.wav", "02", "anger", "h1"),
            clip("a/y.wav", "02", "fear", "h2"),
            clip("a/z.wav", "02", "sadness", "h2"),
            clip("a/w.wav", "03", "calm", "h3"),
        ];
        let d = Duplicates::find(&clips);
        assert_eq!(d.groups.len(), 2);
        assert_eq!(d.extra_copies(), 2);
        assert_eq!((d.cross_speaker(), d.cross_label()), (1, 1));
        let text = d.to_string();
        assert!(
            text.contains("DIFFERENT SPEAKERS: a/x.wav = b/x.wav"),
            "{text}"
        );
        assert!(
            text.contains("DIFFERENT LABELS: a/y.wav = a/z.wav"),
            "{text}"
        );
        let (kept, _) = dedupe(clips);
        let paths: Vec<&str> = kept.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(paths, ["a/x.wav", "a/y.wav", "a/w.wav"]);
        assert!(Duplicates::find(&kept).is_empty());
    }
}
