//! Per-job limits of a sandboxed run: `--pids-max`, `--memory-max`,
//! `--disk-max`.
//!
//! Processes and memory are capped by a cgroup made for the run where the
//! worker may make one (v2 with the controllers delegated to it, or v1
//! with a writable hierarchy), else by rlimits (`RLIMIT_NPROC`, which
//! counts every process of the worker's user and does not bind root, and
//! `RLIMIT_AS`, which counts address space, not memory used). The run
//! joins its cgroup through a one-line `sh` in front of bwrap that writes
//! its own pid to `cgroup.procs` and execs: so bwrap and everything it
//! starts is inside before anything forks. Disk is the size of the
//! checkout (which holds the caches during the run), measured every
//! second; the private `/tmp` is a tmpfs of that size too.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    pub pids_max: Option<u64>,
    pub memory_max: Option<u64>,
    pub disk_max: Option<u64>,
}

/// How processes and memory are capped on this worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Enforcement {
    /// Neither `--pids-max` nor `--memory-max` was asked for.
    None,
    /// A cgroup per run under this directory (the worker's own cgroup).
    CgroupV2(PathBuf),
    /// A cgroup per run under each controller's directory.
    CgroupV1(Vec<PathBuf>),
    Rlimits,
}

impl fmt::Display for Enforcement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Enforcement::None => "none",
            Enforcement::CgroupV2(_) => "cgroup v2",
            Enforcement::CgroupV1(_) => "cgroup v1",
            Enforcement::Rlimits => "rlimits",
        })
    }
}

impl Enforcement {
    /// Finds the cgroups this process may make, for the limits asked for.
    pub fn detect(limits: &Limits) -> Enforcement {
        let wanted: Vec<&str> = [("pids", limits.pids_max), ("memory", limits.memory_max)]
            .into_iter()
            .filter_map(|(c, v)| v.map(|_| c))
            .collect();
        if wanted.is_empty() {
            return Enforcement::None;
        }
        let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        if let Some(dir) = v2_dir(&own).filter(|d| usable(d, &wanted, 2)) {
            return Enforcement::CgroupV2(dir);
        }
        let v1: Vec<PathBuf> = wanted.iter().filter_map(|c| v1_dir(&own, c)).filter(|d| usable(d, &[], 1)).collect();
        if v1.len() == wanted.len() {
            return Enforcement::CgroupV1(v1);
        }
        Enforcement::Rlimits
    }

    /// The words to put in front of the command, and the run's limits.
    pub fn prepare(&self, limits: &Limits) -> std::io::Result<(Vec<String>, Run)> {
        let name = format!("git-ci-{:016x}", fastrand::u64(..));
        let (prefix, dirs) = match self {
            Enforcement::None => (vec![], vec![]),
            Enforcement::Rlimits => (rlimits(limits), vec![]),
            Enforcement::CgroupV2(parent) => {
                let dir = parent.join(&name);
                std::fs::create_dir(&dir)?;
                write_limits(&dir, limits, 2)?;
                (join(std::slice::from_ref(&dir)), vec![dir])
            }
            Enforcement::CgroupV1(parents) => {
                let dirs: Vec<PathBuf> = parents.iter().map(|p| p.join(&name)).collect();
                for d in &dirs {
                    std::fs::create_dir(d)?;
                    write_limits(d, limits, 1)?;
                }
                (join(&dirs), dirs)
            }
        };
        let run = Run { dirs, limits: *limits, v2: matches!(self, Enforcement::CgroupV2(_)), stop: Default::default() };
        Ok((prefix, run))
    }
}

/// `sh -c 'echo $$ > .../cgroup.procs ... && exec "$@"' git-ci-limits`.
fn join(dirs: &[PathBuf]) -> Vec<String> {
    let writes: Vec<String> =
        dirs.iter().map(|d| format!("echo $$ > '{}'", d.join("cgroup.procs").display())).collect();
    vec!["sh".into(), "-c".into(), format!("{} && exec \"$@\"", writes.join(" && ")), "git-ci-limits".into()]
}

