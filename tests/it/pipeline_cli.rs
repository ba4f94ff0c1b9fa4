//! `submit` and `run` with pipelines: parameters, `--repeat`, matrix
//! labels, `--config`/`--config-from` for history without `.git-ci.toml`,
//! refusals, and a large pipeline as one push.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::env::{TestEnv, wait_until};

/// Job rows of `status --json` at `hub`.
fn queued(env: &TestEnv, repo: &Path, hub: &str) -> Vec<serde_json::Value> {
    env.ci(repo, &["status", "--hub", hub, "--json"]).expect(0).json().as_array().unwrap().clone()
}

fn ids(run: &crate::env::Run) -> Vec<String> {
    run.stdout().lines().map(str::to_owned).collect()
}

#[test]
fn repeat_queues_numbered_runs_and_status_gives_their_pass_rate() {
    let env = TestEnv::new();
    let counter = env.path("counter");
    // The third run to start fails; the others pass.
    let script = format!("echo x >> {c}; test \\\"$(wc -l < {c})\\\" -ne 3", c = counter.display());
    let (repo, hub) = env.project_on_hub(&format!("[job.soak]\nrun = \"{script}\"\n\n[job.other]\nrun = \"true\"\n"));
    let submitted = env.ci(&repo, &["submit", "--hub", &hub, "--job", "soak", "--repeat", "20"]).expect(0);
    assert_eq!(ids(&submitted).len(), 20, "only the named job, 20 times");
    assert!(submitted.stderr().contains("queued soak #1..#20"), "{}", submitted.stderr());
    let jobs = queued(&env, &repo, &hub);
    assert_eq!(jobs.len(), 20);
    let mut numbers: Vec<u64> = jobs.iter().map(|j| j["repeat"]["index"].as_u64().unwrap()).collect();
    numbers.sort();
    assert_eq!(numbers, (1..=20).collect::<Vec<_>>());
    assert!(jobs.iter().all(|j| j["repeat"]["count"] == 20 && j["name"] == "soak"));

    env.ci(&repo, &["worker", "--hub", &hub, "--once", "--name", "w", "--jobs", "1"]).expect(0);
    let status = env.ci(&repo, &["status", "--hub", &hub]).expect(0).stdout();
    let lines: Vec<&str> = status.lines().collect();
    assert!(lines[0].starts_with("soak ×20 at ") && lines[0].contains("19/20 passed (95%), failed: #"), "{status}");
    assert!(lines[1].contains(" failed ") && lines[1].contains("soak #"), "the failing run first: {status}");
    assert_eq!(lines.len(), 21, "{status}");

    // `git ci junit` reads the runs together too.
    let all = jobs.iter().map(|j| j["id"].as_str().unwrap().to_owned()).collect::<Vec<_>>();
    let out = env.path("soak.xml");
    let mut args = vec!["junit", "--hub", &hub, "-o", out.to_str().unwrap()];
    args.extend(all.iter().map(String::as_str));
    let junit = env.ci(&repo, &args).expect(0);
    assert!(
        junit.stderr().contains("soak ×20 at") && junit.stderr().contains("19/20 passed (95%)"),
        "{}",
        junit.stderr()
    );
}

#[test]
fn parameters_apply_to_a_defined_job() {
    let env = TestEnv::new();
    let pipeline = "[job.test]\nrun = \"pytest -k $CASE\"\nenv = { KEEP = \"1\", CASE = \"all\" }\nrequires = { os = \"linux\" }\n";
    let (repo, hub) = env.project_on_hub(pipeline);
    let args =
        ["--job", "test", "--env", "CASE=test_login", "--queue", "gpu", "--require", "gpu=a100", "--timeout", "5m"];
    let run = env.ci(&repo, &[&["submit", "--hub", &hub][..], &args].concat()).expect(0);
    let id = ids(&run).remove(0);
    let show = env.ci(&repo, &["show", "--hub", &hub, &id, "--json"]).expect(0).json();
    assert_eq!(show["env"], serde_json::json!({"CASE": "test_login", "KEEP": "1"}), "merged over the file's");
    assert_eq!(show["queue"], "gpu");
    assert_eq!(show["requires"], serde_json::json!({"gpu": "a100", "os": "linux"}));
    assert_eq!(show["timeout"], 300);
    assert!(show.get("config_from").is_none(), "the commit's own file: {show}");
    assert!(env.ci_refs(Path::new(&hub)).iter().any(|(r, _)| r == &format!("refs/ci/queue/gpu/{id}")));

    // An ad-hoc job takes --artifacts and --junit as well.
    let adhoc = ["submit", "--hub", &hub, "--run", "make", "--artifacts", "out/*.log", "--junit", "junit.xml"];
    let id = ids(&env.ci(&repo, &adhoc).expect(0)).remove(0);
    let show = env.ci(&repo, &["show", "--hub", &hub, &id, "--json"]).expect(0).json();
    assert_eq!((show["artifacts"][0].as_str(), show["junit"][0].as_str()), (Some("out/*.log"), Some("junit.xml")));
}

