//! Many hubs for one worker; many projects on one hub.

use scraper::{Html, Selector};

use crate::env::TestEnv;

const JOBS: &str = "[job.a]\nrun = \"sleep 0.3\"\n[job.b]\nrun = \"sleep 0.3\"\n[job.c]\nrun = \"sleep 0.3\"\n";

/// The hub each `claimed` line of a multi-hub worker's log names, in order.
fn claims_by_hub(log: &str, hubs: &[&str]) -> Vec<usize> {
    log.lines()
        .filter(|l| l.contains(": claimed "))
        .map(|l| hubs.iter().position(|h| l.contains(&format!("[{h}]"))).unwrap_or_else(|| panic!("which hub? {l}")))
        .collect()
}

/// One process, two hubs (one by path, one over git daemon), one slot:
/// every job of both runs exactly once, and the hubs take turns at the
/// slot rather than one draining first.
#[test]
fn one_worker_drains_two_hubs_taking_turns() {
    let env = TestEnv::new();
    let repo = env.project("p", JOBS);
    let a = env.bare_hub("a.git");
    let served = env.path("served");
    std::fs::create_dir_all(&served).unwrap();
    let b_dir = served.join("b.git");
    env.git(env.root.path(), &["init", "-q", "--bare", "-b", "main", b_dir.to_str().unwrap()]);
    let daemon = env.daemon(&served);
    let b = daemon.url("b.git");
    let a = a.to_str().unwrap().to_owned();
    let mut ids = [vec![], vec![]];
    for (n, hub) in [&a, &b].into_iter().enumerate() {
        env.git(&repo, &["push", "-q", hub, "main"]);
        // Two submissions: six jobs a hub.
        for _ in 0..2 {
            let out = env.ci(&repo, &["submit", "--hub", hub]).expect(0).stdout();
            ids[n].extend(out.lines().map(str::to_owned));
        }
    }

    let run = env.ci(&repo, &["worker", "--hub", &a, "--hub", &b, "--jobs", "1", "--once", "--name", "w1"]);
    let log = run.stderr();
    assert_eq!(run.code(), 0, "{log}");

    for (n, hub) in [&a, &b].into_iter().enumerate() {
        let status = env.ci(&repo, &["status", "--hub", hub, "--json"]).expect(0).json();
        let jobs = status.as_array().unwrap();
        assert_eq!(jobs.len(), 6, "{status}");
        for job in jobs {
            assert_eq!(job["state"], "passed", "{job}");
            assert_eq!(job["attempt"], 1, "run once: {job}");
            assert!(ids[n].contains(&job["id"].as_str().unwrap().to_owned()), "{job}");
        }
    }
    let order = claims_by_hub(&log, &[&a, &b]);
    assert_eq!(order.len(), 12, "each job claimed once: {log}");
    let longest_run = order.chunk_by(|x, y| x == y).map(<[usize]>::len).max().unwrap();
    assert!(longest_run <= 2, "the hubs take turns at the one slot, got {order:?}\n{log}");
    drop(daemon);
}

#[test]
fn the_same_hub_twice_is_refused() {
    let env = TestEnv::new();
    let (repo, hub) = env.project_on_hub(JOBS);
    let run = env.ci(&repo, &["worker", "--hub", &hub, "--hub", &hub, "--once"]).expect(2);
    assert!(run.stderr().contains("given twice"), "{}", run.stderr());
}

/// The rows of the first `<table>` of `html`, read with an HTML parser:
/// each row's cell texts (`th` and `td`, trimmed), with the `href`s it
/// links to.
fn table_rows(html: &str) -> Vec<(Vec<String>, Vec<String>)> {
    let doc = Html::parse_document(html);
    let sel = |s: &str| Selector::parse(s).unwrap();
    let table = doc.select(&sel("table")).next().expect("a table");
    table
        .select(&sel("tr"))
        .map(|row| {
            let cells = row.select(&sel("th, td")).map(|c| c.text().collect::<String>().trim().to_owned()).collect();
            let hrefs = row.select(&sel("a[href]")).filter_map(|a| a.value().attr("href")).map(str::to_owned).collect();
            (cells, hrefs)
        })
        .collect()
}

