//! What git-ci's integration tests (`tests/it`) and benchmarks (`bench`)
//! both need to stand up and is no part of the product: a `git daemon` on
//! 127.0.0.1 serving a folder of bare hubs, on a port the OS handed out,
//! killed when dropped (also while unwinding); an sshd ([`ssh`]) and a smart
//! HTTP server ([`http`]) likewise. Dev-only: nothing ships it.

pub mod http;
pub mod ssh;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long `git daemon` may take to accept connections.
const START_DEADLINE: Duration = Duration::from_secs(20);

/// How many ports are tried before giving up: a port handed out by the OS
/// can be taken by another process before the daemon binds it.
const ATTEMPTS: usize = 5;

/// How to start a daemon.
pub struct DaemonSpec<'a> {
    /// `git --exec-path`: the daemon binary itself is started, as `git
    /// daemon` would run it as a child that outlives a kill of `git`.
    pub exec_path: &'a Path,
    /// The folder served (`git://127.0.0.1:PORT/<name>` is `base/<name>`).
    pub base: &'a Path,
    /// Allow pushes (`--enable=receive-pack`); else fetches only.
    pub push: bool,
    /// A given port, to restart a hub where its clients expect it (not
    /// retried elsewhere if taken); `None`: one the OS hands out.
    pub port: Option<u16>,
    /// Where the daemon's stderr goes, quoted when it exits at start;
    /// `None` discards it.
    pub log: Option<&'a Path>,
}

/// A running `git daemon`.
pub struct Daemon {
    child: Child,
    port: u16,
}

impl Daemon {
    /// Starts a daemon and waits until it accepts connections. `prepare`
    /// sets the command's environment (a hermetic one). A daemon that
    /// exits at start (its port was taken meanwhile) is started again on
    /// another port.
    pub fn start(spec: &DaemonSpec<'_>, prepare: impl Fn(&mut Command)) -> Result<Daemon, String> {
        let mut last = String::new();
        let attempts = if spec.port.is_some() { 1 } else { ATTEMPTS };
        for _ in 0..attempts {
            let port = match spec.port {
                Some(p) => p,
                None => free_port().map_err(|e| format!("could not get a free port: {e}"))?,
            };
            match Self::try_start(spec, port, &prepare) {
                Ok(d) => return Ok(d),
                Err(e) => last = e,
            }
        }
        Err(format!("could not start git daemon: {last}"))
    }

    fn try_start(spec: &DaemonSpec<'_>, port: u16, prepare: &impl Fn(&mut Command)) -> Result<Daemon, String> {
        let mut cmd = Command::new(spec.exec_path.join("git-daemon"));
        prepare(&mut cmd);
        if spec.push {
            cmd.arg("--enable=receive-pack");
        }
        let stderr = match spec.log {
            Some(log) => Stdio::from(std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?),
            None => Stdio::null(),
        };
        let child = cmd
            .args(["--export-all", "--reuseaddr", "--listen=127.0.0.1"])
            .arg(format!("--port={port}"))
            .arg(format!("--base-path={}", spec.base.display()))
            .arg(spec.base)
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("could not run {}: {e}", spec.exec_path.join("git-daemon").display()))?;
        let mut daemon = Daemon { child, port };
        daemon.wait_ready(spec.log)?;
        Ok(daemon)
    }

    fn wait_ready(&mut self, log: Option<&Path>) -> Result<(), String> {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = Instant::now() + START_DEADLINE;
        while Instant::now() < deadline {
            // Before connecting: a daemon that could not bind has exited,
            // and whatever took its port would answer in its place.
            if let Some(status) = self.child.try_wait().map_err(|e| e.to_string())? {
                let said = log.and_then(|l| std::fs::read_to_string(l).ok()).unwrap_or_default();
                return Err(format!("git daemon on port {} exited ({status}): {}", self.port, said.trim()));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!("git daemon did not accept connections on {addr} within {START_DEADLINE:?}"))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self, repo: &str) -> String {
        format!("git://127.0.0.1:{}/{repo}", self.port)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nobody listens on right now (the OS hands it out; it is let go
/// at once, so someone may take it before it is used: [`Daemon::start`]
/// retries, and a test that wants a dead address gets one that is
/// almost surely still dead).
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
