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

/// This process's children, from `/proc`: the `children` file of each of
/// our threads where the kernel has them, else every process's `stat`.
/// The sweep runs after every job, on the way to its publish, and its
/// scans of every process of the machine (~150 here) took 11.5 ms of a
/// no-op job in a perf trace; our threads are a handful.
fn children() -> Vec<Child> {
    let pids = children_of_threads().unwrap_or_else(every_pid);
    let me = std::process::id() as i32;
    pids.into_iter().filter_map(|pid| child(pid, me)).collect()
}

/// Every process id on the machine.
fn every_pid() -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return vec![] };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok()).collect()
}

/// The children of every thread of ours, from
/// `/proc/self/task/<tid>/children`; `None` on a kernel without them
/// (`CONFIG_PROC_CHILDREN`). Orphans re-parented to us go to a live
/// thread of ours, so they are listed too.
fn children_of_threads() -> Option<Vec<i32>> {
    use std::io::Read;
    let mut pids = Vec::new();
    let mut seen_one = false;
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        // Read in one call: the file is made as it is read, and a list
        // read in pieces may skip a child that came or went in between.
        let mut text = Vec::with_capacity(64 * 1024);
        match std::fs::File::open(task.path().join("children")) {
            Ok(mut file) => {
                if file.read_to_end(&mut text).is_err() {
                    continue;
                }
            }
            // The thread is there, its `children` file is not: a kernel
            // without them.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && task.path().exists() => return None,
            // A thread that just ended: its children moved to a live one.
            Err(_) => continue,
        }
        seen_one = true;
        pids.extend(String::from_utf8_lossy(&text).split_whitespace().filter_map(|p| p.parse::<i32>().ok()));
    }
    seen_one.then_some(pids)
}

/// `pid`, if it is a child of `me`.
fn child(pid: i32, me: i32) -> Option<Child> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid pgrp ...`; comm may hold anything, `)` too.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
    let state = fields.next()?;
    let ppid: i32 = fields.next()?.parse().ok()?;
    let pgrp: i32 = fields.next()?.parse().ok()?;
    (ppid == me).then_some(Child { pid, pgrp, zombie: state == "Z" })
}

/// Whether the process's environment holds `needle` (`NAME=value`).
fn bears(pid: i32, needle: &[u8]) -> bool {
    std::fs::read(format!("/proc/{pid}/environ"))
        .map(|env| env.split(|&b| b == 0).any(|var| var == needle))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::process::{Command, Stdio};

    /// The threads' lists find what the scan of every process finds: the
    /// children of several threads, and an orphan re-parented to us.
    /// (Other tests run beside this one, so only our own are compared.)
    #[test]
    fn the_children_of_our_threads_are_all_our_children() {
        become_subreaper();
        let spawn = || Command::new("sleep").arg("30").stdin(Stdio::null()).spawn().unwrap();
        let mut kids = vec![spawn()];
        kids.extend(std::thread::spawn(move || vec![spawn(), spawn()]).join().unwrap());
        // A grandchild whose parent exits: it is re-parented to us.
        let out = Command::new("sh").args(["-c", "sleep 30 >/dev/null 2>&1 & echo $!"]).output().unwrap();
        let orphan: i32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        let ours: BTreeSet<i32> = kids.iter().map(|k| k.id() as i32).chain([orphan]).collect();

        let me = std::process::id() as i32;
        let listed = |pids: Vec<i32>| -> BTreeSet<i32> {
            pids.into_iter().filter_map(|p| child(p, me)).map(|c| c.pid).filter(|p| ours.contains(p)).collect()
        };
        let scan = listed(every_pid());
        let fast = listed(children_of_threads().expect("this kernel lists each thread's children"));

        let _ = kill(Pid::from_raw(orphan), Signal::SIGKILL);
        let _ = waitpid(Pid::from_raw(orphan), None);
        for k in &mut kids {
            let _ = k.kill();
            let _ = k.wait();
        }
        assert_eq!(scan, ours, "the full scan");
        assert_eq!(fast, ours, "the threads' lists");
    }
}
