//! `git ci worker [FLAGS] install-service`: a systemd unit that runs this
//! worker, with the flags given before `install-service`, from this
//! repository.

mod unit;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use clap::ValueHint;
use clap::parser::ValueSource;
use git_ci_core::hub::{HubLocation, locate};
use git_ci_core::model::JobSpec;
use git_ci_core::pipeline::{FILE_NAME, Pipeline};

use super::worker::{InstallServiceArgs, WorkerAction, WorkerArgs};
use crate::context;
use crate::error::{CliError, CliResult};
use crate::ui::Ui;
use unit::render;

/// `root` is the whole command line's definition (the `Cli` of
/// `commands`): the unit repeats the worker flags as they were given.
pub fn cmd_worker_action(ui: &Ui, args: WorkerArgs, root: clap::Command) -> CliResult {
    match &args.action {
        Some(WorkerAction::InstallService(install)) => cmd_install_service(ui, &args, install, root),
        None => super::worker::cmd_worker(ui, args),
    }
}

/// Time the worker gets after the longest job to publish its results.
const PUBLISH_MARGIN: Duration = Duration::from_secs(120);

/// Variables passed on to the service, when set here.
const PASSED_ENV: [&str; 4] = ["PATH", "GIT_CI_HUB", "GIT_CI_CACHE_DIR", "GIT_CI_LOG"];

/// Everything a unit file says.
#[derive(Debug)]
struct Unit {
    /// `git-ci-worker[-<name>].service`.
    name: String,
    user: bool,
    exe: PathBuf,
    flags: Vec<String>,
    workdir: PathBuf,
    env: Vec<(String, String)>,
    /// `User=` of a system unit.
    run_as: Option<String>,
    stop: StopTime,
}

/// How long a stop may take: the longest job, the kill grace, publishing.
#[derive(Debug)]
struct StopTime {
    longest_job: Duration,
    /// Where `longest_job` comes from, for the comment.
    source: String,
    kill_grace: Duration,
}

impl StopTime {
    fn total(&self) -> Duration {
        self.longest_job + self.kill_grace + PUBLISH_MARGIN
    }
}

fn cmd_install_service(ui: &Ui, worker: &WorkerArgs, install: &InstallServiceArgs, root: clap::Command) -> CliResult {
    check_worker_flags(ui, worker)?;
    let cwd = std::env::current_dir().map_err(|e| CliError::Internal(format!("no current directory: {e}")))?;
    let repo = context::user_repo();
    if locate(worker.hubs.first().map(String::as_str), repo.as_ref()).is_none() {
        return Err(CliError::usage_hint(
            "the worker would have no hub",
            "pass --hub URL before install-service, or run this inside the repository whose hub it should serve",
        ));
    }
    let workdir = repo.as_ref().map_or_else(|| cwd.clone(), context::repo_dir);
    let workdir = workdir.canonicalize().unwrap_or(workdir);
    let unit = Unit {
        name: unit_name(worker.name.as_deref()),
        user: install.user,
        exe: std::env::current_exe().map_err(|e| CliError::Internal(format!("cannot find the git-ci binary: {e}")))?,
        flags: worker_flags(root, std::env::args_os(), &cwd)?,
        stop: stop_time(&workdir),
        workdir,
        env: environment(&cwd),
        run_as: if install.user { None } else { Some(invoking_user()) },
    };
    let text = render(&unit);
    if install.print {
        ui.out(text.trim_end());
        return Ok(());
    }
    let path = unit_dir(install.user)?.join(&unit.name);
    write_unit(&path, &text).map_err(|e| write_error(&path, install.user, &e))?;
    ui.err(&format!("wrote {}", path.display()));
    enable(ui, &unit, &path)
}

/// The checks `git ci worker` would make at start, made now rather than
/// in a restart loop.
fn check_worker_flags(ui: &Ui, worker: &WorkerArgs) -> CliResult {
    if worker.clean {
        return Err(CliError::usage("--clean cleans and exits: it cannot run as a service"));
    }
    if let Some(name) = &worker.name {
        git_ci_core::refs::check_component("worker name", name).map_err(CliError::usage)?;
    }
    for q in &worker.queues {
        git_ci_core::refs::check_component("queue", q).map_err(CliError::usage)?;
    }
    if worker.jobs == Some(0) {
        return Err(CliError::usage("--jobs must be at least 1"));
    }
    if worker.once {
        ui.err("note: with --once the service exits when nothing is pending, and is not restarted");
    }
    Ok(())
}

