//! A commit's pipelines, and each one drawn as a graph of its jobs: a
//! column per depth in the `needs` graph (a job's depth is one more than
//! its deepest need's), a box per job name holding a cell per matrix
//! combination, a line from each need to what needs it. The graph is
//! computed here, coordinates and all; `commit.html` only writes it out
//! as inline SVG (no script, no inline style: the site's CSP holds).

use std::collections::HashMap;

use git_ci_core::JobId;
use git_ci_core::model::Status;
use git_ci_core::state::State;
use serde::Serialize;

use super::{paths, view};
use crate::model::Row;
use crate::model::row::worst;

/// The jobs one trigger queued for a commit on one ref: a push's, or one
/// scheduled tick's.
pub struct Pipeline<'a> {
    pub git_ref: &'a str,
    pub scheduled: Option<&'a str>,
    /// The newest attempt of each job label, in the order submitted.
    pub rows: Vec<&'a Row>,
    /// Every row, older attempts too: a need's id may name one of those.
    pub all: Vec<&'a Row>,
}

/// The pipelines among a commit's `rows` (newest first), newest first.
pub fn pipelines<'a>(rows: &[&'a Row]) -> Vec<Pipeline<'a>> {
    let mut out: Vec<Pipeline> = Vec::new();
    for row in rows {
        let scheduled = row.scheduled.as_deref();
        let p = match out.iter_mut().position(|p| p.git_ref == row.git_ref && p.scheduled == scheduled) {
            Some(i) => &mut out[i],
            None => {
                out.push(Pipeline { git_ref: &row.git_ref, scheduled, rows: Vec::new(), all: Vec::new() });
                out.last_mut().expect("just pushed")
            }
        };
        p.all.push(row);
        if !p.rows.iter().any(|r| r.label == row.label) {
            p.rows.push(row);
        }
    }
    for p in &mut out {
        p.rows.reverse();
    }
    out
}

impl<'a> Pipeline<'a> {
    /// The job names each name needs (by index in [`Pipeline::names`]):
    /// needs are found by id, or else by label (a need retried since).
    fn edges(&self, names: &[&'a str]) -> Vec<(usize, usize)> {
        let index: HashMap<&str, usize> = names.iter().enumerate().map(|(i, n)| (*n, i)).collect();
        // A pipeline may hold thousands of jobs, each needing hundreds.
        let by_id: HashMap<&JobId, &str> = self.all.iter().map(|r| (&r.id, r.name.as_str())).collect();
        let by_label: HashMap<&str, &str> =
            self.rows.iter().flat_map(|r| [(r.label.as_str(), r.name.as_str()), (r.spec_label(), &r.name)]).collect();
        let mut edges = Vec::new();
        for row in &self.rows {
            let Some(&to) = index.get(row.name.as_str()) else { continue };
            for need in &row.needs {
                let found = by_id.get(&need.id).or_else(|| by_label.get(need.label.as_str()));
                let Some(&from) = found.and_then(|name| index.get(name)) else { continue };
                if from != to && !edges.contains(&(from, to)) {
                    edges.push((from, to));
                }
            }
        }
        edges
    }

    /// Job names in the order first submitted (unreadable jobs are left out).
    fn names(&self) -> Vec<&'a str> {
        let mut names: Vec<&str> = Vec::new();
        for row in self.rows.iter().filter(|r| !r.name.is_empty()) {
            if !names.contains(&row.name.as_str()) {
                names.push(&row.name);
            }
        }
        names
    }

    /// The graph, when any job of it needs another; `None` when none does
    /// (the commit page then lists the jobs, as before pipelines).
    pub fn graph(&self) -> Option<Graph<'a>> {
        let names = self.names();
        let edges = self.edges(&names);
        if edges.is_empty() {
            return None;
        }
        let depths = depths(names.len(), &edges);
        let columns = columns(&depths, &edges);
        let nodes: Vec<Node> = names.iter().map(|n| self.node(n)).collect();
        Some(Graph::place(nodes, &columns, &edges))
    }

    /// A job name's box: a cell per combination, each cell every run of it.
    fn node(&self, name: &'a str) -> Node<'a> {
        let runs: Vec<&Row> = self.rows.iter().copied().filter(|r| r.name == name).collect();
        let mut combos: Vec<(&str, Vec<&Row>)> = Vec::new();
        for r in &runs {
            match combos.iter_mut().find(|(l, _)| *l == r.spec_label()) {
                Some((_, rs)) => rs.push(r),
                None => combos.push((r.spec_label(), vec![r])),
            }
        }
        // A job that is one plain run needs no cells: its box is the link.
        let plain = combos.len() == 1 && runs.len() == 1 && runs[0].variant.is_empty();
        let cells = if plain { Vec::new() } else { combos.iter().map(|(_, rs)| Cell::new(rs)).collect() };
        let speaker = worst(runs.iter().copied()).expect("a name has a run");
        let tally = if runs.len() > 1 { view::tally(&runs) } else { String::new() };
        let what = if tally.is_empty() { speaker.state.as_str().to_owned() } else { tally.clone() };
        Node {
            name,
            state: speaker.state.as_str(),
            icon: view::icon(speaker.state),
            href: paths::job(speaker.id.as_str()),
            title: format!("{name}: {what}"),
            tally,
            cells,
            ..Node::default()
        }
    }
}

