//! The feature cache: spectrograms in Parquet, content-addressed, incremental, safe to share.
//!
//! Layout: `<root>/<pipeline feature key>/part-*.parquet`, plus `pipeline.yaml` for humans.
//! Each row is one variant of one clip, keyed by `key` = hash(content hash of the audio, variant
//! config). A run lists the keys already present, computes the rest, and writes them as new part
//! files (temp file + rename), so:
//! - a killed run loses at most the part it was writing, and nothing half-written is ever read;
//! - two processes filling the same cache write different part files; a key present in two
//!   parts is read once.
//!
//! Columns: `key, clip_id, path, content_hash, corpus, speaker, sex, sentence, emotion,
//! intensity, variant, variant_params, n_frames, n_mels, n_features, spectrogram` where
//! `spectrogram` is a `List<Float32>` holding `n_frames × n_features` values, frame-major
//! (`n_features` is `n_mels`, or the MFCC count for MFCC pipelines). Floats are stored with
//! BYTE_STREAM_SPLIT encoding and zstd; row groups hold [`ROWS_PER_GROUP`] rows so readers can
//! decode them in parallel. Metadata columns are as the manifest said when the row was written;
//! the key depends only on the audio's bytes and the config, so join on `content_hash` when
//! labels may have changed since.

use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use arrow::array::{
    Array, ArrayRef, Float32Array, ListArray, RecordBatch, StringArray, UInt32Array,
};
use arrow::buffer::{OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::{ArrowWriter, ProjectionMask};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;
use rayon::prelude::*;

/// Rows per Parquet row group (128×128 f32 spectrograms: ~16 MB of floats per group).
pub const ROWS_PER_GROUP: usize = 256;

/// One cached variant of one clip.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheRow {
    pub key: String,
    pub clip_id: String,
    pub path: String,
    pub content_hash: String,
    pub corpus: String,
    pub speaker: Option<String>,
    pub sex: Option<String>,
    pub sentence: Option<String>,
    pub emotion: String,
    pub intensity: Option<String>,
    /// `original`, `noise#0`, ...
    pub variant: String,
    /// JSON of the parameters drawn for this variant (`{}` for the original).
    pub variant_params: String,
    pub n_frames: u32,
    /// Mel bands of the pipeline.
    pub n_mels: u32,
    /// Values per frame (`n_mels`, or the number of MFCCs).
    pub n_features: u32,
    /// `n_frames × n_features`, frame-major. Rows read from the cache share the decoded Arrow
    /// buffer (no copy); build one from a `Vec<f32>` with `.into()`.
    pub features: ScalarBuffer<f32>,
}

/// The row key: what the features of a variant depend on besides the pipeline folder.
pub fn row_key(content_hash: &str, variant_key: &str) -> String {
    let mut h = blake3::Hasher::new();
    h.update(content_hash.as_bytes());
    h.update(b"\0");
    h.update(variant_key.as_bytes());
    h.finalize().to_hex()[..32].to_string()
}

fn schema() -> SchemaRef {
    let s = |n: &str, null: bool| Field::new(n, DataType::Utf8, null);
    Arc::new(Schema::new(vec![
        s("key", false),
        s("clip_id", false),
        s("path", false),
        s("content_hash", false),
        s("corpus", false),
        s("speaker", true),
        s("sex", true),
        s("sentence", true),
        s("emotion", false),
        s("intensity", true),
        s("variant", false),
        s("variant_params", false),
        Field::new("n_frames", DataType::UInt32, false),
        Field::new("n_mels", DataType::UInt32, false),
        Field::new("n_features", DataType::UInt32, false),
        Field::new(
            "spectrogram",
            DataType::List(Arc::new(Field::new("element", DataType::Float32, false))),
            false,
        ),
    ]))
}

fn writer_props(feature_names: Option<&[String]>) -> WriterProperties {
    let floats = ColumnPath::from(vec![
        "spectrogram".to_string(),
        "list".into(),
        "element".into(),
    ]);
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(1).expect("valid level"),
        ))
        .set_column_encoding(floats.clone(), Encoding::BYTE_STREAM_SPLIT)
        .set_column_dictionary_enabled(floats, false)
        .set_max_row_group_size(ROWS_PER_GROUP)
        .set_key_value_metadata(feature_names.map(|n| {
            vec![parquet::file::metadata::KeyValue::new(
                "feature_names".to_string(),
                serde_json::to_string(n).expect("serialisable"),
            )]
        }))
        .build()
}

