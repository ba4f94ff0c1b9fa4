//! What `git ci worker` says on stderr: one line per event, as text for a
//! person or a journal, or as one JSON object a line for a log pipeline
//! (`--log-format json`).

use clap::ValueEnum;
use std::io::Write;
use std::time::{Duration, SystemTime};

use git_ci_core::Status;
use git_ci_core::worker::{Event, Summary};
use serde::Serialize;
use serde_json::{Value, json};

/// How `git ci worker` writes its log lines on stderr.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// `git-ci worker NAME: claimed ...`, for a person or a journal
    #[default]
    Text,
    /// `{"ts":...,"level":...,"worker":...,"event":...}` and the event's fields
    Json,
}

/// Everything the worker reports: its start, each event, its exit.
pub enum Entry<'a> {
    Started { queues: &'a [String], hub: &'a str, jobs: usize },
    Event(&'a Event),
    Exiting(&'a Summary),
}

/// The worker's log, bound to its name and format.
pub struct WorkerLog {
    name: String,
    format: LogFormat,
}

impl WorkerLog {
    pub fn new(name: &str, format: LogFormat) -> WorkerLog {
        WorkerLog { name: name.to_owned(), format }
    }

    /// Writes `entry` to stderr, stamped now.
    pub fn emit(&self, entry: &Entry) {
        let line = self.line(entry, SystemTime::now());
        // One write per line: workers sharing a terminal or a journal must
        // not interleave within a line.
        let _ = std::io::stderr().write_all(line.as_bytes());
    }

    /// `entry` as one line, newline included.
    pub fn line(&self, entry: &Entry, at: SystemTime) -> String {
        let record = Record::of(entry);
        match self.format {
            LogFormat::Text => record.text(&self.name),
            LogFormat::Json => record.json(&self.name, at),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Level {
    Info,
    /// Something an operator may want to act on: a stolen claim (the lease
    /// is too short for this machine), an unreachable hub, a job that could
    /// not run at all.
    Warn,
    Error,
}

/// One entry, before it is given a format.
struct Record {
    level: Level,
    event: &'static str,
    /// The text form, after `git-ci worker NAME: `.
    message: String,
    /// The exit line has always read `git-ci worker: exiting; ...`, without
    /// the name; scripts may match it.
    named: bool,
    /// A JSON object.
    fields: Value,
}

/// The JSON form of a line: fixed keys first, then the event's own.
#[derive(Serialize)]
struct JsonLine<'a> {
    ts: String,
    level: Level,
    worker: &'a str,
    event: &'static str,
    #[serde(flatten)]
    fields: &'a Value,
}

impl Record {
    fn new(level: Level, event: &'static str, message: String, fields: Value) -> Record {
        Record { level, event, message, named: true, fields }
    }

    fn text(&self, name: &str) -> String {
        if self.named {
            format!("git-ci worker {name}: {}\n", self.message)
        } else {
            format!("git-ci worker: {}\n", self.message)
        }
    }

    fn json(&self, name: &str, at: SystemTime) -> String {
        let ts = git_ci_core::time::rfc3339(at);
        let line = JsonLine { ts, level: self.level, worker: name, event: self.event, fields: &self.fields };
        serde_json::to_string(&line).expect("strings and numbers always serialize") + "\n"
    }

    fn of(entry: &Entry) -> Record {
        match entry {
            Entry::Started { queues, hub, jobs } => Record::started(queues, hub, *jobs),
            Entry::Event(e) => Record::event(e),
            Entry::Exiting(s) => Record::exiting(s),
        }
    }

    fn started(queues: &[String], hub: &str, jobs: usize) -> Record {
        let serving = if queues.is_empty() { "every queue".into() } else { format!("queues {}", queues.join(",")) };
        let message = format!("serving {serving} on {hub} with {jobs} slot(s)");
        Record::new(Level::Info, "started", message, json!({"queues": queues, "hub": hub, "jobs": jobs}))
    }

    fn exiting(s: &Summary) -> Record {
        let message = format!(
            "exiting; {} published ({} passed), {} claims, {} lost races",
            s.published, s.passed, s.claims, s.lost_races
        );
        let fields =
            json!({"published": s.published, "passed": s.passed, "claims": s.claims, "lost_races": s.lost_races});
        Record { named: false, ..Record::new(Level::Info, "exiting", message, fields) }
    }

    fn event(e: &Event) -> Record {
        match e {
            Event::Claimed { job, attempt } => Record::new(
                Level::Info,
                "claimed",
                format!("claimed {} {} at {} (attempt {attempt})", job.id, job.label(), job.short_commit()),
                json!({"job": job.id, "name": job.spec.name, "commit": job.commit, "attempt": attempt}),
            ),
            Event::Published { job, result } => Record::finished(job.as_deref(), result),
            Event::LostRace { id } => {
                Record::new(Level::Info, "lost_race", format!("lost the race for {id}; moving on"), json!({"job": id}))
            }
            Event::Stolen { id } => Record::new(
                Level::Warn,
                "stolen",
                format!("claim on {id} was taken over by another worker; stopped it, not publishing"),
                json!({"job": id}),
            ),
            Event::Overtaken { id } => Record::new(
                Level::Info,
                "overtaken",
                format!("{id} was finished elsewhere (cancelled?); dropped our result"),
                json!({"job": id}),
            ),
            Event::HubUnreachable { error, retry_in } => Record::new(
                Level::Warn,
                "hub_unreachable",
                format!("hub unreachable, retrying in {}: {error}", human(*retry_in)),
                json!({"error": error, "retry_in_ms": millis(*retry_in)}),
            ),
            Event::HubRefused { error, fix, retry_in } => Record::new(
                Level::Error,
                "hub_refused",
                format!("{error}\nto fix: {fix}\n(claiming nothing; trying again in {})", human(*retry_in)),
                json!({"error": error, "fix": fix, "retry_in_ms": millis(*retry_in)}),
            ),
            Event::Unpublished { ids } => Record::new(
                Level::Warn,
                "unpublished",
                format!(
                    "stopped with {} result(s) the hub did not take: {} (their claims lapse; other workers run them \
                     again)",
                    ids.len(),
                    ids.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
                ),
                json!({"jobs": ids}),
            ),
            Event::Cleaned { freed } => Record::new(
                Level::Info,
                "cleaned",
                format!(
                    "work directory over --cache-max-size: removed {} least recently used cache(s), freed {}{}",
                    freed.caches.0,
                    git_ci_core::worker::human_bytes(freed.bytes()),
                    match freed.failed.first() {
                        Some((path, e)) => format!(" (could not remove {}: {e})", path.display()),
                        None => String::new(),
                    }
                ),
                json!({"caches": freed.caches.0, "bytes": freed.bytes(), "failed": freed.failed.len()}),
            ),
            Event::HubBack => Record::new(Level::Info, "hub_back", "hub reachable again".into(), json!({})),
            Event::HubError { error } => {
                Record::new(Level::Error, "hub_error", format!("hub error: {error}"), json!({"error": error}))
            }
            Event::Draining => Record::new(
                Level::Info,
                "draining",
                "stopping: no new claims; finishing running jobs (signal again, a second later, to cancel them)".into(),
                json!({}),
            ),
            Event::InstanceUp { id, url } => Record::new(
                Level::Info,
                "instance_up",
                format!("{id} serves at {url}; it keeps running"),
                json!({"job": id, "url": url}),
            ),
            Event::InstanceDown { id, url, why } => Record::new(
                Level::Info,
                "instance_down",
                format!("stopped the instance of {id} at {url}: {why}"),
                json!({"job": id, "url": url, "why": why}),
            ),
            Event::StraysKilled { strays } => {
                let mut owners: Vec<i32> = strays.iter().map(|s| s.owner).collect();
                owners.dedup();
                let shown: Vec<String> = owners.iter().map(i32::to_string).collect();
                let pids: Vec<i32> = strays.iter().map(|s| s.pid).collect();
                Record::new(
                    Level::Warn,
                    "strays_killed",
                    format!(
                        "killed {} process(es) of jobs still running after their git-ci (pid {}) died; other \
                         workers run those jobs again once their claims lapse",
                        strays.len(),
                        shown.join(", ")
                    ),
                    json!({"pids": pids, "owners": owners}),
                )
            }
        }
    }

    /// A failed job is the job's news, not the worker's: only a job that
    /// could not run at all (`error`) is a warning.
    fn finished(job: Option<&git_ci_core::Job>, result: &git_ci_core::JobResult) -> Record {
        let name = job.map(|j| j.spec.name.as_str());
        let mut message = format!(
            "finished {} {} {} in {}",
            result.id,
            job.map_or("?".into(), |j| j.label()),
            result.status.as_str(),
            human(Duration::from_millis(result.duration_ms)),
        );
        if let Some(reason) = &result.reason {
            message += &format!(": {reason}");
        }
        let level = if result.status == Status::Error { Level::Warn } else { Level::Info };
        let mut fields = json!({
            "job": result.id,
            "status": result.status.as_str(),
            "duration_ms": result.duration_ms,
            "attempt": result.attempt,
        });
        let optional = [
            ("name", name.map(Value::from)),
            ("commit", job.map(|j| Value::from(j.commit.as_str()))),
            ("reason", result.reason.as_deref().map(Value::from)),
        ];
        for (key, value) in optional {
            if let Some(value) = value {
                fields[key] = value;
            }
        }
        Record::new(level, "finished", message, fields)
    }
}

fn human(d: Duration) -> String {
    git_ci_core::time::human_duration(d)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use git_ci_core::model::JobSpec;
    use git_ci_core::{Job, JobId, JobResult};

    use super::*;

    const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";
    const ID: &str = "20261122T040704123-0123456789ab";

    fn at() -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(1_795_320_424_123)
    }

    fn job() -> Box<Job> {
        let mut job = Job::new(JobSpec::ad_hoc("true"), COMMIT, "", "refs/heads/main", "test");
        job.id = JobId::parse(ID).unwrap();
        job.spec.name = "test".into();
        Box::new(job)
    }

    fn result(status: Status, reason: Option<&str>) -> Box<JobResult> {
        let mut r = JobResult::without_run(&JobId::parse(ID).unwrap(), status, "w1", 2, String::new());
        r.reason = reason.map(str::to_owned);
        r.duration_ms = 12_345;
        Box::new(r)
    }

    fn text(entry: &Entry) -> String {
        WorkerLog::new("w1", LogFormat::Text).line(entry, at())
    }

    /// The JSON line, parsed back, after checking the keys every line has.
    fn json(entry: &Entry, event: &str, level: &str) -> Value {
        let line = WorkerLog::new("w1", LogFormat::Json).line(entry, at());
        assert!(line.ends_with('\n') && !line[..line.len() - 1].contains('\n'), "one line: {line:?}");
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert_eq!(v["ts"], "2026-11-22T04:07:04.123Z");
        assert_eq!(v["worker"], "w1");
        assert_eq!(v["event"], event, "{v}");
        assert_eq!(v["level"], level, "{v}");
        assert!(line.starts_with(r#"{"ts":"#), "fixed keys first: {line}");
        v
    }

    /// The keys beyond those every line has.
    fn own_keys(v: &Value) -> Vec<&str> {
        let fixed = ["ts", "level", "worker", "event"];
        v.as_object().unwrap().keys().map(String::as_str).filter(|k| !fixed.contains(k)).collect()
    }

    #[test]
    fn start_and_exit_lines() {
        let queues = ["a".to_owned(), "b".to_owned()];
        let started = Entry::Started { queues: &queues, hub: "/srv/hub.git", jobs: 2 };
        assert_eq!(text(&started), "git-ci worker w1: serving queues a,b on /srv/hub.git with 2 slot(s)\n");
        let every = Entry::Started { queues: &[], hub: "/srv/hub.git", jobs: 1 };
        assert_eq!(text(&every), "git-ci worker w1: serving every queue on /srv/hub.git with 1 slot(s)\n");
        let v = json(&started, "started", "info");
        assert_eq!((&v["queues"], &v["hub"], &v["jobs"]), (&json!(["a", "b"]), &json!("/srv/hub.git"), &json!(2)));
        assert_eq!(json(&every, "started", "info")["queues"], json!([]));

        let summary = Summary { published: 3, passed: 2, claims: 4, lost_races: 1 };
        let exiting = Entry::Exiting(&summary);
        assert_eq!(text(&exiting), "git-ci worker: exiting; 3 published (2 passed), 4 claims, 1 lost races\n");
        let v = json(&exiting, "exiting", "info");
        assert_eq!(
            v,
            json!({"ts": v["ts"], "level": "info", "worker": "w1", "event": "exiting",
            "published": 3, "passed": 2, "claims": 4, "lost_races": 1})
        );
    }

    #[test]
    fn claimed() {
        let e = Event::Claimed { job: job(), attempt: 2 };
        assert_eq!(text(&Entry::Event(&e)), format!("git-ci worker w1: claimed {ID} test at 0123456789 (attempt 2)\n"));
        let v = json(&Entry::Event(&e), "claimed", "info");
        assert_eq!(
            (&v["job"], &v["name"], &v["commit"], &v["attempt"]),
            (&json!(ID), &json!("test"), &json!(COMMIT), &json!(2))
        );
        assert_eq!(own_keys(&v), ["attempt", "commit", "job", "name"]);
    }

    #[test]
    fn finished_passed_failed_and_unknown() {
        let passed = Event::Published { job: Some(job()), result: result(Status::Passed, None) };
        assert_eq!(text(&Entry::Event(&passed)), format!("git-ci worker w1: finished {ID} test passed in 12.3s\n"));
        let v = json(&Entry::Event(&passed), "finished", "info");
        assert_eq!(v["status"], "passed");
        assert_eq!(v["duration_ms"], 12_345);
        assert_eq!(v["attempt"], 2);
        assert_eq!((&v["job"], &v["name"], &v["commit"]), (&json!(ID), &json!("test"), &json!(COMMIT)));
        assert_eq!(own_keys(&v), ["attempt", "commit", "duration_ms", "job", "name", "status"]);

        let failed = Event::Published { job: Some(job()), result: result(Status::Failed, None) };
        assert_eq!(json(&Entry::Event(&failed), "finished", "info")["status"], "failed");

        // A job whose document was unreadable: no name, no commit.
        let poisoned = Event::Published { job: None, result: result(Status::Error, Some("job.json: bad")) };
        assert_eq!(
            text(&Entry::Event(&poisoned)),
            format!("git-ci worker w1: finished {ID} ? error in 12.3s: job.json: bad\n")
        );
        let v = json(&Entry::Event(&poisoned), "finished", "warn");
        assert_eq!(v["reason"], "job.json: bad");
        assert_eq!(own_keys(&v), ["attempt", "duration_ms", "job", "reason", "status"]);
    }

    #[test]
    fn races_steals_and_overtakes_name_the_job() {
        let id = || JobId::parse(ID).unwrap();
        let table = [
            (Event::LostRace { id: id() }, "lost_race", "info", format!("lost the race for {ID}; moving on")),
            (
                Event::Stolen { id: id() },
                "stolen",
                "warn",
                format!("claim on {ID} was taken over by another worker; stopped it, not publishing"),
            ),
            (
                Event::Overtaken { id: id() },
                "overtaken",
                "info",
                format!("{ID} was finished elsewhere (cancelled?); dropped our result"),
            ),
        ];
        for (e, event, level, message) in table {
            assert_eq!(text(&Entry::Event(&e)), format!("git-ci worker w1: {message}\n"));
            let v = json(&Entry::Event(&e), event, level);
            assert_eq!(v["job"], ID);
            assert_eq!(own_keys(&v), ["job"]);
        }
    }

    #[test]
    fn hub_trouble() {
        let down =
            Event::HubUnreachable { error: "fatal: \"quoted\"\nline".into(), retry_in: Duration::from_millis(1500) };
        assert_eq!(
            text(&Entry::Event(&down)),
            "git-ci worker w1: hub unreachable, retrying in 1.5s: fatal: \"quoted\"\nline\n"
        );
        let v = json(&Entry::Event(&down), "hub_unreachable", "warn");
        assert_eq!(v["error"], "fatal: \"quoted\"\nline", "escaped, still one line");
        assert_eq!(v["retry_in_ms"], 1500);

        let back = Event::HubBack;
        assert_eq!(text(&Entry::Event(&back)), "git-ci worker w1: hub reachable again\n");
        assert_eq!(own_keys(&json(&Entry::Event(&back), "hub_back", "info")), Vec::<&str>::new());

        let error = Event::HubError { error: "refused".into() };
        assert_eq!(text(&Entry::Event(&error)), "git-ci worker w1: hub error: refused\n");
        assert_eq!(json(&Entry::Event(&error), "hub_error", "error")["error"], "refused");
    }

    #[test]
    fn draining() {
        assert_eq!(
            text(&Entry::Event(&Event::Draining)),
            "git-ci worker w1: stopping: no new claims; finishing running jobs (signal again, a second later, to cancel them)\n"
        );
        assert_eq!(own_keys(&json(&Entry::Event(&Event::Draining), "draining", "info")), Vec::<&str>::new());
    }
}
