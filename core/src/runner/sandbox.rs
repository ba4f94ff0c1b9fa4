//! How a job's script becomes a process: the [`Executor`] interface, with
//! the host's `sh` ([`Host`]) and a bubblewrap sandbox ([`Bwrap`]).
//!
//! The sandbox shows the job the host's system directories read-only, its
//! checkout (where its caches are during the run) read-write at the same
//! path, an empty private `/tmp` and `$HOME`, and nothing else: not the
//! worker's home (ssh keys, git credentials), not its cache directory,
//! not other jobs' checkouts. It has its own pid namespace, so the
//! namespace's init takes every process of the job with it (setsid and
//! double-forked ones too), and `--die-with-parent` makes that happen
//! when the runner kills bwrap. No network unless the job asks for it and
//! the worker allows it; loopback is always up.
//!
//! An OCI executor (podman, `image = "..."`) would implement [`Executor`]
//! the same way: a `podman run --rm` command line, a `terminate` that
//! signals the container, and a [`Guard`] that removes it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use super::limits::{self, Limits};

/// Starts a job's script and stops it gently.
pub trait Executor: Send + Sync {
    /// The command that runs `script` with `sh -e -c` in `dir`, and what
    /// must live as long as the run. The runner adds the job's environment
    /// and its pipes, and puts the command in a process group of its own.
    fn launch(&self, script: &str, dir: &Path, network: bool) -> std::io::Result<(Command, Box<dyn Guard>)>;
}

/// Lives as long as one run: stops it, says why it failed, cleans up.
pub trait Guard: Send + Sync {
    /// Asks the job's processes to end (SIGTERM); `leader` is the process
    /// group of the spawned command. A SIGKILL to that group follows after
    /// the grace period, and must end everything.
    fn terminate(&self, leader: Pid) {
        let _ = killpg(leader, Signal::SIGTERM);
    }

    /// Why the run failed, when a limit stopped it; checked once it ended.
    fn verdict(&self) -> Option<String> {
        None
    }

    /// Starts what watches the run (`--disk-max`); `stop` is called with a
    /// reason when a limit is passed.
    fn watch(&self, _dir: &Path, _stop: Box<dyn Fn(String) + Send>) {}

    /// Ends whatever is left of the run; called once, after it ended.
    fn finish(&self) {}
}

/// The host's shell, as the worker's user: no isolation.
pub struct Host;

struct NoGuard;
impl Guard for NoGuard {}

impl Executor for Host {
    fn launch(&self, script: &str, _dir: &Path, _network: bool) -> std::io::Result<(Command, Box<dyn Guard>)> {
        let mut cmd = Command::new("sh");
        cmd.arg("-e").arg("-c").arg(script);
        Ok((cmd, Box::new(NoGuard)))
    }
}

/// What `git ci worker --sandbox` and its flags ask for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SandboxConfig {
    /// Host directories jobs see read-write at the same path (`--bind`).
    pub binds: Vec<PathBuf>,
    /// Host directories jobs see read-only (`--ro-bind`).
    pub ro_binds: Vec<PathBuf>,
    /// Jobs with `network = true` get the host's network (`--sandbox-network`).
    pub network: bool,
    pub limits: Limits,
}

/// The host's system directories, shown read-only. `/opt`, `/srv`, `/home`
/// and `/var` are not: tools there are given with `--ro-bind`.
const SYSTEM_DIRS: &[&str] = &["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc"];

/// The job's `$HOME`: empty, inside the private `/tmp`.
pub const JOB_HOME: &str = "/tmp/home";

/// Variables of the worker's environment a sandboxed job keeps; the rest
/// (tokens, `SSH_AUTH_SOCK`, `GIT_CI_HUB` with its credentials) stay out.
const KEPT_VARS: &[&str] = &["PATH", "LANG", "LANGUAGE", "TZ", "TERM", "USER", "LOGNAME", "SHELL"];

