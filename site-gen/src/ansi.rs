//! Logs as HTML. Escape sequences are recognised by `anstyle-parse` (the
//! state machine terminal emulators use, after Paul Williams' DEC parser),
//! so every kind a terminal would swallow is swallowed here too: CSI
//! (cursor moves, erase), OSC (titles, links), DCS (sixel, tmux
//! passthrough) and SOS/PM/APC payloads up to their string terminator.
//! Only what the parser prints reaches the page, and each printed
//! character is HTML-escaped on its way in, so whatever a log holds, the
//! only tags in the result are the ones written here.
//!
//! SGR sequences (`ESC [ ... m`) become `<span class>` markup: classes,
//! never inline styles, so the page's Content-Security-Policy can forbid
//! inline styles; [`css`] defines them. A carriage return shows what a
//! terminal would: the text after the last one on its line.

use std::fmt::Write;

use anstyle_parse::{Params, Parser, Perform};

/// A log rendered as lines of HTML, for a `<pre>`.
pub struct LogHtml {
    pub html: String,
    /// Lines of the log (also those left out of `html` by the size limit).
    pub lines: usize,
    /// Bytes of the log left out of the page (shown in the raw log only).
    pub omitted: usize,
    /// The first shown line that reads like an error (`error:`, `FAILED`,
    /// `panicked at`...), for a "jump to the first error" link.
    pub first_error: Option<usize>,
}

/// What compilers, test runners and shells start an error line with.
const ERROR_MARKS: &[&str] =
    &["error:", "error[", "ERROR", "Error:", "FAILED", "FAIL:", "panicked at", "fatal:", "Traceback (most recent"];

fn reads_like_error(line: &str) -> bool {
    ERROR_MARKS.iter().any(|m| line.contains(m))
}

/// Renders `log`; past `limit` bytes, only its head and tail (half the
/// limit each) are put in the page, with a marker between them that links
/// to `whole`, the log's own file.
pub fn render(log: &[u8], limit: usize, whole: &str) -> LogHtml {
    let mut r = Renderer::new(log.len());
    if log.len() <= limit {
        r.part(log);
        return r.finish(0);
    }
    let head_end = cut_after_newline(log, limit / 2);
    let tail_start = cut_after_newline(log, log.len() - limit / 2).max(head_end);
    let (head, middle, tail) = (&log[..head_end], &log[head_end..tail_start], &log[tail_start..]);
    r.part(head);
    let skipped_lines = middle.iter().filter(|b| **b == b'\n').count();
    let _ = write!(
        r.html,
        "<span class=\"l cut\">… {} bytes ({skipped_lines} lines) of this log are not shown here: <a href=\"{}\">open the whole log</a></span>",
        middle.len(),
        escape(whole),
    );
    r.line += skipped_lines;
    r.style = Style::default();
    r.part(tail);
    r.finish(middle.len())
}

/// Renders the live tail of a running job's log: numbered from
/// `lines_before + 1`, as the finished log will be, after a line saying how
/// many came before. `None`: an older worker's tail, whose place in the log
/// is unknown (numbered from 1, and said so). A tail is small (the guard
/// caps live logs), so it is shown whole.
pub fn render_tail(tail: &[u8], lines_before: Option<u64>) -> LogHtml {
    let mut r = Renderer::new(tail.len());
    match lines_before {
        Some(0) => {}
        Some(n) => {
            let s = if n == 1 { "" } else { "s" };
            let _ = write!(
                r.html,
                "<span class=\"l cut\">… {n} earlier line{s}: the whole log is here once the job ends</span>"
            );
            r.line = n as usize;
        }
        None => r.html.push_str(
            "<span class=\"l cut\">… earlier lines are not shown, and lines here are counted from this tail</span>",
        ),
    }
    r.part(tail);
    r.finish(0)
}

/// The index just past the first newline at or after `at` (or `at`).
fn cut_after_newline(log: &[u8], at: usize) -> usize {
    log[at..].iter().position(|b| *b == b'\n').map_or(at, |p| at + p + 1)
}

struct Renderer {
    html: String,
    line: usize,
    /// Colours carry over from line to line, as in a terminal.
    style: Style,
    first_error: Option<usize>,
}

