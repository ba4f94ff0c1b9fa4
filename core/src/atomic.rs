//! Writing a file whole or not at all: a temporary file beside it, renamed
//! over it, so that a reader (a web server serving the site, systemd
//! reading a unit, git running a hook) sees the old file or the new one,
//! never half of one. The one routine every crate of git-ci writes such
//! files with; what differs between them is said in [`Write`].

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// How a file is written: its mode, and whether its bytes reach the disk
/// before the rename.
#[derive(Clone, Copy, Debug)]
pub struct Write {
    /// The file's permission bits (`0o644`, `0o755`).
    pub mode: u32,
    /// `sync_data` before the rename, so that a crash leaves the old file
    /// or the new one, not an empty one. Off for derived data that any run
    /// recreates (an fsync per page would cost a full site build minutes on
    /// a spinning disk).
    pub durable: bool,
}

/// The prefix of the temporary files: whoever lists a folder written to
/// (the site's publisher) can tell them from real files.
pub const TEMP_PREFIX: &str = ".tmp.";

impl Write {
    /// Writes `bytes` to `path`, whose folder must exist (the site makes
    /// each folder once, not once a file).
    pub fn to(self, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let mode = std::fs::Permissions::from_mode(self.mode);
        let mut tmp = tempfile::Builder::new().prefix(TEMP_PREFIX).permissions(mode).tempfile_in(dir)?;
        tmp.write_all(bytes)?;
        if self.durable {
            tmp.as_file().sync_data()?;
        }
        // On failure the temporary file is removed when `tmp` drops.
        tmp.persist(path).map_err(|e| e.error)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_the_mode_and_bytes_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("file");
        Write { mode: 0o755, durable: true }.to(&path, b"one").unwrap();
        Write { mode: 0o644, durable: false }.to(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o644);
        let names: Vec<_> =
            std::fs::read_dir(path.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["file"]);
    }
}
