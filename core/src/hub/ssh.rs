//! One ssh connection per hub for git-ci's own git calls.
//!
//! Every fetch and push over ssh starts an `ssh` client, and without
//! connection sharing each pays a new handshake (~0.3 s): a worker's poll,
//! claim and publish were three. OpenSSH can multiplex sessions over one
//! master connection (`ControlMaster`), kept open for a while after the
//! last session (`ControlPersist`); git-ci asks for it through
//! `GIT_SSH_COMMAND`, with the control socket in its cache directory.
//!
//! The user's choices win: nothing is changed when `GIT_SSH_COMMAND`,
//! `GIT_SSH`, `GIT_SSH_VARIANT`, `core.sshCommand` or `ssh.variant` are
//! set, or when the user's ssh config already sets `ControlMaster` or
//! `ControlPath` for that host (`ssh -G` prints the effective config; it
//! is asked once per hub and process).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// How long the master connection outlives its last session.
const PERSIST: &str = "60s";

/// A Unix socket's path is at most 108 bytes on Linux (104 on macOS), and
/// ssh first binds a temporary name 17 bytes longer.
const MAX_SOCKET_PATH: usize = 104 - 17;

/// An ssh hub's address, as git reads it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SshHost {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
}

impl SshHost {
    /// `ssh://[user@]host[:port]/path` (also `git+ssh://`, `ssh+git://`)
    /// or git's scp syntax `[user@]host:path`; `None` for anything else.
    pub fn parse(url: &str) -> Option<SshHost> {
        let authority = match url.split_once("://") {
            Some(("ssh" | "git+ssh" | "ssh+git", rest)) => rest.split('/').next().unwrap_or_default(),
            Some(_) => return None,
            // scp syntax: a colon before any slash, and not a drive letter.
            None => match url.split_once(':') {
                Some((host, _)) if host.len() > 1 && !host.contains('/') => return Some(Self::split(host, None)),
                _ => return None,
            },
        };
        let (rest, port) = match authority.rsplit_once(':') {
            // A port follows a bracketed IPv6 address or a plain host.
            Some((h, p)) if h.ends_with(']') || !h.contains(':') => match p.parse() {
                Ok(port) => (h, Some(port)),
                Err(_) => (authority, None),
            },
            _ => (authority, None),
        };
        (!rest.is_empty()).then(|| Self::split(rest, port))
    }

    fn split(s: &str, port: Option<u16>) -> SshHost {
        let (user, host) = match s.rsplit_once('@') {
            Some((u, h)) => (Some(u.to_owned()), h),
            None => (None, s),
        };
        SshHost { user, host: host.trim_start_matches('[').trim_end_matches(']').to_owned(), port }
    }

    /// `ssh` options naming this host as git's `ssh` call will.
    fn args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(p) = self.port {
            args.extend(["-p".to_owned(), p.to_string()]);
        }
        if let Some(u) = &self.user {
            args.extend(["-l".to_owned(), u.clone()]);
        }
        args.push(self.host.clone());
        args
    }
}

/// The `GIT_SSH_COMMAND` for git's calls to the hub at `url`, run in the
/// repository `cache` (whose config, the user's included, git reads);
/// decided once per hub and process.
pub fn for_hub(url: &str, cache: &gix::ThreadSafeRepository) -> Option<String> {
    static DECIDED: OnceLock<Mutex<HashMap<String, Option<String>>>> = OnceLock::new();
    let decided = DECIDED.get_or_init(Default::default);
    if let Some(known) = decided.lock().expect("ssh decisions").get(url) {
        return known.clone();
    }
    let command = SshHost::parse(url).and_then(|_| {
        let snapshot = cache.to_thread_local().config_snapshot().clone();
        let config = |key: &str| snapshot.string(key).map(|v| v.to_string());
        shared_command(url, &super::cache_root(), &config)
    });
    decided.lock().expect("ssh decisions").insert(url.to_owned(), command.clone());
    command
}

/// The `GIT_SSH_COMMAND` for git's calls to `url`, when git-ci should
/// share one connection to it; `None` to leave ssh as the user has it.
/// `config` answers git config keys as git sees them where git-ci runs git.
pub fn shared_command(url: &str, cache_root: &Path, config: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    let host = SshHost::parse(url)?;
    let env_set = ["GIT_SSH_COMMAND", "GIT_SSH", "GIT_SSH_VARIANT"].iter().any(|k| std::env::var_os(k).is_some());
    if env_set || config("core.sshCommand").is_some() || config("ssh.variant").is_some() {
        return None;
    }
    if !user_leaves_it_to_us(&host) {
        return None;
    }
    let socket = control_path(cache_root, &host)?;
    let quoted = format!("'{}'", socket.display().to_string().replace('\'', r"'\''"));
    Some(format!("ssh -o ControlMaster=auto -o ControlPath={quoted} -o ControlPersist={PERSIST}"))
}

