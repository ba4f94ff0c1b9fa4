//! The harness itself, run as a user would run it: `--quick` must get
//! through every group and write a figure for each row. Timings are not
//! judged here (they are what the harness prints, not what tests assert);
//! that every path of it still runs to the end is.

use std::process::Command;

#[test]
fn the_quick_run_measures_every_group() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let json = dir.path().join("rows.json");
    let out = Command::new(env!("CARGO_BIN_EXE_git-ci-bench"))
        .args(["--quick", "--dir"])
        .arg(dir.path())
        .arg("--json")
        .arg(&json)
        .output()
        .expect("the bench runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "exit {:?}\n{stdout}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("| submit 1 job"), "a markdown table: {stdout}");

    let rows: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(&json).expect("--json wrote its file")).expect("JSON rows");
    let names: Vec<&str> = rows.iter().filter_map(|r| r["benchmark"].as_str()).collect();
    for group in [
        "submit 1 job",
        "claim+complete, local hub",
        "end-to-end no-op job, git daemon",
        "end-to-end no-op job, smart HTTP",
        "throughput, 4 git daemon worker(s) × 4 slot(s)",
        "poll (Snapshot::read), git daemon",
        "claim+complete that rolls",
        "site rebuild after one more result",
        "poll+claim+complete, git daemon",
    ] {
        assert!(names.iter().any(|n| n.starts_with(group)), "no row starting {group:?} in {names:#?}");
    }
    for row in &rows {
        let ours = &row["ours"];
        let figure = ["ms", "jobs_per_s", "requests_per_s"].iter().find_map(|unit| ours[unit].as_f64());
        assert!(figure.is_some_and(|v| v.is_finite() && v > 0.0), "a row without a figure: {row}");
    }
}
