//! The `emolab` binary: the process set up (allocators, signals, exit) around the command line
//! of [`cli`]; no logic of its own.

mod cli;

use std::process::ExitCode;

use clap::Parser;

use cli::Cli;

/// mimalloc keeps freed memory for reuse: the feature stage allocates and frees large buffers
/// for every part, which glibc would map and unmap each time.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// LibTorch allocates its large training buffers (conv activations of a batch) with glibc
/// malloc, which maps and unmaps each one, so a CPU epoch spends much of its time in page
/// faults. Served from the heap and kept there, the same buffers are reused batch after batch.
/// Rust's own allocations use mimalloc.
fn keep_large_buffers() {
    // SAFETY: mallopt only changes glibc's allocation policy; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}

/// End the process once its work is done, without running the exit handlers: LibTorch's static
/// destructors deregister every operator it registered at load time, a visible delay at the
/// end of every command. Everything emolab writes is complete by
/// then (files are renamed into place before a command returns); standard output and error are
/// flushed here.
fn quick_exit(code: i32) -> ! {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: `_exit` ends the process; nothing runs after it, so no Rust invariant is observed
    // broken.
    unsafe { libc::_exit(code) }
}

fn main() {
    // A closed pipe (`emolab status --json | head`) ends the process quietly, as for any
    // Unix tool, instead of a panic in `println!`.
    // SAFETY: restores the default disposition of one signal before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    if std::env::var_os("EMOLAB_MALLOC_DEFAULT").is_none() {
        keep_large_buffers();
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to standard output with status 0; usage errors to standard
            // error with status 2, as `Cli::parse` would.
            let _ = e.print();
            quick_exit(e.exit_code())
        }
    };
    let code = match cli::dispatch::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    };
    quick_exit(if code == ExitCode::SUCCESS { 0 } else { 1 })
}