#[test]
fn flags_that_cannot_apply_are_refused_and_queue_nothing() {
    let env = TestEnv::new();
    let (repo, hub) = env.project_on_hub("[job.test]\nrun = \"true\"\nmatrix = { py = [\"3.11\"] }\n");
    std::fs::write(repo.join("other.toml"), "[job.a]\nrun = \"true\"\n").unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["--artifacts", "out/*"], "--artifacts applies to an ad-hoc job (--run) only"),
        (&["--junit", "j.xml"], "--junit applies"),
        (&["--repeat", "0"], "--repeat 0 is out of range"),
        (&["--repeat", "1001"], "repeat a job 1 to 1000 times"),
        (&["--config", "other.toml", "--config-from", "HEAD"], "cannot be used with"),
        (&["--config", "other.toml", "--run", "true"], "cannot be used with"),
        (&["--run", "true", "--job", "test"], "cannot be used with"),
        (&["--env", "py=3.12"], "py is a matrix variable of job \"test\""),
        (&["--queue", "a/b"], "queue \"a/b\""),
        (&["--job", "nope"], "no job named \"nope\""),
        (&["--config", "missing.toml"], "could not read --config missing.toml"),
        (&["--config-from", "HEAD~5"], "is not a commit"),
        (&["--run", "true", "--timeout", "8d"], "too long"),
        (&["--require", "novalue"], "expected KEY=VALUE"),
    ];
    for (args, needle) in cases {
        let run = env.ci(&repo, &[&["submit", "--hub", &hub][..], args].concat());
        assert_eq!(run.code(), 2, "{args:?}: {}", run.stderr());
        assert!(run.stderr().contains(needle), "{args:?}: {}", run.stderr());
    }
    assert!(env.ci_refs(Path::new(&hub)).is_empty(), "nothing was queued");
}

#[test]
fn invalid_pipelines_give_their_line_and_queue_nothing() {
    let env = TestEnv::new();
    let (repo, hub) = env.project_on_hub("[job.ok]\nrun = \"true\"\n");
    let cases = [
        ("cycle", "[job.a]\nrun = \"x\"\nneeds = [\"b\"]\n\n[job.b]\nrun = \"y\"\nneeds = [\"a\"]\n", 7, "cycle"),
        ("unknown need", "[job.a]\nrun = \"x\"\nneeds = [\"build\"]\n", 3, "no job named \"build\""),
        ("self-need", "[job.a]\nrun = \"x\"\n\nneeds = [\"a\"]\n", 4, "needs itself"),
        ("bad matrix", "[job.a]\nrun = \"x\"\nmatrix = { py = [] }\n", 3, "matrix.py is empty"),
        ("bad schedule", "[job.a]\nrun = \"x\"\nschedule = \"0 3 * *\"\n", 3, "a cron expression has 5"),
    ];
    for (what, text, line, needle) in cases {
        std::fs::write(repo.join("bad.toml"), text).unwrap();
        let run = env.ci(&repo, &["submit", "--hub", &hub, "--config", "bad.toml"]).expect(2);
        run.assert_clean_error();
        assert!(run.stderr().contains(&format!("bad.toml:{line}:")), "{what}: {}", run.stderr());
        assert!(run.stderr().contains(needle), "{what}: {}", run.stderr());
        // The same file committed as .git-ci.toml: the same refusal.
        env.commit_file(&repo, ".git-ci.toml", text, what);
        let run = env.ci(&repo, &["submit", "--hub", &hub]).expect(2);
        assert!(run.stderr().contains(&format!(".git-ci.toml:{line}:")), "{what}: {}", run.stderr());
    }
    assert!(env.ci_refs(Path::new(&hub)).is_empty(), "nothing was queued");
}

