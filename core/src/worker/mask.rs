//! Hides secret values (`git ci worker --env-file`) in logs before they
//! leave the machine.

pub struct Masker {
    secrets: Vec<Vec<u8>>,
}

/// Values shorter than this are not masked: masking `1` or `yes` would
/// shred every log while hiding nothing worth hiding.
pub const MIN_SECRET_LEN: usize = 4;

impl Masker {
    pub fn new<'a>(values: impl IntoIterator<Item = &'a str>) -> Masker {
        let mut secrets: Vec<Vec<u8>> =
            values.into_iter().filter(|v| v.len() >= MIN_SECRET_LEN).map(|v| v.as_bytes().to_vec()).collect();
        // Longest first, so a secret that contains another is hidden whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Masker { secrets }
    }

    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// `bytes` with every secret replaced by `***`.
    pub fn mask(&self, bytes: &[u8]) -> Vec<u8> {
        if self.secrets.is_empty() {
            return bytes.to_vec();
        }
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        'outer: while i < bytes.len() {
            for s in &self.secrets {
                if bytes[i..].starts_with(s) {
                    out.extend_from_slice(b"***");
                    i += s.len();
                    continue 'outer;
                }
            }
            out.push(bytes[i]);
            i += 1;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hides_every_occurrence_longest_first() {
        let m = Masker::new(["hunter22", "hunter22extra", "no"]);
        assert_eq!(m.mask(b"pw=hunter22extra, again hunter22; no"), b"pw=***, again ***; no");
        assert!(Masker::new(["abc"]).is_empty());
    }
}
