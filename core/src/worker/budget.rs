//! One `--jobs` budget shared by the workers of one process serving
//! several hubs (`git ci worker --hub A --hub B`): each hub keeps its own
//! loop, claims and chain, and asks the budget for slots before a claim
//! round.
//!
//! Fair turns: a hub refused a slot joins a line; when a slot frees, the
//! hub at the front of the line takes it before the hub that freed it can
//! claim again. So two hubs that both have work take turns (round robin)
//! instead of the faster one keeping every slot. A hub that does not come
//! for its turn (it is backing off from an unreachable hub, say) loses it
//! after [`TURN_GRACE`], so it cannot hold the others up.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long the hub at the front of the line has to take a freed slot.
const TURN_GRACE: Duration = Duration::from_secs(1);

/// The shared slots. Make one, then one [`Seat`] per hub's worker.
pub struct Budget {
    total: usize,
    state: Mutex<State>,
}

/// Wakes one seat's worker.
type Waker = Box<dyn Fn() + Send>;

#[derive(Default)]
struct State {
    /// Slots held (running or reserved for a claim round) per seat.
    held: Vec<usize>,
    /// Seats refused a slot, in the order they asked.
    line: VecDeque<usize>,
    /// Wakes a seat's worker (it may be asleep until its next poll).
    wakers: Vec<Option<Waker>>,
    /// When the seats in line were last told that a slot was free.
    told_at: Option<Instant>,
}

impl Budget {
    pub fn new(total: usize) -> Arc<Budget> {
        Arc::new(Budget { total: total.max(1), state: Mutex::new(State::default()) })
    }

    /// A seat for one more hub's worker.
    pub fn seat(self: &Arc<Budget>) -> Seat {
        let mut s = self.state.lock().expect("budget lock");
        s.held.push(0);
        s.wakers.push(None);
        Seat { budget: Arc::clone(self), index: s.held.len() - 1 }
    }
}

/// One hub's share of a [`Budget`].
#[derive(Clone)]
pub struct Seat {
    budget: Arc<Budget>,
    index: usize,
}

impl std::fmt::Debug for Seat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Seat({} of {})", self.index, self.budget.total)
    }
}

impl Seat {
    /// Called with what wakes this seat's worker when a slot it waits for frees.
    pub(super) fn on_free(&self, wake: impl Fn() + Send + 'static) {
        self.budget.state.lock().expect("budget lock").wakers[self.index] = Some(Box::new(wake));
    }

    /// This seat runs `running` jobs and would claim up to `want` more:
    /// how many it may claim now. They are held for it until the next
    /// call, which gives back what it did not claim.
    pub(super) fn take(&self, running: usize, want: usize) -> usize {
        let mut s = self.budget.state.lock().expect("budget lock");
        s.set_held(self.index, running);
        if want == 0 {
            s.line.retain(|&i| i != self.index);
            return 0;
        }
        let free = self.budget.total.saturating_sub(s.held.iter().sum());
        if free > 0 {
            s.drop_late_front(self.index);
        }
        let my_turn = s.line.front().is_none_or(|&i| i == self.index);
        if free == 0 || !my_turn {
            if !s.line.contains(&self.index) {
                s.line.push_back(self.index);
            }
            return 0;
        }
        s.line.retain(|&i| i != self.index);
        // Others in line: one slot, then back of the line for the next.
        let grant = if s.line.is_empty() { want.min(free) } else { 1 };
        if grant < want {
            s.line.push_back(self.index);
        }
        s.held[self.index] += grant;
        grant
    }

    /// After a claim round: this seat runs `running` jobs; what it held
    /// beyond them is free again.
    pub(super) fn settle(&self, running: usize) {
        self.budget.state.lock().expect("budget lock").set_held(self.index, running);
    }

    /// The worker stops: everything it held is free.
    pub(super) fn leave(&self) {
        let mut s = self.budget.state.lock().expect("budget lock");
        s.set_held(self.index, 0);
        s.line.retain(|&i| i != self.index);
        s.wakers[self.index] = None;
        s.tell_line();
    }
}

impl State {
    fn set_held(&mut self, index: usize, held: usize) {
        let freed = held < self.held[index];
        self.held[index] = held;
        if freed {
            self.tell_line();
        }
    }

    fn tell_line(&mut self) {
        if self.line.is_empty() {
            return;
        }
        self.told_at = Some(Instant::now());
        for &i in &self.line {
            if let Some(wake) = &self.wakers[i] {
                wake();
            }
        }
    }

    /// Seats at the front told of a free slot long ago that never came for it.
    fn drop_late_front(&mut self, me: usize) {
        let late = self.told_at.is_some_and(|t| t.elapsed() > TURN_GRACE);
        while late && self.line.front().is_some_and(|&i| i != me) {
            self.line.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_busy_hubs_take_turns_at_one_slot() {
        let budget = Budget::new(1);
        let (a, b) = (budget.seat(), budget.seat());
        assert_eq!(a.take(0, 1), 1, "nobody waits: a takes it");
        assert_eq!(b.take(0, 1), 0, "the slot is a's");
        assert_eq!(a.take(0, 1), 0, "a finished, but b waits in line");
        assert_eq!(b.take(0, 1), 1, "b's turn");
        assert_eq!(a.take(0, 1), 0, "held by b");
        assert_eq!(b.take(0, 1), 0, "b finished; a's turn");
        assert_eq!(a.take(0, 1), 1);
    }

    #[test]
    fn a_lone_hub_takes_every_free_slot_and_gives_back_what_it_did_not_claim() {
        let budget = Budget::new(4);
        let (a, b) = (budget.seat(), budget.seat());
        assert_eq!(a.take(0, 4), 4);
        assert_eq!(b.take(0, 4), 0, "all reserved by a's round");
        // a claimed one job only: three go back, and b, in line, gets one
        // at a time while a wants more too.
        assert_eq!(a.take(1, 3), 0, "b is first in line");
        assert_eq!(b.take(0, 4), 1);
        assert_eq!(a.take(1, 3), 1);
    }

    #[test]
    fn a_hub_that_never_comes_for_its_turn_loses_it() {
        let budget = Budget::new(1);
        let (a, b) = (budget.seat(), budget.seat());
        assert_eq!(a.take(0, 1), 1);
        assert_eq!(b.take(0, 1), 0, "b in line");
        assert_eq!(a.take(0, 1), 0, "b's turn");
        std::thread::sleep(TURN_GRACE + Duration::from_millis(50));
        assert_eq!(a.take(0, 1), 1, "b never came: a goes on");
    }

    #[test]
    fn a_freed_slot_wakes_the_hubs_in_line() {
        let budget = Budget::new(1);
        let (a, b) = (budget.seat(), budget.seat());
        let woken = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let w = Arc::clone(&woken);
        b.on_free(move || {
            w.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        });
        a.take(0, 1);
        b.take(0, 1);
        a.take(0, 0);
        assert_eq!(woken.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}