#[test]
fn history_without_a_job_file_is_tested_with_config_from() {
    let env = TestEnv::new();
    let repo = env.path("p");
    std::fs::create_dir_all(&repo).unwrap();
    env.git(&repo, &["init", "-q", "-b", "main"]);
    let base = env.commit_file(&repo, "n", "1", "one");
    let two = env.commit_file(&repo, "n", "2", "two");
    let three = env.commit_file(&repo, "n", "3", "three");
    let hub = env.bare_hub("hub.git");
    let hub = hub.to_str().unwrap();

    let range = format!("{base}..{three}");
    let refused = env.ci(&repo, &["submit", "--hub", hub, &range]).expect(2);
    assert!(refused.stderr().contains("has no .git-ci.toml") && refused.stderr().contains("--config-from"));

    let with_file = env.commit_file(&repo, ".git-ci.toml", "[job.count]\nrun = \"cat n\"\n", "ci");
    let run = env.ci(&repo, &["submit", "--hub", hub, &range, "--config-from", "main"]).expect(0);
    let ids = ids(&run);
    assert_eq!(ids.len(), 2);
    let shown: Vec<serde_json::Value> =
        ids.iter().map(|id| env.ci(&repo, &["show", "--hub", hub, id, "--json"]).expect(0).json()).collect();
    assert_eq!(
        (shown[0]["commit"].as_str(), shown[1]["commit"].as_str()),
        (Some(&*two), Some(&*three)),
        "oldest first"
    );
    let from = format!("rev:{with_file}:.git-ci.toml");
    assert!(shown.iter().all(|s| s["config_from"] == from.as_str() && s["ref"] == ""), "{shown:?}");

    // --config: a file of the working tree, recorded by its path there.
    std::fs::create_dir_all(repo.join("ci")).unwrap();
    std::fs::write(repo.join("ci/jobs.toml"), "[job.lint]\nrun = \"true\"\n").unwrap();
    let run = env.ci(&repo.join("ci"), &["submit", "--hub", hub, "--config", "jobs.toml", &two]).expect(0);
    let id = run.stdout().trim().to_owned();
    let show = env.ci(&repo, &["show", "--hub", hub, &id, "--json"]).expect(0).json();
    assert_eq!((show["name"].as_str(), show["config_from"].as_str()), (Some("lint"), Some("path:ci/jobs.toml")));

    // `git ci run` takes the same flags, and runs the old commits here.
    let ran = env.ci(&repo, &["run", &range, "--config-from", "main", "--jobs", "1"]).expect(0);
    assert!(ran.stderr().contains("2 passed, 0 failed"), "{}", ran.stderr());
}

#[test]
fn run_runs_an_ad_hoc_script_without_a_job_file() {
    let env = TestEnv::new();
    let repo = env.path("p");
    std::fs::create_dir_all(&repo).unwrap();
    env.git(&repo, &["init", "-q", "-b", "main"]);
    env.commit_file(&repo, "f", "x", "one");
    let run = env.ci(&repo, &["run", "--run", "test -f f"]).expect(0);
    assert!(run.stderr().contains("1 passed, 0 failed"), "{}", run.stderr());
    let run = env.ci(&repo, &["run", "--run", "exit 4"]).expect(1);
    assert!(run.stderr().contains("0 passed, 1 failed"), "{}", run.stderr());
    env.ci(&repo, &["run", "--run", "true", "--job", "x"]).expect(2);
}

#[test]
fn run_skips_a_passed_job_only_with_what_needs_it() {
    let env = TestEnv::new();
    let repo = env.project("p", "[job.x]\nrun = \"true\"\n");
    let config = |build: &str, test: &str| {
        let text = format!("[job.build]\nrun = \"{build}\"\n\n[job.test]\nneeds = [\"build\"]\nrun = \"{test}\"\n");
        std::fs::write(repo.join("ci.toml"), text).unwrap();
    };
    let run = |skipped: &[&str]| {
        let out = env.ci(&repo, &["run", "--config", "ci.toml", "-j", "1"]).expect(0).stderr();
        assert!(out.contains("2 passed, 0 failed"), "{out}");
        for job in ["build", "test"] {
            assert_eq!(out.contains(&format!("skipped  {job} ")), skipped.contains(&job), "{job}: {out}");
        }
    };
    config("true", "true");
    run(&[]);
    run(&["build", "test"]);
    // A job that runs again brings what it needs...
    config("true", "true; true");
    run(&[]);
    // ...and a job whose need runs again runs again too.
    config("true; true", "true; true");
    run(&[]);
    run(&["build", "test"]);
}

