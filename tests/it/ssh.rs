//! ssh hubs (issue 18, goal 3): git-ci's own git calls to one hub share
//! one ssh connection, unless the user set up ssh their own way.

use std::path::Path;

use git_ci_testkit::ssh::{Sshd, sshd_binary};

use crate::env::{Run, TestEnv, missing};

/// sshd, or `None` (the test then returns; on CI it fails instead).
fn sshd(env: &TestEnv) -> Option<Sshd> {
    if sshd_binary().is_none() {
        missing("sshd, for ssh hubs (Debian: openssh-server)");
        return None;
    }
    Some(Sshd::start(&env.path("sshd")).expect("sshd starts"))
}

/// `git-ci ARGS` in `dir` with the ssh wrapper first on PATH.
fn ci(env: &TestEnv, sshd: &Sshd, dir: &Path, args: &[&str], ssh_command: Option<&str>) -> Run {
    let mut cmd = env.ci_cmd(dir, args);
    cmd.env("PATH", sshd.path_env());
    if let Some(c) = ssh_command {
        cmd.env("GIT_SSH_COMMAND", c);
    }
    Run(cmd.output().expect("git-ci runs"))
}

#[test]
fn every_git_call_of_several_commands_shares_one_ssh_connection() {
    let env = TestEnv::new();
    let Some(sshd) = sshd(&env) else { return };
    let (repo, hub) = env.project_on_hub("[job.noop]\nrun = \"true\"\n");
    let url = sshd.url(Path::new(&hub));
    let before = sshd.connections();
    let id = ci(&env, &sshd, &repo, &["submit", "--hub", &url, "--run", "true"], None).expect(0).stdout();
    let id = id.trim();
    ci(&env, &sshd, &repo, &["worker", "--hub", &url, "--once", "--name", "w"], None).expect(0);
    let show = ci(&env, &sshd, &repo, &["show", "--hub", &url, "--json", id], None).expect(0).json();
    assert_eq!(show["state"], "passed", "{show}");
    ci(&env, &sshd, &repo, &["status", "--hub", &url], None).expect(0);
    let opened = sshd.connections() - before;
    sshd.close_masters(&env.path("cache/ssh"));
    assert_eq!(opened, 1, "one connection for every git call of four commands");
}

#[test]
fn a_users_own_ssh_command_is_left_alone() {
    let env = TestEnv::new();
    let Some(sshd) = sshd(&env) else { return };
    let (repo, hub) = env.project_on_hub("[job.noop]\nrun = \"true\"\n");
    let url = sshd.url(Path::new(&hub));
    let before = sshd.connections();
    ci(&env, &sshd, &repo, &["submit", "--hub", &url, "--run", "true"], Some("ssh")).expect(0);
    ci(&env, &sshd, &repo, &["status", "--hub", &url], Some("ssh")).expect(0);
    let opened = sshd.connections() - before;
    sshd.close_masters(&env.path("cache/ssh"));
    assert!(opened >= 2, "each command connects on its own: {opened}");
    let sockets = std::fs::read_dir(env.path("cache/ssh")).map(|d| d.count()).unwrap_or(0);
    assert_eq!(sockets, 0, "no control socket made");
}
