//! Runs one job's script and supervises it.
//!
//! The script runs as `sh -e -c` in its own process group, so that a
//! timeout or a cancel can signal everything it started: SIGTERM to the
//! group, a grace period, then SIGKILL; what left the group goes at the end
//! too (see `orphans`). stdout and stderr share one pipe, so the log keeps
//! their interleaving (and the colours a tool prints).

mod exit;
pub mod limits;
pub mod log;
mod orphans;
pub mod sandbox;
pub mod strays;

use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use crate::mask::Masker;
use crate::model::Status;
use log::{CappedLog, LogSummary};

/// Why a running job must stop before it ends by itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Interrupt {
    /// `git ci cancel`, or a worker's second Ctrl-C.
    Cancel(String),
    /// Our claim was stolen: stop, and the result will not be published.
    Stolen,
    /// The job passed a limit of its sandbox (`--disk-max`): it fails.
    Limit(String),
}

pub struct RunSpec {
    pub script: String,
    pub dir: PathBuf,
    pub env: Vec<(String, String)>,
    pub timeout: Duration,
    pub kill_grace: Duration,
    pub log_path: PathBuf,
    pub log_cap: u64,
    /// Secrets to hide in the log.
    pub masker: Masker,
    /// How the script is started: on the host, or in a sandbox.
    pub executor: Arc<dyn sandbox::Executor>,
    /// The job asks for the network (`network = true`); a sandbox gives it
    /// only if its worker allows it.
    pub network: bool,
}

#[derive(Clone, Debug)]
pub struct Outcome {
    pub status: Status,
    pub exit_code: Option<i32>,
    pub reason: Option<String>,
    pub log: LogSummary,
    pub started_at: SystemTime,
    pub duration: Duration,
    /// Set when the run stopped because the claim was stolen.
    pub stolen: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("could not create the log {path}: {source}")]
    Log {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("could not start the job's shell: {0}")]
    Spawn(#[source] std::io::Error),
}

enum Msg {
    Exited(std::io::Result<ExitStatus>),
    Interrupt(Interrupt),
    /// The timeout no longer applies: a service is ready and runs until stopped.
    Untimed,
}

/// A running job: send it interrupts; join it for its outcome.
pub struct Running {
    tx: Sender<Msg>,
    done: std::thread::JoinHandle<Outcome>,
}

impl Running {
    pub fn interrupter(&self) -> Interrupter {
        Interrupter(self.tx.clone())
    }

    pub fn wait(self) -> Outcome {
        self.done.join().expect("the supervisor thread does not panic")
    }

    /// Whether it ended (its outcome is ready for [`Running::wait`]).
    pub fn ended(&self) -> bool {
        self.done.is_finished()
    }
}

#[derive(Clone)]
pub struct Interrupter(Sender<Msg>);

impl Interrupter {
    pub fn send(&self, i: Interrupt) {
        // The job may have ended already: nothing to interrupt then.
        let _ = self.0.send(Msg::Interrupt(i));
    }

    /// Lifts the timeout: a service that became ready runs until it is
    /// interrupted (its timeout was the time it had to become ready).
    pub fn untime(&self) {
        let _ = self.0.send(Msg::Untimed);
    }
}

