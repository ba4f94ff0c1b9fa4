//! Hosts apart: the hub and two workers each in a network namespace of its
//! own, joined through a bridge on the hub, so that one worker's network can
//! be cut while its process and its job go on running. That worker's claim
//! goes to the other after a lease, the job is published once, and when the
//! link comes back the cut-off worker publishes nothing.
//!
//! Needs root and `ip netns` (iproute2): without them it says so and
//! returns, except on CI (`CI=true`), where it fails (see `env::missing`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use crate::env::{Run, TestEnv, wait_until};

/// Every wait of these tests but one.
const LIMIT: Duration = Duration::from_secs(60);
/// The one: a cut-off worker backs off up to 45 s between tries (30 s and
/// jitter), and a git exchange the cut caught mid-way resumes only at TCP's
/// next retransmission, so finding the link back takes longer by design.
const BACK_LIMIT: Duration = Duration::from_secs(120);
/// git daemon's own port: each test's hub namespace is a fresh network.
const PORT: u16 = 9418;

/// What the cut-off worker's job has done by the time its link comes back.
#[derive(Clone, Copy, PartialEq)]
enum Ending {
    /// Still running: the worker's heartbeat fails its lease, so it kills it.
    StillRunning,
    /// Finished while offline: the worker's complete fails, so it drops it.
    FinishedOffline,
}

#[test]
fn a_cut_off_worker_loses_its_claim_and_kills_its_job() {
    cut_off_worker_scene(Ending::StillRunning);
}

#[test]
fn a_cut_off_worker_whose_job_finished_offline_publishes_nothing() {
    cut_off_worker_scene(Ending::FinishedOffline);
}

/// The files the job writes, so the test sees it from outside.
struct Marks {
    attempts: PathBuf,
    pid: PathBuf,
    release: PathBuf,
    finished: PathBuf,
}

impl Marks {
    fn new(env: &TestEnv) -> Marks {
        Marks {
            attempts: env.path("attempts"),
            pid: env.path("attempt-1.pid"),
            release: env.path("release"),
            finished: env.path("attempt-1.finished"),
        }
    }

    /// Attempt 1 waits (at most 5 min) for `release`; later attempts end at once.
    fn pipeline(&self) -> String {
        let (attempts, pid) = (self.attempts.display(), self.pid.display());
        let (release, finished) = (self.release.display(), self.finished.display());
        format!(
            "[job.slow]\nrun = '''\necho $GIT_CI_ATTEMPT >> {attempts}\nif [ $GIT_CI_ATTEMPT = 1 ]; then\n  \
             echo $$ > {pid}.tmp && mv {pid}.tmp {pid}\n  \
             for i in $(seq 3000); do test -f {release} && break; sleep 0.1; done\n  touch {finished}\nfi\n\
             echo attempt $GIT_CI_ATTEMPT done\n'''\n"
        )
    }
}

fn cut_off_worker_scene(ending: Ending) {
    let Some(scene) = Scene::new() else { return };
    let a = scene.worker("a");
    let claimed = || scene.claim().is_some_and(|c| c["worker"] == "a");
    wait_or_tell(LIMIT, "worker a to claim the job", claimed, || a.stderr());
    let job_a = scene.attempt_1();

    scene.net.set_link("a", false);
    let b = scene.worker("b");
    let published = || scene.has_ref("refs/ci/done/b");
    wait_or_tell(LIMIT, "worker b to steal the claim and publish", published, || b.stderr());
    scene.assert_published_by_b();
    assert!(b.stderr().contains("(attempt 2)"), "b stole the claim: {}", b.stderr());
    assert!(job_a.alive(), "attempt 1 runs on while its worker is cut off");

    let said = match ending {
        Ending::StillRunning => "taken over",
        Ending::FinishedOffline => {
            std::fs::write(&scene.marks.release, "").unwrap();
            wait_until(LIMIT, "attempt 1 to finish offline", || scene.marks.finished.exists());
            "dropped our result"
        }
    };
    scene.net.set_link("a", true);
    wait_or_tell(BACK_LIMIT, "worker a to find its claim gone", || a.stderr().contains(said), || a.stderr());
    if ending == Ending::StillRunning {
        wait_until(LIMIT, "worker a to kill attempt 1", || !job_a.alive());
        assert!(!scene.marks.finished.exists(), "attempt 1 was stopped, not left to finish");
    }
    let a_said = terminate(a);
    terminate(b);
    assert!(!scene.has_ref("refs/ci/done/a"), "worker a published nothing: {a_said}");
    scene.assert_published_by_b();
    scene.assert_published_once();
    scene.tear_down();
}