fn unit_name(worker_name: Option<&str>) -> String {
    match worker_name {
        Some(n) => format!("git-ci-worker-{n}.service"),
        None => "git-ci-worker.service".into(),
    }
}

/// The worker flags of `argv` (a `git ci worker ... install-service`
/// command line) as given on the command line, defaults left out, in the
/// order `git ci worker --help` lists them. Paths are made absolute, since
/// the service runs from the repository's top directory.
///
/// Taken from clap's matches rather than from `WorkerArgs`, so that a flag
/// added to the worker one day reaches the unit with no change here.
fn worker_flags(root: clap::Command, argv: impl IntoIterator<Item = OsString>, cwd: &Path) -> CliResult<Vec<String>> {
    let matches = root.clone().try_get_matches_from(argv).map_err(|e| CliError::Internal(e.to_string()))?;
    let Some(("worker", m)) = matches.subcommand() else {
        return Err(CliError::Internal("install-service runs only as `git ci worker install-service`".into()));
    };
    let worker = root.find_subcommand("worker").expect("worker is a subcommand");
    let global = |id: &clap::Id| root.get_arguments().any(|a| a.get_id() == id);
    let mut flags = Vec::new();
    for arg in worker.get_arguments().filter(|a| !global(a.get_id())) {
        let id = arg.get_id().as_str();
        if m.value_source(id) != Some(ValueSource::CommandLine) {
            continue;
        }
        let name = match (arg.get_long(), arg.get_short()) {
            (Some(long), _) => format!("--{long}"),
            (None, Some(short)) => format!("-{short}"),
            (None, None) => String::new(),
        };
        if !arg.get_action().takes_values() {
            flags.push(name);
            continue;
        }
        for value in m.get_raw(id).into_iter().flatten() {
            let value = absolute_value(arg, value.to_string_lossy().as_ref(), cwd);
            if name.is_empty() {
                flags.push(value);
            } else if value.starts_with('-') {
                // `--name=-x`: a value that looks like a flag stays a value.
                flags.push(format!("{name}={value}"));
            } else {
                flags.extend([name.clone(), value]);
            }
        }
    }
    Ok(flags)
}

fn absolute_value(arg: &clap::Arg, value: &str, cwd: &Path) -> String {
    // `hubs`: the worker's repeatable `--hub`.
    if arg.get_id() == "hub" || arg.get_id() == "hubs" {
        return absolute_hub(value, cwd);
    }
    match arg.get_value_hint() {
        ValueHint::AnyPath | ValueHint::FilePath | ValueHint::DirPath => absolute(&cwd.join(value)),
        _ => value.to_owned(),
    }
}

fn absolute_hub(value: &str, cwd: &Path) -> String {
    match HubLocation::parse(value, cwd) {
        HubLocation::Path(p) => absolute(&p),
        HubLocation::Url(u) => u,
    }
}

/// `path` (absolute) with symlinks and `..` resolved as far as it exists,
/// and `..` dropped lexically past that (a `--work-dir` may not exist yet).
fn absolute(path: &Path) -> String {
    let mut rest = Vec::new();
    let mut base = path;
    let mut resolved = loop {
        match (base.canonicalize(), base.parent(), base.file_name()) {
            (Ok(real), _, _) => break real,
            (Err(_), Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                base = parent;
            }
            // `..` at the end, or the root itself: nothing left to resolve.
            _ => break base.to_path_buf(),
        }
    };
    for name in rest.iter().rev() {
        resolved.push(name);
    }
    let mut out = PathBuf::new();
    for c in resolved.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            c => out.push(c),
        }
    }
    out.to_string_lossy().into_owned()
}

/// [`PASSED_ENV`] as set here: a service gets a minimal PATH and none of
/// the user's variables, and jobs need the tools (cargo, node...) the user
/// has. Relative paths are made absolute.
fn environment(cwd: &Path) -> Vec<(String, String)> {
    let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    PASSED_ENV
        .iter()
        .filter_map(|&k| {
            let v = get(k)?;
            let v = match k {
                "GIT_CI_HUB" => absolute_hub(&v, cwd),
                "GIT_CI_CACHE_DIR" => absolute(&cwd.join(&v)),
                _ => v,
            };
            Some((k.to_owned(), v))
        })
        .collect()
}

