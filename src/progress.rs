//! Progress on stderr for long phases; drawn only when stderr is a terminal.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::time::Duration;

/// A spinner that names the current phase.
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A spinner on stderr, or a hidden one when `enabled` is false (indicatif also hides
    /// itself when stderr is not a terminal).
    pub fn new(enabled: bool) -> Self {
        let target = if enabled {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(None, target);
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed}] {msg}")
                .expect("static template")
                .tick_chars("|/-\\ "),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        Progress { bar }
    }

    /// A progress reporter that draws nothing (library use, tests).
    pub fn hidden() -> Self {
        Self::new(false)
    }

    /// Names the phase now running.
    pub fn phase(&self, msg: impl Into<String>) {
        self.bar.set_message(msg.into());
    }

    /// Prints a line above the spinner (or plainly when hidden is off and not a terminal).
    pub fn println(&self, line: &str) {
        if self.bar.is_hidden() {
            eprintln!("{line}");
        } else {
            self.bar.println(line);
        }
    }

    /// Removes the spinner.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