/// Starts the script; returns at once.
pub fn start(spec: RunSpec) -> Result<Running, RunError> {
    let log = CappedLog::create(&spec.log_path, spec.log_cap, &spec.masker)
        .map_err(|source| RunError::Log { path: spec.log_path.display().to_string(), source })?;
    let log = Arc::new(Mutex::new(Some(log)));
    let (reader, writer) = std::io::pipe().map_err(RunError::Spawn)?;
    let (mut cmd, guard) = spec.executor.launch(&spec.script, &spec.dir, spec.network).map_err(RunError::Spawn)?;
    let guard: Arc<dyn sandbox::Guard> = Arc::from(guard);
    cmd.current_dir(&spec.dir)
        .stdin(Stdio::null())
        .stdout(writer.try_clone().map_err(RunError::Spawn)?)
        .stderr(writer)
        .process_group(0)
        .envs(spec.env.iter().map(|(k, v)| (k, v)));
    orphans::become_subreaper();
    let mark = orphans::new_mark();
    cmd.env(orphans::MARK_VAR, &mark);
    let started_at = SystemTime::now();
    let started = Instant::now();
    let child = {
        let mut shells = orphans::shells();
        let child = cmd.spawn().map_err(RunError::Spawn)?;
        shells.push(child.id() as i32);
        child
    };
    // `cmd` holds the parent's copies of the pipe's write end: drop them so
    // the reader sees EOF when the job's processes are gone.
    drop(cmd);
    let pgid = Pid::from_raw(child.id() as i32);
    let (tx, rx) = mpsc::channel();
    let limit_tx = Interrupter(tx.clone());
    guard.watch(&spec.dir, Box::new(move |why| limit_tx.send(Interrupt::Limit(why))));
    let exit_tx = tx.clone();
    let reaper = exit::Reaper::new(child);
    let waiter = reaper.waiter();
    std::thread::spawn(move || {
        let _ = exit_tx.send(Msg::Exited(waiter.wait()));
    });
    let reader_log = Arc::clone(&log);
    // Says when the output is all read (at EOF, or if the reader dies):
    // the log is sealed at that moment, not at the next look.
    let (read_tx, read_rx) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        let _done = read_tx;
        copy_output(reader, &reader_log)
    });
    let done = std::thread::spawn(move || {
        // Whatever happens to the supervisor, the job's processes go below.
        let ended = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            supervise(&rx, pgid, &*guard, spec.timeout, spec.kill_grace)
        }))
        .unwrap_or_else(|panic| Ended {
            wait_error: Some(format!("its supervisor crashed: {}", panic_message(&*panic))),
            ..Ended::default()
        });
        // Whatever the script left behind in its group goes with it. The
        // group's leader is not reaped yet, so its id cannot have been
        // reused by an unrelated process group (pids wrap fast on a busy
        // machine: pid_max is often 32768).
        let _ = killpg(pgid, Signal::SIGKILL);
        // And whatever left the group (setsid, daemons) goes too.
        orphans::sweep(&mark);
        let mut ended = ended;
        ended.limit = guard.verdict();
        guard.finish();
        reaper.reap();
        orphans::shells().retain(|&p| p != pgid.as_raw());
        finish(ended, log, &read_rx, started_at, started)
    });
    Ok(Running { tx, done })
}

fn copy_output(mut reader: std::io::PipeReader, log: &Mutex<Option<CappedLog>>) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let mut guard = log.lock().expect("log lock");
        match guard.as_mut() {
            Some(l) => l.push(&buf[..n]),
            None => return,
        }
    }
}

/// How the run ended, before the log is sealed.
#[derive(Default)]
struct Ended {
    exit: Option<ExitStatus>,
    interrupted: Option<Interrupt>,
    timed_out: bool,
    wait_error: Option<String>,
    /// A limit of the sandbox the job ran into (memory, processes).
    limit: Option<String>,
}

fn supervise(rx: &Receiver<Msg>, pgid: Pid, guard: &dyn sandbox::Guard, timeout: Duration, grace: Duration) -> Ended {
    let mut ended = Ended::default();
    // Checked: a timeout no one could wait out is just a very long one.
    let mut deadline =
        Instant::now().checked_add(timeout).unwrap_or_else(|| Instant::now() + crate::time::MAX_DURATION);
    let mut terminating = false;
    loop {
        let wait = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(wait) {
            Ok(Msg::Exited(Ok(status))) => {
                ended.exit = Some(status);
                return ended;
            }
            Ok(Msg::Exited(Err(e))) => {
                ended.wait_error = Some(e.to_string());
                return ended;
            }
            Ok(Msg::Untimed) if !terminating => deadline = Instant::now() + crate::time::MAX_DURATION,
            Ok(Msg::Untimed) => {}
            Ok(Msg::Interrupt(i)) => {
                if ended.interrupted.is_none() && !ended.timed_out {
                    ended.interrupted = Some(i);
                }
                if !terminating {
                    terminating = true;
                    guard.terminate(pgid);
                    deadline = Instant::now() + grace;
                }
            }
            Err(RecvTimeoutError::Timeout) if !terminating => {
                ended.timed_out = ended.interrupted.is_none();
                terminating = true;
                guard.terminate(pgid);
                deadline = Instant::now() + grace;
            }
            Err(RecvTimeoutError::Timeout) => {
                let _ = killpg(pgid, Signal::SIGKILL);
                deadline = Instant::now() + Duration::from_secs(3600);
            }
            Err(RecvTimeoutError::Disconnected) => return ended,
        }
    }
}