impl Renderer {
    fn new(bytes: usize) -> Renderer {
        Renderer { html: String::with_capacity(bytes * 2 + 128), line: 0, style: Style::default(), first_error: None }
    }

    fn finish(self, omitted: usize) -> LogHtml {
        LogHtml { html: self.html, lines: self.line, omitted, first_error: self.first_error }
    }

    fn part(&mut self, bytes: &[u8]) {
        // Lossy first: the parser then only ever sees well-formed UTF-8,
        // and a broken character becomes U+FFFD without taking the byte
        // after it (a newline, an ESC) along.
        let text = String::from_utf8_lossy(bytes);
        let body = text.strip_suffix('\n').unwrap_or(&text);
        if bytes.is_empty() {
            return;
        }
        for line in body.split('\n') {
            self.line(line);
        }
    }

    fn line(&mut self, line: &str) {
        self.line += 1;
        let n = self.line;
        if self.first_error.is_none() && reads_like_error(line) {
            self.first_error = Some(n);
        }
        let class = if line.starts_with("[git-ci] log truncated") {
            "l cut"
        } else if line.starts_with("[git-ci]") {
            "l note"
        } else {
            "l"
        };
        let _ = write!(self.html, "<span class=\"{class}\" id=\"L{n}\"><a href=\"#L{n}\">{n}</a>");
        // A fresh parser for each line: a sequence whose terminator was
        // lost (a job killed mid-title) must not swallow the rest of the log.
        let mut parser = Parser::<anstyle_parse::Utf8Parser>::new();
        let mut shown = Line::new(&mut self.style, &mut self.html);
        for b in line.bytes() {
            parser.advance(&mut shown, b);
        }
        if shown.open {
            self.html.push_str("</span>");
        }
        // No newline between lines: each is a block, and a newline in the
        // `<pre>` would add an empty line after each.
        self.html.push_str("</span>");
    }
}

/// What a terminal shows of one line, as HTML: printed characters
/// (escaped), inside spans for the colours SGR sequences set.
struct Line<'a> {
    style: &'a mut Style,
    html: &'a mut String,
    /// Where the line's text starts in `html`.
    start: usize,
    /// A span is open in `html`.
    open: bool,
    /// A carriage return came: the next character starts the line over
    /// (`a\rb` shows `b`; a trailing `\r`, as in `\r\n`, changes nothing).
    returned: bool,
}

impl<'a> Line<'a> {
    fn new(style: &'a mut Style, html: &'a mut String) -> Line<'a> {
        let start = html.len();
        let mut line = Line { style, html, start, open: false, returned: false };
        line.restart();
        line
    }

    /// Empties the line, keeping the colours in force.
    fn restart(&mut self) {
        self.html.truncate(self.start);
        self.open = !self.style.is_plain();
        if self.open {
            self.style.open(self.html);
        }
        self.returned = false;
    }

    fn show(&mut self, c: char) {
        if self.returned {
            self.restart();
        }
        push_escaped(self.html, c);
    }
}

impl Perform for Line<'_> {
    fn print(&mut self, c: char) {
        // C1 controls arrive as characters (the input is UTF-8): not shown.
        if !is_dropped_control(c) {
            self.show(c);
        }
    }

    fn execute(&mut self, byte: u8) {
        match byte {
            b'\t' => self.show('\t'),
            b'\r' => self.returned = true,
            _ => {}
        }
    }

    fn csi_dispatch(&mut self, params: &Params, intermediates: &[u8], ignore: bool, action: u8) {
        // Private markers (`ESC [ ? ... m`, `ESC [ > ... m`) are
        // intermediates to the parser: those are not colours.
        if action != b'm' || !intermediates.is_empty() || ignore {
            return;
        }
        let params: Vec<u16> = params.iter().flatten().copied().collect();
        let before = *self.style;
        self.style.apply(&params);
        if *self.style == before {
            return;
        }
        if self.open {
            self.html.push_str("</span>");
        }
        self.open = !self.style.is_plain();
        if self.open {
            self.style.open(self.html);
        }
    }
}