/// The `href`s of every link in `html`.
fn links(html: &str) -> Vec<String> {
    let doc = Html::parse_document(html);
    let a = Selector::parse("a[href]").unwrap();
    doc.select(&a).filter_map(|a| a.value().attr("href")).map(str::to_owned).collect()
}

fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Two repositories with the same branch name and the same job name share
/// one hub: status, show and the site keep their jobs apart.
#[test]
fn two_projects_with_the_same_branches_stay_apart_on_one_hub() {
    let env = TestEnv::new();
    let hub = env.bare_hub("hub.git");
    let hub = hub.to_str().unwrap();
    let app = env.project("app", "[job.test]\nrun = \"true\"\n");
    let lib = env.project("lib", "[job.test]\nrun = \"exit 1\"\n");
    // lib names itself: git config wins over the directory's name.
    env.git(&lib, &["config", "ci.project", "libfoo"]);
    for repo in [&app, &lib] {
        env.ci(repo, &["submit", "--hub", hub]).expect(0);
    }
    env.ci(&app, &["worker", "--hub", hub, "--once", "--name", "w1"]).expect(0);

    let status = env.ci(&app, &["status", "--hub", hub, "--json"]).expect(0).json();
    let jobs = status.as_array().unwrap();
    assert_eq!(jobs.len(), 2, "{status}");
    let of = |p: &str| jobs.iter().find(|j| j["project"] == p).unwrap_or_else(|| panic!("no {p} job: {status}"));
    assert_eq!((of("app")["state"].as_str(), of("app")["ref"].as_str()), (Some("passed"), Some("refs/heads/main")));
    assert_eq!(
        (of("libfoo")["state"].as_str(), of("libfoo")["ref"].as_str()),
        (Some("failed"), Some("refs/heads/main"))
    );
    let only = env.ci(&app, &["status", "--hub", hub, "--project", "app", "--json"]).expect(0).json();
    assert_eq!(only.as_array().unwrap().len(), 1, "{only}");
    assert_eq!(only[0]["project"], "app");
    let table = env.ci(&app, &["status", "--hub", hub]).expect(0).stdout();
    assert!(table.contains("app/main") && table.contains("libfoo/main"), "{table}");
    let id = of("libfoo")["id"].as_str().unwrap();
    let show = env.ci(&app, &["show", "--hub", hub, id, "--json"]).expect(0).json();
    assert_eq!(show["project"], "libfoo");

    let site = env.path("site");
    env.ci(&app, &["site", "build", "--hub", hub, "--out", site.to_str().unwrap()]).expect(0);
    // The index offers both projects.
    let index = read(&site.join("index.html"));
    let index_links = links(&index);
    for p in ["app", "libfoo"] {
        assert!(index_links.contains(&format!("projects/{p}.html")), "no chooser link to {p}:\n{index}");
    }
    // Each project's matrix holds its own main only, in its own state.
    for (p, want) in [("app", "passing"), ("libfoo", "failing")] {
        let page = read(&site.join(format!("projects/{p}.html")));
        let rows = table_rows(&page);
        assert_eq!(rows.len(), 2, "a header and {p}/main: {rows:?}");
        let (cells, hrefs) = &rows[1];
        assert_eq!(cells[0], format!("{p}/main"), "{rows:?}");
        let branch_page = Html::parse_document(&read(&site.join(&hrefs[0][3..])));
        let title: String = branch_page.select(&Selector::parse("title").unwrap()).flat_map(|t| t.text()).collect();
        assert!(title.contains(&format!("branch {p}/main")), "{}: {title}", hrefs[0]);
        let badge = &hrefs[0][3..].replace("branches/", "badges/").replace(".html", ".svg");
        assert!(read(&site.join(badge)).contains(want), "{p}'s badge says {want}");
    }
    // Branches by name: one row `main`, one cell per project.
    let rows = table_rows(&read(&site.join("projects.html")));
    assert_eq!(rows[0].0, ["Branch", "app", "libfoo"], "{rows:?}");
    assert_eq!(rows[1].0[0], "main");
    assert_eq!(rows[1].1.len(), 2, "main links to both projects' branch pages: {rows:?}");
    assert_ne!(rows[1].1[0], rows[1].1[1]);
}

