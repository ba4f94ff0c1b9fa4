//! Shell completions and man pages, checked by the tools that read them.

use std::process::Command;

use crate::env::TestEnv;

#[test]
fn bash_accepts_the_completion_script() {
    let env = TestEnv::new();
    let script = env.ci(env.root.path(), &["completions", "bash"]).expect(0).stdout();
    assert!(script.contains("git-ci") && script.contains("worker"), "{script}");
    let file = env.path("git-ci.bash");
    std::fs::write(&file, script).unwrap();
    let check = Command::new("bash").arg("-n").arg(&file).status().expect("bash runs");
    assert!(check.success(), "bash -n rejected the completion script");
}

#[test]
fn man_pages_render_and_answer_git_ci_help() {
    let env = TestEnv::new();
    let dir = env.path("man/man1");
    env.ci(env.root.path(), &["man", "--out", dir.to_str().unwrap()]).expect(0);
    for page in ["git-ci.1", "git-ci-run.1", "git-ci-worker.1", "git-ci-hooks-install.1"] {
        assert!(dir.join(page).is_file(), "{page} missing");
    }
    if Command::new("man").arg("--version").output().is_err() {
        crate::env::missing("man, to render the pages (Debian: man-db)");
        return;
    }
    let rendered =
        Command::new("man").arg("-l").arg(dir.join("git-ci-worker.1")).env("MANWIDTH", "80").output().unwrap();
    let text = String::from_utf8_lossy(&rendered.stdout);
    assert!(rendered.status.success() && text.contains("--lease"), "{text}");
}
