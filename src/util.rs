//! Small shared helpers: atomic file writes, content hashing, progress bars.
//!
//! Every file emolab writes goes through [`atomic_write`]: the bytes land in a temporary file in
//! the destination folder, are flushed, and the temporary file is renamed over the target. A run
//! killed mid-way therefore leaves either the old file or the new one, never half of one.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};

/// Write a file atomically: `fill` writes into a temp file next to `path`, which is then renamed.
pub fn atomic_write<F>(path: &Path, fill: F) -> Result<()>
where
    F: FnOnce(&mut BufWriter<File>) -> Result<()>,
{
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create folder {}", dir.display()))?;
    }
    let tmp = temp_path(path);
    let result = (|| -> Result<()> {
        let file =
            File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        let mut w = BufWriter::new(file);
        fill(&mut w)?;
        w.flush()?;
        w.get_ref().sync_all()?;
        Ok(())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e.context(format!("writing {}", path.display())));
    }
    std::fs::rename(&tmp, path)
        .with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))
}

/// Write bytes atomically.
pub fn atomic_write_bytes(path: &Path, bytes: &[u8]) -> Result<()> {
    atomic_write(path, |w| Ok(w.write_all(bytes)?))
}

/// A temp name unique to this process and call, in the same folder (so rename is atomic).
pub fn temp_path(path: &Path) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = path
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.{n}.tmp", std::process::id()))
}

/// Hex BLAKE3 hash of bytes (the content hash of a clip).
pub fn content_hash(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// Whether progress should be plain lines: stderr is not a terminal (a log file, Slurm, CI),
/// where a bar would draw nothing.
pub fn plain_progress() -> bool {
    use std::io::IsTerminal;
    !std::io::stderr().is_terminal()
}

/// Seconds between the plain progress lines of a bar when nobody watches
/// (`$EMOLAB_PROGRESS_INTERVAL`, default 30).
pub fn progress_interval() -> std::time::Duration {
    let s = std::env::var("EMOLAB_PROGRESS_INTERVAL")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|v| *v >= 0.0)
        .unwrap_or(30.0);
    std::time::Duration::from_secs_f64(s)
}

/// A progress bar on stderr (hidden when `show` is false). When stderr is not a terminal the
/// bar is drawn as a plain line (`featurize 120/535 (22%), 41/s, elapsed 3s, ETA 10s`) at most
/// every [`progress_interval`], so a Slurm or nohup log shows how far a long command is.
pub fn progress_bar(len: u64, what: &str, show: bool) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    if plain_progress() {
        let bar = ProgressBar::with_draw_target(
            Some(len),
            indicatif::ProgressDrawTarget::term_like_with_hz(
                Box::new(PlainLines::new(progress_interval())),
                20,
            ),
        );
        bar.set_style(
            ProgressStyle::with_template(&format!(
                "{what} {{pos}}/{{len}} ({{percent}}%), elapsed {{elapsed}}, ETA {{eta}} {{msg}}"
            ))
            .expect("valid template"),
        );
        return bar;
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{what:>10} [{{bar:30}}] {{pos}}/{{len}} {{per_sec}} ETA {{eta}} {{msg}}"
        ))
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar
}

/// A line above a bar (`bar.println` on a terminal; a plain stderr line otherwise, where the
/// bar's own lines are rate-limited and would swallow it).
pub fn bar_println(bar: &ProgressBar, line: impl AsRef<str>) {
    if bar.is_hidden() {
        return; // --quiet
    }
    if plain_progress() {
        eprintln!("{}", line.as_ref());
    } else {
        bar.println(line.as_ref());
    }
}

/// An indicatif "terminal" that writes what a bar draws as whole lines on stderr: the first
/// draw, then at most one per `every`, and the last draw not yet written when the bar goes
/// away; cursor movements and clears are dropped.
#[derive(Debug)]
pub struct PlainLines {
    every: std::time::Duration,
    /// (text drawn since the last flush, when a line was last written, last lines not written).
    state: std::sync::Mutex<(String, Option<std::time::Instant>, Vec<String>)>,
    sink: Option<std::sync::Arc<std::sync::Mutex<Vec<String>>>>,
}

impl PlainLines {
    pub fn new(every: std::time::Duration) -> PlainLines {
        PlainLines {
            every,
            state: std::sync::Mutex::new((String::new(), None, Vec::new())),
            sink: None,
        }
    }

    /// Lines go to `sink` instead of stderr (for tests).
    pub fn capturing(
        every: std::time::Duration,
        sink: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    ) -> PlainLines {
        PlainLines {
            every,
            state: std::sync::Mutex::new((String::new(), None, Vec::new())),
            sink: Some(sink),
        }
    }

    fn write_out(&self, lines: &[String]) {
        for l in lines {
            match &self.sink {
                Some(s) => s.lock().unwrap_or_else(|e| e.into_inner()).push(l.clone()),
                None => eprintln!("{l}"),
            }
        }
    }

    fn emit(&self) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let text = std::mem::take(&mut st.0).replace('\r', "");
        let lines: Vec<String> = text
            .lines()
            .map(|l| l.trim_end().to_string())
            .filter(|l| !l.is_empty())
            .collect();
        if lines.is_empty() {
            return;
        }
        if st.1.is_none_or(|t| t.elapsed() >= self.every) {
            st.1 = Some(std::time::Instant::now());
            st.2.clear();
            drop(st);
            self.write_out(&lines);
        } else {
            st.2 = lines;
        }
    }
}

