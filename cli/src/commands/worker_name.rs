//! One process per worker name on this machine.
//!
//! A worker's name picks its registration, its claims, its `done` chain,
//! its work directory and its cache repository: two processes must never
//! share one. Each holds a lock on `<cache>/names/<name>.lock` while it
//! runs; a default name (the host's) that another process holds becomes
//! `host-2`, `host-3`... The hub's registration then catches the same name
//! taken on another machine ([`git_ci_core::worker::NameError`]).

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;

use nix::fcntl::{Flock, FlockArg};

use crate::error::{CliError, CliResult};

/// A name this process holds until dropped.
pub struct HeldName {
    pub name: String,
    _lock: Flock<File>,
}

/// Takes `explicit` (a usage error if another process here holds it), or
/// the first free name of `base`, `base-2`, `base-3`...
pub fn hold(explicit: Option<String>, base: &str) -> CliResult<HeldName> {
    if let Some(name) = explicit {
        return match try_hold(&name)? {
            Ok(held) => Ok(held),
            Err(pid) => Err(CliError::usage_hint(
                format!("another worker on this machine{pid} already runs as {name:?}"),
                "give this one another name (`--name`, git config ci.worker.name) or stop the other",
            )),
        };
    }
    for n in 1..=MAX_DEFAULTS {
        let name = if n == 1 { base.to_owned() } else { format!("{base}-{n}") };
        if let Ok(held) = try_hold(&name)? {
            return Ok(held);
        }
    }
    Err(CliError::usage(format!(
        "{MAX_DEFAULTS} workers already run on this machine under default names: name this one with --name"
    )))
}

const MAX_DEFAULTS: u32 = 100;

/// The name held, or who holds it (` (pid N)`, or nothing if unknown).
fn try_hold(name: &str) -> CliResult<Result<HeldName, String>> {
    let dir = git_ci_core::hub::cache_root().join("names");
    let path = dir.join(format!("{name}.lock"));
    let cannot = |e: &dyn std::fmt::Display| CliError::Internal(format!("could not lock {}: {e}", path.display()));
    std::fs::create_dir_all(&dir).map_err(|e| cannot(&e))?;
    let file =
        File::options().read(true).write(true).create(true).truncate(false).open(&path).map_err(|e| cannot(&e))?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => {
            // Who holds it, for the next process to be told: written over
            // the last holder's pid, padded to one width. Truncating the
            // file first made ext4 flush it as it closed (its guard for
            // files replaced by truncation), up to 8 ms of every `git ci
            // run` on a busy disk.
            let pid = format!("{:<10}\n", std::process::id());
            let written = lock.write_all_at(pid.as_bytes(), 0).and_then(|()| match lock.metadata()?.len() {
                longer if longer > pid.len() as u64 => lock.set_len(pid.len() as u64),
                _ => Ok(()),
            });
            written.map_err(|e| cannot(&e))?;
            Ok(Ok(HeldName { name: name.to_owned(), _lock: lock }))
        }
        Err((mut file, nix::errno::Errno::EWOULDBLOCK)) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            let pid = pid.trim();
            Ok(Err(if pid.is_empty() { String::new() } else { format!(" (pid {pid})") }))
        }
        Err((_, e)) => Err(cannot(&e)),
    }
}