fn finish(
    ended: Ended,
    log: Arc<Mutex<Option<CappedLog>>>,
    read: &Receiver<()>,
    started_at: SystemTime,
    started: Instant,
) -> Outcome {
    // The reader ends at EOF once every writer is gone (its sender drops,
    // which wakes us at once: looking every 2 ms cost each job ~1-2 ms).
    // A process that left the group (setsid) could hold the pipe forever:
    // give it a moment, then seal the log without it.
    let _ = read.recv_timeout(Duration::from_secs(2));
    let duration = started.elapsed();
    let (mut status, exit_code, mut reason) = classify(&ended);
    let mut guard = log.lock().expect("log lock");
    let mut capped = guard.take().expect("sealed once");
    if let Some(r) = &reason {
        capped.note(r);
    }
    let (summary, failed) = capped.finish();
    if let Some(e) = failed
        && !ended.interrupted.as_ref().is_some_and(|i| *i == Interrupt::Stolen)
    {
        // The job may have passed, but on a log cut short: not a result to trust.
        status = Status::Error;
        reason = Some(format!("{e}; the log stops there. It looks like {}", log::WRITE_FAILED_HINT));
    }
    Outcome {
        status,
        exit_code,
        reason,
        log: summary,
        started_at,
        duration,
        stolen: ended.interrupted == Some(Interrupt::Stolen),
    }
}

fn classify(ended: &Ended) -> (Status, Option<i32>, Option<String>) {
    let code = ended.exit.and_then(|s| s.code());
    if let Some(e) = &ended.wait_error {
        return (Status::Error, None, Some(format!("lost track of the job's process: {e}")));
    }
    if ended.timed_out {
        let also = ended.limit.as_ref().map(|l| format!(" (it {l})")).unwrap_or_default();
        return (Status::Timeout, code, Some(format!("timed out: the job's processes were stopped{also}")));
    }
    match &ended.interrupted {
        Some(Interrupt::Limit(why)) => return (Status::Failed, code, Some(format!("the job {why}"))),
        Some(Interrupt::Cancel(why)) => return (Status::Cancelled, code, Some(why.clone())),
        Some(Interrupt::Stolen) => {
            return (Status::Error, code, Some("the claim was lost to another worker".into()));
        }
        None => {}
    }
    // A job that passed while a limit refused it processes or memory ran
    // short of what it needed: it fails, so the limit is not a silent one.
    if let Some(l) = &ended.limit {
        return (Status::Failed, code, Some(format!("the job {l}")));
    }
    match ended.exit {
        Some(s) if s.success() => (Status::Passed, Some(0), None),
        Some(s) => match s.signal() {
            Some(sig) => (Status::Failed, None, Some(format!("killed by signal {sig}"))),
            None => (Status::Failed, code, None),
        },
        None => (Status::Error, None, Some("the job's process vanished".into())),
    }
}

/// What a caught panic said.
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    match (panic.downcast_ref::<&str>(), panic.downcast_ref::<String>()) {
        (Some(s), _) => (*s).to_owned(),
        (_, Some(s)) => s.clone(),
        _ => "a panic with no message".into(),
    }
}

