//! Headless Chromium driven over the DevTools protocol, for what a page
//! dump cannot tell: where things were laid out, which styles applied, and
//! whether the Content-Security-Policy refused anything.
//!
//! The protocol runs over a pipe (`--remote-debugging-pipe`: Chromium reads
//! commands on its fd 3 and answers on fd 4, each message JSON ended by a
//! NUL). A shell maps our stdin/stdout pipes onto those fds, so no unsafe
//! `pre_exec` and no WebSocket client are needed.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::browser::CHROMIUM;

const WAIT: Duration = Duration::from_secs(60);

pub struct DevTools {
    child: Child,
    to: ChildStdin,
    from: Receiver<Value>,
    next: u64,
    session: Option<String>,
    /// Every event received so far (console, log, audits, page).
    pub events: Vec<Value>,
}

impl DevTools {
    /// A browser with one blank tab, the domains that report problems on.
    pub fn open(profile: &Path) -> DevTools {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(r#"exec "$0" "$@" 3<&0 4>&1 </dev/null >/dev/null"#)
            .arg(CHROMIUM)
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"])
            .args(["--disable-component-update", "--disable-sync", "--hide-scrollbars", "--remote-debugging-pipe"])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromium starts");
        let to = child.stdin.take().unwrap();
        let mut reader = BufReader::new(child.stdout.take().unwrap());
        let (tx, from) = channel();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            while reader.read_until(0, &mut buf).is_ok_and(|n| n > 0) {
                let text = buf.strip_suffix(b"\0").unwrap_or(&buf);
                if let Ok(v) = serde_json::from_slice::<Value>(text)
                    && tx.send(v).is_err()
                {
                    break;
                }
                buf.clear();
            }
        });
        let mut dt = DevTools { child, to, from, next: 0, session: None, events: Vec::new() };
        let target = dt.call("Target.createTarget", json!({"url": "about:blank"}));
        let target = target["targetId"].as_str().expect("a target id").to_owned();
        let attached = dt.call("Target.attachToTarget", json!({"targetId": target, "flatten": true}));
        dt.session = Some(attached["sessionId"].as_str().expect("a session").to_owned());
        for domain in ["Page", "Runtime", "Log", "Audits"] {
            dt.call(&format!("{domain}.enable"), json!({}));
        }
        dt.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": false}),
        );
        dt
    }

    /// Sends a command to the tab, returns its result; events met on the
    /// way are kept in [`DevTools::events`].
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = &self.session {
            msg["sessionId"] = s.clone().into();
        }
        let mut bytes = serde_json::to_vec(&msg).unwrap();
        bytes.push(0);
        self.to.write_all(&bytes).and_then(|()| self.to.flush()).expect("chromium reads commands");
        loop {
            let m = self.receive(method);
            if m["id"] == id {
                assert!(m.get("error").is_none(), "{method}: {m}");
                return m["result"].clone();
            }
            self.events.push(m);
        }
    }

    fn receive(&mut self, waiting_for: &str) -> Value {
        match self.from.recv_timeout(WAIT) {
            Ok(m) => m,
            Err(RecvTimeoutError::Timeout) => panic!("chromium did not answer {waiting_for} in {WAIT:?}"),
            Err(RecvTimeoutError::Disconnected) => panic!("chromium went away before answering {waiting_for}"),
        }
    }

    /// Loads `page` and waits for its load event.
    pub fn load(&mut self, page: &Path) {
        self.call("Page.navigate", json!({"url": format!("file://{}", page.display())}));
        let started = Instant::now();
        while !self.events.iter().any(|e| e["method"] == "Page.loadEventFired") {
            assert!(started.elapsed() < WAIT, "{} did not load", page.display());
            let m = self.receive("Page.loadEventFired");
            self.events.push(m);
        }
    }

    /// The value of a script run in the page by the debugger (which the
    /// page's CSP does not govern: the page itself still runs none).
    pub fn eval(&mut self, expression: &str) -> Value {
        let r = self.call("Runtime.evaluate", json!({"expression": expression, "returnByValue": true}));
        assert!(r.get("exceptionDetails").is_none(), "{expression}: {r}");
        r["result"]["value"].clone()
    }

    /// What the browser reported about the Content-Security-Policy: every
    /// refusal is logged as a security message and raised as an issue.
    pub fn csp_reports(&self) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|e| {
                let p = &e["params"];
                match e["method"].as_str() {
                    Some("Log.entryAdded") if p["entry"]["source"] == "security" => {
                        Some(p["entry"]["text"].to_string())
                    }
                    Some("Log.entryAdded" | "Runtime.consoleAPICalled")
                        if e.to_string().contains("Content Security Policy") =>
                    {
                        Some(e.to_string())
                    }
                    Some("Audits.issueAdded") if p["issue"]["code"] == "ContentSecurityPolicyIssue" => {
                        Some(p["issue"].to_string())
                    }
                    _ => None,
                }
            })
            .collect()
    }
}

impl Drop for DevTools {
    fn drop(&mut self) {
        self.session = None;
        let mut bytes = serde_json::to_vec(&json!({"id": 0, "method": "Browser.close"})).unwrap();
        bytes.push(0);
        let _ = self.to.write_all(&bytes);
        let started = Instant::now();
        while self.child.try_wait().ok().flatten().is_none() {
            if started.elapsed() > Duration::from_secs(10) {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
