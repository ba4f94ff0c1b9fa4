//! Checks of a whole built site, as a browser and a link checker see it.

use std::collections::{HashMap, HashSet};
use std::path::{Component, Path, PathBuf};

use scraper::{Html, Selector};

#[derive(Debug, Default)]
pub struct Checked {
    pub pages: usize,
    pub links: usize,
    pub files: usize,
}

/// Parses every page, SVG, feed and JSON file under `out` and follows
/// every internal link and anchor. Panics with the first problem.
pub fn check_site(out: &Path) -> Checked {
    let mut checked = Checked::default();
    let mut ids: HashMap<PathBuf, HashSet<String>> = HashMap::new();
    for file in files(out) {
        checked.files += 1;
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        match file.extension().and_then(|e| e.to_str()) {
            Some("html") => {
                checked.pages += 1;
                checked.links += check_page(out, &file, &text, &mut ids);
            }
            Some("svg" | "atom") => check_xml(&file, &text),
            Some("json") => {
                serde_json::from_str::<serde_json::Value>(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            }
            _ => {}
        }
    }
    checked
}

/// Every file of the site, without its build state.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().is_some_and(|n| n == crate::STATE_DIR) {
            continue;
        }
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}

fn sel(s: &str) -> Selector {
    Selector::parse(s).unwrap()
}

fn check_page(out: &Path, file: &Path, text: &str, ids: &mut HashMap<PathBuf, HashSet<String>>) -> usize {
    let doc = Html::parse_document(text);
    let at = file.display();
    assert!(doc.errors.is_empty(), "{at} does not parse cleanly: {:?}", doc.errors);
    let csp = doc.select(&sel("meta[http-equiv=Content-Security-Policy]")).next();
    let csp = csp.and_then(|m| m.value().attr("content")).unwrap_or_else(|| panic!("{at}: no CSP"));
    assert!(csp.contains("default-src 'none'") && !csp.contains("unsafe"), "{at}: weak CSP {csp}");
    assert!(doc.select(&sel("script, iframe, object, embed, form")).next().is_none(), "{at}: active content");
    for el in doc.select(&sel("*")) {
        for (name, value) in el.value().attrs() {
            assert!(!name.starts_with("on"), "{at}: event handler {name}={value}");
            assert!(name != "style", "{at}: inline style (the CSP forbids it)");
            assert!(!value.trim_start().to_ascii_lowercase().starts_with("javascript:"), "{at}: {name}={value}");
        }
    }
    let mut links = 0;
    for (el, attr) in [("a[href]", "href"), ("link[href]", "href"), ("img[src]", "src")] {
        for node in doc.select(&sel(el)) {
            let target = node.value().attr(attr).unwrap();
            check_link(out, file, target, &doc, ids);
            links += 1;
        }
    }
    links
}

fn check_link(out: &Path, from: &Path, target: &str, doc: &Html, ids: &mut HashMap<PathBuf, HashSet<String>>) {
    let at = from.display();
    assert!(!target.contains("://") && !target.starts_with("mailto:"), "{at}: links outside the site: {target}");
    let (path, fragment) = target.split_once('#').unwrap_or((target, ""));
    let dest = if path.is_empty() { from.to_path_buf() } else { normalize(&from.parent().unwrap().join(path)) };
    assert!(dest.starts_with(out), "{at}: {target} leaves the site");
    assert!(dest.is_file(), "{at}: broken link {target} ({} is missing)", dest.display());
    if fragment.is_empty() {
        return;
    }
    let known = ids.entry(dest.clone()).or_insert_with(|| {
        let page =
            if path.is_empty() { doc.clone() } else { Html::parse_document(&std::fs::read_to_string(&dest).unwrap()) };
        page.select(&sel("[id]")).filter_map(|e| e.value().attr("id").map(str::to_owned)).collect()
    });
    assert!(known.contains(fragment), "{at}: no anchor #{fragment} in {}", dest.display());
}

fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}

fn check_xml(file: &Path, text: &str) {
    let doc = roxmltree::Document::parse(text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let active =
        doc.descendants().any(|n| n.has_tag_name("script") || n.attributes().any(|a| a.name().starts_with("on")));
    assert!(!active, "{}: active content", file.display());
}

/// The text a reader sees on a page: tags gone, entities decoded.
pub fn text_of(html: &str) -> String {
    Html::parse_document(html).root_element().text().collect::<Vec<_>>().join("")
}
