//! The manifest: one row per usable clip, stored as Parquet through Polars.
//!
//! It is the hand-off between scanning and every later stage; the columns are stable and named
//! in [`COLUMNS`], so other tools (pandas, pyarrow, DuckDB) can read it too.

use std::path::Path;

use anyhow::{Context, Result};
use polars::prelude::*;
use serde::Serialize;

/// One clip of a corpus.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClipRecord {
    /// Absolute path of the audio file.
    pub path: String,
    /// Corpus convention the name was parsed with (`cremad`, `emodb`, ...).
    pub corpus: String,
    /// File stem, unique within the corpus.
    pub clip_id: String,
    pub speaker: Option<String>,
    pub sex: Option<String>,
    pub age: Option<u32>,
    /// Sentence/text code (CREMA-D `DFA`, EmoDB `a01`, RAVDESS statement `01`).
    pub sentence: Option<String>,
    /// Canonical emotion name.
    pub emotion: String,
    /// The corpus's own emotion code.
    pub emotion_code: String,
    pub intensity: Option<String>,
    pub vocal_channel: Option<String>,
    pub sample_rate: u32,
    pub channels: u32,
    pub bits: u32,
    pub duration_s: f64,
    /// BLAKE3 of the file's bytes: the cache key of everything computed from the clip.
    pub content_hash: String,
}

/// Column names, in order.
pub const COLUMNS: [&str; 16] = [
    "path",
    "corpus",
    "clip_id",
    "speaker",
    "sex",
    "age",
    "sentence",
    "emotion",
    "emotion_code",
    "intensity",
    "vocal_channel",
    "sample_rate",
    "channels",
    "bits",
    "duration_s",
    "content_hash",
];

/// Build a Polars DataFrame from records.
pub fn to_dataframe(clips: &[ClipRecord]) -> Result<DataFrame> {
    fn s<F: Fn(&ClipRecord) -> String>(n: &str, c: &[ClipRecord], f: F) -> Column {
        Column::new(n.into(), c.iter().map(f).collect::<Vec<_>>())
    }
    fn o<F: Fn(&ClipRecord) -> Option<String>>(n: &str, c: &[ClipRecord], f: F) -> Column {
        Column::new(n.into(), c.iter().map(f).collect::<Vec<_>>())
    }
    fn u<F: Fn(&ClipRecord) -> u32>(n: &str, c: &[ClipRecord], f: F) -> Column {
        Column::new(n.into(), c.iter().map(f).collect::<Vec<_>>())
    }
    let cols = vec![
        s("path", clips, |r| r.path.clone()),
        s("corpus", clips, |r| r.corpus.clone()),
        s("clip_id", clips, |r| r.clip_id.clone()),
        o("speaker", clips, |r| r.speaker.clone()),
        o("sex", clips, |r| r.sex.clone()),
        Column::new(
            "age".into(),
            clips.iter().map(|r| r.age).collect::<Vec<_>>(),
        ),
        o("sentence", clips, |r| r.sentence.clone()),
        s("emotion", clips, |r| r.emotion.clone()),
        s("emotion_code", clips, |r| r.emotion_code.clone()),
        o("intensity", clips, |r| r.intensity.clone()),
        o("vocal_channel", clips, |r| r.vocal_channel.clone()),
        u("sample_rate", clips, |r| r.sample_rate),
        u("channels", clips, |r| r.channels),
        u("bits", clips, |r| r.bits),
        Column::new(
            "duration_s".into(),
            clips.iter().map(|r| r.duration_s).collect::<Vec<_>>(),
        ),
        s("content_hash", clips, |r| r.content_hash.clone()),
    ];
    Ok(DataFrame::new(cols)?)
}

/// Write the manifest as zstd Parquet, atomically.
pub fn write_manifest(path: &Path, clips: &[ClipRecord]) -> Result<()> {
    let mut df = to_dataframe(clips)?;
    crate::util::atomic_write(path, |w| {
        ParquetWriter::new(w)
            .with_compression(ParquetCompression::Zstd(None))
            .finish(&mut df)?;
        Ok(())
    })
}

/// Read a manifest written by [`write_manifest`] (or any Parquet with the same columns).
pub fn read_manifest(path: &Path) -> Result<Vec<ClipRecord>> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot open manifest {}", path.display()))?;
    let df = ParquetReader::new(file)
        .finish()
        .with_context(|| format!("{} is not a readable Parquet file", path.display()))?;
    from_dataframe(&df).with_context(|| format!("manifest {}", path.display()))
}

/// Records from a DataFrame with the manifest's columns.
pub fn from_dataframe(df: &DataFrame) -> Result<Vec<ClipRecord>> {
    let missing: Vec<_> = COLUMNS.iter().filter(|c| df.column(c).is_err()).collect();
    if !missing.is_empty() {
        anyhow::bail!("missing columns {missing:?}");
    }
    let st = |n: &str| -> Result<Vec<Option<String>>> {
        Ok(df
            .column(n)?
            .str()?
            .into_iter()
            .map(|v| v.map(String::from))
            .collect())
    };
    let u32c = |n: &str| -> Result<Vec<Option<u32>>> {
        Ok(df
            .column(n)?
            .cast(&DataType::UInt32)?
            .u32()?
            .into_iter()
            .collect())
    };
    let (path, corpus, clip_id, speaker, sex) = (
        st("path")?,
        st("corpus")?,
        st("clip_id")?,
        st("speaker")?,
        st("sex")?,
    );
    let (sentence, emotion, code, intensity, vocal) = (
        st("sentence")?,
        st("emotion")?,
        st("emotion_code")?,
        st("intensity")?,
        st("vocal_channel")?,
    );
    let (age, sr, ch, bits) = (
        u32c("age")?,
        u32c("sample_rate")?,
        u32c("channels")?,
        u32c("bits")?,
    );
    let dur: Vec<Option<f64>> = df.column("duration_s")?.f64()?.into_iter().collect();
    let hash = st("content_hash")?;
    let req = |v: &Option<String>, n: &str, i: usize| {
        v.clone()
            .ok_or_else(|| anyhow::anyhow!("row {i}: column {n} is null"))
    };
    (0..df.height())
        .map(|i| {
            Ok(ClipRecord {
                path: req(&path[i], "path", i)?,
                corpus: req(&corpus[i], "corpus", i)?,
                clip_id: req(&clip_id[i], "clip_id", i)?,
                speaker: speaker[i].clone(),
                sex: sex[i].clone(),
                age: age[i],
                sentence: sentence[i].clone(),
                emotion: req(&emotion[i], "emotion", i)?,
                emotion_code: req(&code[i], "emotion_code", i)?,
                intensity: intensity[i].clone(),
                vocal_channel: vocal[i].clone(),
                sample_rate: sr[i].unwrap_or(0),
                channels: ch[i].unwrap_or(0),
                bits: bits[i].unwrap_or(0),
                duration_s: dur[i].unwrap_or(0.0),
                content_hash: req(&hash[i], "content_hash", i)?,
            })
        })
        .collect()
}
