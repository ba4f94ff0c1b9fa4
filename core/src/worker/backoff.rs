//! Capped exponential backoff with jitter, for an unreachable hub, and a
//! slower one for a hub that refuses us.

use std::time::{Duration, Instant};

#[derive(Debug, Default)]
pub struct Backoff {
    failures: u32,
    until: Option<Instant>,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(250);
    const CAP: Duration = Duration::from_secs(30);
    /// A refusal lasts until someone acts: look again in minutes, not
    /// seconds (each try may cost a credential helper its saved password).
    const REFUSED_FIRST: Duration = Duration::from_secs(60);
    const REFUSED_CAP: Duration = Duration::from_secs(600);

    /// Records a failure; returns how long to wait before the next try.
    pub fn fail(&mut self) -> Duration {
        self.wait(Self::FIRST, Self::CAP)
    }

    /// Records a refusal (see [`crate::hub::HubError::is_refusal`]).
    pub fn refused(&mut self) -> Duration {
        self.wait(Self::REFUSED_FIRST, Self::REFUSED_CAP)
    }

    fn wait(&mut self, first: Duration, cap: Duration) -> Duration {
        let base = first.saturating_mul(1 << self.failures.min(10)).min(cap);
        self.failures += 1;
        // Jitter in [0.5, 1.5): workers cut off together do not return together.
        let delay = base.mul_f64(0.5 + fastrand::f64());
        self.until = Some(Instant::now() + delay);
        delay
    }

    /// Records a success; returns whether we had been failing.
    pub fn succeed(&mut self) -> bool {
        let was = self.failures > 0;
        self.failures = 0;
        self.until = None;
        was
    }

    pub fn ready(&self) -> bool {
        self.until.is_none_or(|u| Instant::now() >= u)
    }

    pub fn remaining(&self) -> Option<Duration> {
        self.until.map(|u| u.saturating_duration_since(Instant::now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_then_caps_then_resets() {
        let mut b = Backoff::default();
        let first = b.fail();
        assert!(first >= Duration::from_millis(125) && first < Duration::from_millis(375));
        assert!(!b.ready());
        for _ in 0..20 {
            assert!(b.fail() < Duration::from_secs(45));
        }
        assert!(b.succeed());
        assert!(b.ready());
        assert!(!b.succeed());
        let refused = b.refused();
        assert!(refused >= Duration::from_secs(30) && refused < Duration::from_secs(90), "{refused:?}");
        for _ in 0..20 {
            assert!(b.refused() < Duration::from_secs(900));
        }
    }
}