/// Runs to completion on this thread (for callers with nothing else to do).
pub fn run(spec: RunSpec) -> Result<Outcome, RunError> {
    Ok(start(spec)?.wait())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// A zombie still answers `kill(pid, 0)`; only a live process counts.
    fn alive(pid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| !s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'))
            .unwrap_or(false)
    }

    fn spec(script: &str, dir: &Path, timeout: Duration) -> RunSpec {
        RunSpec {
            script: script.into(),
            dir: dir.to_path_buf(),
            env: vec![("GREETING".into(), "hi".into())],
            timeout,
            kill_grace: Duration::from_millis(500),
            log_path: dir.join("log"),
            log_cap: 1 << 20,
            masker: Masker::default(),
            executor: Arc::new(sandbox::Host),
            network: false,
        }
    }

    #[test]
    fn passes_fails_and_logs_both_streams() {
        let dir = tempfile::tempdir().unwrap();
        let ok = run(spec("echo $GREETING; echo err >&2", dir.path(), Duration::from_secs(20))).unwrap();
        assert_eq!((ok.status, ok.exit_code), (Status::Passed, Some(0)));
        assert_eq!(std::fs::read_to_string(dir.path().join("log")).unwrap(), "hi\nerr\n");
        let bad = run(spec("false; echo unreachable", dir.path(), Duration::from_secs(20))).unwrap();
        assert_eq!((bad.status, bad.exit_code), (Status::Failed, Some(1)));
        assert!(!std::fs::read_to_string(dir.path().join("log")).unwrap().contains("unreachable"));
    }

    #[test]
    fn timeout_kills_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let script = "sh -c 'trap \"\" TERM; sleep 30' & echo $! > grandchild; sleep 30";
        let out = run(spec(script, dir.path(), Duration::from_millis(300))).unwrap();
        assert_eq!(out.status, Status::Timeout);
        let pid: i32 = std::fs::read_to_string(dir.path().join("grandchild")).unwrap().trim().parse().unwrap();
        assert!(!alive(pid), "grandchild {pid} survived the timeout");
    }

    /// Leaves a `setsid` child and a double-forked daemon, pids in files.
    const LEAVE: &str = "setsid sleep 1000 & echo $! > setsid.pid; \
        sh -c 'setsid sh -c \"echo \\$\\$ > daemon.tmp; mv daemon.tmp daemon.pid; exec sleep 1000\" &'; \
        while [ ! -s daemon.pid ]; do sleep 0.01; done";

    fn left(dir: &Path) -> Vec<i32> {
        let pid = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap().trim().parse::<i32>().unwrap();
        vec![pid("setsid.pid"), pid("daemon.pid")]
    }

    #[test]
    fn what_a_job_detaches_ends_with_it_on_exit_and_on_timeout() {
        for (tail, timeout, status) in [("", 20_000, Status::Passed), ("; sleep 30", 500, Status::Timeout)] {
            let dir = tempfile::tempdir().unwrap();
            let out = run(spec(&format!("{LEAVE}{tail}"), dir.path(), Duration::from_millis(timeout))).unwrap();
            assert_eq!(out.status, status);
            for pid in left(dir.path()) {
                assert!(!alive(pid), "{pid} outlived its job ({status:?})");
            }
        }
    }

    #[test]
    fn one_jobs_end_spares_another_running_jobs_processes() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let script = format!("{LEAVE}; touch ready; sleep 30");
        let running = start(spec(&script, b.path(), Duration::from_secs(60))).unwrap();
        let until = Instant::now() + Duration::from_secs(20);
        while !b.path().join("ready").exists() {
            assert!(Instant::now() < until, "job b never got ready");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(run(spec(LEAVE, a.path(), Duration::from_secs(20))).unwrap().status, Status::Passed);
        assert!(left(a.path()).into_iter().all(|p| !alive(p)), "a's processes outlived it");
        assert!(left(b.path()).into_iter().all(alive), "a's end killed b's processes");
        running.interrupter().send(Interrupt::Cancel("done".into()));
        assert_eq!(running.wait().status, Status::Cancelled);
        assert!(left(b.path()).into_iter().all(|p| !alive(p)), "b's processes outlived it");
    }

    #[test]
    fn interrupts_stop_the_job() {
        let dir = tempfile::tempdir().unwrap();
        let running = start(spec("sleep 30", dir.path(), Duration::from_secs(60))).unwrap();
        running.interrupter().send(Interrupt::Cancel("cancelled by test".into()));
        let out = running.wait();
        assert_eq!(out.status, Status::Cancelled);
        assert_eq!(out.reason.as_deref(), Some("cancelled by test"));
    }
}
