//! Hides secret values (`git ci worker --env-file`) in what a job prints,
//! before any of it is written anywhere.
//!
//! Two things make this more than a search and replace. Output arrives in
//! chunks: a secret may be cut between two of them, so the end of what was
//! seen is held back while it could still be the start of a secret (a live
//! log snapshot must never show half a secret that the next chunk would
//! have masked). And a terminal shows text, not bytes: `sec\e[1mret` shows
//! `secret` in bold, so secrets are matched on the text with escape
//! sequences left out (recognised by `anstyle-parse`, the parser terminal
//! emulators use), and a match is replaced by `***` followed by the escape
//! sequences it spanned, so colours stay as the job set them.

use anstyle_parse::{CharAccumulator, Params, Parser, Perform};

/// Values shorter than this are not masked: masking `1` or `yes` would
/// shred every log while hiding nothing worth hiding.
pub const MIN_SECRET_LEN: usize = 4;

/// What a secret becomes.
const MASK: &[u8] = b"***";

/// Past this many bytes held back (a prefix of a secret followed by a flood
/// of escape sequences), the held bytes are let go as they are, so memory
/// and time stay bounded.
const MAX_HELD: usize = 1 << 20;

/// The secrets to hide, longest first so that a secret containing another
/// is hidden whole.
#[derive(Clone, Debug, Default)]
pub struct Masker {
    secrets: Vec<Vec<u8>>,
}

impl Masker {
    pub fn new<'a>(values: impl IntoIterator<Item = &'a str>) -> Masker {
        Masker::of(values.into_iter().map(|v| v.as_bytes().to_vec()))
    }

    fn of(values: impl Iterator<Item = Vec<u8>>) -> Masker {
        let mut secrets: Vec<Vec<u8>> = values.filter(|v| v.len() >= MIN_SECRET_LEN).collect();
        secrets.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        secrets.dedup();
        Masker { secrets }
    }

    /// The same secrets, and also as an XML writer escapes them: a JUnit
    /// file holds `a&amp;b` where the test printed `a&b`, and the job page
    /// shows it decoded.
    pub fn for_xml(&self) -> Masker {
        let escaped = self.secrets.iter().map(|s| {
            let mut out = Vec::with_capacity(s.len());
            for &b in s {
                match b {
                    b'&' => out.extend_from_slice(b"&amp;"),
                    b'<' => out.extend_from_slice(b"&lt;"),
                    b'>' => out.extend_from_slice(b"&gt;"),
                    b'"' => out.extend_from_slice(b"&quot;"),
                    b'\'' => out.extend_from_slice(b"&apos;"),
                    b => out.push(b),
                }
            }
            out
        });
        Masker::of(self.secrets.iter().cloned().chain(escaped.collect::<Vec<_>>()))
    }

    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// `bytes`, whole, with every secret replaced by `***`.
    pub fn mask(&self, bytes: &[u8]) -> Vec<u8> {
        if self.is_empty() {
            return bytes.to_vec();
        }
        let mut stream = self.stream();
        let mut out = Vec::with_capacity(bytes.len());
        stream.push(bytes, &mut out);
        stream.finish(&mut out);
        out
    }

    /// `text` with every secret replaced (for messages: reasons, notes).
    pub fn mask_str(&self, text: &str) -> String {
        String::from_utf8_lossy(&self.mask(text.as_bytes())).into_owned()
    }

    /// A masker for one stream of output, fed chunk by chunk.
    pub fn stream(&self) -> MaskStream {
        MaskStream {
            secrets: self.secrets.clone(),
            parser: Parser::default(),
            held: Vec::new(),
            class: Vec::new(),
            since_event: 0,
        }
    }
}

/// What one byte of output is to a terminal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    /// Shown (printable or a control such as a newline): secrets are matched on these.
    Text,
    /// Part of an escape sequence: skipped when matching, kept in the output.
    Escape,
    /// Not known until more bytes come (the start of a multi-byte character).
    Open,
}

/// The UTF-8 character being read, if any.
const MAX_OPEN: usize = 3;

pub struct MaskStream {
    secrets: Vec<Vec<u8>>,
    parser: Parser<Utf8Chars>,
    /// Bytes not written out yet, and their classes.
    held: Vec<u8>,
    class: Vec<Class>,
    /// How many of the last held bytes the parser took without a word.
    since_event: usize,
}