/// A hub serving a project with one submitted job, on hosts `hub`, `a`, `b`.
/// Fields drop in order: the daemon, then the namespaces, then the files.
struct Scene {
    _daemon: NsProc,
    net: Net,
    marks: Marks,
    repo: PathBuf,
    hub: PathBuf,
    url: String,
    id: String,
    env: TestEnv,
}

impl Scene {
    /// `None` where network namespaces cannot be made.
    fn new() -> Option<Scene> {
        let env = TestEnv::new();
        let mut net = Net::new()?;
        net.add_worker("a", 2);
        net.add_worker("b", 3);
        let marks = Marks::new(&env);
        let (repo, hub) = env.project_on_hub(&marks.pipeline());
        let url = format!("git://{}:{PORT}/hub.git", net.addr(1));
        let daemon = start_daemon(&env, &net);
        for host in ["a", "b"] {
            wait_until(LIMIT, &format!("the hub to answer from host {host}"), || {
                net.exec(host, env_cmd(&env, "git", env.root.path()).args(["ls-remote", &url])).output().is_ok_and(ok)
            });
        }
        // Submitted from the hub's host, through its daemon.
        let submit = net.exec("hub", &env.ci_cmd(&repo, &["submit", "--hub", &url])).output().expect("ip runs");
        let id = Run(submit).expect(0).stdout().trim().to_owned();
        Some(Scene { _daemon: daemon, net, marks, repo, hub: PathBuf::from(hub), url, id, env })
    }

    fn worker(&self, name: &str) -> NsProc {
        spawn_worker(&self.env, &self.net, name, &self.url)
    }

    /// The first attempt's shell, once it runs.
    fn attempt_1(&self) -> ProcId {
        let pid = || std::fs::read_to_string(&self.marks.pid).ok().filter(|s| s.ends_with('\n'));
        wait_until(LIMIT, "attempt 1 to start", || pid().is_some());
        ProcId::of(pid().unwrap().trim()).expect("attempt 1 runs")
    }

    /// The job's claim document, read on the host from the hub's refs.
    fn claim(&self) -> Option<serde_json::Value> {
        let name = format!("refs/ci/claims/{}", self.id);
        let (_, oid) = self.env.ci_refs(&self.hub).into_iter().find(|(n, _)| *n == name)?;
        let out = self.env.git_output(&self.hub, &["cat-file", "blob", &oid]);
        serde_json::from_slice(&out.stdout).ok()
    }

    fn has_ref(&self, name: &str) -> bool {
        self.env.ci_refs(&self.hub).iter().any(|(n, _)| n == name)
    }

    fn assert_published_by_b(&self) {
        let hub = self.hub.to_str().unwrap();
        let doc = self.env.ci(&self.repo, &["show", "--hub", hub, &self.id, "--json"]).expect(0).json();
        let got = (doc["state"].as_str(), doc["worker"].as_str(), doc["attempt"].as_u64());
        assert_eq!(got, (Some("passed"), Some("b"), Some(2)), "{doc}");
    }

    /// One result across every done chain, one run per attempt, and no
    /// queue, claim, pin or live log left of the job.
    fn assert_published_once(&self) {
        assert_eq!(self.env.published_ids(&self.hub), std::slice::from_ref(&self.id), "one result in all done chains");
        assert_eq!(std::fs::read_to_string(&self.marks.attempts).unwrap(), "1\n2\n", "one run per attempt");
        let left: Vec<_> = self.env.ci_refs(&self.hub).into_iter().filter(|(n, _)| n.ends_with(&self.id)).collect();
        // Live logs included: the cut-off worker may have pushed one before
        // the cut, or after its claim was stolen and before it knew.
        assert!(left.is_empty(), "no queue, claim, pin or live log left: {left:?}");
    }

    /// Stops the daemon, deletes the namespaces, and checks none is left.
    fn tear_down(self) {
        let tag = self.net.tag.clone();
        drop(self);
        let listed = ip(&["netns", "list"]).expect("ip netns list");
        assert!(!listed.contains(&tag), "namespaces left behind: {listed}");
    }
}