fn rlimits(l: &Limits) -> Vec<String> {
    let mut p = vec!["prlimit".to_owned()];
    p.extend(l.pids_max.map(|n| format!("--nproc={n}")));
    p.extend(l.memory_max.map(|n| format!("--as={n}")));
    p.push("--".into());
    p
}

fn v2_dir(own: &str) -> Option<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    if own.lines().count() != 1 || !root.join("cgroup.controllers").exists() {
        return None;
    }
    let path = own.strip_prefix("0::/")?.trim();
    Some(root.join(path))
}

fn v1_dir(own: &str, controller: &str) -> Option<PathBuf> {
    own.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        let (_, names, path) = (f.next()?, f.next()?, f.next()?);
        names
            .split(',')
            .any(|n| n == controller)
            .then(|| Path::new("/sys/fs/cgroup").join(controller).join(path.trim_start_matches('/')))
    })
}

/// Whether a child cgroup can be made under `dir` with these controllers
/// in it (v2 enables them in the parent's `subtree_control` first).
fn usable(dir: &Path, controllers: &[&str], version: u8) -> bool {
    if version == 2 {
        let on = std::fs::read_to_string(dir.join("cgroup.subtree_control")).unwrap_or_default();
        let missing: Vec<String> =
            controllers.iter().filter(|c| !on.split_whitespace().any(|o| o == **c)).map(|c| format!("+{c}")).collect();
        if !missing.is_empty() && std::fs::write(dir.join("cgroup.subtree_control"), missing.join(" ")).is_err() {
            return false;
        }
    }
    let probe = dir.join(format!("git-ci-probe-{:08x}", fastrand::u32(..)));
    let made = std::fs::create_dir(&probe).is_ok() && probe.join("cgroup.procs").exists();
    let _ = std::fs::remove_dir(&probe);
    made
}

fn write_limits(dir: &Path, l: &Limits, version: u8) -> std::io::Result<()> {
    let pids = dir.join("pids.max");
    if let (Some(n), true) = (l.pids_max, pids.exists()) {
        std::fs::write(&pids, n.to_string())?;
    }
    if let Some(n) = l.memory_max {
        let file = if version == 2 { "memory.max" } else { "memory.limit_in_bytes" };
        if dir.join(file).exists() {
            std::fs::write(dir.join(file), n.to_string())?;
            // No swapping past it either, where the kernel accounts swap.
            let swap = if version == 2 { "memory.swap.max" } else { "memory.memsw.limit_in_bytes" };
            let _ = std::fs::write(dir.join(swap), if version == 2 { "0".to_owned() } else { n.to_string() });
        }
    }
    Ok(())
}

/// One run's cgroups and disk watch.
pub struct Run {
    dirs: Vec<PathBuf>,
    limits: Limits,
    v2: bool,
    stop: Arc<AtomicBool>,
}

impl Run {
    /// Which limit the run hit, if any.
    pub fn verdict(&self) -> Option<String> {
        let counter = |file: &str, key: &str| -> u64 {
            let text = self.dirs.iter().find_map(|d| std::fs::read_to_string(d.join(file)).ok()).unwrap_or_default();
            text.lines().find_map(|l| l.strip_prefix(key)?.trim().parse().ok()).unwrap_or(0)
        };
        let oom =
            if self.v2 { counter("memory.events", "oom_kill ") } else { counter("memory.oom_control", "oom_kill ") };
        if let (Some(max), true) = (self.limits.memory_max, oom > 0) {
            return Some(format!("went over --memory-max {}: the kernel stopped a process of the job", human(max)));
        }
        if let (Some(max), true) = (self.limits.pids_max, counter("pids.events", "max ") > 0) {
            return Some(format!("hit --pids-max {max}: the job could not start more processes"));
        }
        None
    }

