//! A page per job (`jobs/<id>.html`) with its API mirror
//! (`api/jobs/<id>.json`), raw log (`logs/<id>.txt`) and artifacts
//! (`artifacts/<id>/...`): one unit, keyed by the job's documents and the
//! list of its attempts, so a finished job is rendered once.

use git_ci_core::model::Artifact;
use git_ci_core::{Claim, Job, JobResult};
use gix::ObjectId;
use minijinja::context;
use minijinja::value::Value;
use serde::Serialize;
use serde_json::json;

use super::{Build, paths, value, view};
use crate::Progress;
use crate::ansi;
use crate::digest::{Digest, Key};
use crate::error::SiteError;
use crate::junit;
use crate::model::objects;
use crate::model::{JobDir, Row, Source};
use crate::output::{Files, Output};
use crate::parallel;
use crate::slug;

pub fn render_jobs(b: &Build, out: &mut Output, progress: &dyn Fn(Progress)) -> Result<(), SiteError> {
    let todo: Vec<(&Row, Files)> = b
        .data
        .rows
        .iter()
        .filter_map(|row| out.begin(&format!("job/{}", row.id), job_key(b, row)).map(|files| (row, files)))
        .collect();
    let rendered = parallel::map(
        todo,
        || b.repo(),
        |repo, (row, mut files)| render_job(b, repo, row, &mut files).map(|()| files),
        &|done, total| progress(Progress::Rendering { done, total }),
    )?;
    for files in rendered {
        out.commit(files)?;
    }
    Ok(())
}

fn job_key<'a>(b: &Build<'a>, row: &'a Row) -> Digest {
    let mut k = b.key("job");
    b.key_row(&mut k, row);
    for a in b.groups.attempts(row).iter() {
        a.fingerprint(&mut k);
    }
    // The page shows how its needs ended: a pending job's change under it.
    for need in &row.needs {
        match b.groups.by_id.get(&need.id) {
            Some(r) => r.fingerprint(&mut k),
            None => {
                k.str("");
            }
        }
    }
    if row.is_live() {
        // Its elapsed time and estimate move with the clock.
        k.u64(b.now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()));
        if let Some(last) = b.groups.last_passed(row) {
            last.fingerprint(&mut k);
        }
    }
    k.finish()
}

/// A job this one needs, with its state when the site knows it.
#[derive(Serialize)]
struct NeedView<'a> {
    label: &'a str,
    job: Option<view::JobItem<'a>>,
}

fn needs<'a>(b: &'a Build<'a>, row: &'a Row) -> Vec<NeedView<'a>> {
    row.needs.iter().map(|n| NeedView { label: &n.label, job: b.groups.by_id.get(&n.id).map(|r| b.item(r)) }).collect()
}

/// The documents and files of one job, as stored.
#[derive(Default)]
struct Docs {
    job_json: Vec<u8>,
    result_json: Option<Vec<u8>>,
    claim_json: Option<Vec<u8>>,
    log: Option<Vec<u8>>,
    log_blob: Option<ObjectId>,
    junit: Vec<(String, Vec<u8>)>,
    /// `(path, blob)` under the job's `artifacts/`.
    artifacts: Vec<(String, ObjectId)>,
}

impl Docs {
    /// `known`: what the build read of the job already, if it did.
    fn read(repo: &gix::Repository, row: &Row, known: Option<&JobDir>) -> Result<Docs, SiteError> {
        match (&row.source, known) {
            (Source::Done { .. }, Some(known)) => Docs::finished(repo, known),
            (Source::Done { dir, .. }, None) => Docs::finished(repo, &JobDir::read(repo, dir.0)?),
            (Source::Live { job, claim, log }, _) => Ok(Docs {
                job_json: objects::blob(repo, job.0).unwrap_or_default(),
                claim_json: claim.and_then(|c| objects::blob(repo, c.0).ok()),
                log: log.and_then(|l| objects::blob(repo, l.0).ok()),
                log_blob: log.map(|l| l.0),
                ..Docs::default()
            }),
        }
    }