/// Runs jobs in bubblewrap.
#[derive(Debug)]
pub struct Bwrap {
    config: Arc<SandboxConfig>,
    enforcement: limits::Enforcement,
}

impl Bwrap {
    /// Checks that bubblewrap can make a sandbox here, by making one.
    pub fn new(config: SandboxConfig) -> Result<Bwrap, SandboxError> {
        probe()?;
        let enforcement = limits::Enforcement::detect(&config.limits);
        Ok(Bwrap { config: Arc::new(config), enforcement })
    }

    /// How the limits are enforced: `cgroup v2`, `cgroup v1`, `rlimits`
    /// or `none` (no limit asked for).
    pub fn enforcement(&self) -> &limits::Enforcement {
        &self.enforcement
    }

    pub fn config(&self) -> &SandboxConfig {
        &self.config
    }
}

impl Executor for Bwrap {
    fn launch(&self, script: &str, dir: &Path, network: bool) -> std::io::Result<(Command, Box<dyn Guard>)> {
        let (prefix, limits) = self.enforcement.prepare(&self.config.limits)?;
        let mut argv = prefix.into_iter().chain(["bwrap".to_owned()]);
        let mut cmd = Command::new(argv.next().expect("bwrap at least"));
        cmd.args(argv).args(arguments(&self.config, dir, network && self.config.network));
        cmd.arg("sh").arg("-e").arg("-c").arg(script);
        cmd.env_clear();
        cmd.envs(KEPT_VARS.iter().filter_map(|k| Some((k, std::env::var_os(k)?))));
        cmd.envs(std::env::vars_os().filter(|(k, _)| k.to_str().is_some_and(|k| k.starts_with("LC_"))));
        cmd.env("HOME", JOB_HOME).env("TMPDIR", "/tmp");
        Ok((cmd, Box::new(Sandboxed { limits })))
    }
}

/// bwrap's arguments for a job in `dir`, up to the command.
pub fn arguments(cfg: &SandboxConfig, dir: &Path, network: bool) -> Vec<String> {
    let mut a: Vec<String> = ["--unshare-all", "--unshare-user", "--disable-userns", "--cap-drop", "ALL"]
        .into_iter()
        .chain(["--die-with-parent", "--new-session", "--dev", "/dev", "--proc", "/proc"])
        .map(String::from)
        .collect();
    if network {
        a.push("--share-net".into());
        // The resolver's configuration often lives under /run.
        a.extend(["--ro-bind-try", "/run/systemd/resolve", "/run/systemd/resolve"].map(String::from));
    }
    for dir in SYSTEM_DIRS {
        match std::fs::read_link(dir) {
            // Merged /usr: /bin -> usr/bin stays a link.
            Ok(target) => a.extend(["--symlink".into(), target.display().to_string(), dir.to_string()]),
            Err(_) => a.extend(["--ro-bind-try", dir, dir].map(String::from)),
        }
    }
    // Mounted before the checkout, which may live under /tmp (and then
    // appears inside this fresh one).
    if let Some(bytes) = cfg.limits.disk_max {
        a.extend(["--size".into(), bytes.to_string()]);
    }
    a.extend(["--tmpfs", "/tmp", "--dir", JOB_HOME].map(String::from));
    for (flag, dirs) in [("--ro-bind", &cfg.ro_binds), ("--bind", &cfg.binds)] {
        for d in dirs {
            let d = d.display().to_string();
            a.extend([flag.to_owned(), d.clone(), d]);
        }
    }
    let dir = dir.display().to_string();
    a.extend(["--bind".into(), dir.clone(), dir.clone(), "--chdir".into(), dir, "--".into()]);
    a
}

/// One sandboxed run.
struct Sandboxed {
    limits: limits::Run,
}