#[test]
fn matrix_jobs_are_labelled_and_selected_together() {
    let env = TestEnv::new();
    let pipeline = "[job.test]\nmatrix = { python = [\"3.11\", \"3.12\"], db = [\"sqlite\", \"postgres\"] }\nrun = \"true\"\n\n[job.lint]\nrun = \"true\"\n";
    let (repo, hub) = env.project_on_hub(pipeline);
    let run = env.ci(&repo, &["submit", "--hub", &hub, "--job", "test"]).expect(0);
    assert_eq!(ids(&run).len(), 4, "every combination, no lint");
    assert!(run.stderr().contains("queued test (python=3.11, db=postgres) on"), "{}", run.stderr());
    let status = env.ci(&repo, &["status", "--hub", &hub]).expect(0).stdout();
    for label in ["test (python=3.11, db=sqlite)", "test (python=3.12, db=postgres)"] {
        assert!(status.contains(label), "{status}");
    }
    let jobs = queued(&env, &repo, &hub);
    let one = jobs.iter().find(|j| j["label"] == "test (python=3.12, db=sqlite)").expect("labelled");
    // (JSON objects have no order; the label keeps the file's.)
    assert_eq!(one["matrix"], serde_json::json!({"python": "3.12", "db": "sqlite"}));
    let id = one["id"].as_str().unwrap();
    let show = env.ci(&repo, &["show", "--hub", &hub, id]).expect(0).stdout();
    assert!(show.contains("name: test (python=3.12, db=sqlite)"), "{show}");
    let json = env.ci(&repo, &["show", "--hub", &hub, id, "--json"]).expect(0).json();
    assert_eq!((json["matrix"]["db"].as_str(), json["label"].as_str()), (Some("sqlite"), one["label"].as_str()));
}

/// `git daemon --verbose` serving `base`, its log in a file: each push is a
/// `receive-pack` request there.
fn logging_daemon(env: &TestEnv, base: &Path) -> (crate::env::Bg, u16) {
    let exec_path = env.git(base, &["--exec-path"]);
    let port = crate::env::free_port();
    let mut cmd = Command::new(Path::new(&exec_path).join("git-daemon"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", env.path("home"))
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .args(["--verbose", "--enable=receive-pack", "--export-all", "--reuseaddr", "--listen=127.0.0.1"])
        .arg(format!("--port={port}"))
        .arg(format!("--base-path={}", base.display()))
        .arg(base)
        .stdin(Stdio::null());
    let daemon = env.spawn(cmd);
    wait_until(Duration::from_secs(20), "git daemon to listen", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    (daemon, port)
}

#[test]
fn a_200_job_matrix_is_queued_in_one_push() {
    let env = TestEnv::new();
    let a: Vec<String> = (0..10).map(|i| format!("\"a{i}\"")).collect();
    let b: Vec<String> = (0..20).map(|i| format!("\"b{i}\"")).collect();
    let pipeline = format!("[job.grid]\nmatrix = {{ a = [{}], b = [{}] }}\nrun = \"true\"\n", a.join(","), b.join(","));
    let repo = env.project("p", &pipeline);
    env.bare_hub("hub.git");
    let (daemon, port) = logging_daemon(&env, env.root.path());
    let hub = format!("git://127.0.0.1:{port}/hub.git");
    let run = env.ci(&repo, &["submit", "--hub", &hub]).expect(0);
    assert_eq!(ids(&run).len(), 200);
    assert_eq!(queued(&env, &repo, &hub).len(), 200);
    let pushes = daemon.stderr().matches("Request receive-pack").count();
    assert_eq!(pushes, 1, "one push for the whole pipeline:\n{}", daemon.stderr());
}
