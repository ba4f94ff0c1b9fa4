//! Older jobs, by the day they were submitted: `history.html` lists the
//! days, `days/<YYYYMMDD>.html` (and `-2`, `-3`... past [`PER_PAGE`]) list
//! their jobs. A day's pages change only when one of its jobs does, which
//! is what keeps a rebuild small however long the history.

use serde::Serialize;

use super::{Build, paths, value, view};
use crate::error::SiteError;
use crate::model::Row;
use crate::output::Output;

pub const PER_PAGE: usize = 200;

#[derive(Serialize)]
pub struct DayLink {
    pub label: String,
    pub href: String,
}

impl DayLink {
    pub fn new(day: &str) -> DayLink {
        DayLink { label: label(day), href: paths::day(day, 1) }
    }
}

/// `2026-11-22` from `20261122`.
fn label(day: &str) -> String {
    if day.len() == 8 { format!("{}-{}-{}", &day[..4], &day[4..6], &day[6..]) } else { day.to_owned() }
}

#[derive(Serialize)]
struct Part {
    number: usize,
    href: String,
}

#[derive(Serialize)]
struct DayPage<'a> {
    label: String,
    part: usize,
    parts: Vec<Part>,
    newer: Option<DayLink>,
    older: Option<DayLink>,
    jobs: Vec<view::JobItem<'a>>,
}

pub fn render_days(b: &Build, out: &mut Output) -> Result<(), SiteError> {
    let days: Vec<(&&str, &Vec<&Row>)> = b.groups.by_day.iter().collect();
    for (i, (day, rows)) in days.iter().enumerate() {
        // Days are sorted oldest first: the newer day follows.
        let newer = days.get(i + 1).map(|(d, _)| **d);
        let older = i.checked_sub(1).map(|j| *days[j].0);
        let mut key = b.key("day");
        key.str(day).str(newer.unwrap_or_default()).str(older.unwrap_or_default());
        for row in rows.iter() {
            b.key_row(&mut key, row);
        }
        out.unit(&format!("day/{day}"), key.finish(), |files| {
            let parts = rows.len().div_ceil(PER_PAGE);
            for (n, chunk) in rows.chunks(PER_PAGE).enumerate() {
                let page = DayPage {
                    label: label(day),
                    part: n + 1,
                    parts: (1..=parts).map(|number| Part { number, href: paths::day(day, number) }).collect(),
                    newer: newer.map(DayLink::new),
                    older: older.map(DayLink::new),
                    jobs: chunk.iter().map(|r| b.item(r)).collect(),
                };
                let title = format!("jobs of {}", page.label);
                files.write(&paths::day(day, n + 1), &b.page("day.html", "../", &title, "history", value(&page))?)?;
            }
            Ok(())
        })?;
    }
    Ok(())
}

#[derive(Serialize)]
struct DaySummary {
    label: String,
    href: String,
    total: usize,
    passed: usize,
    failed: usize,
    other: usize,
}

pub fn render_history(b: &Build, out: &mut Output) -> Result<(), SiteError> {
    let days: Vec<DaySummary> = b
        .groups
        .by_day
        .iter()
        .rev()
        .map(|(day, rows)| {
            let count = |s: &[&str]| rows.iter().filter(|r| s.contains(&r.state.as_str())).count();
            let (passed, failed) = (count(&["passed"]), count(&["failed", "timeout", "error"]));
            DaySummary {
                label: label(day),
                href: paths::day(day, 1),
                total: rows.len(),
                passed,
                failed,
                other: rows.len() - passed - failed,
            }
        })
        .collect();
    let page = value(serde_json::json!({ "days": serde_json::to_value(&days).expect("plain data") }));
    out.always("history", |files| files.write("history.html", &b.page("history.html", "", "History", "history", page)?))
}