/// How deep each node is: 0 without needs, else one more than its deepest
/// need. A cycle (which no pipeline file can make, but a hand-written job
/// document can) stops at the number of nodes instead of looping.
pub fn depths(nodes: usize, edges: &[(usize, usize)]) -> Vec<usize> {
    let mut depth = vec![0; nodes];
    for _ in 0..nodes {
        let mut changed = false;
        for &(from, to) in edges {
            let d = (depth[from] + 1).min(nodes.saturating_sub(1));
            if d > depth[to] {
                depth[to] = d;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    depth
}

/// The nodes of each column, top to bottom: the first column in the order
/// submitted, each next one by the mean place of its needs in the columns
/// before (fewer lines cross), then in the order submitted.
pub fn columns(depths: &[usize], edges: &[(usize, usize)]) -> Vec<Vec<usize>> {
    let count = depths.iter().max().map_or(0, |d| d + 1);
    let mut columns: Vec<Vec<usize>> = vec![Vec::new(); count];
    for (node, &d) in depths.iter().enumerate() {
        columns[d].push(node);
    }
    let mut place: HashMap<usize, f64> = HashMap::new();
    for column in &mut columns {
        let key = |n: usize| {
            let before: Vec<f64> = edges.iter().filter(|e| e.1 == n).filter_map(|e| place.get(&e.0)).copied().collect();
            if before.is_empty() { f64::MAX } else { before.iter().sum::<f64>() / before.len() as f64 }
        };
        let mut keyed: Vec<(f64, usize)> = column.iter().map(|&n| (key(n), n)).collect();
        keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        *column = keyed.into_iter().map(|(_, n)| n).collect();
        for (i, &n) in column.iter().enumerate() {
            place.insert(n, i as f64);
        }
    }
    columns
}

/// Sizes in SVG user units (CSS pixels at scale 1), for 13px text.
const CHAR_W: f64 = 7.6;
const PAD: u32 = 10;
const HEAD_H: u32 = 30;
const CELL_H: u32 = 24;
const CELL_GAP: u32 = 4;
const COL_GAP: u32 = 56;
const ROW_GAP: u32 = 18;
const MIN_W: u32 = 150;
const MAX_W: u32 = 340;
const MARGIN: u32 = 4;

#[derive(Serialize)]
pub struct Graph<'a> {
    pub width: u32,
    pub height: u32,
    pub nodes: Vec<Node<'a>>,
    pub edges: Vec<Edge>,
}

/// A job name's box. Coordinates are its top left corner.
#[derive(Default, Serialize)]
pub struct Node<'a> {
    pub name: &'a str,
    /// The name as it fits the box (cut with `…`; `title` has it all).
    pub text: String,
    pub state: &'static str,
    pub icon: &'static str,
    /// The page of the run that speaks for the name.
    pub href: String,
    pub title: String,
    pub tally: String,
    pub depth: usize,
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
    pub text_x: u32,
    pub text_y: u32,
    pub cells: Vec<Cell>,
}

/// One matrix combination (or a repeated job's runs) inside a box.
#[derive(Serialize)]
pub struct Cell {
    /// `python=3.11, db=postgres · 7 of 10 passed`, fitted to the cell.
    pub text: String,
    full: String,
    pub state: &'static str,
    pub icon: &'static str,
    pub href: String,
    pub title: String,
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub text_x: u32,
    pub text_y: u32,
}

impl Cell {
    fn new(runs: &[&Row]) -> Cell {
        let speaker = worst(runs.iter().copied()).expect("a combination has a run");
        let mut full = speaker.variant.clone();
        if runs.len() > 1 {
            let passed = runs.iter().filter(|r| r.state == State::Finished(Status::Passed)).count();
            let rate = format!("{passed} of {} passed", runs.len());
            full = if full.is_empty() { rate } else { format!("{full} · {rate}") };
        }
        if full.is_empty() {
            full = speaker.label.clone();
        }
        let what = if runs.len() > 1 { view::tally(runs) } else { speaker.state.as_str().to_owned() };
        Cell {
            text: String::new(),
            title: format!("{}: {what}", speaker.spec_label()),
            full,
            state: speaker.state.as_str(),
            icon: view::icon(speaker.state),
            href: paths::job(speaker.id.as_str()),
            x: 0,
            y: 0,
            w: 0,
            text_x: 0,
            text_y: 0,
        }
    }
}

/// A line from a need's box to the box that needs it, coloured by how the
/// need ended.
#[derive(Serialize)]
pub struct Edge {
    pub state: &'static str,
    /// An SVG path: a curve from the right edge of one box to the left
    /// edge of the other.
    pub d: String,
}

impl<'a> Graph<'a> {
    fn place(mut nodes: Vec<Node<'a>>, columns: &[Vec<usize>], edges: &[(usize, usize)]) -> Graph<'a> {
        for node in nodes.iter_mut() {
            node.h = HEAD_H + node.cells.len() as u32 * (CELL_H + CELL_GAP) + if node.cells.is_empty() { 0 } else { 6 };
        }
        let heights: Vec<u32> = columns
            .iter()
            .map(|c| c.iter().map(|&n| nodes[n].h).sum::<u32>() + ROW_GAP * c.len().saturating_sub(1) as u32)
            .collect();
        let height = heights.iter().copied().max().unwrap_or(0);
        let mut x = MARGIN;
        for (depth, column) in columns.iter().enumerate() {
            let w = column.iter().map(|&n| wanted_width(&nodes[n])).max().unwrap_or(MIN_W).clamp(MIN_W, MAX_W);
            // Columns are centred on the tallest one.
            let mut y = MARGIN + (height - heights[depth]) / 2;
            for &n in column {
                fit(&mut nodes[n], depth, x, y, w);
                y += nodes[n].h + ROW_GAP;
            }
            x += w + COL_GAP;
        }
        let edges = edges.iter().map(|&(from, to)| edge(&nodes[from], &nodes[to])).collect();
        Graph { width: x - COL_GAP + MARGIN, height: height + 2 * MARGIN, nodes, edges }
    }
}

/// The width a box's texts need, the inverse of [`fit`]'s cut.
fn wanted_width(node: &Node) -> u32 {
    let head = (node.name.chars().count() + HEAD_CHARS) as f64 * CHAR_W;
    let cells = node.cells.iter().map(|c| c.full.chars().count() + HEAD_CHARS + 1).max().unwrap_or(0) as f64 * CHAR_W;
    head.max(cells).ceil() as u32 + 2 * PAD + CELL_INSET
}

/// Characters of a box's width that are not its name: icon, space, slack.
const HEAD_CHARS: usize = 3;
/// A cell's room inside its box, each side, and its text's inside the cell.
const CELL_INSET: u32 = 6;

fn fit(node: &mut Node, depth: usize, x: u32, y: u32, w: u32) {
    let room = |inner: u32| ((w - inner) as f64 / CHAR_W) as usize;
    (node.depth, node.x, node.y, node.w) = (depth, x, y, w);
    let head = room(2 * PAD + CELL_INSET).saturating_sub(HEAD_CHARS);
    (node.text_x, node.text_y, node.text) = (x + PAD, y + 20, cut(node.name, head));
    for (i, cell) in node.cells.iter_mut().enumerate() {
        cell.x = x + CELL_INSET;
        cell.y = y + HEAD_H + i as u32 * (CELL_H + CELL_GAP);
        cell.w = w - 2 * CELL_INSET;
        cell.text_x = cell.x + 8;
        cell.text_y = cell.y + 16;
        cell.text = cut(&cell.full, head.saturating_sub(1));
    }
}

/// `s` in at most `chars` characters, cut with `…`.
fn cut(s: &str, chars: usize) -> String {
    if s.chars().count() <= chars {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(chars.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn edge(from: &Node, to: &Node) -> Edge {
    let (x1, y1) = (from.x + from.w, from.y + from.h / 2);
    let (x2, y2) = (to.x, to.y + to.h / 2);
    let bend = (x2.saturating_sub(x1)) / 2;
    Edge { state: from.state, d: format!("M{x1} {y1} C{} {y1} {} {y2} {x2} {y2}", x1 + bend, x2 - bend) }
}

#[cfg(test)]
mod tests {
    use git_ci_core::model::{Need, Repeat};

    use super::*;
    use crate::model::row::sample;

    const PASSED: State = State::Finished(Status::Passed);
    const FAILED: State = State::Finished(Status::Failed);
    const SKIPPED: State = State::Finished(Status::Skipped);

    /// A job of a pipeline on main; `needs` are rows made before it.
    fn job(name: &str, variant: &str, state: State, needs: &[&Row]) -> Row {
        let mut r = sample(name, "refs/heads/main", state);
        r.commit = "c".repeat(40);
        r.variant = variant.into();
        r.label = if variant.is_empty() { name.into() } else { format!("{name} ({variant})") };
        r.needs = needs.iter().map(|n| Need { id: n.id.clone(), label: n.label.clone() }).collect();
        r
    }

    /// build → test (2×2) → deploy, plus lint alone; newest first, as the
    /// site holds rows.
    fn build_test_deploy() -> Vec<Row> {
        let build = job("build", "", PASSED, &[]);
        let lint = job("lint", "", PASSED, &[]);
        let combos = ["py=3.11, db=a", "py=3.11, db=b", "py=3.12, db=a", "py=3.12, db=b"];
        let tests: Vec<Row> = combos
            .iter()
            .map(|c| job("test", c, if c.ends_with("3.12, db=b") { FAILED } else { PASSED }, &[&build]))
            .collect();
        let deploy = job("deploy", "", SKIPPED, &tests.iter().collect::<Vec<_>>());
        let mut rows = vec![build, lint];
        rows.extend(tests);
        rows.push(deploy);
        rows.reverse();
        rows
    }

    fn graph(rows: &[Row]) -> Graph<'_> {
        let refs: Vec<&Row> = rows.iter().collect();
        let p = pipelines(&refs);
        assert_eq!(p.len(), 1);
        p[0].graph().expect("a pipeline with needs has a graph")
    }

    #[test]
    fn columns_follow_depth_and_a_matrix_job_is_one_box() {
        let rows = build_test_deploy();
        let g = graph(&rows);
        let by_name = |n: &str| g.nodes.iter().find(|x| x.name == n).unwrap();
        let depth: Vec<(&str, usize)> = g.nodes.iter().map(|n| (n.name, n.depth)).collect();
        assert_eq!(depth, [("build", 0), ("lint", 0), ("test", 1), ("deploy", 2)]);
        let test = by_name("test");
        assert_eq!(test.cells.len(), 4, "one cell per combination");
        assert_eq!((test.state, test.icon), ("failed", "✗"), "a matrix job fails if a combination failed");
        assert_eq!(test.title, "test: 3 passed, 1 failed");
        let failed = test.cells.iter().find(|c| c.state == "failed").unwrap();
        assert_eq!(failed.text, "py=3.12, db=b");
        assert!(test.cells.iter().all(|c| c.text == c.full), "texts that fit are not cut");
        assert!(test.href.ends_with(&format!("{}.html", rows.iter().find(|r| r.state == FAILED).unwrap().id)));
        assert_eq!((by_name("deploy").state, by_name("deploy").icon), ("skipped", "↷"));
        assert!(by_name("build").cells.is_empty(), "a plain job is its box");
        // Columns left to right, boxes inside the picture, cells inside their box.
        assert!(by_name("build").x < test.x && test.x < by_name("deploy").x);
        for n in &g.nodes {
            assert!(n.x + n.w <= g.width && n.y + n.h <= g.height, "{} fits", n.name);
            for c in &n.cells {
                assert!(c.x > n.x && c.x + c.w < n.x + n.w && c.y > n.y && c.y + 24 <= n.y + n.h);
            }
        }
    }

    #[test]
    fn edges_join_needs_once_each_and_carry_the_needs_state() {
        let rows = build_test_deploy();
        let g = graph(&rows);
        // test needs build (four times over), deploy needs test: two lines.
        let states: Vec<&str> = g.edges.iter().map(|e| e.state).collect();
        assert_eq!(states, ["passed", "failed"]);
        let build = &g.nodes[0];
        let start = format!("M{} {}", build.x + build.w, build.y + build.h / 2);
        assert!(g.edges[0].d.starts_with(&start), "{} starts at build's right edge", g.edges[0].d);
    }

    #[test]
    fn boxes_sit_near_what_they_need() {
        // a, b at depth 0; y needs b, x needs a: x above y, though y came first.
        let a = job("a", "", PASSED, &[]);
        let b = job("b", "", PASSED, &[]);
        let y = job("y", "", PASSED, &[&b]);
        let x = job("x", "", PASSED, &[&a]);
        let mut rows = vec![a, b, y, x];
        rows.reverse();
        let g = graph(&rows);
        let at = |n: &str| g.nodes.iter().find(|x| x.name == n).unwrap().y;
        assert!(at("a") < at("b"), "the first column keeps the order submitted");
        assert!(at("x") < at("y"), "x needs a, which is above b");
    }

    #[test]
    fn depth_is_one_more_than_the_deepest_need_and_a_cycle_ends() {
        // 0 → 1 → 2, 0 → 2: 2 is at depth 2, not 1.
        assert_eq!(depths(3, &[(0, 1), (1, 2), (0, 2)]), [0, 1, 2]);
        assert_eq!(depths(3, &[]), [0, 0, 0]);
        // A hand-made cycle still ends, within the graph's size.
        let d = depths(2, &[(0, 1), (1, 0)]);
        assert!(d.iter().all(|&d| d <= 1), "{d:?}");
        let cols = columns(&d, &[(0, 1), (1, 0)]);
        assert_eq!(cols.iter().map(Vec::len).sum::<usize>(), 2, "every node placed once");
    }

    #[test]
    fn pipelines_part_by_ref_and_schedule_and_keep_the_newest_attempt() {
        let build = job("build", "", FAILED, &[]);
        let mut retry = job("build", "", PASSED, &[]);
        retry.attempt = 2;
        let test = job("test", "", PASSED, &[&build]);
        let mut nightly = job("nightly", "", PASSED, &[]);
        nightly.scheduled = Some("2026-05-01T03:00:00Z".into());
        let mut other = job("build", "", PASSED, &[]);
        other.git_ref = "refs/heads/dev".into();
        let rows = [other, nightly, test, retry, build];
        let refs: Vec<&Row> = rows.iter().collect();
        let p = pipelines(&refs);
        let seen: Vec<(&str, Option<&str>, usize)> = p.iter().map(|p| (p.git_ref, p.scheduled, p.rows.len())).collect();
        assert_eq!(
            seen,
            [
                ("refs/heads/dev", None, 1),
                ("refs/heads/main", Some("2026-05-01T03:00:00Z"), 1),
                ("refs/heads/main", None, 2)
            ]
        );
        assert!(p[0].graph().is_none() && p[1].graph().is_none(), "no needs, no graph");
        let g = p[2].graph().unwrap();
        // test needs the first attempt's id: the line starts at build's box,
        // which shows the retry that passed.
        assert_eq!(g.edges.len(), 1);
        assert_eq!((g.nodes[0].name, g.nodes[0].state), ("build", "passed"));

        // A need the site no longer holds (collected) is found by its label.
        let gone = sample("build", "refs/heads/main", PASSED);
        let build = job("build", "", PASSED, &[]);
        let test = job("test", "", PASSED, &[&gone]);
        let rows = [test, build];
        let g = graph(&rows);
        assert_eq!(g.edges.len(), 1, "test → build, by label");
    }

    #[test]
    fn repeats_are_one_cell_with_their_pass_rate() {
        let build = job("build", "", PASSED, &[]);
        let runs: Vec<Row> = (1..=4)
            .map(|i| {
                let mut r = job("flaky", "", if i == 2 { FAILED } else { PASSED }, &[&build]);
                r.repeat = Some(Repeat { index: i, count: 4 });
                r.label = format!("flaky #{i}");
                r
            })
            .collect();
        let mut rows = vec![build];
        rows.extend(runs);
        rows.reverse();
        let g = graph(&rows);
        let flaky = g.nodes.iter().find(|n| n.name == "flaky").unwrap();
        assert_eq!(flaky.cells.len(), 1);
        assert_eq!(flaky.cells[0].text, "3 of 4 passed");
        assert_eq!(flaky.cells[0].state, "failed");
        assert_eq!(flaky.cells[0].title, "flaky: 3 passed, 1 failed");
    }

    #[test]
    fn long_texts_are_cut_and_whole_in_the_tooltip() {
        let long = "x".repeat(200);
        assert_eq!(cut(&long, 10).chars().count(), 10);
        assert!(cut(&long, 10).ends_with('…'));
        assert_eq!(cut("short", 10), "short");
        let build = job("build", "", PASSED, &[]);
        let test = job("test", &long, PASSED, &[&build]);
        let rows = [test, build];
        let g = graph(&rows);
        let test = &g.nodes[1];
        assert!(test.w <= MAX_W && test.cells[0].text.ends_with('…'));
        assert!(test.cells[0].title.contains(&long));
        // The box grows to what it holds, under the widest allowed.
        let fits = "python=3.11, db=postgres, os=linux";
        let build = job("build", "", PASSED, &[]);
        let rows = [job("lint", fits, PASSED, &[&build]), build];
        let g = graph(&rows);
        assert!(g.nodes[1].w < MAX_W && g.nodes[1].w > MIN_W);
        assert_eq!(g.nodes[1].cells[0].text, fits);
    }
}