/// A job recorded before projects existed reads as the hub's own project
/// (`""`), and a hub of one project keeps its plain branch pages.
#[test]
fn one_project_keeps_plain_branch_pages() {
    let env = TestEnv::new();
    let (repo, hub) = env.project_on_hub("[job.test]\nrun = \"true\"\n");
    env.ci(&repo, &["submit", "--hub", &hub]).expect(0);
    env.ci(&repo, &["worker", "--hub", &hub, "--once", "--name", "w1"]).expect(0);
    let status = env.ci(&repo, &["status", "--hub", &hub, "--json"]).expect(0).json();
    assert_eq!(status[0]["project"], "p", "the directory's name: {status}");
    let site = env.path("site");
    env.ci(&repo, &["site", "build", "--hub", &hub, "--out", site.to_str().unwrap()]).expect(0);
    assert!(site.join("branches/main.html").is_file() && site.join("badges/main.svg").is_file());
    assert!(!site.join("projects.html").exists(), "no chooser for one project");
}

/// Branch pushes to a hooked hub queue jobs of the hub's own project (its
/// directory's name, or its `ci.project`), and a push to `main` supersedes
/// the pending `main` jobs of that project only, never another
/// repository's `main`.
#[test]
fn a_hub_push_queues_its_own_project_and_supersedes_only_it() {
    let env = TestEnv::new();
    let hub = env.bare_hub("webapp.git");
    let hub_s = hub.to_str().unwrap();
    env.ci(env.root.path(), &["hooks", "install", "--hub", hub_s]).expect(0);
    let lib = env.project("lib", "[job.test]\nrun = \"true\"\n");
    env.ci(&lib, &["submit", "--hub", hub_s]).expect(0);
    let app = env.project("app", "[job.test]\nrun = \"true\"\n");
    env.git(&app, &["push", "-q", hub_s, "main"]);

    let status = env.ci(&app, &["status", "--hub", hub_s, "--json"]).expect(0).json();
    let jobs = status.as_array().unwrap();
    assert_eq!(jobs.len(), 2, "{status}");
    let of = |p: &str| jobs.iter().find(|j| j["project"] == p).unwrap_or_else(|| panic!("no {p} job: {status}"));
    assert_eq!(of("webapp")["state"], "pending", "the hub's directory names its project");
    assert_eq!(of("lib")["state"], "pending", "lib's main is not webapp's: not superseded");

    env.git(&hub, &["config", "ci.project", "shop"]);
    env.commit_file(&app, "a.txt", "a", "second");
    env.git(&app, &["push", "-q", hub_s, "main"]);
    let status = env.ci(&app, &["status", "--hub", hub_s, "--json"]).expect(0).json();
    let jobs = status.as_array().unwrap();
    assert!(jobs.iter().any(|j| j["project"] == "shop" && j["state"] == "pending"), "ci.project wins: {status}");
    assert!(jobs.iter().any(|j| j["project"] == "lib" && j["state"] == "pending"), "{status}");
}

/// `git ci watch` queues the jobs of a hub without hooks under the hub's
/// name, or under `--project`.
#[test]
fn watch_records_the_hubs_project_or_the_one_it_is_given() {
    let env = TestEnv::new();
    let (repo, hub) = env.project_on_hub("[job.test]\nrun = \"true\"\n");
    env.ci(&repo, &["watch", "--hub", &hub, "--once"]).expect(0);
    let status = env.ci(&repo, &["status", "--hub", &hub, "--json"]).expect(0).json();
    assert_eq!(status[0]["project"], "hub", "the hub's directory, without .git: {status}");

    env.commit_file(&repo, "a.txt", "a", "second");
    env.git(&repo, &["push", "-q", &hub, "main"]);
    env.ci(&repo, &["watch", "--hub", &hub, "--once", "--project", "shop"]).expect(0);
    let shop = env.ci(&repo, &["status", "--hub", &hub, "--project", "shop", "--json"]).expect(0).json();
    assert_eq!(shop.as_array().unwrap().len(), 1, "{shop}");
    env.ci(&repo, &["watch", "--hub", &hub, "--once", "--project", "no/slash"]).expect(2);
}
