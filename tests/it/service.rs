//! `git ci worker ... install-service`: the systemd unit it writes.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::env::TestEnv;

const PIPELINE: &str = "[job.long]\nrun = \"true\"\ntimeout = \"2h\"\n\n[job.short]\nrun = \"true\"\n";

fn binary() -> String {
    Path::new(env!("CARGO_BIN_EXE_git-ci")).canonicalize().unwrap().to_string_lossy().into_owned()
}

fn line<'a>(unit: &'a str, key: &str) -> &'a str {
    unit.lines().find(|l| l.starts_with(&format!("{key}="))).unwrap_or_else(|| panic!("no {key}= in\n{unit}"))
}

#[test]
fn print_shows_the_worker_flags_the_repository_and_the_stop_timeout() {
    let env = TestEnv::new();
    let repo = env.project("p", PIPELINE);
    let sub = repo.join("sub");
    std::fs::create_dir(&sub).unwrap();
    let args = ["worker", "--jobs", "2", "--label", "gpu=a", "--name", "w1", "--work-dir", "../w"];
    let unit = env.ci(&sub, &[&args[..], &["install-service", "--user", "--print"]].concat()).expect(0).stdout();
    let repo = repo.canonicalize().unwrap();

    let exec =
        format!("ExecStart={} worker --label gpu=a --jobs 2 --name w1 --work-dir {}/w", binary(), repo.display());
    assert_eq!(line(&unit, "ExecStart"), exec);
    assert_eq!(line(&unit, "WorkingDirectory"), format!("WorkingDirectory={}", repo.display()));
    assert_eq!(line(&unit, "Restart"), "Restart=on-failure");
    assert_eq!(line(&unit, "KillMode"), "KillMode=mixed");
    // The 2h job of .git-ci.toml + 10 s kill grace + 2 min to publish.
    assert_eq!(line(&unit, "TimeoutStopSec"), "TimeoutStopSec=7330s");
    assert!(unit.contains("2h00m (the longest job timeout in .git-ci.toml)"), "{unit}");
    let cache = env.path("cache");
    assert!(unit.contains(&format!("Environment=\"GIT_CI_CACHE_DIR={}\"\n", cache.display())), "{unit}");
    assert!(unit.contains("Environment=\"PATH="), "{unit}");
    assert!(unit.contains("WantedBy=default.target") && !unit.contains("User="), "{unit}");

    let system = env.ci(&sub, &["worker", "install-service", "--print"]).expect(0).stdout();
    assert_eq!(line(&system, "ExecStart"), format!("ExecStart={} worker", binary()));
    assert!(line(&system, "User").len() > "User=".len(), "{system}");
    assert!(system.contains("WantedBy=multi-user.target"), "{system}");

    // Outside a repository and with no --hub, the worker would have no hub.
    let lost = env.ci(env.root.path(), &["worker", "install-service", "--print"]).expect(2);
    assert!(lost.stderr().contains("no hub"), "{}", lost.stderr());
}

#[test]
fn arguments_with_spaces_percent_and_dollar_are_quoted_for_systemd() {
    let env = TestEnv::new();
    let repo = env.project("p", PIPELINE);
    let label = "note=50% of $HOME \"x\"";
    let args = ["worker", "--label", label, "--work-dir", "/tmp/a dir", "install-service", "--print"];
    let unit = env.ci(&repo, &args).expect(0).stdout();
    let want = format!(r#"ExecStart={} worker --label "note=50%% of $$HOME \"x\"" --work-dir "/tmp/a dir""#, binary());
    assert_eq!(line(&unit, "ExecStart"), want);
}

#[test]
fn systemd_analyze_verify_accepts_the_units() {
    let Ok(analyze) = which("systemd-analyze") else {
        crate::env::missing("systemd-analyze, to verify the unit (Debian: the systemd package)");
        return;
    };
    let env = TestEnv::new();
    let repo = env.project("p", PIPELINE);
    let flags = ["worker", "--name", "w1", "--label", "note=50% of $HOME \"x\"", "--work-dir", "/tmp/a dir"];
    for mode in [&["--user"][..], &[]] {
        let unit = env.ci(&repo, &[&flags[..], &["install-service", "--print"], mode].concat()).expect(0).stdout();
        let dir = env.path(if mode.is_empty() { "system" } else { "user" });
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("git-ci-worker-w1.service");
        std::fs::write(&path, unit).unwrap();
        // System mode for both: a user manager needs a session to verify in.
        let out = Command::new(&analyze).arg("verify").arg(&path).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "systemd-analyze verify {mode:?}:\n{err}");
        assert!(!err.contains(path.to_str().unwrap()), "a complaint about the unit: {err}");
    }
}

fn which(program: &str) -> Result<PathBuf, ()> {
    let path = std::env::var_os("PATH").ok_or(())?;
    std::env::split_paths(&path).map(|d| d.join(program)).find(|p| p.is_file()).ok_or(())
}

/// A `systemctl` that records its arguments and exits with $FAKE_EXIT.
const FAKE_SYSTEMCTL: &str = "#!/bin/sh\necho \"$*\" >> \"$(dirname \"$0\")/calls\"\nexit \"${FAKE_EXIT:-0}\"\n";

#[test]
fn install_writes_the_unit_then_enables_it_or_says_why_it_could_not() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::new();
    let repo = env.project("p", PIPELINE);
    let bin = env.path("fake-bin");
    std::fs::create_dir(&bin).unwrap();
    std::fs::write(bin.join("systemctl"), FAKE_SYSTEMCTL).unwrap();
    std::fs::set_permissions(bin.join("systemctl"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let install = |exit: &str| {
        let args = ["worker", "--name", "w1", "install-service", "--user"];
        let out = env.ci_cmd(&repo, &args).env("PATH", &path).env("FAKE_EXIT", exit).output().unwrap();
        crate::env::Run(out)
    };
    let unit = env.path("home/.config/systemd/user/git-ci-worker-w1.service");

    let failed = install("1").expect(2);
    failed.assert_clean_error();
    let err = failed.stderr();
    assert!(err.contains(&format!("wrote {}, but `systemctl --user daemon-reload` failed", unit.display())), "{err}");
    assert!(err.contains("systemctl --user enable --now git-ci-worker-w1.service"), "says what to run: {err}");
    assert!(std::fs::read_to_string(&unit).unwrap().contains("ExecStart="));

    std::fs::remove_file(bin.join("calls")).unwrap();
    let ok = install("0").expect(0);
    let calls = std::fs::read_to_string(bin.join("calls")).unwrap();
    assert_eq!(calls, "--user daemon-reload\n--user enable --now git-ci-worker-w1.service\n");
    assert!(ok.stderr().contains("journalctl --user -u git-ci-worker-w1.service -f"), "{}", ok.stderr());
}
