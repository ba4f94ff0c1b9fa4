//! A `serve = true` job on its job thread: its `run` is a service. It gets
//! a free port in `$PORT` and its public address in `$GIT_CI_URL`; the job
//! passes once the service answers (the port accepts a connection, or the
//! job's `ready` probe exits 0) within the job's timeout, and the service
//! is handed to the coordinator as a live instance ([`super::instances`])
//! instead of being waited for.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use super::Config;
use crate::done::Content;
use crate::hub::Hub;
use crate::model::{InstanceInfo, Job, Status};
use crate::runner::log::LogSummary;
use crate::runner::{Outcome, RunSpec, Running};

/// How often readiness is probed while the service starts.
const PROBE_EVERY: Duration = Duration::from_millis(100);
/// The longest one `ready` probe may take before it counts as a failure.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// The address a service was given.
#[derive(Clone, Debug)]
pub struct Port {
    pub port: u16,
    pub url: String,
}

/// A service that answered: still running, with the directory it runs in.
pub struct Service {
    pub running: Running,
    /// The job's directory (checkout, log): removed only once the service
    /// is stopped.
    pub workdir: Option<tempfile::TempDir>,
    pub info: InstanceInfo,
    /// Whether the hub held the job's branch when the service started:
    /// only then does the branch's deletion stop it (jobs submitted from a
    /// clone name branches the hub never had).
    pub branch_on_hub: bool,
}

impl Service {
    /// The instance a ready service is, as its worker registers it.
    pub fn new(hub: &dyn Hub, job: &Job, running: Running, workdir: tempfile::TempDir, url: String) -> Service {
        let info = InstanceInfo {
            id: job.id.clone(),
            job: job.spec.label(),
            git_ref: job.git_ref.clone(),
            commit: job.commit.clone(),
            url,
            since: crate::time::now_rfc3339(),
            project: job.project.clone(),
        };
        let branch_on_hub =
            job.git_ref.starts_with("refs/heads/") && hub.refresh_ref(&job.git_ref).is_ok_and(|r| r.is_some());
        Service { running, workdir: Some(workdir), info, branch_on_hub }
    }
}

/// The log of a service that is ready: what it wrote so far, copied aside
/// (the service writes on), sealed by `seal`, and read whole, so that the
/// published log and its digest agree.
pub fn seal_log_so_far(log: &Path, dir: &Path, seal: impl FnOnce(&Path) -> Content) -> Content {
    let so_far = dir.join("log.ready");
    if std::fs::copy(log, &so_far).is_err() {
        let _ = std::fs::write(&so_far, b"");
    }
    match seal(&so_far) {
        Content::File(path) => Content::Bytes(std::fs::read(path).unwrap_or_default()),
        bytes => bytes,
    }
}

/// Picks a free port, puts it and the public address in the job's
/// environment. A sandbox without the network would hide the port from
/// everyone outside it: such a service could never be reached.
pub fn expose(cfg: &Config, job: &Job, spec: &mut RunSpec) -> Result<Port, String> {
    if let Some(sandbox) = cfg.isolation.info()
        && !(job.spec.network && sandbox.network)
    {
        return Err("a service in the sandbox can be reached only through the host's network: give the job \
             `network = true` and run the worker with --sandbox-network"
            .into());
    }
    // Bound on every address, so that the port is free wherever the
    // service binds it; released at once for the service to take.
    let port = TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0))
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("could not find a free port for the service: {e}"))?
        .port();
    let url = public_url(&cfg.public_url, port);
    spec.env.extend([("PORT".to_owned(), port.to_string()), ("GIT_CI_URL".to_owned(), url.clone())]);
    Ok(Port { port, url })
}

/// `http://build-7:{port}` with the port filled in.
pub fn public_url(template: &str, port: u16) -> String {
    template.replace("{port}", &port.to_string())
}

