//! `git ci show`: one job's definition, state and result.

use clap::Args;
use git_ci_core::JobId;
use git_ci_core::live_workers::LiveWorkers;
use git_ci_core::state::{Board, JobView, State};

use crate::cli::HubArgs;
use crate::context;
use crate::error::{CliError, CliResult};
use crate::ui::Ui;

/// Show one job: its definition, state and result.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  git ci show 20261122T040704123-0123456789ab --json")]
pub struct ShowArgs {
    /// The job id, as `git ci status` prints it.
    pub job: String,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub hub: HubArgs,
}

pub fn cmd_show(ui: &Ui, args: ShowArgs) -> CliResult {
    let id = JobId::parse(&args.job)?;
    let repo = context::user_repo();
    let hub = context::hub_holding(args.hub.hub.as_deref(), repo.as_ref(), "client", std::slice::from_ref(&id))?;
    let view = find(&*hub, &id)?;
    let unserved = unserved(&*hub, &view)?;
    if args.json {
        let mut doc = document(&view);
        if let Some(why) = &unserved {
            doc["waiting_reason"] = why.clone().into();
        }
        ui.out(&serde_json::to_string_pretty(&doc).expect("plain JSON"));
        return Ok(());
    }
    for (k, v) in lines(&view) {
        ui.out(&format!("{k:>12}: {v}"));
        if k == "state"
            && let Some(why) = &unserved
        {
            ui.out(&format!("{:>12}: {why}", "waits"));
        }
    }
    Ok(())
}

/// Why a pending job that waits for no other job is not claimed: no live
/// worker could take it (`None` when one could, or it is not pending).
pub fn unserved(hub: &dyn git_ci_core::Hub, view: &JobView) -> CliResult<Option<String>> {
    let Some(job) = view.job.as_ref().filter(|_| view.state == State::Pending && view.waiting_for.is_empty()) else {
        return Ok(None);
    };
    Ok(LiveWorkers::read(hub)?.why_unserved(job))
}

pub fn find(hub: &dyn git_ci_core::Hub, id: &JobId) -> CliResult<JobView> {
    Board::read_view(hub, id)?.1.ok_or_else(|| {
        CliError::usage_hint(
            format!("no job {id} on the hub {}", hub.url()),
            "`git ci status` lists the jobs the hub knows",
        )
    })
}

/// The job's fields, its state, and for a finished job every field of result.json.
pub fn document(v: &JobView) -> serde_json::Value {
    let mut doc = match &v.job {
        Some(job) => serde_json::to_value(job).expect("plain data"),
        None => serde_json::json!({ "id": v.id }),
    };
    let obj = doc.as_object_mut().expect("an object");
    if let Some(job) = &v.job {
        obj.insert("label".into(), job.label().into());
        // Always there, `""` for the hub's own (job.json leaves it out).
        obj.insert("project".into(), job.project.clone().into());
    }
    obj.insert("state".into(), v.state.as_str().into());
    if let Some(r) = &v.result
        && let serde_json::Value::Object(fields) = serde_json::to_value(r).expect("plain data")
    {
        for (k, val) in fields.into_iter().filter(|(k, _)| k != "version" && k != "id") {
            obj.insert(k, val);
        }
    }
    if let Some(c) = &v.claim {
        obj.insert("claim".into(), serde_json::to_value(c).expect("plain data"));
    }
    if v.parked {
        obj.insert("parked".into(), true.into());
    }
    if !v.waiting_for.is_empty() {
        obj.insert("waiting_for".into(), serde_json::to_value(&v.waiting_for).expect("plain data"));
    }
    doc
}

fn lines(v: &JobView) -> Vec<(&'static str, String)> {
    let state = match v.waits_for() {
        Some(needs) => format!("{}, waits for {needs}", v.state.as_str()),
        None if v.parked => {
            format!("{}, parked in backlog (a worker queues it when the queue runs low)", v.state.as_str())
        }
        None => v.state.as_str().to_owned(),
    };
    let mut out = vec![("id", v.id.to_string()), ("state", state)];
    if let Some(j) = &v.job {
        out.push(("name", j.label()));
        if let Some(r) = j.repeat {
            out.push(("repeat", format!("run {} of {}", r.index, r.count)));
        }
        out.extend([
            ("commit", j.commit.clone()),
            ("ref", j.git_ref.clone()),
            ("queue", j.spec.queue.clone()),
            ("run", j.spec.run.clone()),
            ("submitted", format!("{} by {}", j.submitted_at, j.submitted_by)),
        ]);
        if let Some(from) = &j.config_from {
            out.push(("defined in", from.clone()));
        }
        for need in &j.needs {
            out.push(("needs", format!("{} ({})", need.label, need.id)));
        }
    }
    if let Some(c) = &v.claim {
        out.push(("claimed by", format!("{} (attempt {}, lease until {})", c.worker, c.attempt, c.lease_expires_at)));
    }
    if let Some(r) = &v.result {
        out.extend([
            ("worker", format!("{} (attempt {})", r.worker, r.attempt)),
            ("exit code", r.exit_code.map_or("-".into(), |c| c.to_string())),
            ("started", r.started_at.clone()),
            ("duration", git_ci_core::time::human_duration(std::time::Duration::from_millis(r.duration_ms))),
            ("log", format!("{} bytes{}", r.log_bytes, if r.log_truncated { ", truncated" } else { "" })),
        ]);
        if r.tests.total > 0 {
            let t = r.tests;
            out.push((
                "tests",
                format!("{} total, {} passed, {} failed, {} skipped", t.total, t.passed, t.failed, t.skipped),
            ));
        }
        for a in &r.artifacts {
            out.push(("artifact", format!("{} ({} bytes)", a.path, a.size)));
        }
        if let Some(reason) = &r.reason {
            out.push(("reason", reason.clone()));
        }
        if let Some(url) = &r.url {
            out.push(("url", format!("{url} (a live instance while `git ci instances` lists it)")));
        }
    }
    out
}
