//! The processes a job leaves behind. A `setsid` child or a double-forked
//! daemon leaves the job's process group, so the group kill at the end of
//! a job misses it, and it outlives the job (and its timeout) for good.
//!
//! So the process running jobs becomes a child subreaper: such orphans are
//! re-parented to it instead of to init. Each job's shell gets a mark in
//! its environment ([`MARK_VAR`], unique per run) that everything it
//! starts inherits; when the job ends, every child of ours bearing the
//! mark is killed, layer by layer as their own children fall to us, and
//! reaped. Another running job's processes bear another mark and are left
//! alone. A process that both leaves the session and clears its
//! environment escapes this; only a cgroup would catch it.
//!
//! Orphans that exit by themselves are zombies of ours: the sweep reaps
//! those too, but only children outside our own process group (the git
//! commands we run stay in it, and their owners wait for them) that are
//! no running job's shell (its runner waits for it).

use std::sync::{Mutex, MutexGuard, Once};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::Pid;

/// The environment variable marking a job's processes.
pub const MARK_VAR: &str = "GIT_CI_RUN_MARK";

/// A fresh mark for one run, naming this process as its owner (see
/// [`super::strays`]: a job outliving its git-ci is found by it).
pub fn new_mark() -> String {
    format!("{}-{:016x}", super::strays::owner_tag(), fastrand::u64(..))
}

/// Makes this process the reaper of its orphaned descendants, once.
pub fn become_subreaper() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
            tracing::warn!("could not become a child subreaper ({e}): processes a job detaches may outlive it");
        }
    });
}

/// The shells of running jobs: their runners wait for them, the sweep
/// must not reap them. Held while a shell is spawned, so that no sweep
/// sees it between its start and its entry here.
static SHELLS: Mutex<Vec<i32>> = Mutex::new(Vec::new());

pub fn shells() -> MutexGuard<'static, Vec<i32>> {
    SHELLS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Kills and reaps every process of ours bearing `mark`. Bounded: a job
/// forking faster than it is killed is left to the next sweep.
pub fn sweep(mark: &str) {
    let needle = format!("{MARK_VAR}={mark}");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let marked: Vec<i32> = {
            let shells = shells();
            children()
                .into_iter()
                .filter(|c| !c.zombie && !shells.contains(&c.pid) && bears(c.pid, needle.as_bytes()))
                .map(|c| c.pid)
                .collect()
        };
        for &pid in &marked {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        // Their children are re-parented to us as they die: the next
        // round finds them.
        reap(&marked, deadline);
        reap_zombies();
        if marked.is_empty() || Instant::now() >= deadline {
            return;
        }
    }
}

/// Waits for each killed child of ours and reaps it.
fn reap(pids: &[i32], deadline: Instant) {
    for &pid in pids {
        loop {
            match waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
                Ok(nix::sys::wait::WaitStatus::StillAlive) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                _ => break,
            }
        }
    }
}

/// Reaps the orphans that exited by themselves (see the module's doc).
fn reap_zombies() {
    let own_group = nix::unistd::getpgrp().as_raw();
    let shells = shells();
    for c in children() {
        if c.zombie && c.pgrp != own_group && !shells.contains(&c.pid) {
            let _ = waitpid(Pid::from_raw(c.pid), Some(WaitPidFlag::WNOHANG));
        }
    }
}

struct Child {
    pid: i32,
    pgrp: i32,
    zombie: bool,
}

/// This process's children, from `/proc`.
fn children() -> Vec<Child> {
    let me = std::process::id() as i32;
    let Ok(dir) = std::fs::read_dir("/proc") else { return vec![] };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // `pid (comm) state ppid pgrp ...`; comm may hold anything, `)` too.
            let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
            let state = fields.next()?;
            let ppid: i32 = fields.next()?.parse().ok()?;
            let pgrp: i32 = fields.next()?.parse().ok()?;
            (ppid == me).then_some(Child { pid, pgrp, zombie: state == "Z" })
        })
        .collect()
}

/// Whether the process's environment holds `needle` (`NAME=value`).
fn bears(pid: i32, needle: &[u8]) -> bool {
    std::fs::read(format!("/proc/{pid}/environ"))
        .map(|env| env.split(|&b| b == 0).any(|var| var == needle))
        .unwrap_or(false)
}
