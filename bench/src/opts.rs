//! Command-line options, parsed by hand: five flags do not need clap.

use std::path::PathBuf;

pub const USAGE: &str = "\
usage: git-ci-bench [--quick] [--runs N] [--only GROUPS] [--dir DIR] [--json FILE]

Benchmarks git-ci against bare git on 127.0.0.1 and prints a markdown table:
each figure, its floor from the same run, their ratio, and the goal.

  --quick        few runs and small job counts (a smoke test, under a minute)
  --runs N       recorded runs per timed figure (default 30, 5 with --quick)
  --only GROUPS  run only these groups, e.g. 2,5 (1 submit, 2 claim+complete,
                 3 end-to-end, 4 throughput, 5 finished results, 6 site,
                 7 guard, 8 pending backlog, 9 pipelines, 10 sandbox; 3 and 4 also run 2, whose
                 floors they use)
  --dir DIR      where hubs, caches and checkouts go (default: the system's
                 temporary directory); a tmpfs such as /dev/shm separates
                 git-ci's own cost from the disk's
  --json FILE    also write every row, with sample spreads, as JSON
";

pub struct Opts {
    pub quick: bool,
    pub runs: Option<usize>,
    /// Groups to run, 1 to 9; all when empty.
    pub only: Vec<u8>,
    pub dir: Option<PathBuf>,
    pub json: Option<PathBuf>,
}

impl Opts {
    /// Whether group `g` (1 to 9) is to run.
    pub fn wants(&self, g: u8) -> bool {
        self.only.is_empty() || self.only.contains(&g)
    }

    /// `Ok(None)` for `--help`.
    pub fn parse(mut args: impl Iterator<Item = String>) -> Result<Option<Opts>, String> {
        let mut opts = Opts { quick: false, runs: None, only: vec![], dir: None, json: None };
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--quick" => opts.quick = true,
                "--runs" => {
                    let n = args.next().ok_or("--runs needs a number")?;
                    let n = n.parse().ok().filter(|n| *n > 0).ok_or(format!("--runs {n}: not a positive number"))?;
                    opts.runs = Some(n);
                }
                "--only" => {
                    let list = args.next().ok_or("--only needs a list of groups")?;
                    for g in list.split(',') {
                        let g = g.trim().parse().ok().filter(|g| (1..=10).contains(g));
                        opts.only.push(g.ok_or(format!("--only {list}: groups are 1 to 10"))?);
                    }
                }
                "--dir" => opts.dir = Some(args.next().ok_or("--dir needs a directory")?.into()),
                "--json" => opts.json = Some(args.next().ok_or("--json needs a file name")?.into()),
                "-h" | "--help" => return Ok(None),
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        Ok(Some(opts))
    }
}

/// How much work each group does.
#[derive(Clone, Copy, Debug)]
pub struct Sizes {
    pub runs: usize,
    pub e2e_local: usize,
    pub e2e_remote: usize,
    pub tput_local: usize,
    pub tput_remote: usize,
    /// Jobs drained by the issue 18 rows over git daemon (1-slot workers).
    pub tput_net: usize,
    pub results: usize,
    /// Group 5 also measures this many results (0: only `results`).
    pub results_big: usize,
    /// Pending jobs in group 8.
    pub backlog: usize,
}

impl Sizes {
    /// The result counts group 5 measures.
    pub fn results_at(&self) -> Vec<usize> {
        [self.results, self.results_big].into_iter().filter(|n| *n > 0).collect()
    }

    pub fn new(opts: &Opts) -> Sizes {
        let mut sizes = if opts.quick {
            Sizes {
                runs: 5,
                e2e_local: 10,
                e2e_remote: 5,
                tput_local: 60,
                tput_remote: 20,
                tput_net: 40,
                results: 1_000,
                results_big: 0,
                backlog: 1_000,
            }
        } else {
            Sizes {
                runs: 30,
                e2e_local: 50,
                e2e_remote: 30,
                tput_local: 500,
                tput_remote: 100,
                tput_net: 300,
                results: 10_000,
                results_big: 100_000,
                backlog: 10_000,
            }
        };
        sizes.runs = opts.runs.unwrap_or(sizes.runs);
        sizes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Option<Opts>, String> {
        Opts::parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn arguments() {
        let o = parse(&["--quick", "--runs", "7", "--only", "2,5", "--dir", "/dev/shm"]).unwrap().unwrap();
        assert!(o.quick && o.wants(2) && o.wants(5) && !o.wants(1));
        assert_eq!(Sizes::new(&o).runs, 7);
        assert!(parse(&["--help"]).unwrap().is_none());
        for bad in [&["--runs", "0"][..], &["--only", "0"], &["--json"], &["--frobnicate"]] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