    /// Fails the run through `stop` when its checkout grows past `--disk-max`.
    pub fn watch_disk(&self, dir: &Path, stop: Box<dyn Fn(String) + Send>) {
        let Some(max) = self.limits.disk_max else { return };
        let (dir, done) = (dir.to_path_buf(), Arc::clone(&self.stop));
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                let t = Instant::now();
                let used = disk_usage(&dir);
                if used > max {
                    return stop(format!(
                        "went over --disk-max {}: its checkout and caches use {}",
                        human(max),
                        human(used)
                    ));
                }
                // A walk of a huge checkout must not cost the job much CPU.
                std::thread::sleep(Duration::from_secs(1).max(t.elapsed() * 20));
            }
        });
    }

    /// Kills what is left in the cgroups and removes them.
    pub fn finish(&self) {
        self.stop.store(true, Ordering::Relaxed);
        for d in &self.dirs {
            let until = Instant::now() + Duration::from_secs(5);
            while std::fs::remove_dir(d).is_err() && d.exists() && Instant::now() < until {
                let procs = std::fs::read_to_string(d.join("cgroup.procs")).unwrap_or_default();
                for pid in procs.lines().filter_map(|p| p.trim().parse().ok()) {
                    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Bytes used by the files under `dir` (blocks, so sparse files count as
/// what they hold), not following symlinks.
pub fn disk_usage(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let Ok(m) = e.metadata() else { continue };
            total += m.blocks() * 512;
            if m.is_dir() {
                stack.push(e.path());
            }
        }
    }
    total
}

/// `512M`, `4G`, `10G`, `1073741824`: binary units, as cgroups and `du`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let shift = match unit.to_ascii_uppercase().trim_end_matches("IB").trim_end_matches('B') {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return Err(format!("{s:?} is not a size: use a number with K, M, G or T (e.g. 512M, 4G)")),
    };
    let n: u64 = num.parse().map_err(|_| format!("{s:?} is not a size: use a number with K, M, G or T (e.g. 4G)"))?;
    match n.checked_mul(1 << shift) {
        Some(0) | None => Err(format!("{s:?}: a size must be above 0 and below 16E")),
        Some(b) => Ok(b),
    }
}

/// The shortest exact form: `4G`, `1536M`, `1000`.
pub fn human(bytes: u64) -> String {
    for (shift, unit) in [(40, "T"), (30, "G"), (20, "M"), (10, "K")] {
        if bytes >= 1 << shift && bytes.is_multiple_of(1 << shift) {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    bytes.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_and_print_in_binary_units() {
        assert_eq!(parse_size("4G"), Ok(4 << 30));
        assert_eq!(parse_size("512m"), Ok(512 << 20));
        assert_eq!(parse_size("10GiB"), Ok(10 << 30));
        assert_eq!(parse_size("1000"), Ok(1000));
        for bad in ["", "G", "4X", "0", "-1G", "99999999999T"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        assert_eq!((human(4 << 30), human(1536 << 20), human(1000)), ("4G".into(), "1536M".into(), "1000".into()));
    }

    #[test]
    fn a_cgroup_path_is_found_per_controller() {
        let own = "4:memory:/a/b\n8:pids:/\n1:cpu,cpuacct:/c\n0::/\n";
        assert_eq!(v1_dir(own, "memory"), Some(PathBuf::from("/sys/fs/cgroup/memory/a/b")));
        assert_eq!(v1_dir(own, "pids"), Some(PathBuf::from("/sys/fs/cgroup/pids/")));
        assert_eq!(v1_dir(own, "cpuacct"), Some(PathBuf::from("/sys/fs/cgroup/cpuacct/c")));
        assert_eq!(v1_dir(own, "blkio"), None);
        assert_eq!(v2_dir(own), None, "a hybrid hierarchy is not v2");
    }

    #[test]
    fn the_checkout_size_counts_what_files_hold() {
        let dir = tempfile::tempdir().unwrap();
        let before = disk_usage(dir.path());
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/f"), vec![1u8; 1 << 20]).unwrap();
        assert!(disk_usage(dir.path()) >= before + (1 << 20));
    }
}