/// `wait_until`, saying on a timeout what `tell` returns (a worker's stderr).
fn wait_or_tell(limit: Duration, what: &str, mut cond: impl FnMut() -> bool, tell: impl Fn() -> String) {
    let start = std::time::Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out after {limit:?} waiting for {what}; it said:\n{}", tell());
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn ok(out: Output) -> bool {
    out.status.success()
}

/// `git daemon` on the hub's address in its namespace, serving the test's root.
fn start_daemon(env: &TestEnv, net: &Net) -> NsProc {
    // The daemon binary itself, as in env.rs: `git daemon` would run it as
    // a child that outlives a kill of `git`.
    let exec_path = env.git(env.root.path(), &["--exec-path"]);
    let root = env.root.path().display().to_string();
    let mut daemon = env_cmd(env, Path::new(&exec_path).join("git-daemon"), env.root.path());
    daemon.args(["--enable=receive-pack", "--export-all", "--reuseaddr"]).args([
        format!("--listen={}", net.addr(1)),
        format!("--port={PORT}"),
        format!("--base-path={root}"),
        root,
    ]);
    NsProc::spawn(env, net.exec("hub", &daemon), "daemon")
}

/// A worker on its own host: its own cache and work dirs, started in a
/// directory outside any repository, so it gets everything from the hub.
fn spawn_worker(env: &TestEnv, net: &Net, name: &str, url: &str) -> NsProc {
    let home = env.path(&format!("host-{name}"));
    std::fs::create_dir_all(&home).unwrap();
    let args = ["worker", "--hub", url, "--name", name, "--lease", "3s", "--poll", "200ms"];
    let mut worker = env.ci_cmd(&home, &args);
    worker.env("GIT_CI_CACHE_DIR", home.join("cache"));
    NsProc::spawn(env, net.exec(name, &worker), &format!("worker-{name}"))
}

/// SIGTERM; the worker must exit 0. Returns what it said.
fn terminate(worker: NsProc) -> String {
    worker.signal("TERM");
    let (status, stderr) = worker.wait();
    assert!(status.success(), "a worker exits 0 on SIGTERM: {stderr}");
    stderr
}

/// `program` with the environment TestEnv gives git-ci (hermetic git).
fn env_cmd(env: &TestEnv, program: impl AsRef<std::ffi::OsStr>, dir: &Path) -> Command {
    let template = env.ci_cmd(dir, &[]);
    let mut cmd = Command::new(program);
    cmd.env_clear().current_dir(dir).stdin(Stdio::null());
    for (k, v) in template.get_envs() {
        if let Some(v) = v {
            cmd.env(k, v);
        }
    }
    cmd
}

/// A process by pid and start time, so that a recycled pid is never taken
/// for it (and never signalled: the test only looks).
struct ProcId {
    pid: String,
    started: String,
}

impl ProcId {
    fn of(pid: &str) -> Option<ProcId> {
        let (_, started) = proc_stat(pid)?;
        Some(ProcId { pid: pid.to_owned(), started })
    }

    fn alive(&self) -> bool {
        proc_stat(&self.pid).is_some_and(|(state, started)| started == self.started && state != "Z")
    }
}

/// A process's state and start time (fields 3 and 22 of /proc/PID/stat).
fn proc_stat(pid: &str) -> Option<(String, String)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    Some((fields.first()?.to_string(), fields.get(19)?.to_string()))
}