/// Who runs a system unit: the user behind `sudo`, else whoever runs this.
fn invoking_user() -> String {
    let from_env =
        ["SUDO_USER", "USER", "LOGNAME"].iter().find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()));
    from_env
        .or_else(|| {
            let out = Command::new("id").arg("-un").stdin(Stdio::null()).output().ok()?;
            Some(String::from_utf8_lossy(&out.stdout).trim().to_owned())
                .filter(|u| out.status.success() && !u.is_empty())
        })
        .unwrap_or_else(|| "root".into())
}

/// The longest job of the checkout's `.git-ci.toml`, else the default job
/// timeout (which is also what a job without `timeout` gets).
fn stop_time(workdir: &Path) -> StopTime {
    let kill_grace = git_ci_core::worker::Config::new("", PathBuf::new()).kill_grace;
    let path = workdir.join(FILE_NAME);
    let pipeline = std::fs::read_to_string(&path).ok().and_then(|t| Pipeline::parse(&t, FILE_NAME).ok());
    let longest = pipeline.as_ref().and_then(|p| p.jobs.values().map(|j| j.spec.timeout).max());
    match longest {
        Some(secs) => StopTime {
            longest_job: Duration::from_secs(secs),
            source: format!("the longest job timeout in {FILE_NAME}"),
            kill_grace,
        },
        None => StopTime {
            longest_job: Duration::from_secs(JobSpec::DEFAULT_TIMEOUT_SECS),
            source: format!("the default job timeout ({FILE_NAME} was not readable)"),
            kill_grace,
        },
    }
}

/// `~/.config/systemd/user` (or under `$XDG_CONFIG_HOME`), or
/// `/etc/systemd/system`.
fn unit_dir(user: bool) -> CliResult<PathBuf> {
    if !user {
        return Ok(PathBuf::from("/etc/systemd/system"));
    }
    let env = |k| std::env::var_os(k).map(PathBuf::from).filter(|p| p.is_absolute());
    let config = env("XDG_CONFIG_HOME").or_else(|| env("HOME").map(|h| h.join(".config")));
    config
        .map(|c| c.join("systemd/user"))
        .ok_or_else(|| CliError::usage("neither $XDG_CONFIG_HOME nor $HOME is set: cannot tell where user units go"))
}

/// Written whole and durably: systemd never reads half a unit.
fn write_unit(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(path.parent().expect("a unit path has a directory"))?;
    git_ci_core::atomic::Write { mode: 0o644, durable: true }.to(path, text.as_bytes())
}

fn write_error(path: &Path, user: bool, e: &std::io::Error) -> CliError {
    let message = format!("could not write {}: {e}", path.display());
    if !user && e.kind() == std::io::ErrorKind::PermissionDenied {
        CliError::usage_hint(
            message,
            "a system unit needs root: run it with sudo, or add --user for a unit of your own",
        )
    } else {
        CliError::usage(message)
    }
}

/// `daemon-reload`, `enable --now`, then where to read the log.
fn enable(ui: &Ui, unit: &Unit, path: &Path) -> CliResult {
    let ctl = if unit.user { "systemctl --user" } else { "systemctl" };
    for args in [&["daemon-reload"][..], &["enable", "--now", &unit.name]] {
        systemctl(unit.user, args).map_err(|problem| {
            CliError::usage_hint(
                format!("wrote {}, but {problem}", path.display()),
                format!("once systemd runs here: {ctl} daemon-reload && {ctl} enable --now {}", unit.name),
            )
        })?;
    }
    let journal = if unit.user { "journalctl --user" } else { "journalctl" };
    ui.err(&format!("enabled and started {}", unit.name));
    ui.err(&format!("follow its log: {journal} -u {} -f", unit.name));
    if unit.user {
        ui.err(&format!(
            "a user unit stops when you log out; to keep it running: loginctl enable-linger {}",
            invoking_user()
        ));
    }
    Ok(())
}

fn systemctl(user: bool, args: &[&str]) -> Result<(), String> {
    let mut cmd = Command::new("systemctl");
    cmd.args(user.then_some("--user")).args(args).stdin(Stdio::null()).env("LC_ALL", "C");
    let shown = format!("systemctl {}{}", if user { "--user " } else { "" }, args.join(" "));
    let out = cmd.output().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => "systemctl was not found on PATH: is this a systemd system?".to_owned(),
        _ => format!("could not start `{shown}`: {e}"),
    })?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!("`{shown}` failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim()))
}