    fn finished(repo: &gix::Repository, dir: &JobDir) -> Result<Docs, SiteError> {
        let entries = &dir.entries;
        let mut docs = Docs {
            job_json: dir.job_json.clone(),
            result_json: dir.result_json.clone(),
            log: objects::file(repo, entries, "log"),
            log_blob: entries.get("log").map(|(id, _)| *id),
            ..Docs::default()
        };
        docs.junit = dir.junit(repo)?;
        if let Some((tree, true)) = entries.get("artifacts") {
            docs.artifacts = objects::walk(repo, *tree);
        }
        Ok(docs)
    }
}

#[derive(Serialize)]
struct JobPage<'a> {
    job: view::JobItem<'a>,
    /// The job document, when it parses.
    spec: Option<Job>,
    /// The document as text, when it does not.
    raw_job: Option<String>,
    result: Option<JobResult>,
    claim: Option<Claim>,
    attempts: Vec<view::JobItem<'a>>,
    needs: Vec<NeedView<'a>>,
    commit: Option<&'a crate::model::CommitInfo>,
    log: Option<LogView>,
    junit: Option<junit::Report>,
    artifacts: Vec<ArtifactView>,
    api_href: String,
    /// A running job's elapsed time and estimate.
    running: Option<view::Progress>,
    /// Seconds between reloads of a live job's page; `None` when finished.
    refresh: Option<u32>,
    /// The page of this job's runs on its branch.
    runs_href: Option<String>,
}

/// How often a live job's page reloads itself.
const LIVE_REFRESH_SECS: u32 = 15;

#[derive(Serialize)]
struct LogView {
    lines: usize,
    bytes: usize,
    omitted: usize,
    href: String,
    plain_href: String,
    /// The line of the first error, for a link to it.
    first_error: Option<usize>,
    /// A live tail of a running job, not the final log.
    live: bool,
}

#[derive(Serialize)]
struct ArtifactView {
    path: String,
    size: Option<u64>,
    sha256: Option<String>,
    /// `None`: listed in the result but not copied into the site.
    href: Option<String>,
    /// The name a browser saves it under.
    download: String,
    note: Option<String>,
}

fn render_job<'a>(b: &'a Build<'a>, repo: &gix::Repository, row: &'a Row, files: &mut Files) -> Result<(), SiteError> {
    let docs = Docs::read(repo, row, b.data.read.get(&row.id))?;
    let id = row.id.as_str();
    let result = docs.result_json.as_deref().and_then(|r| JobResult::from_json(r).ok());
    let claim = docs.claim_json.as_deref().and_then(|c| Claim::from_json(c).ok());
    let artifacts = copy_artifacts(b, repo, row, &docs, result.as_ref(), files)?;
    let log_html = docs.log.as_deref().map(|l| log_html(b, row, l));
    let junit = (!docs.junit.is_empty()).then(|| junit::parse(&docs.junit));
    let spec = Job::from_json(&docs.job_json).ok();
    let page = JobPage {
        job: b.item(row),
        raw_job: spec.is_none().then(|| String::from_utf8_lossy(&docs.job_json).into_owned()),
        spec,
        result,
        claim,
        attempts: b.groups.attempts(row).iter().rev().map(|a| b.item(a)).collect(),
        needs: needs(b, row),
        commit: b.data.commit(&row.commit),
        log: log_html.as_ref().zip(docs.log.as_ref()).map(|(h, raw)| LogView {
            lines: h.lines,
            bytes: raw.len(),
            omitted: h.omitted,
            href: paths::log(id),
            plain_href: paths::plain_log(id),
            first_error: h.first_error,
            live: row.is_live(),
        }),
        junit,
        artifacts,
        api_href: paths::job_api(id),
        running: (row.state == git_ci_core::state::State::Running)
            .then(|| view::Progress::new(row, b.groups.last_passed(row), b.now())),
        refresh: row.is_live().then_some(LIVE_REFRESH_SECS),
        runs_href: (!row.name.is_empty() && !row.git_ref.is_empty() && !row.ad_hoc)
            .then(|| paths::runs(row.branch(), &row.name)),
    };
    // The log is the one piece of ready-made HTML: escaped, then coloured.
    let log = Value::from_safe_string(log_html.map(|h| h.html).unwrap_or_default());
    let ctx = context! { log_html => log, ..value(&page) };
    let title = format!("{} {} · {}", row.state.as_str(), page.job.label, row.branch());
    files.write(&paths::job(id), &b.page("job.html", "../", &title, "jobs", ctx)?)?;
    files.write(&paths::job_api(id), &api_json(row, &docs, &page.artifacts))?;
    if let (Some(log), Some(blob)) = (&docs.log, docs.log_blob) {
        write_logs(files, id, log, blob)?;
    }
    Ok(())
}

