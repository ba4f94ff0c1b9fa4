//! Passwords never shown: a hub URL may carry one (`https://user:token@host/`),
//! and every message that names the hub, or repeats what git said about it,
//! goes through [`redact`] first.

use std::borrow::Cow;

/// `text` with the password of every URL in it replaced by `***`
/// (`https://user:***@host/hub.git`); a user name alone is kept.
pub fn redact(text: &str) -> Cow<'_, str> {
    let mut out = String::new();
    let mut done = 0;
    let mut from = 0;
    while let Some(at) = text[from..].find("://") {
        let start = from + at + 3;
        // The authority ends where the path, a quote or a space begins.
        let len = text[start..].find(|c: char| c == '/' || c.is_whitespace() || "'\"<>`".contains(c));
        let authority = &text[start..start + len.unwrap_or(text.len() - start)];
        if let Some(userinfo) = authority.rfind('@').map(|i| &authority[..i])
            && let Some(colon) = userinfo.find(':')
        {
            out.push_str(&text[done..start + colon + 1]);
            out.push_str("***");
            done = start + userinfo.len();
        }
        from = start + authority.len();
    }
    if done == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[done..]);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_go_and_the_rest_stays() {
        assert_eq!(redact("https://bob:s3cret@example.com/hub.git"), "https://bob:***@example.com/hub.git");
        assert_eq!(
            redact("fatal: unable to access 'http://u:p%40ss@h:8080/x/': 401\nand git://h/y"),
            "fatal: unable to access 'http://u:***@h:8080/x/': 401\nand git://h/y"
        );
        assert_eq!(redact("two http://a:1@h and ssh://b:2@k:22/r"), "two http://a:***@h and ssh://b:***@k:22/r");
        for kept in ["https://token@example.com/x", "git@github.com:o/r.git", "/srv/hub.git", "http://h:80/x", "a://"] {
            assert_eq!(redact(kept), kept);
        }
        assert!(matches!(redact("no url"), std::borrow::Cow::Borrowed(_)));
    }
}