impl MaskStream {
    /// Appends to `out` the masked part of what has come so far that can
    /// no longer turn into a secret; holds the rest back.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        if self.secrets.is_empty() {
            out.extend_from_slice(bytes);
            return;
        }
        for &b in bytes {
            self.classify(b);
        }
        self.release(out, self.held.len() > MAX_HELD);
    }

    /// Appends everything still held back; the stream has ended.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        for c in &mut self.class {
            if *c == Class::Open {
                *c = Class::Text;
            }
        }
        self.release(out, true);
    }

    fn classify(&mut self, b: u8) {
        let mut seen = Seen::default();
        self.parser.advance(&mut seen, b);
        self.held.push(b);
        self.class.push(Class::Open);
        let end = self.held.len();
        let open_from = end - self.since_event - 1;
        // The parser speaks once a character or a sequence is complete: the
        // bytes it took silently before are an escape sequence, or the
        // start of the character it now prints.
        let text = match seen.last {
            Some(Event::Print(c)) if c == char::REPLACEMENT_CHARACTER => (self.since_event + 1).min(MAX_OPEN + 1),
            Some(Event::Print(c)) => c.len_utf8().min(self.since_event + 1),
            Some(Event::Execute) => 1,
            Some(Event::Sequence) => 0,
            None => {
                self.since_event += 1;
                // Only a character's first bytes can still turn out to be text.
                let settled = end.saturating_sub(MAX_OPEN).max(open_from);
                self.class[open_from..settled].fill(Class::Escape);
                return;
            }
        };
        self.class[open_from..end - text].fill(Class::Escape);
        self.class[end - text..end].fill(Class::Text);
        self.since_event = 0;
    }

    /// Writes out what is settled; with `all`, everything.
    fn release(&mut self, out: &mut Vec<u8>, all: bool) {
        let open = self.class.iter().position(|c| *c == Class::Open).unwrap_or(self.held.len());
        let text_at: Vec<usize> = (0..open).filter(|&i| self.class[i] == Class::Text).collect();
        let text: Vec<u8> = text_at.iter().map(|&i| self.held[i]).collect();
        let mut written = 0;
        let mut p = 0;
        let mut hold_at = open;
        while p < text.len() {
            let rest = &text[p..];
            if !all && self.secrets.iter().any(|s| s.len() > rest.len() && s.starts_with(rest)) {
                hold_at = text_at[p];
                break;
            }
            match self.secrets.iter().find(|s| rest.starts_with(s)) {
                Some(s) => {
                    let (start, end) = (text_at[p], text_at[p + s.len() - 1] + 1);
                    out.extend_from_slice(&self.held[written..start]);
                    out.extend_from_slice(MASK);
                    out.extend((start..end).filter(|&i| self.class[i] == Class::Escape).map(|i| self.held[i]));
                    written = end;
                    p += s.len();
                }
                None => p += 1,
            }
        }
        if all {
            hold_at = self.held.len();
        }
        out.extend_from_slice(&self.held[written..hold_at]);
        self.held.drain(..hold_at);
        self.class.drain(..hold_at);
        // The silent bytes let go were settled: a sequence's.
        self.since_event = self.since_event.min(self.held.len());
    }
}

#[derive(Clone, Copy, Debug)]
enum Event {
    Print(char),
    Execute,
    Sequence,
}

/// The parser's last word on one byte.
#[derive(Default)]
struct Seen {
    last: Option<Event>,
}

impl Perform for Seen {
    fn print(&mut self, c: char) {
        self.last = Some(Event::Print(c));
    }
    fn execute(&mut self, _byte: u8) {
        self.last = Some(Event::Execute);
    }
    fn hook(&mut self, _: &Params, _: &[u8], _: bool, _: u8) {
        self.last = Some(Event::Sequence);
    }
    fn put(&mut self, _byte: u8) {
        self.last = Some(Event::Sequence);
    }
    fn unhook(&mut self) {
        self.last = Some(Event::Sequence);
    }
    fn osc_dispatch(&mut self, _: &[&[u8]], _: bool) {
        self.last = Some(Event::Sequence);
    }
    fn csi_dispatch(&mut self, _: &Params, _: &[u8], _: bool, _: u8) {
        self.last = Some(Event::Sequence);
    }
    fn esc_dispatch(&mut self, _: &[u8], _: bool, _: u8) {
        self.last = Some(Event::Sequence);
    }
}

