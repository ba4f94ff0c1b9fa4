//! A hermetic world per test: temp dirs, real git, real hubs, a git daemon.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub use git_ci_testkit::Daemon;
use git_ci_testkit::DaemonSpec;

pub struct TestEnv {
    pub root: tempfile::TempDir,
}

impl TestEnv {
    pub fn new() -> TestEnv {
        let root = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(root.path().join("home")).unwrap();
        TestEnv { root }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.path().join(rel)
    }

    /// The environment every git and git-ci process of the test gets.
    pub fn hermetic(&self, cmd: &mut Command) {
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.path("home"))
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "Test Author")
            .env("GIT_AUTHOR_EMAIL", "author@example.com")
            .env("GIT_COMMITTER_NAME", "Test Committer")
            .env("GIT_COMMITTER_EMAIL", "committer@example.com")
            .env("GIT_AUTHOR_DATE", "2026-11-01T12:00:00Z")
            .env("GIT_COMMITTER_DATE", "2026-11-01T12:00:00Z")
            .env("GIT_CI_CACHE_DIR", self.path("cache"))
            .env("LC_ALL", "C")
            .stdin(Stdio::null());
    }

    pub fn git(&self, dir: &Path, args: &[&str]) -> String {
        let mut cmd = Command::new("git");
        self.hermetic(&mut cmd);
        let out = cmd.current_dir(dir).args(args).output().expect("git runs");
        assert!(out.status.success(), "git {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// `git ARGS` in `dir`, to completion, whatever the exit (for tests of
    /// what a push says when it is refused).
    pub fn git_output(&self, dir: &Path, args: &[&str]) -> Output {
        let mut cmd = Command::new("git");
        self.hermetic(&mut cmd);
        cmd.current_dir(dir).args(args).output().expect("git runs")
    }

    /// `git-ci ARGS` in `dir`, to completion.
    pub fn ci(&self, dir: &Path, args: &[&str]) -> Run {
        Run(self.ci_cmd(dir, args).output().expect("git-ci runs"))
    }

    /// `git-ci ARGS` in the background; stdout and stderr go to files (a
    /// pipe nobody reads would block a chatty worker).
    pub fn spawn_ci(&self, dir: &Path, args: &[&str]) -> Bg {
        self.spawn(self.ci_cmd(dir, args))
    }

    /// `cmd` in the background, as [`TestEnv::spawn_ci`].
    pub fn spawn(&self, mut cmd: Command) -> Bg {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (out, err) = (self.path(&format!("bg-{n}.out")), self.path(&format!("bg-{n}.err")));
        let child = cmd
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .expect("git-ci starts");
        Bg { child: Some(child), out, err }
    }

    pub fn ci_cmd(&self, dir: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_git-ci"));
        self.hermetic(&mut cmd);
        cmd.current_dir(dir).args(args);
        cmd
    }

    /// `git ci ARGS` through git's own wrapper, the built `git-ci` first on PATH.
    pub fn git_ci_cmd(&self, dir: &Path, args: &[&str]) -> Command {
        let bin = Path::new(env!("CARGO_BIN_EXE_git-ci")).parent().unwrap().to_path_buf();
        let path = std::env::var_os("PATH").unwrap_or_default();
        let path = std::env::join_paths(std::iter::once(bin).chain(std::env::split_paths(&path))).unwrap();
        let mut cmd = Command::new("git");
        self.hermetic(&mut cmd);
        cmd.env("PATH", path).current_dir(dir).arg("ci").args(args);
        cmd
    }

    /// A repository with `.git-ci.toml` holding `pipeline`, committed.
    pub fn project(&self, name: &str, pipeline: &str) -> PathBuf {
        let dir = self.path(name);
        std::fs::create_dir_all(&dir).unwrap();
        self.git(&dir, &["init", "-q", "-b", "main"]);
        self.commit_file(&dir, ".git-ci.toml", pipeline, "add pipeline");
        dir
    }

    pub fn commit_file(&self, repo: &Path, file: &str, content: &str, message: &str) -> String {
        std::fs::write(repo.join(file), content).unwrap();
        self.git(repo, &["add", file]);
        self.git(repo, &["commit", "-q", "-m", message]);
        self.git(repo, &["rev-parse", "HEAD"])
    }

    /// A project with `pipeline`, pushed to a new bare hub `hub.git`:
    /// returns the project and the hub's path as a string (for `--hub`).
    pub fn project_on_hub(&self, pipeline: &str) -> (PathBuf, String) {
        let repo = self.project("p", pipeline);
        let hub = self.bare_hub("hub.git");
        self.git(&repo, &["push", "-q", hub.to_str().unwrap(), "main"]);
        (repo, hub.to_str().unwrap().to_owned())
    }

    pub fn bare_hub(&self, name: &str) -> PathBuf {
        let dir = self.path(name);
        self.git(self.root.path(), &["init", "-q", "--bare", "-b", "main", dir.to_str().unwrap()]);
        dir
    }

    /// A bare hub with `git ci hooks install`'s hooks and settings.
    pub fn guarded_hub(&self, name: &str) -> PathBuf {
        let hub = self.bare_hub(name);
        self.ci(self.root.path(), &["hooks", "install", "--hub", hub.to_str().unwrap()]).expect(0);
        hub
    }

    /// `git daemon --enable=receive-pack` on 127.0.0.1 serving `base`.
    pub fn daemon(&self, base: &Path) -> Daemon {
        self.daemon_with(base, None, true)
    }

    /// The same on a given port (to restart a hub where clients expect it).
    pub fn daemon_on(&self, base: &Path, port: u16) -> Daemon {
        self.daemon_with(base, Some(port), true)
    }

    /// `git daemon` on 127.0.0.1 serving `base` read-only: fetches work, pushes are refused.
    pub fn read_only_daemon(&self, base: &Path) -> Daemon {
        self.daemon_with(base, None, false)
    }

    fn daemon_with(&self, base: &Path, port: Option<u16>, push: bool) -> Daemon {
        let exec_path = self.git(self.root.path(), &["--exec-path"]);
        let spec = DaemonSpec { exec_path: Path::new(&exec_path), base, push, port, log: None };
        Daemon::start(&spec, |cmd| self.hermetic(cmd)).expect("git daemon starts")
    }

    /// Refs under `refs/ci/` of a hub, as `(name, oid)`.
    pub fn ci_refs(&self, hub: &Path) -> Vec<(String, String)> {
        let out = self.git(hub, &["for-each-ref", "--format=%(refname) %(objectname)", "refs/ci/"]);
        out.lines().filter_map(|l| l.split_once(' ')).map(|(a, b)| (a.to_owned(), b.to_owned())).collect()
    }

    /// Every job id in every `done` and `archive` chain tip of a hub (where
    /// readers look for finished jobs), with repeats.
    pub fn published_ids(&self, hub: &Path) -> Vec<String> {
        let mut ids = Vec::new();
        let chains = self.ci_refs(hub).into_iter().map(|(n, _)| n);
        for name in chains.filter(|n| n.starts_with("refs/ci/done/") || n.starts_with("refs/ci/archive/")) {
            let listing = self.git(hub, &["ls-tree", "-r", "--name-only", &name, "--", "results"]);
            ids.extend(
                listing
                    .lines()
                    .filter(|l| l.ends_with("/result.json"))
                    .map(|l| l.split('/').nth(2).unwrap().to_owned()),
            );
        }
        ids
    }
}

/// A background process (a worker, a follower) killed when the test ends,
/// however it ends, so a failing test leaves nothing running.
pub struct Bg {
    child: Option<Child>,
    out: PathBuf,
    err: PathBuf,
}

impl Bg {
    pub fn id(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// What it printed on stdout so far.
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// What it printed on stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    /// Sends a signal by name (`TERM`, `INT`, `STOP`, `CONT`, `KILL`).
    pub fn signal(&self, sig: &str) {
        Command::new("kill").arg(format!("-{sig}")).arg(self.id().to_string()).status().expect("kill runs");
    }

    /// Sends a signal to its whole process group, as a terminal's Ctrl-C or
    /// a service manager does (it must have been started as a group leader:
    /// `process_group(0)`).
    pub fn signal_group(&self, sig: &str) {
        let group = format!("-{}", self.id());
        Command::new("kill").arg(format!("-{sig}")).args(["--", &group]).status().expect("kill runs");
    }

    /// Waits up to `limit` for the exit; fails the test (and kills the
    /// process) if it does not come.
    pub fn wait_within(mut self, limit: Duration) -> (std::process::ExitStatus, String, String) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.as_mut().expect("running").try_wait().expect("waits") {
                self.child = None;
                return (status, self.stdout(), self.stderr());
            }
            assert!(start.elapsed() < limit, "still running after {limit:?}; stderr:\n{}", self.stderr());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the exit; returns its status, stdout and stderr.
    pub fn wait(mut self) -> (std::process::ExitStatus, String, String) {
        let status = self.child.take().expect("running").wait().expect("waits");
        (status, self.stdout(), self.stderr())
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A port nobody listens on right now: for an address that must be dead.
/// How many times each line of `file` occurs (an absent file: none): how
/// often each job ran, when jobs append their id to a file.
pub fn counts(file: &Path) -> std::collections::HashMap<String, usize> {
    let mut out = std::collections::HashMap::new();
    for line in std::fs::read_to_string(file).unwrap_or_default().lines() {
        *out.entry(line.to_owned()).or_default() += 1;
    }
    out
}

pub fn free_port() -> u16 {
    git_ci_testkit::free_port().unwrap()
}

/// Polls `cond` until it holds; fails the test after `limit`.
pub fn wait_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A finished `git-ci` process.
pub struct Run(pub Output);

impl Run {
    pub fn code(&self) -> i32 {
        self.0.status.code().unwrap_or(-1)
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }
    /// Asserts the exit code, showing both streams when it differs.
    pub fn expect(self, code: i32) -> Run {
        assert_eq!(self.code(), code, "exit code\n--- stdout\n{}\n--- stderr\n{}", self.stdout(), self.stderr());
        self
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout()).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout()))
    }
    /// No panic, no Rust debug print reached the user.
    pub fn assert_clean_error(&self) {
        let err = self.stderr();
        assert!(!err.contains("panicked") && !err.contains("RUST_BACKTRACE"), "panic: {err}");
        assert!(!err.contains("Error {") && !err.contains("Os {"), "debug print: {err}");
        assert!(err.contains("error: "), "no error line: {err}");
    }
}

/// Whether this runs on CI: `CI` set to anything but empty, `0` or `false`
/// (CI services set `CI=true`, and so does `.ci/run`).
pub fn on_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.as_str(), "" | "0" | "false"))
}

/// A test cannot run here for want of `prerequisite`. On CI that fails it:
/// there every prerequisite is installed (`.ci/run`), and a test that
/// returned early would pass without having checked anything. Elsewhere it
/// says so on stderr, and the caller returns.
pub fn missing(prerequisite: &str) {
    assert!(!on_ci(), "{prerequisite}: CI is set, so this test must run, not skip (`.ci/run` installs what it needs)");
    eprintln!("SKIPPED: {prerequisite} (with CI=true this fails instead)");
}

/// Whether the tests run as root (needed to own files as another user).
pub fn is_root() -> bool {
    let out = Command::new("id").arg("-u").output().expect("id runs");
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}
