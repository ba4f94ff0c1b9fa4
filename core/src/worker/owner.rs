//! Which process a worker name belongs to.
//!
//! A name is one worker: its registration, its claims, its `done` chain.
//! Two processes under one name would overwrite each other's registration
//! and race for the same claims, so a worker marks its registration with
//! its machine, process id and a random id of this run, and will not start
//! under a name whose registration another live process refreshes.

use std::time::SystemTime;

use crate::model::WorkerInfo;

/// This process, as its registration names it.
#[derive(Clone, Debug)]
pub struct Owner {
    pub host: String,
    pub pid: u32,
    pub instance: String,
}

impl Owner {
    pub fn this_process() -> Owner {
        let instance = (0..4).map(|_| format!("{:04x}", fastrand::u16(..))).collect();
        Owner { host: hostname(), pid: std::process::id(), instance }
    }

    pub fn mark(&self, info: &mut WorkerInfo) {
        info.host = Some(self.host.clone());
        info.pid = Some(self.pid);
        info.instance = Some(self.instance.clone());
    }

    /// Whether `info` was written by this very run.
    pub fn wrote(&self, info: &WorkerInfo) -> bool {
        info.instance.as_deref() == Some(self.instance.as_str())
    }

    /// Who else holds the name, when `info` is the live registration of
    /// another process: `host pid N, last seen T`. A registration gone
    /// stale, one left by a process of this machine that is no more (or
    /// by an earlier run that had our pid, as in a restarted container),
    /// and one of a worker too old to say who wrote it, are taken over.
    pub fn other_holder(&self, info: &WorkerInfo, now: SystemTime) -> Option<String> {
        if self.wrote(info) || !info.seen_lately(now) {
            return None;
        }
        let (host, pid) = (info.host.as_deref()?, info.pid?);
        if host == self.host && (pid == self.pid || !process_alive(pid)) {
            return None;
        }
        Some(format!("host {host} pid {pid}, last seen {}", info.last_seen))
    }
}

/// This machine's name, made safe for a ref component; `worker` if unknown.
pub fn hostname() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let clean: String = raw
        .trim()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' { c } else { '-' })
        .collect();
    if clean.is_empty() { "worker".into() } else { clean }
}

/// Whether a process `pid` of this machine runs git-ci (a pid reused by
/// something else since does not count).
fn process_alive(pid: u32) -> bool {
    let Ok(raw) = i32::try_from(pid) else {
        return false;
    };
    let exists = match nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), None) {
        Ok(()) => true,
        Err(e) => e == nix::errno::Errno::EPERM,
    };
    match std::fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(cmdline) => exists && cmdline.windows(6).any(|w| w == b"git-ci"),
        Err(_) => exists,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn a_name_is_refused_only_to_another_live_process() {
        let me = Owner::this_process();
        let now = SystemTime::now();
        let mut info = WorkerInfo::new("w", BTreeMap::new(), vec![], 1, 1000);
        assert_eq!(me.other_holder(&info, now), None, "an older worker's document: taken over");
        let other = Owner { host: "elsewhere".into(), pid: 1, instance: "x".into() };
        other.mark(&mut info);
        let holder = me.other_holder(&info, now).expect("another machine's live worker");
        assert!(holder.starts_with("host elsewhere pid 1, last seen "), "{holder}");
        assert_eq!(me.other_holder(&info, now + std::time::Duration::from_secs(600)), None, "stale");
        let here_gone = Owner { host: me.host.clone(), pid: u32::MAX - 1, instance: "y".into() };
        here_gone.mark(&mut info);
        assert_eq!(me.other_holder(&info, now), None, "a process of this machine that is gone");
        let restarted = Owner { host: me.host.clone(), pid: me.pid, instance: "z".into() };
        restarted.mark(&mut info);
        assert_eq!(me.other_holder(&info, now), None, "an earlier run with our pid");
        me.mark(&mut info);
        assert!(me.wrote(&info) && me.other_holder(&info, now).is_none());
        assert_ne!(me.instance, Owner::this_process().instance);
    }
}
