//! Waiting for a job's shell without reaping it, so that its process group
//! id stays reserved until we have killed the whole group. This needs
//! `waitid(WNOWAIT)`, which is why the runner is Linux-only for now.

use std::process::{Child, ExitStatus};

pub struct Reaper {
    child: Child,
}

/// Waits for the exit on another thread.
pub struct Waiter {
    pid: nix::unistd::Pid,
}

impl Reaper {
    pub fn new(child: Child) -> Reaper {
        Reaper { child }
    }

    pub fn waiter(&self) -> Waiter {
        Waiter { pid: nix::unistd::Pid::from_raw(self.child.id() as i32) }
    }

    /// Collects the exited process (it is a zombie until then).
    pub fn reap(mut self) {
        let _ = self.child.wait();
    }
}

impl Waiter {
    /// Blocks until the process exits, leaving it unreaped (`WNOWAIT`).
    pub fn wait(&self) -> std::io::Result<ExitStatus> {
        use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
        use std::os::unix::process::ExitStatusExt;
        loop {
            match waitid(Id::Pid(self.pid), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT) {
                Ok(WaitStatus::Exited(_, code)) => return Ok(ExitStatus::from_raw((code & 0xff) << 8)),
                Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(ExitStatus::from_raw(sig as i32)),
                Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(std::io::Error::from(e)),
            }
        }
    }
}
