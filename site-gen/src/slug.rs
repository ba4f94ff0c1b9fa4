//! File names for things named by users: branches, job names, artifacts.
//!
//! A name made only of letters, digits, `.`, `_` and `-` is its own slug, so
//! the badge of `main` is `badges/main.svg`, a URL people can guess. Any
//! other name (`feature/x`, `<script>`, `été`) is cleaned up and suffixed
//! with a hash of the original, so two names never share a file and no name
//! can climb out of its directory. A plain name that happens to end like a
//! hashed one is hashed too, which keeps the mapping one-to-one.

use sha2::{Digest, Sha256};

const HASH_HEX: usize = 10;
const MAX_PLAIN: usize = 80;

pub fn slug(name: &str) -> String {
    if is_plain(name) && !looks_hashed(name) {
        return name.to_owned();
    }
    let mut clean: String = name
        .chars()
        .take(40)
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '_' })
        .collect();
    if clean.starts_with(['.', '-']) || clean.is_empty() {
        clean.insert(0, '_');
    }
    let digest = Sha256::digest(name.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("{clean}-{}", &hex[..HASH_HEX])
}

fn is_plain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_PLAIN
        && !name.starts_with(['.', '-'])
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn looks_hashed(name: &str) -> bool {
    let Some(at) = name.len().checked_sub(HASH_HEX + 1) else {
        return false;
    };
    name.as_bytes()[at] == b'-' && name[at + 1..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// A relative path of user-named components (an artifact's path), each
/// component a slug: `a/b c/d.txt` -> `a/b_c-<hash>/d.txt`. `None` when
/// nothing usable is left.
pub fn path(rel: &str) -> Option<String> {
    let parts: Vec<String> = rel.split('/').filter(|p| !p.is_empty() && *p != ".").map(slug).collect();
    (!parts.is_empty()).then(|| parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_stay_themselves() {
        for n in ["main", "release-1.2", "v1.0", "test_all"] {
            assert_eq!(slug(n), n);
        }
    }

    #[test]
    fn other_names_are_cleaned_and_hashed() {
        let s = slug("feature/x");
        assert!(s.starts_with("feature_x-") && s.len() == "feature_x-".len() + HASH_HEX, "{s}");
        assert_ne!(slug("feature/x"), slug("feature_x"));
        assert_ne!(slug("feature/x"), slug("feature:x"));
        let hostile = slug("<script>alert(1)</script>");
        assert!(hostile.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)), "{hostile}");
        for weird in ["", ".", "..", "-x", ".hidden", "a/../../etc"] {
            let s = slug(weird);
            assert!(!s.starts_with(['.', '-']) && !s.contains('/'), "{weird:?} -> {s}");
        }
    }

    #[test]
    fn a_plain_name_cannot_impersonate_a_hashed_one() {
        let hashed = slug("feature/x");
        assert_ne!(slug(&hashed), hashed);
    }

    #[test]
    fn paths_keep_their_shape_but_not_their_dots() {
        assert_eq!(path("dist/app.tar.gz").as_deref(), Some("dist/app.tar.gz"));
        let p = path("../../etc/passwd").unwrap();
        assert!(!p.split('/').any(|c| c == ".." || c.is_empty()), "{p}");
        assert_eq!(path("//./"), None);
    }
}