/// Whether the user's ssh config sets neither `ControlMaster` nor
/// `ControlPath` for `host` (and `ssh -G` works: OpenSSH). Asked once per
/// host and process.
fn user_leaves_it_to_us(host: &SshHost) -> bool {
    static SEEN: OnceLock<Mutex<HashMap<SshHost, bool>>> = OnceLock::new();
    let seen = SEEN.get_or_init(Default::default);
    if let Some(known) = seen.lock().expect("ssh config cache").get(host) {
        return *known;
    }
    let free = ask_ssh(host).is_some_and(|effective| leaves_it_to_us(&effective));
    seen.lock().expect("ssh config cache").insert(host.clone(), free);
    free
}

/// `ssh -G`'s effective config for `host`; `None` when ssh is not OpenSSH
/// or cannot say.
fn ask_ssh(host: &SshHost) -> Option<String> {
    let out = std::process::Command::new("ssh")
        .arg("-G")
        .args(host.args())
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Whether `ssh -G` output shows the defaults: no master, no control path.
fn leaves_it_to_us(effective: &str) -> bool {
    let value = |key: &str| {
        effective.lines().find_map(|l| l.split_once(' ').filter(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v))
    };
    matches!(value("controlmaster"), None | Some("false" | "no")) && matches!(value("controlpath"), None | Some("none"))
}

/// `<cache>/ssh/<hash of the host>`, in a directory only this user can
/// enter; `None` when that path is too long for a socket.
fn control_path(cache_root: &Path, host: &SshHost) -> Option<PathBuf> {
    let dir = cache_root.join("ssh");
    let key = format!("{}@{}:{}", host.user.as_deref().unwrap_or(""), host.host, host.port.unwrap_or(0));
    let digest = crate::digest::sha256_hex(key.as_bytes());
    let path = dir.join(&digest[..16]);
    if path.as_os_str().len() > MAX_SOCKET_PATH {
        tracing::debug!(target: "git", "no ssh connection sharing: {} is too long for a socket", path.display());
        return None;
    }
    private_dir(&dir).ok()?;
    Some(path)
}

fn private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(user: Option<&str>, h: &str, port: Option<u16>) -> Option<SshHost> {
        Some(SshHost { user: user.map(str::to_owned), host: h.to_owned(), port })
    }

    #[test]
    fn ssh_urls_and_only_those() {
        assert_eq!(
            SshHost::parse("ssh://git@ci.example:2222/srv/hub.git"),
            host(Some("git"), "ci.example", Some(2222))
        );
        assert_eq!(SshHost::parse("ssh://ci.example/hub"), host(None, "ci.example", None));
        assert_eq!(SshHost::parse("git+ssh://me@[::1]:22/hub"), host(Some("me"), "::1", Some(22)));
        assert_eq!(SshHost::parse("git@ci.example:hub.git"), host(Some("git"), "ci.example", None));
        assert_eq!(SshHost::parse("ci.example:hub.git"), host(None, "ci.example", None));
        for not_ssh in ["git://ci.example/hub", "https://ci.example/hub", "file:///srv/hub", "/srv/hub", "./a:b", "C:x"]
        {
            assert_eq!(SshHost::parse(not_ssh), None, "{not_ssh}");
        }
    }

    #[test]
    fn a_users_control_settings_win() {
        assert!(leaves_it_to_us("user me\ncontrolmaster false\ncontrolpath none\n"));
        assert!(leaves_it_to_us("user me\n"));
        assert!(!leaves_it_to_us("controlmaster auto\ncontrolpath none\n"));
        assert!(!leaves_it_to_us("controlmaster false\ncontrolpath /home/me/.ssh/cm-%C\n"));
    }

    #[test]
    fn the_socket_path_is_short_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let a = control_path(dir.path(), &SshHost::parse("ssh://a/x").unwrap()).unwrap();
        let b = control_path(dir.path(), &SshHost::parse("ssh://b/x").unwrap()).unwrap();
        assert_ne!(a, b);
        assert_eq!(a.file_name().unwrap().len(), 16);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(a.parent().unwrap()).unwrap().permissions().mode() & 0o777, 0o700);
        let long = dir.path().join("x".repeat(120));
        assert_eq!(control_path(&long, &SshHost::parse("ssh://a/x").unwrap()), None);
    }
}
