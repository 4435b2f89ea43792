//! Writing the report's files: each table as `tables/<name>.csv` and `tables/<name>.parquet`,
//! the charts and the two renderings, every file atomically. Before writing, the `.csv`,
//! `.parquet` and `.svg` files a previous report left in `tables/` and `charts/` are removed, so
//! the folder never mixes two reports.

use std::path::{Path, PathBuf};

use polars::prelude::*;

use super::{file_error, Result};

/// Remove the files an earlier report wrote into `out/tables` and `out/charts`.
pub fn clear_outputs(out: &Path) -> Result<()> {
    for (dir, exts) in [
        (out.join("tables"), &["csv", "parquet"][..]),
        (out.join("charts"), &["svg"][..]),
    ] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| exts.iter().any(|e| x == *e)) {
                std::fs::remove_file(&p).map_err(|e| file_error(&p, e))?;
            }
        }
    }
    Ok(())
}

/// Write a text file atomically.
pub fn write_text(path: &Path, text: &str) -> Result<()> {
    crate::util::atomic_write_bytes(path, text.as_bytes())
        .map_err(|e| file_error(path, format!("{e:#}")))
}

/// Write `df` as `<dir>/<name>.csv` and `<dir>/<name>.parquet`; returns both paths.
pub fn write_table(dir: &Path, name: &str, df: &DataFrame) -> Result<Vec<PathBuf>> {
    let csv_path = dir.join(format!("{name}.csv"));
    write_text(
        &csv_path,
        &to_csv(df).map_err(|e| file_error(&csv_path, e))?,
    )?;
    let pq = dir.join(format!("{name}.parquet"));
    let mut df = df.clone();
    crate::util::atomic_write(&pq, |w| {
        ParquetWriter::new(w)
            .with_compression(ParquetCompression::Zstd(None))
            .finish(&mut df)?;
        Ok(())
    })
    .map_err(|e| file_error(&pq, format!("{e:#}")))?;
    Ok(vec![csv_path, pq])
}

/// A DataFrame as CSV: a header, then one line per row; nulls are empty, floats in full
/// precision, lists as `a;b;c`.
pub fn to_csv(df: &DataFrame) -> std::result::Result<String, String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(df.get_column_names().iter().map(|n| n.as_str()))
        .map_err(|e| e.to_string())?;
    for i in 0..df.height() {
        let mut record = Vec::with_capacity(df.width());
        for c in df.get_columns() {
            let v = c.get(i).map_err(|e| e.to_string())?;
            record.push(cell(&v));
        }
        w.write_record(&record).map_err(|e| e.to_string())?;
    }
    let bytes = w.into_inner().map_err(|e| e.to_string())?;
    String::from_utf8(bytes).map_err(|e| e.to_string())
}

fn cell(v: &AnyValue) -> String {
    match v {
        AnyValue::Null => String::new(),
        AnyValue::String(s) => s.to_string(),
        AnyValue::StringOwned(s) => s.to_string(),
        AnyValue::Boolean(b) => b.to_string(),
        AnyValue::Float64(x) if x.is_nan() => String::new(),
        AnyValue::Float32(x) if x.is_nan() => String::new(),
        AnyValue::Float64(x) => x.to_string(),
        AnyValue::Float32(x) => x.to_string(),
        AnyValue::List(s) => (0..s.len())
            .filter_map(|i| s.get(i).ok().map(|v| cell(&v)))
            .collect::<Vec<_>>()
            .join(";"),
        other => other.to_string(),
    }
}
