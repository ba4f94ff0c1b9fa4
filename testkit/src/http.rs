//! A smart HTTP git server on 127.0.0.1: lighttpd running `git
//! http-backend` as a CGI over a folder of bare hubs, pushes allowed, for
//! hubs reached over `http://` in the bench. (The transport figures in
//! NOTES.md were taken with apache; lighttpd is the small server Debian
//! packages as `lighttpd`, and the CGI it runs is git's own.)

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running lighttpd serving `http://127.0.0.1:PORT/git/<name>` from
/// `base/<name>`; killed when dropped.
pub struct HttpServer {
    child: Child,
    port: u16,
}

/// Where lighttpd is, if installed (Debian: lighttpd).
pub fn lighttpd_binary() -> Option<PathBuf> {
    ["/usr/sbin/lighttpd", "/usr/bin/lighttpd"].into_iter().map(PathBuf::from).find(|p| p.is_file())
}

impl HttpServer {
    /// Serves the bare repositories in `base`, with its config and log in
    /// `dir`; `exec_path` is `git --exec-path` (where `git-http-backend`
    /// is). Waits until it accepts connections.
    pub fn start(dir: &Path, base: &Path, exec_path: &Path) -> Result<HttpServer, String> {
        let lighttpd = lighttpd_binary().ok_or("no lighttpd (Debian: lighttpd)")?;
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let port = crate::free_port().map_err(|e| format!("could not get a free port: {e}"))?;
        let config = dir.join("lighttpd.conf");
        std::fs::write(&config, config_text(dir, base, exec_path, port))
            .map_err(|e| format!("{}: {e}", config.display()))?;
        let child = Command::new(&lighttpd)
            .arg("-D")
            .arg("-f")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("could not run {}: {e}", lighttpd.display()))?;
        let mut server = HttpServer { child, port };
        server.wait_ready(&dir.join("error.log"))?;
        Ok(server)
    }

    fn wait_ready(&mut self, log: &Path) -> Result<(), String> {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().map_err(|e| e.to_string())? {
                let said = std::fs::read_to_string(log).unwrap_or_default();
                return Err(format!("lighttpd on port {} exited ({status}): {}", self.port, said.trim()));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!("lighttpd did not accept connections on {addr} within 20 s"))
    }

    pub fn url(&self, repo: &str) -> String {
        format!("http://127.0.0.1:{}/git/{repo}", self.port)
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Pushes over HTTP need `http.receivepack`, given to the CGI through
/// `GIT_CONFIG_*` rather than written into each hub; the environment is
/// otherwise the server's own (no user or system git config of the
/// machine's: `GIT_CONFIG_NOSYSTEM`, a `HOME` of its own).
fn config_text(dir: &Path, base: &Path, exec_path: &Path, port: u16) -> String {
    let (dir, base) = (dir.display(), base.display());
    let backend = exec_path.join("git-http-backend");
    let backend = backend.display();
    format!(
        r#"server.document-root = "{base}"
server.port = {port}
server.bind = "127.0.0.1"
server.errorlog = "{dir}/error.log"
server.modules = ("mod_alias", "mod_setenv", "mod_cgi")
alias.url = ( "/git/" => "{backend}/" )
$HTTP["url"] =~ "^/git/" {{
  cgi.assign = ( "" => "" )
  setenv.add-environment = (
    "GIT_PROJECT_ROOT" => "{base}",
    "GIT_HTTP_EXPORT_ALL" => "1",
    "GIT_CONFIG_NOSYSTEM" => "1",
    "HOME" => "{dir}",
    "GIT_CONFIG_COUNT" => "1",
    "GIT_CONFIG_KEY_0" => "http.receivepack",
    "GIT_CONFIG_VALUE_0" => "true"
  )
}}
"#
    )
}
