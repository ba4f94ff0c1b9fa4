//! A worker whose work directory's disk fills up while a job writes its log
//! says so: the job is an `error` naming the disk, and the result describes
//! the log exactly as the hub holds it.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::env::TestEnv;

/// A small tmpfs at `dir`, unmounted when dropped. Tests run as root; a
/// mount that fails fails the test.
pub struct SmallDisk(PathBuf);

impl SmallDisk {
    /// 2 MiB.
    pub fn mount(dir: &Path) -> SmallDisk {
        Self::mount_sized(dir, "2M")
    }

    /// `size` as `mount -o size=` takes it.
    pub fn mount_sized(dir: &Path, size: &str) -> SmallDisk {
        std::fs::create_dir_all(dir).unwrap();
        let disk = SmallDisk(dir.to_path_buf());
        disk.mount_with(&format!("size={size}"));
        disk
    }

    /// Makes room: the same disk, `size` large.
    pub fn grow(&self, size: &str) {
        self.mount_with(&format!("remount,size={size}"));
    }

    fn mount_with(&self, options: &str) {
        let out = Command::new("mount").args(["-t", "tmpfs", "-o", options, "tmpfs"]).arg(&self.0).output().unwrap();
        assert!(
            out.status.success(),
            "could not mount a tmpfs at {} (this test needs root): {}",
            self.0.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn sha256(bytes: &[u8], scratch: &Path) -> String {
    std::fs::write(scratch, bytes).unwrap();
    let out = Command::new("sha256sum").arg(scratch).output().unwrap();
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap().to_owned()
}

#[test]
fn a_full_work_dir_makes_the_job_an_error_and_the_result_matches_the_stored_log() {
    let env = TestEnv::new();
    // 4 MB of output: more than the disk holds, less than the log cap.
    let (repo, hub) =
        env.project_on_hub("[job.flood]\nrun = \"echo begin; head -c 4000000 /dev/zero | tr '\\\\0' x; echo end\"\n");
    let disk = env.path("disk");
    let _disk = SmallDisk::mount(&disk);
    let id = env.ci(&repo, &["submit", "--hub", &hub]).expect(0).stdout().trim().to_owned();
    env.ci(&repo, &["worker", "--hub", &hub, "--once", "--work-dir", disk.to_str().unwrap()]).expect(0);

    let doc = env.ci(&repo, &["show", "--hub", &hub, &id, "--json"]).expect(0).json();
    assert_eq!(doc["state"], "error", "a log cut short is no pass: {doc}");
    let reason = doc["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("No space left on device") && reason.contains(disk.to_str().unwrap()),
        "the reason names the disk and what went wrong: {reason}"
    );
    let log = env.ci(&repo, &["log", "--hub", &hub, &id]).expect(0).0.stdout;
    assert!(log.starts_with(b"begin\nxxxx"), "the log holds what fitted: {:?}", &log[..log.len().min(20)]);
    assert_eq!(doc["log_bytes"], log.len(), "log_bytes is the stored log's size");
    assert_eq!(doc["log_sha256"], sha256(&log, &env.path("log")), "log_sha256 is the stored log's hash");
}
