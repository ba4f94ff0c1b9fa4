//! An OpenSSH server on 127.0.0.1 for this user, and a client set up to
//! reach it as the host `hub` with no prompt: for ssh hubs in the tests
//! and the bench. The client's config is given with `ssh -F` by an `ssh`
//! wrapper put first on PATH, so git and git-ci call `ssh` as they would
//! anywhere (`GIT_SSH_COMMAND` would turn git-ci's own ssh settings off).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `sshd` and its client's set-up.
pub struct Sshd {
    child: Child,
    port: u16,
    /// A directory to put first on PATH: its `ssh` adds `-F <config>`.
    pub bin: PathBuf,
    /// sshd's log: one `Accepted publickey` line a connection.
    pub log: PathBuf,
}

/// Where OpenSSH's server is, if installed (Debian: openssh-server).
pub fn sshd_binary() -> Option<PathBuf> {
    ["/usr/sbin/sshd", "/usr/bin/sshd"].into_iter().map(PathBuf::from).find(|p| p.is_file())
}

impl Sshd {
    /// Starts sshd with keys and configs made in `dir`, waiting until it
    /// accepts connections.
    pub fn start(dir: &Path) -> Result<Sshd, String> {
        let sshd = sshd_binary().ok_or("no sshd (Debian: openssh-server)")?;
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        for key in ["host_key", "client_key"] {
            let _ = std::fs::remove_file(dir.join(key));
            let made = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(dir.join(key))
                .status()
                .map_err(|e| format!("ssh-keygen: {e}"))?;
            if !made.success() {
                return Err("ssh-keygen failed".into());
            }
        }
        std::fs::copy(dir.join("client_key.pub"), dir.join("authorized_keys")).map_err(|e| e.to_string())?;
        // sshd wants /run/sshd (privilege separation) when run as root.
        let _ = std::fs::create_dir_all("/run/sshd");
        let port = crate::free_port().map_err(|e| e.to_string())?;
        let log = dir.join("sshd.log");
        // The sessions' HOME: an empty directory, as a hub's `git` account
        // with a plain shell has. bash started by sshd reads ~/.bashrc even
        // when not interactive, and this user's may do anything (on the
        // bench machine root's ran `pyenv init`: 0.27 s a session, more
        // than the git work measured).
        let home = dir.join("home");
        std::fs::create_dir_all(&home).map_err(|e| e.to_string())?;
        let child = Command::new(&sshd)
            .args(["-D", "-f", "/dev/null", "-p", &port.to_string(), "-E"])
            .arg(&log)
            .arg("-h")
            .arg(dir.join("host_key"))
            .args(["-o", "ListenAddress=127.0.0.1", "-o", "PidFile=none", "-o", "UsePAM=no", "-o", "StrictModes=no"])
            .args(["-o", "LogLevel=INFO", "-o", "PermitRootLogin=prohibit-password", "-o", "MaxStartups=100"])
            .args(["-o", "MaxSessions=100"])
            .arg("-o")
            .arg(format!("SetEnv=HOME={}", home.display()))
            .arg("-o")
            .arg(format!("AuthorizedKeysFile={}", dir.join("authorized_keys").display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("could not start sshd: {e}"))?;
        let bin = dir.join("bin");
        let mut sshd = Sshd { child, port, bin, log };
        sshd.client(dir)?;
        sshd.wait_ready()?;
        Ok(sshd)
    }

    /// The client config (host `hub`) and the `ssh` wrapper that reads it.
    fn client(&self, dir: &Path) -> Result<(), String> {
        let user = whoami();
        let config = dir.join("ssh_config");
        let text = format!(
            "Host hub\n  HostName 127.0.0.1\n  Port {}\n  User {user}\n  IdentityFile {}\n  IdentitiesOnly yes\n  \
             StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n  BatchMode yes\n",
            self.port,
            dir.join("client_key").display()
        );
        std::fs::write(&config, text).map_err(|e| e.to_string())?;
        std::fs::create_dir_all(&self.bin).map_err(|e| e.to_string())?;
        let real = ["/usr/bin/ssh", "/bin/ssh"].into_iter().find(|p| Path::new(p).is_file()).ok_or("no ssh client")?;
        let wrapper = self.bin.join("ssh");
        std::fs::write(&wrapper, format!("#!/bin/sh\nexec {real} -F {} \"$@\"\n", config.display()))
            .map_err(|e| e.to_string())?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).map_err(|e| e.to_string())
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().map_err(|e| e.to_string())? {
                let said = std::fs::read_to_string(&self.log).unwrap_or_default();
                return Err(format!("sshd exited ({status}): {said}"));
            }
            let ssh = self.bin.join("ssh");
            let probe = Command::new(&ssh).args(["hub", "true"]).stdin(Stdio::null()).output();
            if probe.is_ok_and(|o| o.status.success()) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!(
            "sshd on port {} did not let us in: {}",
            self.port,
            std::fs::read_to_string(&self.log).unwrap_or_default()
        ))
    }

    /// How many connections sshd accepted so far.
    pub fn connections(&self) -> usize {
        std::fs::read_to_string(&self.log).unwrap_or_default().matches("Accepted publickey").count()
    }

    /// `ssh://hub/<path>`.
    pub fn url(&self, path: &Path) -> String {
        format!("ssh://hub{}", path.display())
    }

    /// Closes the master connections whose sockets are in `dir` (git-ci's
    /// `<cache>/ssh`): they would outlive the test by their ControlPersist.
    pub fn close_masters(&self, dir: &Path) {
        for socket in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let mut exit = Command::new(self.bin.join("ssh"));
            let _ = exit.arg("-S").arg(socket.path()).args(["-O", "exit", "hub"]).output();
        }
    }

    /// PATH with the wrapper first.
    pub fn path_env(&self) -> std::ffi::OsString {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::join_paths(std::iter::once(self.bin.clone()).chain(std::env::split_paths(&path))).unwrap_or(path)
    }
}

fn whoami() -> String {
    let out = Command::new("id").arg("-un").output();
    out.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned()).unwrap_or_else(|_| "root".into())
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