/// The log's own files: as written (colour codes and all, for a terminal's
/// `curl | less -R`) and as plain text (for a browser or `grep`). A live
/// tail loses its header line, which is the worker's, not the job's.
fn write_logs(files: &mut Files, id: &str, log: &[u8], blob: ObjectId) -> Result<(), SiteError> {
    let log = git_ci_core::worker::read_live_log(log).map_or(log, |t| t.tail);
    // Named by its blob: no need to hash a large log again.
    let key = |kind: &str| {
        let mut k = Key::new(kind);
        k.oid(&blob);
        k.finish()
    };
    files.write_with(&paths::log(id), key("blob"), || Ok(log.to_vec()))?;
    files.write_with(&paths::plain_log(id), key("plain-log"), || {
        Ok(ansi::plain(&String::from_utf8_lossy(log)).into_owned().into_bytes())
    })
}

/// The log as its page shows it. A running job's is the tail the worker
/// keeps on the hub, numbered from its place in the whole log.
fn log_html(b: &Build, row: &Row, log: &[u8]) -> ansi::LogHtml {
    let tail = row.is_live().then(|| git_ci_core::worker::read_live_log(log)).flatten();
    match tail {
        Some(t) if t.lines_before.is_some() => ansi::render_tail(t.tail, t.lines_before),
        // An older worker's tail may start mid-line: from the next line.
        Some(t) if t.total > t.tail.len() as u64 => {
            let from = t.tail.iter().position(|&c| c == b'\n').map_or(t.tail.len(), |p| p + 1);
            ansi::render_tail(&t.tail[from..], None)
        }
        Some(t) => ansi::render_tail(t.tail, Some(0)),
        None => ansi::render(log, b.options.log_limit, &format!("../{}", paths::plain_log(row.id.as_str()))),
    }
}

/// `api/jobs/<id>.json`: the stored documents as they are (spliced in,
/// not parsed and printed again: they are most of the file), and where the
/// page, log and artifacts are (paths from the site's top).
fn api_json(row: &Row, docs: &Docs, artifacts: &[ArtifactView]) -> Vec<u8> {
    let links = json!({
        "version": 1,
        "id": row.id,
        "state": row.state.as_str(),
        "html": paths::job(row.id.as_str()),
        "log": docs.log.as_ref().map(|_| paths::log(row.id.as_str())),
        "plain_log": docs.log.as_ref().map(|_| paths::plain_log(row.id.as_str())),
        "artifacts": artifacts.iter().map(|a| json!({
            "path": a.path, "size": a.size, "sha256": a.sha256, "url": a.href,
        })).collect::<Vec<_>>(),
    });
    let mut out = serde_json::to_vec_pretty(&links).expect("plain JSON");
    out.truncate(out.len() - 2); // "\n}"
    let job_is_json = splice(&mut out, "job", Some(&docs.job_json));
    if !job_is_json {
        out.extend_from_slice(b",\n  \"job_raw\": ");
        out.extend(serde_json::to_vec(&String::from_utf8_lossy(&docs.job_json)).expect("a string"));
    }
    splice(&mut out, "result", docs.result_json.as_deref());
    splice(&mut out, "claim", docs.claim_json.as_deref());
    out.extend_from_slice(b"\n}\n");
    out
}

