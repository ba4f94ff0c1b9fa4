//! Work spread over the machine's cores: reading the jobs of a full build
//! and rendering their pages, which are independent of each other and are
//! most of its time.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Below this many items a thread costs more than it saves.
const MIN_PER_THREAD: usize = 64;

/// Maps `items` with `f` on up to every core, in no particular order.
/// Each thread first makes its own state with `init` (a repository
/// handle, which cannot be shared). `progress(done, total)` is called on
/// this thread while they work. The first error wins.
pub fn map<T, S, R, E>(
    items: Vec<T>,
    init: impl Fn() -> S + Sync,
    f: impl Fn(&mut S, T) -> Result<R, E> + Sync,
    progress: &dyn Fn(usize, usize),
) -> Result<Vec<R>, E>
where
    T: Send,
    R: Send,
    E: Send,
{
    let total = items.len();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = cores.min(total / MIN_PER_THREAD).max(1);
    // Dealt round-robin: neighbours are alike (a day's jobs), sizes vary.
    let mut shares: Vec<Vec<T>> = (0..threads).map(|_| Vec::with_capacity(total / threads + 1)).collect();
    for (i, item) in items.into_iter().enumerate() {
        shares[i % threads].push(item);
    }
    let done = AtomicUsize::new(0);
    let work = |share: Vec<T>| -> Result<Vec<R>, E> {
        let mut state = init();
        let mut out = Vec::with_capacity(share.len());
        for item in share {
            out.push(f(&mut state, item)?);
            done.fetch_add(1, Ordering::Relaxed);
        }
        Ok(out)
    };
    if threads == 1 {
        let out = work(shares.pop().unwrap_or_default());
        progress(total, total);
        return out;
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = shares.into_iter().map(|share| scope.spawn(|| work(share))).collect();
        while !handles.iter().all(|h| h.is_finished()) {
            progress(done.load(Ordering::Relaxed), total);
            std::thread::sleep(Duration::from_millis(20));
        }
        progress(total, total);
        let mut all = Vec::with_capacity(total);
        for h in handles {
            all.extend(h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))?);
        }
        Ok(all)
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn maps_everything_once_and_stops_on_errors() {
        let mut got =
            super::map((0..1000).collect(), || 1, |one: &mut i32, i: i32| Ok::<_, ()>(i + *one), &|_, _| {}).unwrap();
        got.sort();
        assert_eq!(got, (1..1001).collect::<Vec<_>>());
        let failed =
            super::map((0..1000).collect(), || (), |_, i: i32| if i == 500 { Err(i) } else { Ok(i) }, &|_, _| {});
        assert_eq!(failed, Err(500));
    }
}