/// `ip ARGS`; its stdout, or what it said when it failed.
fn ip(args: &[&str]) -> Result<String, String> {
    let out =
        Command::new("ip").args(args).stdin(Stdio::null()).output().map_err(|e| format!("could not run ip: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

fn must(args: &[&str]) {
    if let Err(e) = ip(args) {
        panic!("ip {}: {e}", args.join(" "));
    }
}

/// The hosts of one test: network namespaces `<tag>-hub`, `<tag>-a`, ...
/// The hub holds a bridge with the hub's address; each worker is joined to
/// it by a veth pair created straight inside the two namespaces, so the
/// host's own interfaces and routes are never touched, and deleting the
/// namespaces deletes the links.
struct Net {
    /// Unique per test run and short: interface names are `<tag>` plus two
    /// characters, within the kernel's 15.
    tag: String,
    subnet: u8,
    /// Created so far, for the cleanup.
    namespaces: Vec<String>,
}

impl Net {
    /// The hub's namespace and bridge; `None` (with a message) where
    /// namespaces cannot be made: not root, or no CAP_SYS_ADMIN in a container.
    fn new() -> Option<Net> {
        static N: AtomicU8 = AtomicU8::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let tag = format!("gci{}n{n}", std::process::id());
        let mut net = Net { tag, subnet: 10 + n, namespaces: Vec::new() };
        let hub = net.ns("hub");
        if let Err(e) = ip(&["netns", "add", &hub]) {
            crate::env::missing(&format!(
                "network namespaces: `ip netns add` failed (needs root, CAP_SYS_ADMIN and iproute2): {e}"
            ));
            return None;
        }
        net.namespaces.push(hub.clone());
        let bridge = net.iface("br");
        must(&["-n", &hub, "link", "set", "lo", "up"]);
        must(&["-n", &hub, "link", "add", &bridge, "type", "bridge"]);
        must(&["-n", &hub, "addr", "add", &format!("{}/24", net.addr(1)), "dev", &bridge]);
        must(&["-n", &hub, "link", "set", &bridge, "up"]);
        Some(net)
    }

    fn ns(&self, host: &str) -> String {
        format!("{}-{host}", self.tag)
    }

    fn iface(&self, suffix: &str) -> String {
        let name = format!("{}{suffix}", self.tag);
        assert!(name.len() <= 15, "interface name {name} is too long");
        name
    }

    fn addr(&self, host: u8) -> String {
        format!("10.231.{}.{host}", self.subnet)
    }

    /// Host `name` at address `.host` of the subnet, linked to the hub's bridge.
    fn add_worker(&mut self, name: &str, host: u8) {
        let ns = self.ns(name);
        must(&["netns", "add", &ns]);
        self.namespaces.push(ns.clone());
        let (hub, bridge) = (self.ns("hub"), self.iface("br"));
        let (port, link) = (self.iface(&format!("h{name}")), self.iface(&format!("w{name}")));
        must(&["-n", &hub, "link", "add", &port, "type", "veth", "peer", "name", &link, "netns", &ns]);
        must(&["-n", &hub, "link", "set", &port, "master", &bridge, "up"]);
        must(&["-n", &ns, "link", "set", "lo", "up"]);
        must(&["-n", &ns, "addr", "add", &format!("{}/24", self.addr(host)), "dev", &link]);
        must(&["-n", &ns, "link", "set", &link, "up"]);
    }

    /// Cuts or restores worker `name`'s link, from its own side.
    fn set_link(&self, name: &str, up: bool) {
        let link = self.iface(&format!("w{name}"));
        must(&["-n", &self.ns(name), "link", "set", &link, if up { "up" } else { "down" }]);
    }

    /// `inner` run on host `host` through `ip netns exec`, with the same
    /// arguments, environment and directory. ip execs the program in place,
    /// so the child's pid is the program's own and signals reach it.
    fn exec(&self, host: &str, inner: &Command) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns(host)]).arg(inner.get_program()).args(inner.get_args());
        cmd.env_clear().stdin(Stdio::null());
        for (k, v) in inner.get_envs() {
            if let Some(v) = v {
                cmd.env(k, v);
            }
        }
        if let Some(dir) = inner.get_current_dir() {
            cmd.current_dir(dir);
        }
        cmd
    }

    /// Kills what still runs in `ns`: all of it was started by this test
    /// (a job its worker left, the daemon's children). A namespace lives on
    /// while a process is in it, and its links with it.
    fn empty(ns: &str) {
        for _ in 0..100 {
            let pids = ip(&["netns", "pids", ns]).unwrap_or_default();
            if pids.trim().is_empty() {
                return;
            }
            for pid in pids.split_whitespace() {
                let _ = Command::new("kill").args(["-KILL", pid]).stderr(Stdio::null()).status();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("processes still in namespace {ns} after cleanup");
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in self.namespaces.iter().rev() {
            Net::empty(ns);
            if let Err(e) = ip(&["netns", "del", ns]) {
                eprintln!("could not delete network namespace {ns}: {e}");
            }
        }
    }
}

/// A background process on one of the hosts, killed when the test ends
/// however it ends (like env.rs's `Bg`, which only starts git-ci itself).
struct NsProc {
    child: Option<Child>,
    err: PathBuf,
}

impl NsProc {
    fn spawn(env: &TestEnv, mut cmd: Command, label: &str) -> NsProc {
        let (out, err) = (env.path(&format!("{label}.out")), env.path(&format!("{label}.err")));
        let child = cmd
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("{label} starts: {e}"));
        NsProc { child: Some(child), err }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().expect("running").id();
        Command::new("kill").arg(format!("-{sig}")).arg(pid.to_string()).status().expect("kill runs");
    }

    /// Waits at most LIMIT for the exit; returns its status and stderr.
    fn wait(mut self) -> (ExitStatus, String) {
        let child = self.child.as_mut().expect("running");
        let mut status = None;
        wait_until(LIMIT, "the process to exit", || {
            status = child.try_wait().expect("waits");
            status.is_some()
        });
        self.child = None;
        (status.unwrap(), self.stderr())
    }
}

impl Drop for NsProc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
