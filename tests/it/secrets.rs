//! `--env-file` secrets never reach the hub: not in a live log snapshot
//! taken while the secret is half printed, not hidden behind an escape
//! sequence, not in a JUnit file.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::env::TestEnv;

const TOKEN: &str = "s3cr3t-value";
const PASS: &str = "p&ss<w0rd>";

/// Prints the token in two halves a second apart (several live log
/// snapshots in between), with a colour change inside it, and writes a
/// JUnit file holding both secrets (XML-escaped as a test tool would).
const PIPELINE: &str = r#"[job.leaky]
run = '''
printf 'a=%s' "${API_TOKEN%t-value}"
sleep 1
printf 't-value\n'
printf 'b=%s\033[1m%s\033[0m\n' "${API_TOKEN%t-value}" 't-value'
x=$(printf %s "$DB_PASS" | sed -e 's/&/\&amp;/g' -e 's/</\&lt;/g' -e 's/>/\&gt;/g')
printf '<testsuite><testcase name="login"><failure message="token %s rejected">pass %s</failure></testcase></testsuite>\n' "$API_TOKEN" "$x" > report.xml
'''
junit = ["report.xml"]
"#;

/// The text a terminal or the site shows: SGR sequences left out.
fn shown(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::new();
    let mut rest = text.as_ref();
    while let Some(at) = rest.find("\x1b[") {
        out.push_str(&rest[..at]);
        let seq = &rest[at + 2..];
        let end = seq.find(|c: char| !(c.is_ascii_digit() || c == ';')).map_or(seq.len(), |e| e + 1);
        rest = &seq[end..];
    }
    out.push_str(rest);
    out
}

/// What a blob must not hold: either secret (raw, XML-escaped, or behind
/// escape sequences), or the half of the token printed before the pause.
fn leaks(bytes: &[u8]) -> Option<&'static str> {
    let text = shown(bytes);
    let forbidden = [TOKEN, PASS, "p&amp;ss&lt;w0rd&gt;", "s3cr3"];
    forbidden.into_iter().find(|f| text.contains(f))
}

/// Every object in `repo`, with its contents.
fn all_objects(env: &TestEnv, repo: &Path) -> Vec<(String, Vec<u8>)> {
    let out = env.git(repo, &["cat-file", "--batch-all-objects", "--batch-check=%(objectname)"]);
    out.lines().map(|oid| (oid.to_owned(), blob(repo, oid))).collect()
}

fn blob(repo: &Path, oid: &str) -> Vec<u8> {
    let out = std::process::Command::new("git").current_dir(repo).args(["cat-file", "-p", oid]).output().unwrap();
    out.stdout
}

#[test]
fn secrets_reach_no_live_log_no_log_and_no_junit_file() {
    let env = TestEnv::new();
    let (repo, hub) = env.project_on_hub(PIPELINE);
    let hub_path = Path::new(&hub).to_path_buf();
    let secrets = env.path("secrets.env");
    std::fs::write(&secrets, format!("API_TOKEN={TOKEN}\nDB_PASS={PASS}\n")).unwrap();
    let id = env.ci(&repo, &["submit", "--hub", &hub]).expect(0).stdout().trim().to_owned();

    // Every live log blob the hub holds, read as often as we can while the job runs.
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (done, hub_path) = (Arc::clone(&done), hub_path.clone());
        std::thread::spawn(move || {
            let mut seen: Vec<Vec<u8>> = Vec::new();
            while !done.load(Ordering::Relaxed) {
                let out = std::process::Command::new("git")
                    .current_dir(&hub_path)
                    .args(["for-each-ref", "--format=%(objectname)", "refs/ci/logs/"])
                    .output()
                    .unwrap();
                for oid in String::from_utf8_lossy(&out.stdout).lines() {
                    let b = blob(&hub_path, oid);
                    if !seen.contains(&b) {
                        seen.push(b);
                    }
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            seen
        })
    };
    let env_file = secrets.to_str().unwrap();
    env.ci(&repo, &["worker", "--hub", &hub, "--once", "--env-file", env_file, "--log-interval", "100ms"]).expect(0);
    done.store(true, Ordering::Relaxed);
    let snapshots = watcher.join().unwrap();

    assert!(snapshots.iter().any(|s| shown(s).contains("a=")), "the job was seen running: {snapshots:?}");
    let mut leaked = Vec::new();
    for s in &snapshots {
        if let Some(what) = leaks(s) {
            leaked.push(format!("live log snapshot shows {what:?}: {:?}", String::from_utf8_lossy(s)));
        }
    }
    // Everything the hub holds, live log blobs whose refs are gone included.
    for (oid, bytes) in all_objects(&env, &hub_path) {
        if let Some(what) = leaks(&bytes) {
            leaked.push(format!("object {oid} shows {what:?}: {:?}", String::from_utf8_lossy(&bytes)));
        }
    }
    assert!(leaked.is_empty(), "secrets leaked:\n{}", leaked.join("\n"));
    let log = env.ci(&repo, &["log", "--hub", &hub, &id]).expect(0).0.stdout;
    assert_eq!(String::from_utf8_lossy(&log), "a=***\nb=***\x1b[1m\x1b[0m\n", "masked, colours kept");
    let doc = env.ci(&repo, &["show", "--hub", &hub, &id, "--json"]).expect(0).json();
    assert_eq!(doc["state"], "passed", "{doc}");
    assert_eq!(doc["tests"]["failed"], 1, "{doc}");
}
