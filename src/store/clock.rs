//! Time as the stores see it: this machine's clock, and the store clock SQLite keeps in the
//! process (PostgreSQL's is the database's, `reprise_now_ms()`).

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

#[cfg(doc)]
use super::Provider;

/// Epoch milliseconds from this machine's clock.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A store clock kept in this process: the system clock plus an offset that only
/// [`Provider::shift_clock`] moves.
#[derive(Debug, Default)]
pub struct Clock {
    offset_ms: AtomicI64,
}

impl Clock {
    /// Epoch milliseconds of this clock.
    pub fn now_ms(&self) -> i64 {
        now_ms() + self.offset_ms.load(Ordering::Relaxed)
    }

    pub fn shift(&self, by_ms: i64) {
        self.offset_ms.fetch_add(by_ms, Ordering::Relaxed);
    }
}
