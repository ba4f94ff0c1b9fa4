//! `git ci worker --log-format json`: every stderr line is one JSON object.

use crate::env::TestEnv;

#[test]
fn a_json_log_is_one_object_a_line_in_event_order() {
    let env = TestEnv::new();
    let (repo, hub) = env.project_on_hub("[job.ok]\nrun = \"true\"\n");
    let id = env.ci(&repo, &["submit", "--hub", &hub]).expect(0).stdout().trim().to_owned();
    let run = env.ci(&repo, &["worker", "--hub", &hub, "--once", "--name", "w1", "--log-format", "json"]).expect(0);
    let stderr = run.stderr();
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not one JSON object ({e}): {l}\n{stderr}")))
        .collect();
    let events: Vec<&str> = lines.iter().map(|v| v["event"].as_str().unwrap_or("?")).collect();
    assert_eq!(events, ["started", "claimed", "finished", "exiting"], "{stderr}");
    for v in &lines {
        assert_eq!(v["worker"], "w1", "{v}");
        assert_eq!(v["level"], "info", "{v}");
        let ts = v["ts"].as_str().unwrap();
        assert!(ts.len() == 24 && ts.ends_with('Z') && ts.as_bytes()[19] == b'.', "RFC 3339 with millis: {ts}");
    }
    let (started, claimed, finished, exiting) = (&lines[0], &lines[1], &lines[2], &lines[3]);
    assert_eq!(started["hub"], hub.as_str());
    assert_eq!((&started["jobs"], &started["queues"]), (&serde_json::json!(1), &serde_json::json!([])));
    let commit = env.git(&repo, &["rev-parse", "HEAD"]);
    for v in [claimed, finished] {
        assert_eq!((v["job"].as_str(), v["name"].as_str()), (Some(id.as_str()), Some("ok")), "{v}");
        assert_eq!(v["commit"], commit.as_str());
        assert_eq!(v["attempt"], 1);
    }
    assert_eq!(finished["status"], "passed");
    assert!(finished["duration_ms"].is_u64(), "{finished}");
    assert_eq!((&exiting["published"], &exiting["passed"], &exiting["claims"]), (&1.into(), &1.into(), &1.into()));
}