#[cfg(test)]
mod tests {
    use super::unit::exec_word;
    use super::*;

    #[test]
    fn argument_lines_parse_or_fail() {
        let ok = [
            "git-ci worker install-service --user",
            "git-ci worker --jobs 2 --label gpu=a install-service --user --print",
            "git-ci worker --hub git://127.0.0.1/hub --name w1 install-service",
            "git-ci worker --once",
        ];
        let bad = [
            "git-ci worker install-service --jobs 2",
            "git-ci worker install-service --user extra",
            "git-ci worker --label x install-service",
        ];
        crate::commands::assert_parse_table(&ok, &bad);
    }

    fn flags(line: &str) -> Vec<String> {
        worker_flags(
            <crate::commands::Cli as clap::CommandFactory>::command(),
            line.split(' ').map(OsString::from),
            Path::new("/nonexistent/base"),
        )
        .unwrap()
    }

    #[test]
    fn given_worker_flags_reach_the_unit_and_defaults_do_not() {
        assert_eq!(flags("git-ci worker install-service --user"), Vec::<String>::new());
        assert_eq!(
            flags("git-ci -v worker --once -j 2 --label gpu=a --queue q --label b=1 --poll 2s install-service"),
            ["--queue", "q", "--label", "gpu=a", "--label", "b=1", "--jobs", "2", "--once", "--poll", "2s"]
        );
        assert_eq!(
            flags("git-ci worker --work-dir w --env-file /abs/env --hub ../hub.git install-service"),
            ["--work-dir", "/nonexistent/base/w", "--env-file", "/abs/env", "--hub", "/nonexistent/hub.git"]
        );
        assert_eq!(flags("git-ci worker --hub git://h/x install-service"), ["--hub", "git://h/x"]);
    }

    #[test]
    fn exec_words_are_quoted_for_systemd() {
        let table = [
            ("--jobs", "--jobs"),
            ("gpu=a100", "gpu=a100"),
            ("50%", "50%%"),
            ("$HOME", "$$HOME"),
            ("a b", "\"a b\""),
            ("it's", "\"it's\""),
            ("say \"hi\"", "\"say \\\"hi\\\"\""),
            ("back\\slash", "\"back\\\\slash\""),
            ("tab\there", "\"tab\\there\""),
            ("", "\"\""),
            ("/opt/my tools/git-ci", "\"/opt/my tools/git-ci\""),
            ("100% of ${X}", "\"100%% of $${X}\""),
        ];
        for (word, want) in table {
            assert_eq!(exec_word(word), want, "{word:?}");
        }
    }

    fn unit(user: bool) -> Unit {
        Unit {
            name: unit_name(Some("w1")),
            user,
            exe: PathBuf::from("/usr/local/bin/git-ci"),
            flags: vec!["--jobs".into(), "2".into()],
            workdir: PathBuf::from("/srv/50% repo"),
            env: vec![("GIT_CI_HUB".into(), "git://h/x".into())],
            run_as: (!user).then(|| "ci".to_owned()),
            stop: StopTime {
                longest_job: Duration::from_secs(1800),
                source: "test".into(),
                kill_grace: Duration::ZERO,
            },
        }
    }

    #[test]
    fn user_and_system_units_differ_where_systemd_wants_them_to() {
        let user = render(&unit(true));
        assert!(user.contains("ExecStart=/usr/local/bin/git-ci worker --jobs 2\n"), "{user}");
        assert!(user.contains("WorkingDirectory=/srv/50%% repo\n"), "{user}");
        assert!(user.contains("Environment=\"GIT_CI_HUB=git://h/x\"\n"), "{user}");
        assert!(user.contains("TimeoutStopSec=1920s\n"), "{user}");
        assert!(user.contains("WantedBy=default.target\n") && !user.contains("User="), "{user}");
        assert!(user.contains("systemctl --user kill --kill-who=main --signal=SIGTERM git-ci-worker-w1.service"));
        let system = render(&unit(false));
        assert!(system.contains("User=ci\n") && system.contains("WantedBy=multi-user.target\n"), "{system}");
        assert!(system.contains("After=network-online.target\n"), "{system}");
    }
}