impl Guard for Sandboxed {
    /// SIGTERM to bwrap would end it at once (it does not forward signals,
    /// and its children die with it): so the signal goes to the sandbox's
    /// session instead, which bwrap's init leads (`--new-session`).
    fn terminate(&self, leader: Pid) {
        match init_of(leader) {
            Some(init) => {
                let _ = killpg(init, Signal::SIGTERM);
            }
            None => {
                let _ = killpg(leader, Signal::SIGTERM);
            }
        }
    }

    fn verdict(&self) -> Option<String> {
        self.limits.verdict()
    }

    fn watch(&self, dir: &Path, stop: Box<dyn Fn(String) + Send>) {
        self.limits.watch_disk(dir, stop);
    }

    fn finish(&self) {
        self.limits.finish();
    }
}

/// The sandbox's init: bwrap's only child.
fn init_of(bwrap: Pid) -> Option<Pid> {
    let path = format!("/proc/{bwrap}/task/{bwrap}/children");
    let children = std::fs::read_to_string(path).ok()?;
    children.split_whitespace().next()?.parse().ok().map(Pid::from_raw)
}

/// Why `--sandbox` cannot work on this machine.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("--sandbox needs bubblewrap (`bwrap`), which is not installed")]
    Missing,
    #[error("bubblewrap cannot make a sandbox here: {stderr}")]
    Refused { stderr: String },
}

impl SandboxError {
    /// What to install or enable.
    pub fn hint(&self) -> &'static str {
        match self {
            SandboxError::Missing => {
                "install it (Debian, Ubuntu: `apt-get install bubblewrap`; Fedora: `dnf install bubblewrap`), \
                 or run the worker without --sandbox"
            }
            SandboxError::Refused { .. } => {
                "bubblewrap needs unprivileged user namespaces: `sysctl kernel.unprivileged_userns_clone=1` \
                 (Debian), `sysctl user.max_user_namespaces=15000`, or on Ubuntu 24.04 \
                 `sysctl kernel.apparmor_restrict_unprivileged_userns=0`; in a container, allow them \
                 (docker: --security-opt seccomp=unconfined)"
            }
        }
    }
}

/// Makes an empty sandbox with the flags every job gets.
fn probe() -> Result<(), SandboxError> {
    let dir = std::env::temp_dir();
    let out = Command::new("bwrap")
        .args(arguments(&SandboxConfig::default(), &dir, false))
        .arg("true")
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| if e.kind() == std::io::ErrorKind::NotFound { SandboxError::Missing } else { refused(e) })?;
    if out.status.success() {
        return Ok(());
    }
    Err(SandboxError::Refused { stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned() })
}

fn refused(e: std::io::Error) -> SandboxError {
    SandboxError::Refused { stderr: e.to_string() }
}

/// `bubblewrap 0.8.0`, for the registration.
pub fn version() -> String {
    Command::new("bwrap")
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn joined(cfg: &SandboxConfig, network: bool) -> String {
        arguments(cfg, Path::new("/w/jobs/1/checkout"), network).join(" ")
    }

    #[test]
    fn the_checkout_is_mounted_after_the_private_tmp_and_network_is_opt_in() {
        let cfg = SandboxConfig { ro_binds: vec!["/opt/tool".into()], ..SandboxConfig::default() };
        let a = joined(&cfg, false);
        assert!(a.contains("--unshare-all") && !a.contains("--share-net"), "{a}");
        assert!(a.contains("--die-with-parent --new-session"), "{a}");
        let tmp = a.find("--tmpfs /tmp").unwrap();
        assert!(tmp < a.find("--bind /w/jobs/1/checkout /w/jobs/1/checkout").unwrap(), "{a}");
        assert!(a.contains("--ro-bind /opt/tool /opt/tool"), "{a}");
        assert!(a.ends_with("--chdir /w/jobs/1/checkout --"), "{a}");
        assert!(joined(&cfg, true).contains("--share-net"));
        let sized = SandboxConfig { limits: Limits { disk_max: Some(1 << 20), ..Limits::default() }, ..cfg };
        assert!(joined(&sized, false).contains("--size 1048576 --tmpfs /tmp"));
    }
}
