//! Signals for the commands that run a worker (`worker`, `run`).

use git_ci_core::worker::{self, Control};

/// Ctrl-C once: finish running jobs; twice: cancel them.
pub fn stop_on_signals(controller: worker::Controller) {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) else {
        return;
    };
    std::thread::spawn(move || {
        for (n, _) in signals.forever().enumerate() {
            match n {
                0 => controller.send(Control::Drain),
                1 => controller.send(Control::CancelAll),
                _ => std::process::exit(130),
            }
        }
    });
}
