//! The site in a real browser: headless Chromium loads pages from disk,
//! and we check what a person would see (and that nothing ran). Skipped,
//! with a message, where Chromium is not installed, except on CI (`CI=true`)
//! where that fails: CI installs Debian's `chromium` package.
//!
//! Screenshots are kept in `$GIT_CI_SITE_SCREENSHOTS`, else in
//! `<temp>/git-ci-site-screenshots`, for a person to look at.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::check::text_of;
use super::*;
use crate::render::paths;

pub const CHROMIUM: &str = "/usr/bin/chromium";

/// Whether Chromium is here to test with. Where it is not, a test skips
/// with a message, except on CI (`CI=true`): there a skip would pass
/// without having looked at anything, so missing it fails.
pub fn available() -> bool {
    if Path::new(CHROMIUM).exists() {
        return true;
    }
    let on_ci = std::env::var("CI").is_ok_and(|v| !matches!(v.as_str(), "" | "0" | "false"));
    assert!(!on_ci, "{CHROMIUM} is missing and CI is set: `apt-get install -y chromium` (`.ci/run` does)");
    eprintln!("SKIPPED: {CHROMIUM} is missing; `apt-get install -y chromium` runs the browser tests");
    false
}

pub fn chromium(profile: &Path, args: &[&str], page: &Path) -> Vec<u8> {
    let mut child = Command::new(CHROMIUM)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"])
        .args(["--disable-component-update", "--disable-sync", "--hide-scrollbars"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium starts");
    let started = Instant::now();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut { stdout }, &mut out).map(|_| out).unwrap_or_default()
    });
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            panic!("chromium did not finish {page:?} in 90 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    reader.join().unwrap()
}

pub fn screenshots() -> PathBuf {
    let dir = std::env::var_os("GIT_CI_SITE_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("git-ci-site-screenshots"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_person_sees_jobs_and_states_and_nothing_runs() {
    if !available() {
        return;
    }
    let p = populated();
    p.world.build();
    let out = p.world.out();
    let profile = tempfile::tempdir().unwrap();

    let index = String::from_utf8(chromium(profile.path(), &["--dump-dom"], &out.join("index.html"))).unwrap();
    assert!(index.contains("<title>Jobs · git-ci</title>"), "a script would have changed the title: {index}");
    let seen = text_of(&index);
    for s in ["build", "test", "lint", "deploy", "passed", "failed", "running", "pending", HOSTILE_BRANCH] {
        assert!(seen.contains(s), "{s:?} is not on the index as seen: {seen}");
    }
    assert!(!index.to_lowercase().contains("<script"), "no script element in the live DOM");

    let job = out.join(paths::job(p.hostile.as_str()));
    let dom = String::from_utf8(chromium(profile.path(), &["--dump-dom"], &job)).unwrap();
    assert!(!dom.contains("pwned") || text_of(&dom).contains("document.title='pwned'"), "the log is text");
    assert!(dom.contains("<title>failed lint · "), "the title is ours: {dom}");
    assert!(!dom.to_lowercase().contains("<script") && !dom.contains("<img src=\"x\""), "no element from the log");

    let shots = screenshots();
    // Issue 17: the index, a branch, a running job and a failed job, in
    // light and dark, wide and at 400 px.
    let running = out.join(paths::job(p.running.as_str()));
    let failed = out.join(paths::job(p.failed_test.as_str()));
    let branch = out.join(paths::branch("main"));
    for (name, page) in
        [("index", out.join("index.html")), ("branch", branch), ("running", running), ("failed", failed)]
    {
        for (scheme, flags) in
            [("light", &[][..]), ("dark", &["--force-dark-mode", "--blink-settings=preferredColorScheme=0"][..])]
        {
            for (width, size) in [("wide", "1280,900"), ("400", "400,900")] {
                let png = shots.join(format!("{name}-{scheme}-{width}.png"));
                let _ = std::fs::remove_file(&png);
                let args = [
                    &[format!("--screenshot={}", png.display()), format!("--window-size={size}")][..],
                    &flags.iter().map(|f| f.to_string()).collect::<Vec<_>>(),
                ]
                .concat();
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                chromium(profile.path(), &args, &page);
                assert!(std::fs::read(&png).is_ok_and(|b| b.starts_with(b"\x89PNG")), "{}", png.display());
            }
        }
    }
    for (name, page, size) in [
        ("index.png", out.join("index.html"), "1280,900"),
        ("job.png", out.join(paths::job(p.failed_test.as_str())), "1280,900"),
        ("hostile-job.png", job.clone(), "1280,900"),
        ("branches.png", out.join("branches.html"), "1280,700"),
        ("workers.png", out.join("workers.html"), "1280,600"),
        ("index-phone.png", out.join("index.html"), "390,844"),
        ("job-phone.png", out.join(paths::job(p.failed_test.as_str())), "390,844"),
    ] {
        let png = shots.join(name);
        let _ = std::fs::remove_file(&png);
        let shot = format!("--screenshot={}", png.display());
        let window = format!("--window-size={size}");
        chromium(profile.path(), &[&shot, &window], &page);
        let bytes = std::fs::read(&png).unwrap_or_else(|e| panic!("no screenshot {}: {e}", png.display()));
        assert!(bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000, "{} looks empty", png.display());
    }
    eprintln!("screenshots in {}", shots.display());
}