/// Appends `"key": doc` when `doc` is valid JSON, else `"key": null`;
/// returns whether it was.
fn splice(out: &mut Vec<u8>, key: &str, doc: Option<&[u8]>) -> bool {
    out.extend_from_slice(format!(",\n  \"{key}\": ").as_bytes());
    let valid = doc.filter(|d| serde_json::from_slice::<serde::de::IgnoredAny>(d).is_ok());
    match valid {
        Some(d) => out.extend_from_slice(d.trim_ascii()),
        None => out.extend_from_slice(b"null"),
    }
    valid.is_some()
}

/// Copies the job's stored artifacts into the site and lists them, with
/// what `result.json` says about each.
fn copy_artifacts(
    b: &Build,
    repo: &gix::Repository,
    row: &Row,
    docs: &Docs,
    result: Option<&JobResult>,
    files: &mut Files,
) -> Result<Vec<ArtifactView>, SiteError> {
    let listed: &[Artifact] = result.map_or(&[], |r| &r.artifacts);
    let mut out = Vec::new();
    for (path, blob) in &docs.artifacts {
        let info = listed.iter().find(|a| &a.path == path);
        let size = repo.find_header(*blob).map(|h| h.size()).ok().or(info.map(|a| a.size));
        let mut view = ArtifactView {
            path: path.clone(),
            size,
            sha256: info.map(|a| a.sha256.clone()),
            href: None,
            download: path.rsplit('/').next().unwrap_or(path).to_owned(),
            note: None,
        };
        match (slug::path(path), size) {
            (_, Some(s)) if s > b.options.max_artifact => {
                view.note = Some(format!("not copied into the site: over {} bytes", b.options.max_artifact));
            }
            (Some(safe), _) => {
                let href = paths::artifact(row.id.as_str(), &inert(safe));
                let mut k = Key::new("blob");
                k.oid(blob);
                files.write_with(&href, k.finish(), || objects::blob(repo, *blob))?;
                view.href = Some(href);
            }
            (None, _) => view.note = Some("its path is not usable as a file name".into()),
        }
        out.push(view);
    }
    for a in listed.iter().filter(|a| !docs.artifacts.iter().any(|(p, _)| p == &a.path)) {
        out.push(ArtifactView {
            path: a.path.clone(),
            size: Some(a.size),
            sha256: Some(a.sha256.clone()),
            href: None,
            download: String::new(),
            note: Some("listed in the result but not stored".into()),
        });
    }
    Ok(out)
}

/// Artifacts are served from the site's own origin, so a file a browser
/// would run (an HTML page, an SVG, XML) would run as the site. Those get a
/// `.bin` suffix, which static hosts serve as a download; the link's
/// `download` attribute keeps the original name.
fn inert(path: String) -> String {
    const INERT: &[&str] = &[
        "txt", "log", "json", "csv", "tsv", "md", "png", "jpg", "jpeg", "gif", "webp", "pdf", "gz", "tgz", "tar",
        "zip", "xz", "zst", "bz2", "7z", "deb", "rpm", "whl", "jar", "bin", "so", "a", "o", "out", "toml", "yaml",
        "yml", "sha256", "sig", "asc", "wasm", "exe", "dll", "dmg", "msi", "apk", "crate", "gem", "nupkg",
    ];
    let name = path.rsplit('/').next().unwrap_or(&path);
    match name.rsplit_once('.') {
        Some((_, ext)) if !INERT.contains(&ext.to_ascii_lowercase().as_str()) => format!("{path}.bin"),
        _ => path,
    }
}

#[cfg(test)]
mod tests {
    use super::inert;

    #[test]
    fn files_a_browser_would_run_are_defused() {
        assert_eq!(inert("out/report.html".into()), "out/report.html.bin");
        assert_eq!(inert("x.SVG".into()), "x.SVG.bin");
        assert_eq!(inert("dist/app.tar.gz".into()), "dist/app.tar.gz");
        assert_eq!(inert("README".into()), "README");
    }
}