/// Text with escape sequences and control characters (but newlines and
/// tabs) removed: for values outside logs (a commit subject with colours,
/// a reason with a NUL), which XML would refuse and HTML would garble.
pub fn plain(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains(|c: char| c == '\x1b' || (is_dropped_control(c) && c != '\n')) {
        return std::borrow::Cow::Borrowed(s);
    }
    struct Plain(String);
    impl Perform for Plain {
        fn print(&mut self, c: char) {
            if !is_dropped_control(c) {
                self.0.push(c);
            }
        }
        fn execute(&mut self, byte: u8) {
            if matches!(byte, b'\n' | b'\t') {
                self.0.push(byte as char);
            }
        }
    }
    let mut parser = Parser::<anstyle_parse::Utf8Parser>::new();
    let mut out = Plain(String::with_capacity(s.len()));
    for b in s.bytes() {
        parser.advance(&mut out, b);
    }
    std::borrow::Cow::Owned(out.0)
}

/// HTML-escapes text.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 8);
    for c in s.chars() {
        push_escaped(&mut out, c);
    }
    out
}

/// The one place text enters the page: `c`, HTML-escaped.
fn push_escaped(out: &mut String, c: char) {
    match c {
        '&' => out.push_str("&amp;"),
        '<' => out.push_str("&lt;"),
        '>' => out.push_str("&gt;"),
        '"' => out.push_str("&quot;"),
        '\'' => out.push_str("&#39;"),
        c => out.push(c),
    }
}