impl Drop for PlainLines {
    fn drop(&mut self) {
        let last = std::mem::take(&mut self.state.get_mut().unwrap_or_else(|e| e.into_inner()).2);
        self.write_out(&last);
    }
}

impl indicatif::TermLike for PlainLines {
    fn width(&self) -> u16 {
        200
    }
    fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn write_line(&self, s: &str) -> std::io::Result<()> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.0.push_str(s);
        st.0.push('\n');
        Ok(())
    }
    fn write_str(&self, s: &str) -> std::io::Result<()> {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .push_str(s);
        Ok(())
    }
    fn clear_line(&self) -> std::io::Result<()> {
        Ok(())
    }
    fn flush(&self) -> std::io::Result<()> {
        self.emit();
        Ok(())
    }
}

/// This machine's host name.
pub fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
}

/// Whether process `pid` is alive on this machine and runs emolab.
pub fn emolab_process_alive(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).contains("emolab"))
        .unwrap_or(false)
}

/// The Slurm job this process runs in (`JOBID_TASK` for an array task), if any.
pub fn current_job() -> Option<String> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    match (var("SLURM_ARRAY_JOB_ID"), var("SLURM_ARRAY_TASK_ID")) {
        (Some(j), Some(t)) => Some(format!("{j}_{t}")),
        _ => var("SLURM_JOB_ID"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/x.txt");
        atomic_write_bytes(&p, b"one").unwrap();
        atomic_write_bytes(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(p.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("x.txt")]);
    }

    #[test]
    fn unattended_bars_print_plain_lines_at_most_every_interval() {
        let sink = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let bar = ProgressBar::with_draw_target(
            Some(10),
            indicatif::ProgressDrawTarget::term_like(Box::new(PlainLines::capturing(
                std::time::Duration::from_secs(3600),
                sink.clone(),
            ))),
        );
        bar.set_style(ProgressStyle::with_template("clips {pos}/{len}").unwrap());
        for _ in 0..10 {
            bar.inc(1);
        }
        bar.finish_and_clear();
        drop(bar);
        let lines = sink.lock().unwrap().clone();
        assert_eq!(lines.len(), 2, "the first and the last line: {lines:?}");
        assert!(lines[0].starts_with("clips "), "{lines:?}");
        assert_eq!(lines[1], "clips 10/10", "{lines:?}");
        assert!(!lines[0].contains('\x1b'), "no escape codes: {lines:?}");
        // With no interval, every draw is a line of its own.
        let sink = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let bar = ProgressBar::with_draw_target(
            Some(3),
            indicatif::ProgressDrawTarget::term_like(Box::new(PlainLines::capturing(
                std::time::Duration::ZERO,
                sink.clone(),
            ))),
        );
        bar.set_style(ProgressStyle::with_template("clips {pos}/{len}").unwrap());
        for _ in 0..3 {
            bar.inc(1);
        }
        bar.finish();
        let lines = sink.lock().unwrap().clone();
        assert!(lines.contains(&"clips 3/3".to_string()), "{lines:?}");
    }

    #[test]
    fn failed_fill_keeps_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.txt");
        atomic_write_bytes(&p, b"old").unwrap();
        let err = atomic_write(&p, |w| {
            w.write_all(b"partial")?;
            anyhow::bail!("boom")
        });
        assert!(err.is_err());
        assert_eq!(std::fs::read(&p).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}

/// A data frame as a plain, aligned text table (header, rule, one line per row; text left,
/// numbers right; nulls as `-`): what `run` prints, readable in a log file.
pub fn plain_table(df: &polars::prelude::DataFrame) -> String {
    use polars::prelude::AnyValue;
    let names: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|c| c.to_string())
        .collect();
    let cell = |v: AnyValue| match v {
        AnyValue::Null => "-".to_string(),
        AnyValue::String(s) => s.to_string(),
        AnyValue::StringOwned(s) => s.to_string(),
        v => v.to_string(),
    };
    let cols = df.get_columns();
    let rows: Vec<Vec<String>> = (0..df.height())
        .map(|i| {
            cols.iter()
                .map(|c| c.get(i).map(cell).unwrap_or_else(|_| "-".into()))
                .collect()
        })
        .collect();
    let numeric: Vec<bool> = cols
        .iter()
        .map(|c| c.dtype().is_primitive_numeric())
        .collect();
    let width: Vec<usize> = (0..names.len())
        .map(|j| {
            rows.iter()
                .map(|r| r[j].chars().count())
                .chain([names[j].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[String]| -> String {
        cells
            .iter()
            .enumerate()
            .map(|(j, c)| {
                let pad = width[j].saturating_sub(c.chars().count());
                if numeric[j] {
                    format!("{}{c}", " ".repeat(pad))
                } else {
                    format!("{c}{}", " ".repeat(pad))
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = vec![line(&names)];
    out.push(
        width
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join("  "),
    );
    out.extend(rows.iter().map(|r| line(r)));
    out.join("\n")
}

#[cfg(test)]
mod plain_table_tests {
    use super::*;
    use polars::prelude::*;

    #[test]
    fn aligned_without_dtypes_or_borders() {
        let df = df!(
            "model" => ["cnn", "svm_linear"],
            "runs" => [10u32, 2],
            "UA" => ["0.703 ± 0.063", "0.745"],
        )
        .unwrap();
        let t = plain_table(&df);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "model       runs  UA");
        assert_eq!(lines[1], "----------  ----  -------------");
        assert_eq!(lines[2], "cnn           10  0.703 ± 0.063");
        assert_eq!(lines[3], "svm_linear     2  0.745");
        assert!(!t.contains("str") && !t.contains('┆'));
    }
}
