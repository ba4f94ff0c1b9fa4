//! Measures the site generator on a hub of N results (default 10,000):
//! `cargo run --release -p git-ci-site --example site_bench -- 10000`

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let jobs: usize = std::env::args().nth(1).map(|a| a.parse()).transpose()?.unwrap_or(10_000);
    let dir = tempfile::tempdir()?;
    let f = git_ci_site::bench::measure(dir.path(), jobs)?;
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
    println!("hub with {} results filled in {:.0} ms", f.jobs, ms(f.fill));
    println!(
        "full build:         {:>9.1} ms  ({:.3} ms/job; goal 0.5)  {} files written",
        ms(f.full.elapsed),
        ms(f.per_job_full()),
        f.full.stats.written
    );
    println!(
        "rebuild, +1 result: {:>9.1} ms  ({:.2}% of full; goal 2%)  {} units rendered, {} files written, {} kept",
        ms(f.rebuild.elapsed),
        f.rebuild_ratio() * 100.0,
        f.rebuild.stats.rendered,
        f.rebuild.stats.written,
        f.rebuild.stats.kept
    );
    println!("rebuild, no change: {:>9.1} ms  {} files written", ms(f.noop.elapsed), f.noop.stats.written);
    Ok(())
}
