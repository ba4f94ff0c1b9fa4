//! Jobs whose git-ci died. A worker killed with SIGKILL (or by the OOM
//! killer, or a crash) cannot stop the jobs it ran: their process groups
//! live on, re-parented to init, until their own end or never (a service,
//! a `sleep infinity`). Their claims lapse and other workers run the jobs
//! again, so a stray copy keeps spending the machine and may repeat side
//! effects (a deploy) beside the new run.
//!
//! Every job's processes bear a mark ([`super::orphans::MARK_VAR`]) that
//! starts with its owner: the pid and start time of the git-ci process
//! that ran it (`<pid>-<start>-<random>`). [`kill_strays`] kills every
//! process of this user whose owner is no longer alive (the pid is gone,
//! or now names a process started at another time). Workers call it when
//! they start and now and then while they run, so a killed worker's jobs
//! die when any git-ci worker of the same user next looks on the machine.

use std::sync::OnceLock;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// A process killed because its git-ci was gone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stray {
    pub pid: i32,
    /// The git-ci process that had run it (dead).
    pub owner: i32,
}

/// `<pid>-<start time>` of this process: the owner part of every mark it
/// hands out.
pub fn owner_tag() -> &'static str {
    static TAG: OnceLock<String> = OnceLock::new();
    TAG.get_or_init(|| {
        let me = std::process::id() as i32;
        format!("{me}-{}", start_time(me).unwrap_or_default())
    })
}

/// Kills (SIGKILL) every process of this user bearing the mark of a git-ci
/// that is no longer alive; returns what it killed. Marks of older git-ci
/// versions (no owner in them) are left alone.
pub fn kill_strays() -> Vec<Stray> {
    let me = std::process::id() as i32;
    use std::os::unix::fs::MetadataExt;
    // Our own uid, as /proc shows it (no libc call needed).
    let Ok(uid) = std::fs::metadata("/proc/self").map(|m| m.uid()) else { return vec![] };
    let Ok(dir) = std::fs::read_dir("/proc") else { return vec![] };
    let mut killed = Vec::new();
    for pid in dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok()) {
        if pid == me || !owned_by(pid, uid) {
            continue;
        }
        let Some((owner, started)) = mark_owner(pid) else { continue };
        if start_time(owner).as_deref() == Some(started.as_str()) {
            continue;
        }
        if kill(Pid::from_raw(pid), Signal::SIGKILL).is_ok() {
            killed.push(Stray { pid, owner });
        }
    }
    killed
}

/// Whether `/proc/<pid>` belongs to `uid`: other users' jobs are theirs to
/// clean up, even for a worker running as root.
fn owned_by(pid: i32, uid: u32) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(format!("/proc/{pid}")).is_ok_and(|m| m.uid() == uid)
}

/// The owner (`pid`, start time) in the process's mark, if it bears one
/// that names an owner.
fn mark_owner(pid: i32) -> Option<(i32, String)> {
    let env = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    let prefix = format!("{}=", super::orphans::MARK_VAR);
    let var = env.split(|&b| b == 0).find_map(|v| v.strip_prefix(prefix.as_bytes()))?;
    parse_mark(std::str::from_utf8(var).ok()?)
}

/// `<pid>-<start>-<random>` → (pid, start); `None` for an older mark (the
/// random part alone).
fn parse_mark(mark: &str) -> Option<(i32, String)> {
    let mut parts = mark.splitn(3, '-');
    let (pid, start, _random) = (parts.next()?, parts.next()?, parts.next()?);
    Some((pid.parse().ok()?, start.to_owned()))
}

/// When the process started (field 22 of `/proc/<pid>/stat`, clock ticks
/// since boot), if it is alive.
fn start_time(pid: i32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ...`: comm may hold anything, `)` too. After the
    // comm, the start time is the 20th field (22nd of the line).
    stat.rsplit_once(')')?.1.split_whitespace().nth(19).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_name_their_owner_and_older_marks_name_none() {
        assert_eq!(parse_mark("4242-98765-00ab12cd34ef5678"), Some((4242, "98765".into())));
        assert_eq!(parse_mark("00ab12cd34ef5678"), None, "a mark of an older git-ci");
        let tag = owner_tag();
        let me = std::process::id().to_string();
        assert!(tag.starts_with(&format!("{me}-")) && tag.len() > me.len() + 1, "{tag}");
    }

    #[test]
    fn a_process_whose_owner_is_gone_is_killed_and_one_whose_owner_lives_is_not() {
        // An owner that lived and died: a short child of ours.
        let mut gone = std::process::Command::new("true").spawn().unwrap();
        let gone_pid = gone.id() as i32;
        let gone_start = start_time(gone_pid).unwrap_or_default();
        gone.wait().unwrap();
        let spawn = |mark: &str| {
            std::process::Command::new("sleep").arg("60").env(super::super::orphans::MARK_VAR, mark).spawn().unwrap()
        };
        let mut stray = spawn(&format!("{gone_pid}-{gone_start}-1"));
        let mut kept = spawn(&format!("{}-2", owner_tag()));
        // Let both exec, so that their environment is the mark's.
        std::thread::sleep(std::time::Duration::from_millis(100));
        let killed = kill_strays();
        assert!(killed.iter().any(|s| s.pid == stray.id() as i32), "{killed:?}");
        assert!(!killed.iter().any(|s| s.pid == kept.id() as i32), "{killed:?}");
        assert!(stray.wait().unwrap().code().is_none(), "killed by a signal");
        assert_eq!(kept.try_wait().unwrap(), None, "its owner (this test) lives: still running");
        kept.kill().unwrap();
        kept.wait().unwrap();
    }
}
