//! Timing: wall-clock samples, their median, and interleaved runs.
//!
//! Every figure is compared with a floor measured in the same run, so the
//! two must see the same machine: runs of a figure and of its floor are
//! interleaved one by one instead of measured in blocks, and a load spike
//! then hits both alike.

use std::time::{Duration, Instant};

use crate::fixture::Res;

/// Unrecorded runs before the recorded ones: the first runs pay for cold
/// caches (page cache, a cache repository's creation, the first fetch).
pub const WARMUP: usize = 2;

pub fn time<T>(f: impl FnOnce() -> T) -> (Duration, T) {
    let start = Instant::now();
    let value = f();
    (start.elapsed(), value)
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[derive(Clone, Debug, Default)]
pub struct Samples(Vec<Duration>);

impl Samples {
    pub fn new(samples: Vec<Duration>) -> Samples {
        Samples(samples)
    }

    pub fn push(&mut self, d: Duration) {
        self.0.push(d);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    fn sorted(&self) -> Vec<Duration> {
        let mut v = self.0.clone();
        v.sort();
        v
    }

    /// The value at quantile `q` (0.0..=1.0), in milliseconds; 0 when empty.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        let v = self.sorted();
        if v.is_empty() {
            return 0.0;
        }
        let i = ((v.len() - 1) as f64 * q).round() as usize;
        ms(v[i])
    }

    pub fn median_ms(&self) -> f64 {
        let v = self.sorted();
        match v.len() {
            0 => 0.0,
            n if n % 2 == 1 => ms(v[n / 2]),
            n => (ms(v[n / 2 - 1]) + ms(v[n / 2])) / 2.0,
        }
    }

    /// `n=30 min 1.20 p50 1.41 p90 2.03 max 3.10 ms`, for the details list.
    pub fn spread(&self) -> String {
        format!(
            "n={} min {:.2} p50 {:.2} p90 {:.2} max {:.2} ms",
            self.len(),
            self.quantile_ms(0.0),
            self.median_ms(),
            self.quantile_ms(0.9),
            self.quantile_ms(1.0)
        )
    }
}

/// One timed step: does its own untimed set-up and returns the time of the
/// part under test.
pub type Step<'a> = Box<dyn FnMut() -> Res<Duration> + 'a>;

/// Runs every step `n` times (after [`WARMUP`] unrecorded rounds), one
/// round at a time, and returns each step's samples in order.
pub fn interleave(n: usize, steps: &mut [Step<'_>]) -> Res<Vec<Samples>> {
    let mut out = vec![Samples::default(); steps.len()];
    for round in 0..WARMUP + n {
        for (step, samples) in steps.iter_mut().zip(out.iter_mut()) {
            let d = step()?;
            if round >= WARMUP {
                samples.push(d);
            }
        }
    }
    Ok(out)
}

/// [`interleave`] for the usual pair: ours, then its floor.
pub fn pair<'a>(
    n: usize,
    ours: impl FnMut() -> Res<Duration> + 'a,
    floor: impl FnMut() -> Res<Duration> + 'a,
) -> Res<(Samples, Samples)> {
    let mut steps: [Step<'a>; 2] = [Box::new(ours), Box::new(floor)];
    let mut out = interleave(n, &mut steps)?.into_iter();
    let ours = out.next().unwrap_or_default();
    Ok((ours, out.next().unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_even_and_odd_counts() {
        let mut s = Samples::default();
        for v in [3, 1, 2] {
            s.push(Duration::from_millis(v));
        }
        assert_eq!(s.median_ms(), 2.0);
        s.push(Duration::from_millis(10));
        assert_eq!(s.median_ms(), 2.5);
        assert_eq!(s.quantile_ms(1.0), 10.0);
    }

    #[test]
    fn interleave_skips_warmup() {
        let mut calls = 0;
        let (a, b) = pair(
            3,
            || Ok(Duration::from_millis(1)),
            || {
                calls += 1;
                Ok(Duration::from_millis(2))
            },
        )
        .unwrap();
        assert_eq!((a.len(), b.len(), calls), (3, 3, 3 + WARMUP));
    }
}
