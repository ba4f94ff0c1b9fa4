//! A local hub's refs watched from a helper process, for the commands
//! that wait on a hub and then exit: `submit --wait`, `run`, `wait`,
//! `retry --wait` and `log --follow`.
//!
//! Why not a watch of our own: when the last descriptor of an inotify
//! instance closes, the kernel tears its watches down and waits out a
//! grace period of its own (0.1 to 20 ms here), paid by whichever process
//! closes it. A process closes its descriptors as it exits, before its
//! parent hears that it ended, so a waiter whose answer was ready the
//! moment its job was published made its user wait that long again: a
//! third of `submit --wait` of a no-op job. The helper (`git-ci
//! ref-watcher GIT_DIR`, hidden) holds the watch instead and writes a
//! line each time the refs may have changed, and a first one once it
//! watches. It ends when its stdin, a pipe only we write, reads
//! end-of-file, which is when we are gone: its own teardown then costs
//! nobody anything. It holds none of our other descriptors, so nothing
//! reading our output waits for it either.

use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::Duration;

use clap::Args;
use git_ci_core::ref_watch;

use crate::error::CliResult;

/// Watches a hub's refs for a waiting git-ci (internal).
#[derive(Debug, Args)]
pub struct RefWatcherArgs {
    /// The hub's git directory.
    pub git_dir: PathBuf,
}

/// The helper's side: a line on stdout for each change, until stdin or
/// stdout closes.
pub fn cmd_ref_watcher(args: RefWatcherArgs) -> CliResult {
    let (tx, rx) = mpsc::channel::<()>();
    let Some(_watch) = ref_watch::watch(&args.git_dir, move || {
        let _ = tx.send(());
    }) else {
        // Nothing written: the waiter reads end-of-file and watches by
        // itself.
        return Ok(());
    };
    std::thread::spawn(|| {
        // Our end: the waiter is gone once its end of stdin closes.
        let _ = std::io::stdin().lock().read_to_end(&mut Vec::new());
        std::process::exit(0);
    });
    let mut out = std::io::stdout().lock();
    // The first line says the watch is up: whatever the waiter read before
    // it may be stale, so it reads again.
    if writeln!(out).and_then(|()| out.flush()).is_err() {
        return Ok(());
    }
    while rx.recv().is_ok() {
        while rx.try_recv().is_ok() {}
        if writeln!(out).and_then(|()| out.flush()).is_err() {
            break;
        }
    }
    Ok(())
}

/// The waiter's side: a helper watching `git_dir`.
pub struct RefWatcher {
    changes: Receiver<()>,
    /// Held, never written: its close at our exit ends the helper.
    _alive: ChildStdin,
}

impl RefWatcher {
    /// Starts the helper; `None` when it cannot be started. Changes that
    /// happen before it watches are reported by its first line.
    pub fn spawn(git_dir: &Path) -> Option<RefWatcher> {
        let exe = std::env::current_exe().ok()?;
        let mut child = Command::new(exe)
            .arg("ref-watcher")
            .arg(git_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let (stdin, stdout) = (child.stdin.take()?, child.stdout.take()?);
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                if line.is_err() || tx.send(()).is_err() {
                    break;
                }
            }
        });
        // `child` is not waited for: it ends after we do.
        Some(RefWatcher { changes: rx, _alive: stdin })
    }

    /// Blocks until the helper reports a change, or `timeout` passes.
    /// `Err` once the helper is gone (the caller watches another way).
    pub fn wait(&self, timeout: Duration) -> Result<bool, Gone> {
        match self.changes.recv_timeout(timeout) {
            Ok(()) => {
                while self.changes.try_recv().is_ok() {}
                Ok(true)
            }
            Err(RecvTimeoutError::Timeout) => Ok(false),
            Err(RecvTimeoutError::Disconnected) => Err(Gone),
        }
    }
}

/// The helper ended or never watched.
#[derive(Debug)]
pub struct Gone;
