//! Real git on 127.0.0.1: bare hubs in a temporary directory, one
//! `git daemon` serving them all, and the `git` commands the floors run.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use git_ci_core::Hub;
use git_ci_core::hub::{LocalHub, RemoteHub};
use git_ci_testkit::{Daemon, DaemonSpec};

pub type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// A `git` command in `dir`, hermetic whatever the environment we were
/// started from: no user or system config, no prompt, C locale, and a fixed
/// identity and date so that commits are the same objects everywhere.
pub fn git_cmd(dir: &Path) -> Command {
    let mut cmd = Command::new("git");
    hermetic(&mut cmd, dir);
    cmd
}

fn hermetic(cmd: &mut Command, dir: &Path) {
    cmd.current_dir(dir)
        .stdin(Stdio::null())
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("LC_ALL", "C");
    for who in ["AUTHOR", "COMMITTER"] {
        cmd.env(format!("GIT_{who}_NAME"), "bench")
            .env(format!("GIT_{who}_EMAIL"), "bench@localhost")
            .env(format!("GIT_{who}_DATE"), "2026-01-01T00:00:00Z");
    }
}

/// Runs `git args` in `dir`, feeding `input` on stdin; returns trimmed stdout.
pub fn git_with_input(dir: &Path, args: &[&str], input: &str) -> Res<String> {
    let mut child = git_cmd(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("could not start git {}: {e}", args.join(" ")))?;
    // Small inputs only: they fit the pipe, so writing before reading
    // cannot deadlock.
    child.stdin.take().ok_or("no stdin")?.write_all(input.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(format!("git {} failed ({}): {}", args.join(" "), out.status, stderr.trim()).into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

pub fn git(dir: &Path, args: &[&str]) -> Res<String> {
    git_with_input(dir, args, "")
}

/// The commit every job tests: one small file, the same object id in
/// every repository it is written to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Commit {
    pub commit: String,
    pub tree: String,
}

/// Writes [`Commit`] into the repository at `git_dir` and points
/// `refs/heads/main` at it, as a hub that received a branch push would.
pub fn write_commit(git_dir: &Path) -> Res<Commit> {
    let blob = git_with_input(git_dir, &["hash-object", "-w", "--stdin"], "hello from git-ci-bench\n")?;
    let tree = git_with_input(git_dir, &["mktree"], &format!("100644 blob {blob}\tREADME\n"))?;
    let commit = git(git_dir, &["commit-tree", &tree, "-m", "bench"])?;
    git(git_dir, &["update-ref", "refs/heads/main", &commit])?;
    Ok(Commit { commit, tree })
}

/// `git daemon` on 127.0.0.1 serving every repository under `base`, with
/// pushes, its stderr in `log`.
fn start_daemon(base: &Path, log: &Path, verbose: bool) -> Res<Daemon> {
    let exec_path = git(base, &["--exec-path"])?;
    let spec = DaemonSpec { exec_path: Path::new(&exec_path), base, push: true, port: None, log: Some(log) };
    Ok(Daemon::start(&spec, |cmd| {
        hermetic(cmd, base);
        if verbose {
            cmd.arg("--verbose");
        }
    })?)
}

/// Everything one benchmark run works in. Fields drop in order: the daemon
/// dies before its directory is removed.
pub struct Fixture {
    daemon: Daemon,
    root: tempfile::TempDir,
    pub commit: Commit,
}

impl Fixture {
    /// Everything goes in a fresh directory under `dir` (the system's
    /// temporary directory when `None`).
    pub fn new(dir: Option<&Path>) -> Res<Fixture> {
        let mut builder = tempfile::Builder::new();
        builder.prefix("git-ci-bench-");
        let root = match dir {
            Some(dir) => builder.tempdir_in(dir)?,
            None => builder.tempdir()?,
        };
        for dir in ["hubs", "clients", "work"] {
            std::fs::create_dir(root.path().join(dir))?;
        }
        let daemon = start_daemon(&root.path().join("hubs"), &root.path().join("daemon.log"), false)?;
        let probe = root.path().join("clients/probe.git");
        init_bare(&probe)?;
        let commit = write_commit(&probe)?;
        Ok(Fixture { daemon, root, commit })
    }

    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// A fresh bare hub holding the commit at `refs/heads/main`, served by
    /// the daemon as `<name>`.
    pub fn hub(&self, name: &str) -> Res<PathBuf> {
        let path = self.hub_path(name);
        init_bare(&path)?;
        self.seed(&path)?;
        Ok(path)
    }

    /// Where [`Fixture::hub`] made the hub `name`.
    pub fn hub_path(&self, name: &str) -> PathBuf {
        self.root.path().join("hubs").join(name)
    }

    /// A bare repository that pushes to hubs the way the floors do.
    pub fn client(&self, name: &str) -> Res<PathBuf> {
        let path = self.root.path().join("clients").join(name);
        init_bare(&path)?;
        self.seed(&path)?;
        Ok(path)
    }

    /// A second `git daemon` on the same hubs that logs every request it
    /// serves to `log` (`--verbose`), for counting them.
    pub fn counting_daemon(&self, log: &Path) -> Res<Daemon> {
        start_daemon(&self.root.path().join("hubs"), log, true)
    }

    pub fn url(&self, hub: &str) -> String {
        self.daemon.url(hub)
    }

    /// A fresh directory for a worker's checkouts.
    pub fn work_dir(&self, name: &str) -> Res<PathBuf> {
        let path = self.root.path().join("work").join(name);
        std::fs::create_dir_all(&path)?;
        Ok(path)
    }

    fn seed(&self, git_dir: &Path) -> Res<()> {
        let written = write_commit(git_dir)?;
        if written != self.commit {
            return Err(format!("the bench commit came out as {} in {}", written.commit, git_dir.display()).into());
        }
        Ok(())
    }

    pub fn local(&self, hub: &Path) -> Res<LocalHub> {
        Ok(LocalHub::open(hub)?)
    }

    /// A remote hub over git daemon whose cache repository holds the commit,
    /// as a submitter's would (its pushes of pins then send no objects).
    pub fn remote(&self, hub: &str, owner: &str) -> Res<RemoteHub> {
        self.remote_at(&self.url(hub), owner)
    }

    /// [`Fixture::remote`] at any URL (a hub served over smart HTTP).
    pub fn remote_at(&self, url: &str, owner: &str) -> Res<RemoteHub> {
        let remote = RemoteHub::open(url, None, owner)?;
        self.seed(Hub::repo(&remote).git_dir())?;
        Ok(remote)
    }
}

pub fn init_bare(path: &Path) -> Res<()> {
    let parent = path.parent().ok_or("no parent directory")?;
    git(parent, &["init", "--bare", "-q", "-b", "main", &path.display().to_string()])?;
    Ok(())
}
