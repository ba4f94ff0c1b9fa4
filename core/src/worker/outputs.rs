//! After a run: the files a job declared as `artifacts` and `junit`,
//! copied out of the checkout (which its cache directories may leave) and
//! listed in the result. Paths that escape the checkout are refused.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::done::Content;
use crate::mask::Masker;
use crate::model::{Artifact, Job, TestCounts};

/// Per-file and per-job limits; past them a file is left out with a note.
pub const MAX_ARTIFACT_BYTES: u64 = 512 << 20;
pub const MAX_ARTIFACTS_TOTAL: u64 = 2 << 30;

#[derive(Default)]
pub struct Outputs {
    pub files: Vec<(String, Content)>,
    pub artifacts: Vec<Artifact>,
    pub tests: TestCounts,
    /// Lines for the log: what was refused and why.
    pub notes: Vec<String>,
}

/// Collects into `store` (a directory outside the checkout). JUnit files
/// are shown on the job page: secrets are masked in them as in the log
/// (artifacts are kept byte for byte).
pub fn collect(job: &Job, checkout: &Path, store: &Path, masker: &Masker) -> Outputs {
    let xml_masker = masker.for_xml();
    let mut out = Outputs::default();
    let root = match checkout.canonicalize() {
        Ok(r) => r,
        Err(e) => {
            out.notes.push(format!("could not collect outputs: {e}"));
            return out;
        }
    };
    let mut total = 0u64;
    for (path, rel) in matches(&job.spec.artifacts, &root, &mut out.notes) {
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        if size > MAX_ARTIFACT_BYTES || total + size > MAX_ARTIFACTS_TOTAL {
            out.notes.push(format!("artifact {rel} left out: {size} bytes is over the limit"));
            continue;
        }
        match keep(&path, &store.join("artifacts").join(&rel)) {
            Ok((kept, sha256)) => {
                total += size;
                out.artifacts.push(Artifact { path: rel.clone(), size, sha256 });
                out.files.push((format!("artifacts/{rel}"), Content::File(kept)));
            }
            Err(e) => out.notes.push(format!("artifact {rel} left out: {e}")),
        }
    }
    for (n, (path, rel)) in matches(&job.spec.junit, &root, &mut out.notes).into_iter().enumerate() {
        match std::fs::read(&path) {
            Ok(xml) if xml.len() as u64 <= MAX_ARTIFACT_BYTES => {
                let read = crate::junit::read(&[(rel.clone(), xml.clone())]);
                out.tests += read.counts();
                let skipped = read.problems.iter().map(|p| format!("junit file {p}: skipped, counted as one error"));
                out.notes.extend(skipped);
                out.files.push((format!("junit/{n}.xml"), Content::Bytes(xml_masker.mask(&xml))));
            }
            Ok(_) => out.notes.push(format!("junit file {rel} left out: over the size limit")),
            Err(e) => out.notes.push(format!("junit file {rel} left out: {e}")),
        }
    }
    out
}

/// Regular files matching `patterns` inside `root`, as (path, relative path).
/// Patterns are matched against paths relative to the checkout (globset,
/// `*` within one directory, `**` across them: `dist/**` is every file
/// under `dist`), so the checkout's own location never takes part: a
/// work directory named `w[1]` is not a character class.
fn matches(patterns: &[String], root: &Path, notes: &mut Vec<String>) -> Vec<(PathBuf, String)> {
    let mut found = Vec::new();
    for pattern in patterns {
        if Path::new(pattern).is_absolute() || pattern.split('/').any(|c| c == "..") {
            notes.push(format!("pattern {pattern:?} refused: it reaches outside the checkout"));
            continue;
        }
        let pattern = pattern.trim_start_matches("./");
        let Ok(glob) = globset::GlobBuilder::new(pattern).literal_separator(true).build() else {
            notes.push(format!("pattern {pattern:?} is not a valid glob"));
            continue;
        };
        let matcher = glob.compile_matcher();
        let before = found.len();
        // Walk only below the pattern's literal directories.
        let literal: Vec<&str> = pattern.split('/').take_while(|c| !c.contains(['*', '?', '[', '{'])).collect();
        let base = root.join(literal[..literal.len().saturating_sub(1)].join("/"));
        for entry in walkdir::WalkDir::new(&base).follow_links(false).into_iter().flatten() {
            let path = entry.path();
            let Ok(rel) = path.strip_prefix(root) else { continue };
            if !matcher.is_match(rel) {
                continue;
            }
            match inside(path, root) {
                Some(rel) if path.is_file() => found.push((path.to_path_buf(), rel)),
                Some(_) => {}
                None => notes.push(format!("{} refused: it leads outside the checkout", rel.display())),
            }
        }
        if found.len() == before {
            notes.push(format!("pattern {pattern:?} matched no file"));
        }
    }
    found.sort();
    found.dedup();
    found
}

/// The path relative to `root` once symlinks are resolved, if it stays inside.
fn inside(path: &Path, root: &Path) -> Option<String> {
    let real = path.canonicalize().ok()?;
    let rel = real.strip_prefix(root).ok()?;
    Some(rel.to_string_lossy().into_owned())
}

/// Hard-links (or copies) `from` to `to`; returns it and its sha256.
fn keep(from: &Path, to: &Path) -> std::io::Result<(PathBuf, String)> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)?;
    }
    if std::fs::hard_link(from, to).is_err() {
        std::fs::copy(from, to)?;
    }
    let mut hasher = Sha256::new();
    std::io::copy(&mut std::fs::File::open(to)?, &mut hasher)?;
    Ok((to.to_path_buf(), hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()))
}
