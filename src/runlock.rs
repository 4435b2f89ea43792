//! One process per run folder: an advisory `flock` on `<run>/.lock`, taken before a run is
//! trained and held until it ends. The kernel drops the lock when its owner exits (killed, or
//! a requeued Slurm task whose original died), so a dead owner never keeps a run from being
//! resumed; a live one makes every other process skip that run instead of training it twice at
//! once.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::Path;

use anyhow::{Context, Result};

/// The lock file's name inside a run folder.
pub const FILE: &str = ".lock";

/// A held run lock (released when dropped).
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

/// Take the lock of run folder `dir` (created if missing) without waiting: `Ok(Err(owner))`
/// when another live process holds it (`owner`: what it wrote, `pid … on host`).
pub fn try_lock(dir: &Path) -> Result<Result<RunLock, String>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join(FILE);
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    // SAFETY: flock on a file descriptor this function owns.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
            let mut owner = String::new();
            let _ = f.read_to_string(&mut owner);
            let owner = owner.trim();
            return Ok(Err(if owner.is_empty() {
                "another process".into()
            } else {
                owner.to_string()
            }));
        }
        return Err(err).with_context(|| format!("cannot lock {}", path.display()));
    }
    f.set_len(0)?;
    f.rewind()?;
    write!(
        f,
        "pid {} on {}",
        std::process::id(),
        crate::util::hostname().unwrap_or_else(|| "this host".into())
    )?;
    f.flush()?;
    Ok(Ok(RunLock { _file: f }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let d = tempfile::tempdir().unwrap();
        let run = d.path().join("fold0-seed0");
        let first = try_lock(&run).unwrap().expect("free");
        // flock locks belong to the open file description: a second open in this process
        // contends like another process would.
        let owner = try_lock(&run).unwrap().expect_err("held");
        assert!(owner.contains(&std::process::id().to_string()), "{owner}");
        drop(first);
        assert!(try_lock(&run).unwrap().is_ok());
    }
}
