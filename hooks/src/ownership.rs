//! Who owns a hub on this machine, and whether its owner can still write
//! all of it: read from the file system, never by writing to the hub.
//!
//! `doctor --hub PATH` is often run as root on a hub that belongs to the
//! account serving it. git refuses to work in such a repository ("dubious
//! ownership"), and anything written there as root (an object directory, a
//! ref) belongs to root, so the owner's next push that needs to write there
//! fails. So doctor writes nothing to a hub on this machine, and says when
//! it runs as someone else and when parts of the hub belong to someone else.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::unistd::{AccessFlags, Uid, User, access, geteuid};

use crate::check::Check;

/// Entries not owned by the hub's owner listed before the rest are counted.
const SHOW_AT_MOST: usize = 3;

/// The ownership checks of the hub at `path`. `shared` is the hub's
/// `core.sharedRepository`: with it set, several accounts write the hub
/// by design and owners may differ.
pub fn checks(path: &Path, shared: bool) -> Vec<Check> {
    let owner = match std::fs::metadata(path) {
        Ok(m) => Uid::from_raw(m.uid()),
        Err(e) => return vec![Check::problem(format!("could not read {}: {e}", path.display()), "check the path")],
    };
    let me = geteuid();
    let mut out = Vec::new();
    if owner != me {
        let what = format!(
            "the hub belongs to {} but doctor runs as {}: git refuses to work in another user's repository, \
             and anything written there as {} would be {}'s, which the hub's own pushes cannot change",
            name(owner),
            name(me),
            name(me),
            name(me)
        );
        let fix =
            format!("run doctor as the hub's owner: sudo -u {} git ci doctor --hub {}", name(owner), path.display());
        out.push(if shared { Check::info(what) } else { Check::problem(what, fix) });
    }
    if !shared {
        out.extend(foreign_entries(path, owner));
    }
    if owner == me {
        out.push(write_access(path));
    }
    out
}

/// Directories and files under `objects/`, `refs/` and `logs/` that the
/// owner does not own: left by a git run as another user, they make the
/// owner's pushes fail when they need to write there.
fn foreign_entries(path: &Path, owner: Uid) -> Option<Check> {
    let mut found = Vec::new();
    let objects = path.join("objects");
    // Only the object directories: the objects in them are read-only anyway.
    found.extend(children(&objects).into_iter().filter(|p| p.is_dir() && owned_by_other(p, owner)));
    for dir in ["refs", "logs"].map(|d| path.join(d)) {
        walk(&dir, owner, &mut found);
    }
    if found.is_empty() {
        return None;
    }
    let shown: Vec<String> =
        found.iter().take(SHOW_AT_MOST).map(|p| p.strip_prefix(path).unwrap_or(p).display().to_string()).collect();
    let more = found.len().saturating_sub(SHOW_AT_MOST);
    let more = if more > 0 { format!(" and {more} more") } else { String::new() };
    Some(Check::problem(
        format!(
            "{} {}{more} in the hub belong to another user than its owner {}: pushes that must write there fail",
            found.len(),
            shown.join(", "),
            name(owner)
        ),
        format!("chown -R {}: {}", name(owner), path.display()),
    ))
}

fn walk(dir: &Path, owner: Uid, found: &mut Vec<PathBuf>) {
    if owned_by_other(dir, owner) {
        found.push(dir.to_path_buf());
    }
    for child in children(dir) {
        if child.is_dir() {
            walk(&child, owner, found);
        } else if owned_by_other(&child, owner) {
            found.push(child);
        }
    }
}

fn children(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return vec![] };
    let mut out: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    out.sort();
    out
}

fn owned_by_other(path: &Path, owner: Uid) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.uid() != owner.as_raw())
}

/// Whether this user may write the hub's refs and objects, from the file
/// permissions: doctor writes nothing to a hub on this machine.
fn write_access(path: &Path) -> Check {
    let denied: Vec<String> = ["refs", "objects"]
        .iter()
        .filter(|d| access(&path.join(d), AccessFlags::W_OK).is_err())
        .map(|d| format!("{d}/"))
        .collect();
    if denied.is_empty() {
        return Check::ok("this user can write the hub's refs/ and objects/ (by their permissions)");
    }
    Check::problem(
        format!("this user cannot write the hub's {}: workers and pushes running as it fail", denied.join(" and ")),
        format!("give this user write access to {} (or run the workers as the hub's owner)", path.display()),
    )
}

fn name(uid: Uid) -> String {
    match User::from_uid(uid) {
        Ok(Some(user)) => user.name,
        _ => format!("uid {uid}"),
    }
}
