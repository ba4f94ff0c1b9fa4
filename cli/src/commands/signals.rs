//! Signals for the commands that run a worker (`worker`, `run`).
//!
//! One keypress is one stop request. A terminal sends Ctrl-C's SIGINT to
//! the whole foreground process group, and under `git ci worker` git's
//! wrapper, in that group too, passes the SIGINT it got on to git-ci: one
//! keypress arrives twice, a few milliseconds apart. A signal is a new
//! request only when it comes [`SAME_REQUEST`] or more after the last one
//! counted.

use std::time::{Duration, Instant};

use git_ci_core::worker::{self, Control};

/// Signals closer than this to the last one counted are the same request.
const SAME_REQUEST: Duration = Duration::from_secs(1);

/// Ctrl-C once: finish running jobs; twice: cancel them; three times: exit 130.
pub fn stop_on_signals(controller: worker::Controller) {
    stop_all_on_signals(vec![controller]);
}

/// [`stop_on_signals`] for the workers of several hubs in one process.
pub fn stop_all_on_signals(controllers: Vec<worker::Controller>) {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) else {
        return;
    };
    std::thread::spawn(move || {
        let mut requests = Requests::default();
        for _ in signals.forever() {
            match requests.count(Instant::now()) {
                Some(1) => controllers.iter().for_each(|c| c.send(Control::Drain)),
                Some(2) => controllers.iter().for_each(|c| c.send(Control::CancelAll)),
                Some(_) => std::process::exit(130),
                None => {}
            }
        }
    });
}

/// Counts stop requests among signals.
#[derive(Default)]
struct Requests {
    counted: u32,
    last: Option<Instant>,
}

impl Requests {
    /// A signal at `at`: the number of the request it makes, or `None`
    /// when it repeats the last one.
    fn count(&mut self, at: Instant) -> Option<u32> {
        if self.last.is_some_and(|last| at.saturating_duration_since(last) < SAME_REQUEST) {
            return None;
        }
        self.last = Some(at);
        self.counted += 1;
        Some(self.counted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signal_repeated_at_once_is_one_request() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut r = Requests::default();
        assert_eq!(r.count(t0), Some(1));
        assert_eq!(r.count(t0 + ms(3)), None, "the terminal's and git's copies of one Ctrl-C");
        assert_eq!(r.count(t0 + ms(999)), None);
        assert_eq!(r.count(t0 + ms(1500)), Some(2), "a second keypress");
        assert_eq!(r.count(t0 + ms(1501)), None);
        assert_eq!(r.count(t0 + ms(2600)), Some(3));
    }
}