/// UTF-8 characters for the parser, a byte at a time; anything that is not
/// UTF-8 becomes U+FFFD (as in a terminal) and ends the character.
#[derive(Default)]
struct Utf8Chars {
    bytes: [u8; 4],
    len: usize,
}

impl CharAccumulator for Utf8Chars {
    fn add(&mut self, byte: u8) -> Option<char> {
        if self.len > 0 && byte & 0xc0 != 0x80 {
            self.len = 0;
            return Some(char::REPLACEMENT_CHARACTER);
        }
        self.bytes[self.len] = byte;
        self.len += 1;
        let want = match self.bytes[0] {
            0xc0..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf7 => 4,
            _ => 1,
        };
        if self.len < want {
            return None;
        }
        let c = std::str::from_utf8(&self.bytes[..self.len])
            .ok()
            .and_then(|s| s.chars().next())
            .unwrap_or(char::REPLACEMENT_CHARACTER);
        self.len = 0;
        Some(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every way of cutting `input` in two gives the same output.
    fn masked_in_pieces(m: &Masker, input: &[u8]) -> Vec<u8> {
        let whole = m.mask(input);
        for cut in 0..=input.len() {
            let mut s = m.stream();
            let mut out = Vec::new();
            s.push(&input[..cut], &mut out);
            s.push(&input[cut..], &mut out);
            s.finish(&mut out);
            assert_eq!(String::from_utf8_lossy(&out), String::from_utf8_lossy(&whole), "cut at {cut}");
        }
        whole
    }

    #[test]
    fn hides_every_occurrence_longest_first() {
        let m = Masker::new(["hunter22", "hunter22extra", "no"]);
        assert_eq!(masked_in_pieces(&m, b"pw=hunter22extra, again hunter22; no"), b"pw=***, again ***; no");
        assert!(Masker::new(["abc"]).is_empty());
    }

    #[test]
    fn a_secret_cut_between_chunks_is_held_back_not_shown() {
        let m = Masker::new(["s3cr3t-value"]);
        let mut s = m.stream();
        let mut out = Vec::new();
        s.push(b"token=s3cr", &mut out);
        assert_eq!(out, b"token=", "the part that may be a secret is held back");
        s.push(b"3t-value\nnext s3", &mut out);
        assert_eq!(out, b"token=***\nnext ");
        s.push(b"x", &mut out);
        assert_eq!(out, b"token=***\nnext s3x", "let go once it cannot be a secret");
        s.finish(&mut out);
        assert_eq!(out, b"token=***\nnext s3x");
    }

    #[test]
    fn escape_sequences_inside_a_secret_do_not_hide_it_and_are_kept() {
        let m = Masker::new(["secret"]);
        assert_eq!(masked_in_pieces(&m, b"a sec\x1b[1mret!\x1b[0m"), b"a ***\x1b[1m!\x1b[0m");
        assert_eq!(masked_in_pieces(&m, b"\x1b]0;title\x07secret"), b"\x1b]0;title\x07***");
        assert_eq!(masked_in_pieces(&m, b"se\x1b[38;5;196mc\x1b[0mret"), b"***\x1b[38;5;196m\x1b[0m");
        // Text that only looks like a sequence is text.
        assert_eq!(masked_in_pieces(&m, b"[1msecret"), b"[1m***");
    }

    #[test]
    fn multibyte_characters_and_invalid_bytes() {
        let m = Masker::new(["pässwörd"]);
        assert_eq!(masked_in_pieces(&m, "x pässwörd y".as_bytes()), b"x *** y");
        let raw = b"\xff\xc3 p\xc3\xa4ss\xe2\x82";
        assert_eq!(masked_in_pieces(&m, raw), raw, "not UTF-8: passed through as is");
        let m = Masker::new(["secret"]);
        assert_eq!(masked_in_pieces(&m, b"\xe2\x82secret"), b"\xe2\x82***");
    }

    #[test]
    fn xml_escaped_secrets_are_hidden_in_junit_files() {
        let m = Masker::new(["a&b<c>"]).for_xml();
        assert_eq!(
            m.mask(b"<failure message=\"a&amp;b&lt;c&gt;\">a&b<c></failure>"),
            b"<failure message=\"***\">***</failure>"
        );
    }

    #[test]
    fn no_secrets_is_the_identity() {
        let m = Masker::new([]);
        let mut s = m.stream();
        let mut out = Vec::new();
        s.push(b"sec\x1b[1m", &mut out);
        assert_eq!(out, b"sec\x1b[1m");
    }
}