/// C0 and C1 control characters other than tab and ESC: not shown.
fn is_dropped_control(c: char) -> bool {
    (c.is_control() && c != '\t' && c != '\x1b') || c == '\u{7f}'
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Style {
    fg: Option<u8>,
    bg: Option<u8>,
    bold: bool,
    dim: bool,
    italic: bool,
    underline: bool,
    strike: bool,
    inverse: bool,
}

impl Style {
    fn is_plain(&self) -> bool {
        *self == Style::default()
    }

    fn apply(&mut self, params: &[u16]) {
        let mut i = 0;
        while i < params.len() {
            let p = params[i];
            match p {
                0 => *self = Style::default(),
                1 => self.bold = true,
                2 => self.dim = true,
                3 => self.italic = true,
                4 => self.underline = true,
                7 => self.inverse = true,
                9 => self.strike = true,
                21 | 22 => (self.bold, self.dim) = (false, false),
                23 => self.italic = false,
                24 => self.underline = false,
                27 => self.inverse = false,
                29 => self.strike = false,
                30..=37 => self.fg = Some((p - 30) as u8),
                39 => self.fg = None,
                40..=47 => self.bg = Some((p - 40) as u8),
                49 => self.bg = None,
                90..=97 => self.fg = Some((p - 90 + 8) as u8),
                100..=107 => self.bg = Some((p - 100 + 8) as u8),
                38 | 48 => {
                    let (colour, used) = extended_colour(&params[i + 1..]);
                    i += used;
                    if p == 38 {
                        self.fg = colour.or(self.fg);
                    } else {
                        self.bg = colour.or(self.bg);
                    }
                }
                _ => {}
            }
            i += 1;
        }
    }

    fn open(&self, out: &mut String) {
        let (fg, bg) = if self.inverse { (self.bg, self.fg) } else { (self.fg, self.bg) };
        out.push_str("<span class=\"");
        let mut first = true;
        let mut class = |out: &mut String, c: std::fmt::Arguments| {
            if !first {
                out.push(' ');
            }
            first = false;
            let _ = out.write_fmt(c);
        };
        if let Some(f) = fg {
            class(out, format_args!("f{f}"));
        }
        if let Some(b) = bg {
            class(out, format_args!("b{b}"));
        }
        if self.inverse && fg.is_none() && bg.is_none() {
            class(out, format_args!("iv"));
        }
        for (on, name) in
            [(self.bold, "bo"), (self.dim, "di"), (self.italic, "it"), (self.underline, "un"), (self.strike, "st")]
        {
            if on {
                class(out, format_args!("{name}"));
            }
        }
        out.push_str("\">");
    }
}

/// `5;N` or `2;R;G;B` after a 38 or 48: the colour and how many
/// parameters it used. True colours map to the nearest of the 256.
fn extended_colour(p: &[u16]) -> (Option<u8>, usize) {
    match p {
        [5, n, ..] => (u8::try_from(*n).ok(), 2),
        [2, r, g, b, ..] => (Some(nearest_256(*r, *g, *b)), 4),
        [5] | [2, ..] => (None, p.len()),
        _ => (None, 0),
    }
}

fn nearest_256(r: u16, g: u16, b: u16) -> u8 {
    let level = |v: u16| -> u8 {
        let v = v.min(255);
        if v < 48 {
            0
        } else if v < 115 {
            1
        } else {
            ((v - 35) / 40) as u8
        }
    };
    let (lr, lg, lb) = (level(r), level(g), level(b));
    if lr == lg && lg == lb {
        let avg = (r.min(255) + g.min(255) + b.min(255)) / 3;
        if avg > 8 && avg < 238 {
            return 232 + ((avg - 8) / 10).min(23) as u8;
        }
    }
    16 + 36 * lr + 6 * lg + lb
}

/// The RGB of colour `n` of the 256-colour palette (16 and up).
fn rgb_256(n: u8) -> (u8, u8, u8) {
    const STEPS: [u8; 6] = [0, 95, 135, 175, 215, 255];
    match n {
        16..=231 => {
            let i = n - 16;
            (STEPS[(i / 36) as usize], STEPS[(i / 6 % 6) as usize], STEPS[(i % 6) as usize])
        }
        232..=255 => {
            let v = 8 + 10 * (n - 232);
            (v, v, v)
        }
        _ => (0, 0, 0),
    }
}

/// The classes [`render`] uses. The 16 basic colours come from CSS
/// variables (`--a0`...`--a15`), so each theme can make them readable on
/// its own background; the rest of the 256 are fixed.
pub fn css() -> String {
    let mut css = String::with_capacity(24 * 1024);
    for n in 0..16 {
        let _ = writeln!(css, ".f{n}{{color:var(--a{n})}}.b{n}{{background:var(--a{n})}}");
    }
    for n in 16..=255u8 {
        let (r, g, b) = rgb_256(n);
        let _ = writeln!(css, ".f{n}{{color:#{r:02x}{g:02x}{b:02x}}}.b{n}{{background:#{r:02x}{g:02x}{b:02x}}}");
    }
    css.push_str(
        ".bo{font-weight:bold}.di{opacity:.7}.it{font-style:italic}.un{text-decoration:underline}\
         .st{text-decoration:line-through}.iv{color:var(--bg);background:var(--fg)}\n",
    );
    css
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(log: &str) -> String {
        render(log.as_bytes(), 1 << 20, "").html
    }

    #[test]
    fn text_is_escaped_before_colours_become_markup() {
        let html = body("\x1b[31m<script>alert('x')</script>\x1b[0m & done\n");
        assert!(html.contains("<span class=\"f1\">&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;</span> &amp; done"));
        assert!(!html.contains("<script"));
        assert!(!html.contains('\x1b'));
    }

    #[test]
    fn no_sequence_can_smuggle_a_tag() {
        // Params, intermediates and OSC payloads are dropped, never echoed.
        let nasty = "\x1b]0;<img src=x onerror=alert(1)>\x07a\x1b[<1;2mb\x1b[\"<i>c\x1b]8;;javascript:alert(1)\x1b\\d";
        let html = body(nasty);
        for bad in ["<img", "<i>", "javascript:"] {
            assert!(!html.contains(bad), "{bad} in {html}");
        }
        let tags: Vec<&str> = html.split('<').skip(1).map(|t| t.split([' ', '>']).next().unwrap()).collect();
        assert!(tags.iter().all(|t| ["span", "/span", "a", "/a"].contains(t)), "{tags:?}");
    }

    #[test]
    fn string_payloads_and_titles_are_not_text() {
        // DCS (a sixel image, a status report), APC (kitty graphics), SOS,
        // PM and OSC titles: a terminal shows none of their payload.
        let log = "a\x1bPq#0;2;0;0;0#1~~@@\x1b\\b\x1b_Gf=24,s=1;AAAA\x1b\\c\x1bXsos\x1b\\d\x1b^pm\x1b\\e\x1b]0;title\x07f\x1b]2;t2\x1b\\g\x1bP1$r0m\x1b\\h\n";
        let html = body(log);
        let line = lines(&html)[0];
        assert!(line.ends_with("</a>abcdefgh</span>"), "{line}");
        // Colours around them still render as before.
        let html = body("\x1b_payload\x1b\\\x1b[31mred\x1b[0m \x1bPq~\x1b\\\x1b[1mbold\n");
        assert!(html.contains("<span class=\"f1\">red</span> <span class=\"bo\">bold</span>"), "{html}");
    }

    #[test]
    fn a_lost_terminator_hides_one_line_at_most() {
        let html = body("ok\x1b]0;title never ends\nnext\n");
        let lines = lines(&html);
        assert!(lines[0].ends_with("</a>ok</span>"), "{}", lines[0]);
        assert!(lines[1].ends_with("</a>next</span>"), "{}", lines[1]);
    }

    /// The HTML of each line.
    fn lines(html: &str) -> Vec<&str> {
        html.split("<span class=\"l").skip(1).collect()
    }

    #[test]
    fn colours_carry_over_lines_and_spans_close_on_each() {
        let html = body("\x1b[1;32mok\nstill\x1b[0m\nplain\n");
        let lines = lines(&html);
        assert_eq!(lines.len(), 3);
        assert!(lines[0].contains("<span class=\"f2 bo\">ok</span>"), "{}", lines[0]);
        assert!(lines[1].contains("<span class=\"f2 bo\">still</span>"), "{}", lines[1]);
        assert!(lines[2].ends_with("plain</span>"), "{}", lines[2]);
        for l in lines {
            assert_eq!(l.matches("<span").count() + 1, l.matches("</span>").count(), "{l}");
        }
    }

    #[test]
    fn extended_colours_become_classes() {
        assert!(body("\x1b[38;5;196mred").contains("class=\"f196\""));
        assert!(body("\x1b[48;2;0;0;255mblue").contains("class=\"b21\""));
        assert!(body("\x1b[7minv").contains("class=\"iv\""));
    }

    #[test]
    fn carriage_returns_keep_the_last_frame_and_controls_vanish() {
        let html = body("10%\r50%\r100%\r\nbell\x07 nul\x00\n");
        assert!(html.contains(">1</a>100%</span>"), "{html}");
        assert!(html.contains("bell nul"), "{html}");
    }

    #[test]
    fn lines_have_anchors_and_notes_stand_out() {
        let html = body("one\n[git-ci] timed out after 5s\n");
        assert!(html.contains("id=\"L1\"><a href=\"#L1\">1</a>one"));
        assert!(html.contains("<span class=\"l note\" id=\"L2\">"));
    }

    #[test]
    fn huge_logs_keep_head_and_tail_with_a_marker() {
        let log: String = (0..10_000).map(|i| format!("line {i}\n")).collect();
        let out = render(log.as_bytes(), 1000, "../logs/x.txt");
        assert_eq!(out.lines, 10_000);
        assert!(out.omitted > 0);
        assert!(out.html.contains("id=\"L1\""));
        assert!(out.html.contains("id=\"L10000\"><a href=\"#L10000\">10000</a>line 9999"));
        assert!(out.html.contains("class=\"l cut\""));
        assert!(out.html.len() < 10_000);
    }

    #[test]
    fn invalid_utf8_and_an_empty_log_are_fine() {
        assert!(render(b"caf\xe9\n", 100, "").html.contains("caf\u{fffd}"));
        assert_eq!(render(b"", 100, "").lines, 0);
    }

    #[test]
    fn plain_text_loses_sequences_and_controls() {
        assert_eq!(plain("\x1b[31mred\x1b[0m & \x00nul\r\nnext\tab"), "red & nul\nnext\tab");
        assert_eq!(plain("\x1b]0;title\x07a\x1bPq~\x1b\\b\x1b_apc\x1b\\c \u{9b}"), "abc ");
        assert!(matches!(plain("clean <text>"), std::borrow::Cow::Borrowed(_)));
    }

    #[test]
    fn the_palette_covers_every_class() {
        let css = css();
        for c in [".f0{", ".f15{", ".f255{", ".b196{", ".iv{", ".bo{"] {
            assert!(css.contains(c), "{c}");
        }
    }
}
