//! A simple per-second budget for answers to unauthenticated input.
use std::time::{Duration, Instant};

/// How many unprotected error answers (INVALID_SYNTAX, NO_PROPOSAL_CHOSEN,
/// INVALID_IKE_SPI, …) we send per second at most.
pub(crate) const ERROR_ANSWERS_PER_SECOND: u32 = 20;

/// A budget of `per_second` events per one-second window.
#[derive(Debug)]
pub(crate) struct RateLimit {
    per_second: u32,
    window: Option<Instant>,
    used: u32,
}

impl RateLimit {
    pub(crate) fn new(per_second: u32) -> RateLimit {
        RateLimit {
            per_second,
            window: None,
            used: 0,
        }
    }

    /// Takes one unit of the budget if any is left in the current second.
    pub(crate) fn take(&mut self, now: Instant) -> bool {
        if self
            .window
            .is_none_or(|w| now.saturating_duration_since(w) >= Duration::from_secs(1))
        {
            self.window = Some(now);
            self.used = 0;
        }
        if self.used < self.per_second {
            self.used += 1;
            true
        } else {
            false
        }
    }
}
