//! A smart-HTTP hub on 127.0.0.1: lighttpd running `git http-backend` as
//! a CGI over a folder of bare hubs, the way an operator serves git over
//! HTTP (the Debian packages `lighttpd` and `git`). Pushes are allowed:
//! the CGI gets a `REMOTE_USER`, which is what makes `http-backend`
//! accept `git-receive-pack` without a config change in each hub.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where lighttpd is, if installed (Debian: lighttpd).
pub fn lighttpd_binary() -> Option<PathBuf> {
    ["/usr/sbin/lighttpd", "/usr/bin/lighttpd"].into_iter().map(PathBuf::from).find(|p| p.is_file())
}

/// A running lighttpd serving `base/<name>` at `http://127.0.0.1:PORT/git/<name>`.
pub struct HttpHub {
    child: Child,
    port: u16,
    /// lighttpd's access log: one line a request.
    pub access_log: PathBuf,
    error_log: PathBuf,
}

impl HttpHub {
    /// Starts lighttpd with its config and logs in `dir`, serving the bare
    /// repositories in `base`; `exec_path` is `git --exec-path`, where
    /// `git-http-backend` lives. `env` is added to every CGI's environment
    /// (the tests' hermetic git settings). Waits until it answers.
    pub fn start(dir: &Path, base: &Path, exec_path: &Path, env: &[(String, String)]) -> Result<HttpHub, String> {
        let lighttpd = lighttpd_binary().ok_or("no lighttpd (Debian: lighttpd)")?;
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let mut last = String::new();
        // A port handed out by the OS can be taken before lighttpd binds it.
        for _ in 0..5 {
            let port = crate::free_port().map_err(|e| e.to_string())?;
            match Self::try_start(&lighttpd, dir, base, exec_path, env, port) {
                Ok(hub) => return Ok(hub),
                Err(e) => last = e,
            }
        }
        Err(format!("could not start lighttpd: {last}"))
    }

    fn try_start(
        lighttpd: &Path,
        dir: &Path,
        base: &Path,
        exec_path: &Path,
        env: &[(String, String)],
        port: u16,
    ) -> Result<HttpHub, String> {
        let (access_log, error_log) = (dir.join("access.log"), dir.join("error.log"));
        let mut cgi_env = vec![
            ("GIT_PROJECT_ROOT".to_owned(), base.display().to_string()),
            ("GIT_HTTP_EXPORT_ALL".to_owned(), "1".to_owned()),
            ("REMOTE_USER".to_owned(), "ci".to_owned()),
        ];
        cgi_env.extend(env.iter().cloned());
        let setenv: Vec<String> = cgi_env.iter().map(|(k, v)| format!("{} => {}", quote(k), quote(v))).collect();
        let config = format!(
            "server.document-root = {root}\nserver.port = {port}\nserver.bind = \"127.0.0.1\"\n\
             server.modules = (\"mod_alias\", \"mod_setenv\", \"mod_cgi\", \"mod_accesslog\")\n\
             server.errorlog = {error}\naccesslog.filename = {access}\n\
             server.max-request-size = 0\n\
             alias.url = (\"/git/\" => {backend})\n\
             $HTTP[\"url\"] =~ \"^/git/\" {{\n  cgi.assign = (\"\" => \"\")\n  setenv.set-environment = ({setenv})\n}}\n",
            root = quote(&base.display().to_string()),
            error = quote(&error_log.display().to_string()),
            access = quote(&access_log.display().to_string()),
            backend = quote(&format!("{}/", exec_path.join("git-http-backend").display())),
            setenv = setenv.join(", "),
        );
        let config_file = dir.join("lighttpd.conf");
        std::fs::write(&config_file, config).map_err(|e| e.to_string())?;
        let child = Command::new(lighttpd)
            .arg("-D")
            .arg("-f")
            .arg(&config_file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("could not run {}: {e}", lighttpd.display()))?;
        let mut hub = HttpHub { child, port, access_log, error_log };
        hub.wait_ready()?;
        Ok(hub)
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().map_err(|e| e.to_string())? {
                let said = std::fs::read_to_string(&self.error_log).unwrap_or_default();
                return Err(format!("lighttpd on port {} exited ({status}): {}", self.port, said.trim()));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!("lighttpd did not accept connections on {addr}"))
    }

    /// `http://127.0.0.1:PORT/git/<repo>`.
    pub fn url(&self, repo: &str) -> String {
        format!("http://127.0.0.1:{}/git/{repo}", self.port)
    }

    /// How many requests lighttpd served so far.
    pub fn requests(&self) -> usize {
        std::fs::read_to_string(&self.access_log).map(|l| l.lines().count()).unwrap_or(0)
    }
}

/// A lighttpd config string: double quotes, with `"` and `\` escaped.
fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

impl Drop for HttpHub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
