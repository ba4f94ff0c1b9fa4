//! The results table: each figure beside its floor from the same run, the
//! ratio between them, and the goal it is held to.

use std::fmt::Write as _;

use crate::measure::Samples;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value {
    Ms(f64),
    PerSec(f64),
    /// Requests a hub served per second.
    Requests(f64),
}

impl Value {
    fn number(self) -> f64 {
        match self {
            Value::Ms(v) | Value::PerSec(v) | Value::Requests(v) => v,
        }
    }

    fn render(self) -> String {
        match self {
            Value::Ms(v) => format!("{v:.2} ms"),
            Value::PerSec(v) => format!("{v:.1} jobs/s"),
            Value::Requests(v) => format!("{v:.2} req/s"),
        }
    }

    fn json(self) -> serde_json::Value {
        match self {
            Value::Ms(v) => serde_json::json!({ "ms": v }),
            Value::PerSec(v) => serde_json::json!({ "jobs_per_s": v }),
            Value::Requests(v) => serde_json::json!({ "requests_per_s": v }),
        }
    }
}

/// What a figure is held to; `None` rows are context for the others.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Goal {
    None,
    /// ours / floor at most this.
    RatioAtMost(f64),
    /// ours at most this many milliseconds.
    MsAtMost(f64),
    /// ours at least this many jobs per second.
    RateAtLeast(f64),
}

pub struct Row {
    pub name: String,
    pub ours: Value,
    pub floor: Option<Value>,
    pub goal: Goal,
    /// Sample spreads, for the details under the table.
    pub details: Vec<String>,
}

impl Row {
    pub fn new(name: impl Into<String>, ours: Value, floor: Option<Value>, goal: Goal) -> Row {
        Row { name: name.into(), ours, floor, goal, details: vec![] }
    }

    /// A timing row from samples: medians, with both spreads kept.
    pub fn timed(name: impl Into<String>, ours: &Samples, floor: &Samples, goal: Goal) -> Row {
        let mut row = Row::new(name, Value::Ms(ours.median_ms()), Some(Value::Ms(floor.median_ms())), goal);
        row.details = vec![format!("ours {}", ours.spread()), format!("floor {}", floor.spread())];
        row
    }

    pub fn detail(mut self, line: impl Into<String>) -> Row {
        self.details.push(line.into());
        self
    }

    fn ratio(&self) -> Option<f64> {
        let floor = self.floor?.number();
        (floor > 0.0).then(|| self.ours.number() / floor)
    }

    /// `None` when there is no goal, else whether it was met.
    fn met(&self) -> Option<bool> {
        match self.goal {
            Goal::None => None,
            Goal::RatioAtMost(max) => Some(self.ratio().is_some_and(|r| r <= max)),
            Goal::MsAtMost(max) => Some(self.ours.number() <= max),
            Goal::RateAtLeast(min) => Some(self.ours.number() >= min),
        }
    }

    fn goal_cell(&self) -> String {
        let verdict = match self.met() {
            None => return "—".into(),
            Some(true) => "ok",
            Some(false) => "MISSED",
        };
        let goal = match self.goal {
            Goal::None => unreachable!("no verdict without a goal"),
            Goal::RatioAtMost(max) => format!("≤ {max}× floor"),
            Goal::MsAtMost(max) => format!("≤ {max} ms"),
            Goal::RateAtLeast(min) => format!("≥ {min:.1} jobs/s"),
        };
        format!("{goal}: {verdict}")
    }

    fn cells(&self) -> [String; 5] {
        [
            self.name.clone(),
            self.ours.render(),
            self.floor.map_or_else(|| "—".into(), Value::render),
            self.ratio().map_or_else(|| "—".into(), |r| format!("{r:.2}×")),
            self.goal_cell(),
        ]
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "benchmark": self.name,
            "ours": self.ours.json(),
            "floor": self.floor.map(Value::json),
            "ratio": self.ratio(),
            "goal": self.goal_cell(),
            "met": self.met(),
            "details": self.details,
        })
    }
}

/// A markdown table, columns padded so it also reads as plain text.
pub fn table(rows: &[Row]) -> String {
    let header = ["benchmark", "ours", "floor", "ratio", "goal"].map(String::from);
    let body: Vec<[String; 5]> = rows.iter().map(Row::cells).collect();
    let mut widths = header.clone().map(|h| h.chars().count());
    for cells in &body {
        for (w, c) in widths.iter_mut().zip(cells) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String; 5]| {
        let padded: Vec<String> =
            cells.iter().zip(widths).map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count()))).collect();
        format!("| {} |\n", padded.join(" | "))
    };
    let mut out = line(&header);
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    let _ = writeln!(out, "|-{}-|", rule.join("-|-"));
    for cells in &body {
        out.push_str(&line(cells));
    }
    out
}

/// Every row's sample spreads, one bullet per row.
pub fn details(rows: &[Row]) -> String {
    let mut out = String::new();
    for row in rows.iter().filter(|r| !r.details.is_empty()) {
        let _ = writeln!(out, "- {}: {}", row.name, row.details.join("; "));
    }
    out
}

/// How many rows with a goal missed it.
pub fn missed(rows: &[Row]) -> usize {
    rows.iter().filter(|r| r.met() == Some(false)).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_and_verdicts() {
        let ok = Row::new("a", Value::Ms(11.0), Some(Value::Ms(10.0)), Goal::RatioAtMost(1.2));
        let missed_row = Row::new("b", Value::Ms(13.0), None, Goal::MsAtMost(12.0));
        let rate = Row::new("c", Value::PerSec(160.0), Some(Value::PerSec(80.0)), Goal::RateAtLeast(150.0));
        assert_eq!(ok.met(), Some(true));
        assert_eq!(missed_row.met(), Some(false));
        assert_eq!(rate.ratio(), Some(2.0));
        let rows = [ok, missed_row, rate];
        assert_eq!(missed(&rows), 1);
        let t = table(&rows);
        assert!(t.contains("≤ 1.2× floor: ok") && t.contains("≤ 12 ms: MISSED"), "{t}");
        assert_eq!(t.lines().count(), 5);
    }
}