fn to_batch(rows: &[CacheRow]) -> Result<RecordBatch> {
    fn s(rows: &[CacheRow], f: impl Fn(&CacheRow) -> Option<&str>) -> ArrayRef {
        Arc::new(rows.iter().map(f).collect::<StringArray>())
    }
    let total: usize = rows.iter().map(|r| r.features.len()).sum();
    let mut values = Vec::with_capacity(total);
    for r in rows {
        anyhow::ensure!(
            r.features.len() == r.n_frames as usize * r.n_features as usize,
            "row {}: {} values for {}×{}",
            r.key,
            r.features.len(),
            r.n_frames,
            r.n_features
        );
        values.extend_from_slice(&r.features);
    }
    let offsets = OffsetBuffer::<i32>::from_lengths(rows.iter().map(|r| r.features.len()));
    let list = ListArray::try_new(
        Arc::new(Field::new("element", DataType::Float32, false)),
        offsets,
        Arc::new(Float32Array::from(values)),
        None,
    )?;
    let cols: Vec<ArrayRef> = vec![
        s(rows, |r| Some(&r.key)),
        s(rows, |r| Some(&r.clip_id)),
        s(rows, |r| Some(&r.path)),
        s(rows, |r| Some(&r.content_hash)),
        s(rows, |r| Some(&r.corpus)),
        s(rows, |r| r.speaker.as_deref()),
        s(rows, |r| r.sex.as_deref()),
        s(rows, |r| r.sentence.as_deref()),
        s(rows, |r| Some(&r.emotion)),
        s(rows, |r| r.intensity.as_deref()),
        s(rows, |r| Some(&r.variant)),
        s(rows, |r| Some(&r.variant_params)),
        Arc::new(rows.iter().map(|r| r.n_frames).collect::<UInt32Array>()),
        Arc::new(rows.iter().map(|r| r.n_mels).collect::<UInt32Array>()),
        Arc::new(rows.iter().map(|r| r.n_features).collect::<UInt32Array>()),
        Arc::new(list),
    ];
    Ok(RecordBatch::try_new(schema(), cols)?)
}

/// A cache folder for one pipeline.
#[derive(Debug, Clone)]
pub struct Cache {
    pub dir: PathBuf,
    /// Names of the values of clip-vector features, written into every part as the Parquet
    /// key-value metadata `feature_names` (a JSON list).
    pub feature_names: Option<Vec<String>>,
}

impl Cache {
    /// Open (creating it if needed) the cache folder `root/feature_key`.
    pub fn open(root: &Path, feature_key: &str) -> Result<Cache> {
        let dir = root.join(feature_key);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create cache folder {}", dir.display()))?;
        Ok(Cache {
            dir,
            feature_names: None,
        })
    }