/// How the wait for a service ended.
pub enum Readiness {
    /// It answers: the job passed at `outcome`; the service runs on.
    Ready(Box<Running>, Outcome),
    /// It ended first (exited, timed out, cancelled, stolen).
    Ended(Outcome),
}

/// Probes the service until it answers or ends. The runner's own timeout
/// (the job's) bounds the wait; once ready, the timeout is lifted.
pub fn await_ready(job: &Job, running: Running, dir: &Path, port: &Port, env: &[(String, String)]) -> Readiness {
    let (started_at, started) = (SystemTime::now(), Instant::now());
    loop {
        if running.ended() {
            return Readiness::Ended(died_before_ready(running.wait()));
        }
        if answers(job, port.port, dir, env) && !running.ended() {
            running.interrupter().untime();
            let outcome = Outcome {
                status: Status::Passed,
                exit_code: None,
                reason: None,
                log: LogSummary { sha256: String::new(), bytes: 0, truncated: false },
                started_at,
                duration: started.elapsed(),
                stolen: false,
            };
            return Readiness::Ready(Box::new(running), outcome);
        }
        std::thread::sleep(PROBE_EVERY);
    }
}

/// A service that exited by itself before it answered failed, whatever
/// its exit code: it was meant to keep running.
fn died_before_ready(mut o: Outcome) -> Outcome {
    let before = "the service ended before it was ready";
    match o.status {
        Status::Passed => {
            o.status = Status::Failed;
            o.reason = Some(format!("{before} (it exited with code 0)"));
        }
        Status::Failed => {
            let how = o.reason.take().map(|r| format!(" ({r})")).unwrap_or_default();
            let code = o.exit_code.map(|c| format!(" (exit code {c})")).unwrap_or_default();
            o.reason = Some(format!("{before}{how}{code}"));
        }
        Status::Timeout => {
            o.reason = Some("the service was not ready within the job's timeout; it was stopped".into());
        }
        _ => {}
    }
    o
}

/// Whether the service answers: its `ready` probe passes, or else its
/// port accepts a connection on this machine.
fn answers(job: &Job, port: u16, dir: &Path, env: &[(String, String)]) -> bool {
    match &job.spec.ready {
        Some(probe) => probe_passes(probe, dir, env),
        None => {
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
        }
    }
}

/// Runs the `ready` command on the host, in the checkout, with the job's
/// environment; a probe that hangs is killed and counts as not ready.
fn probe_passes(probe: &str, dir: &Path, env: &[(String, String)]) -> bool {
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(probe).current_dir(dir).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    cmd.envs(env.iter().map(|(k, v)| (k, v))).process_group(0);
    let Ok(mut child) = cmd.spawn() else { return false };
    let until = Instant::now() + PROBE_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status.success(),
            Ok(None) if Instant::now() < until => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let pgid = nix::unistd::Pid::from_raw(child.id() as i32);
                let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
                let _ = child.wait();
                return false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_url_takes_the_port_wherever_it_is_asked() {
        assert_eq!(public_url("http://127.0.0.1:{port}", 8123), "http://127.0.0.1:8123");
        assert_eq!(public_url("https://{port}.preview.example", 9), "https://9.preview.example");
    }

    #[test]
    fn a_service_that_exits_before_it_answers_fails_even_with_code_0() {
        let o = |status, exit_code| Outcome {
            status,
            exit_code,
            reason: None,
            log: LogSummary { sha256: String::new(), bytes: 0, truncated: false },
            started_at: SystemTime::now(),
            duration: Duration::ZERO,
            stolen: false,
        };
        let ok = died_before_ready(o(Status::Passed, Some(0)));
        assert_eq!(ok.status, Status::Failed);
        assert!(ok.reason.unwrap().contains("before it was ready"));
        let bad = died_before_ready(o(Status::Failed, Some(3)));
        assert_eq!(bad.reason.as_deref(), Some("the service ended before it was ready (exit code 3)"));
        assert_eq!(died_before_ready(o(Status::Cancelled, None)).status, Status::Cancelled);
    }
}
