//! The systemd unit `git ci worker install-service` writes: rendering and
//! the quoting systemd's unit files want (specifiers, `$`, exec words).
//! Pure text, apart from the installing in the parent module.

use std::fmt::Write as _;
use std::time::Duration;

use super::{PUBLISH_MARGIN, Unit};

/// The unit file's text.
pub(super) fn render(u: &Unit) -> String {
    let ctl = if u.user { "systemctl --user" } else { "systemctl" };
    let mut s = String::new();
    let _ = writeln!(s, "# Written by `git ci worker install-service`: run it again to change the worker's flags.");
    let _ = writeln!(s, "# To remove: {ctl} disable --now {}, then delete this file.", u.name);
    let _ = writeln!(s, "\n[Unit]");
    let _ = writeln!(s, "Description={}", specifiers(&format!("git-ci worker for {}", u.workdir.display())));
    if !u.user {
        // A user manager has no network-online.target of its own.
        s.push_str("Wants=network-online.target\nAfter=network-online.target\n");
    }
    let _ = writeln!(s, "\n[Service]\nType=exec");
    if let Some(user) = &u.run_as {
        let _ = writeln!(s, "User={}", specifiers(user));
    }
    let _ = writeln!(s, "WorkingDirectory={}", specifiers(&u.workdir.to_string_lossy()));
    let exec: Vec<String> = [u.exe.to_string_lossy().into_owned(), "worker".into()]
        .into_iter()
        .chain(u.flags.iter().cloned())
        .map(|w| exec_word(&w))
        .collect();
    let _ = writeln!(s, "ExecStart={}", exec.join(" "));
    if !u.env.is_empty() {
        s.push_str(
            "# From the shell that installed it: jobs find the same tools, the worker the same hub and cache.\n",
        );
    }
    for (k, v) in &u.env {
        let _ = writeln!(s, "Environment={}", quoted(&specifiers(&format!("{k}={v}"))));
    }
    s.push_str("Restart=on-failure\nRestartSec=10s\n");
    s.push_str(&stop_comment(u, ctl));
    let _ = writeln!(s, "KillSignal=SIGTERM\nKillMode=mixed\nTimeoutStopSec={}s", u.stop.total().as_secs());
    let target = if u.user { "default.target" } else { "multi-user.target" };
    let _ = writeln!(s, "\n[Install]\nWantedBy={target}");
    s
}

/// Why the stop settings are what they are, in the unit itself.
fn stop_comment(u: &Unit, ctl: &str) -> String {
    let human = |d: Duration| git_ci_core::time::human_duration(d);
    let stop = &u.stop;
    format!(
        "# Stopping: SIGTERM goes to the worker alone (KillMode=mixed), which then claims nothing\n\
         # new, lets its running jobs finish and publishes them. TimeoutStopSec leaves time for\n\
         # that: {} ({}) + the kill grace ({}) + {} to publish.\n\
         # Jobs that may run longer (from other branches, or `submit --timeout`) need more.\n\
         # Past it systemd SIGKILLs the whole control group, jobs included; their claims expire\n\
         # and other workers run them again. To cancel the running jobs now instead (they are\n\
         # published as cancelled), send the worker a second SIGTERM:\n\
         #   {ctl} kill --kill-who=main --signal=SIGTERM {}\n",
        human(stop.longest_job),
        stop.source,
        human(stop.kill_grace),
        human(PUBLISH_MARGIN),
        u.name,
    )
}

/// `%` starts a specifier in most unit settings; `%%` is a literal one.
fn specifiers(s: &str) -> String {
    s.replace('%', "%%")
}

/// One word of `ExecStart=` as systemd splits it: `%` (specifiers) and `$`
/// (variables) doubled everywhere, and double quotes, with C escapes
/// inside, around a word that holds blanks, quotes, backslashes or control
/// characters (or is empty).
pub(super) fn exec_word(word: &str) -> String {
    let escaped = specifiers(word).replace('$', "$$");
    let plain = !word.is_empty()
        && !word.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '\'' | '\\'));
    if plain { escaped } else { quoted(&escaped) }
}

/// `"..."` with systemd's C escapes.
fn quoted(s: &str) -> String {
    let mut out = String::from('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