    /// Completed part files (temp files of running or killed writers are not listed).
    pub fn parts(&self) -> Result<Vec<PathBuf>> {
        let mut parts: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .with_context(|| format!("cannot read cache folder {}", self.dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension().is_some_and(|e| e == "parquet")
                    && p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("part-"))
            })
            .collect();
        parts.sort();
        Ok(parts)
    }

    /// Write rows as a new part file, atomically. Returns its path.
    pub fn write_part(&self, rows: &[CacheRow]) -> Result<PathBuf> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let name = format!(
            "part-{stamp}-{}-{}.parquet",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let path = self.dir.join(name);
        let batch = to_batch(rows)?;
        crate::util::atomic_write(&path, |w| {
            let mut writer = ArrowWriter::try_new(
                w,
                schema(),
                Some(writer_props(self.feature_names.as_deref())),
            )?;
            writer.write(&batch)?;
            writer.close()?;
            Ok(())
        })?;
        Ok(path)
    }

    /// Every key present in the cache (reads only the key column).
    pub fn keys(&self) -> Result<HashSet<String>> {
        let sets: Vec<Result<Vec<String>>> = self
            .parts()?
            .par_iter()
            .map(|p| {
                let b = ParquetRecordBatchReaderBuilder::try_new(open(p)?)?;
                let mask = ProjectionMask::roots(b.parquet_schema(), [0]);
                let mut keys = Vec::new();
                for batch in b.with_projection(mask).build()? {
                    let batch = batch?;
                    let col = batch
                        .column(0)
                        .as_any()
                        .downcast_ref::<StringArray>()
                        .context("key column is not text")?;
                    keys.extend(col.iter().flatten().map(String::from));
                }
                Ok(keys)
            })
            .collect();
        let mut out = HashSet::new();
        for s in sets {
            out.extend(s?);
        }
        Ok(out)
    }

    /// The (part, row group) units a reader can decode independently.
    pub fn row_groups(&self) -> Result<Vec<(PathBuf, usize)>> {
        let mut out = Vec::new();
        for p in self.parts()? {
            let b = ParquetRecordBatchReaderBuilder::try_new(open(&p)?)?;
            for g in 0..b.metadata().num_row_groups() {
                out.push((p.clone(), g));
            }
        }
        Ok(out)
    }

    /// Decode one row group.
    pub fn read_row_group(&self, part: &Path, group: usize) -> Result<Vec<CacheRow>> {
        let b = ParquetRecordBatchReaderBuilder::try_new(open(part)?)?;
        let reader = b
            .with_row_groups(vec![group])
            .with_batch_size(ROWS_PER_GROUP * 4)
            .build()?;
        let mut rows = Vec::new();
        for batch in reader {
            rows.extend(
                from_batch(&batch?).with_context(|| format!("cache part {}", part.display()))?,
            );
        }
        Ok(rows)
    }

    /// Stream rows, one row group at a time, in a fixed order (for training loaders).
    pub fn stream(&self) -> Result<impl Iterator<Item = Result<Vec<CacheRow>>> + '_> {
        Ok(self
            .row_groups()?
            .into_iter()
            .map(move |(p, g)| self.read_row_group(&p, g)))
    }

    /// Read every row (deduplicated by key; optionally only `wanted` keys), row groups decoded
    /// in parallel.
    pub fn read_all(&self, wanted: Option<&HashSet<String>>) -> Result<Vec<CacheRow>> {
        let groups = self.row_groups()?;
        let chunks: Vec<Result<Vec<CacheRow>>> = groups
            .par_iter()
            .map(|(p, g)| {
                let mut rows = self.read_row_group(p, *g)?;
                if let Some(w) = wanted {
                    rows.retain(|r| w.contains(&r.key));
                }
                Ok(rows)
            })
            .collect();
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for c in chunks {
            for r in c? {
                if seen.insert(r.key.clone()) {
                    out.push(r);
                }
            }
        }
        Ok(out)
    }
}

fn open(p: &Path) -> Result<File> {
    File::open(p).with_context(|| format!("cannot open cache part {}", p.display()))
}

