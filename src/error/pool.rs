//! The pool-timeout error's numbers.

use std::fmt;
use std::time::Duration;

/// What the pool looked like when a checkout gave up waiting.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolTimeout {
    /// The pool's maximum size.
    pub max_size: usize,
    /// Connections open at that moment.
    pub size: usize,
    /// Connections checked out at that moment.
    pub in_use: usize,
    /// Other tasks waiting for a connection at that moment.
    pub waiting: usize,
    /// How long this checkout waited before giving up.
    pub waited: Duration,
}

impl fmt::Display for PoolTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "timed out after {} ms waiting for a pooled connection \
             (max size {}, open {}, in use {}, other waiters {})",
            super::millis(self.waited),
            self.max_size,
            self.size,
            self.in_use,
            self.waiting
        )
    }
}