fn from_batch(batch: &RecordBatch) -> Result<Vec<CacheRow>> {
    let text = |name: &str| -> Result<&StringArray> {
        batch
            .column_by_name(name)
            .with_context(|| format!("no column {name}"))?
            .as_any()
            .downcast_ref::<StringArray>()
            .with_context(|| format!("column {name} is not text"))
    };
    let uint = |name: &str| -> Result<&UInt32Array> {
        batch
            .column_by_name(name)
            .with_context(|| format!("no column {name}"))?
            .as_any()
            .downcast_ref::<UInt32Array>()
            .with_context(|| format!("column {name} is not u32"))
    };
    let (key, clip, path, hash, corpus) = (
        text("key")?,
        text("clip_id")?,
        text("path")?,
        text("content_hash")?,
        text("corpus")?,
    );
    let (spk, sex, sent, emo, inten, var, vparams) = (
        text("speaker")?,
        text("sex")?,
        text("sentence")?,
        text("emotion")?,
        text("intensity")?,
        text("variant")?,
        text("variant_params")?,
    );
    let (nf, nmel, nm) = (uint("n_frames")?, uint("n_mels")?, uint("n_features")?);
    let list = batch
        .column_by_name("spectrogram")
        .context("no column spectrogram")?
        .as_any()
        .downcast_ref::<ListArray>()
        .context("column spectrogram is not a list")?;
    let values = list
        .values()
        .as_any()
        .downcast_ref::<Float32Array>()
        .context("spectrogram values are not f32")?
        .values()
        .clone();
    let offsets = list.value_offsets();
    let opt = |a: &StringArray, i: usize| (!a.is_null(i)).then(|| a.value(i).to_string());
    Ok((0..batch.num_rows())
        .map(|i| CacheRow {
            key: key.value(i).to_string(),
            clip_id: clip.value(i).to_string(),
            path: path.value(i).to_string(),
            content_hash: hash.value(i).to_string(),
            corpus: corpus.value(i).to_string(),
            speaker: opt(spk, i),
            sex: opt(sex, i),
            sentence: opt(sent, i),
            emotion: emo.value(i).to_string(),
            intensity: opt(inten, i),
            variant: var.value(i).to_string(),
            variant_params: vparams.value(i).to_string(),
            n_frames: nf.value(i),
            n_mels: nmel.value(i),
            n_features: nm.value(i),
            features: values.slice(offsets[i] as usize, (offsets[i + 1] - offsets[i]) as usize),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(i: usize, frames: u32) -> CacheRow {
        CacheRow {
            key: format!("k{i}"),
            clip_id: format!("c{i}"),
            path: format!("/x/c{i}.wav"),
            content_hash: format!("h{i}"),
            corpus: "cremad".into(),
            speaker: (i % 2 == 0).then(|| "1001".into()),
            sex: None,
            sentence: Some("DFA".into()),
            emotion: "anger".into(),
            intensity: None,
            variant: "original".into(),
            variant_params: "{}".into(),
            n_frames: frames,
            n_mels: 4,
            n_features: 4,
            features: (0..frames * 4)
                .map(|v| v as f32 * 0.5 - i as f32)
                .collect::<Vec<_>>()
                .into(),
        }
    }

    #[test]
    fn parts_round_trip_and_dedupe() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path(), "abc").unwrap();
        let a: Vec<_> = (0..600).map(|i| row(i, 3 + (i % 5) as u32)).collect();
        cache.write_part(&a).unwrap();
        cache.write_part(&a[590..]).unwrap(); // a second writer raced on 10 keys
        assert_eq!(cache.parts().unwrap().len(), 2);
        assert_eq!(cache.keys().unwrap().len(), 600);
        // 600 rows -> 3 row groups in the first part, 1 in the second.
        assert_eq!(cache.row_groups().unwrap().len(), 4);
        let mut back = cache.read_all(None).unwrap();
        back.sort_by_key(|r| r.key[1..].parse::<usize>().unwrap());
        assert_eq!(back, a);
        let wanted: HashSet<String> = ["k5".to_string(), "k7".into()].into();
        assert_eq!(cache.read_all(Some(&wanted)).unwrap().len(), 2);
        let streamed: usize = cache.stream().unwrap().map(|g| g.unwrap().len()).sum();
        assert_eq!(streamed, 610);
    }

    #[test]
    fn floats_use_byte_stream_split_and_zstd() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path(), "abc").unwrap();
        let p = cache.write_part(&[row(0, 8)]).unwrap();
        let b = ParquetRecordBatchReaderBuilder::try_new(File::open(p).unwrap()).unwrap();
        let rg = b.metadata().row_group(0);
        let col = rg
            .columns()
            .iter()
            .find(|c| c.column_path().string() == "spectrogram.list.element")
            .expect("spectrogram column");
        assert!(
            col.encodings().any(|e| e == Encoding::BYTE_STREAM_SPLIT),
            "{:?}",
            col.encodings().collect::<Vec<_>>()
        );
        assert!(matches!(col.compression(), Compression::ZSTD(_)));
    }

    #[test]
    fn temp_files_are_not_parts() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path(), "k").unwrap();
        std::fs::write(cache.dir.join(".part-1.parquet.123.0.tmp"), b"half").unwrap();
        std::fs::write(cache.dir.join("pipeline.yaml"), b"x").unwrap();
        assert!(cache.parts().unwrap().is_empty());
        assert!(cache.keys().unwrap().is_empty());
    }
}
