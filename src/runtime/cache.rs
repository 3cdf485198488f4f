//! Rust's mirror of the driver's generator cache: which executions the JavaScript side
//! holds a live generator for, and how far each has advanced. Rust decides every
//! activation's shape (incremental or full replay) from it and tells the driver what to
//! evict, so the two sides never disagree.

use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    execution_id: u64,
    /// History length the cached generator has consumed.
    history_len: u64,
    stamp: u64,
}

#[derive(Debug, Default)]
pub struct GeneratorCache {
    capacity: usize,
    entries: HashMap<String, Entry>,
    order: BTreeMap<u64, String>,
    clock: u64,
    /// Evictions the driver has not been told about yet.
    pending_evictions: Vec<String>,
}

impl GeneratorCache {
    pub fn new(capacity: usize) -> Self {
        GeneratorCache {
            capacity,
            ..Default::default()
        }
    }

    pub fn enabled(&self) -> bool {
        self.capacity > 0
    }

    /// Whether the driver's generator for this instance is exactly at `history_len`.
    pub fn is_current(&self, instance_id: &str, execution_id: u64, history_len: u64) -> bool {
        matches!(self.entries.get(instance_id), Some(e) if e.execution_id == execution_id && e.history_len == history_len)
    }

    /// Records that the driver's generator advanced to `history_len` (a committed turn).
    pub fn advance(&mut self, instance_id: &str, execution_id: u64, history_len: u64) {
        if !self.enabled() {
            return;
        }
        self.clock += 1;
        if let Some(old) = self.entries.insert(
            instance_id.to_owned(),
            Entry {
                execution_id,
                history_len,
                stamp: self.clock,
            },
        ) {
            self.order.remove(&old.stamp);
        }
        self.order.insert(self.clock, instance_id.to_owned());
        while self.entries.len() > self.capacity {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            self.entries.remove(&oldest);
            self.pending_evictions.push(oldest);
        }
    }

    /// Forgets an instance; the driver is told with the next delivery.
    pub fn evict(&mut self, instance_id: &str) {
        if let Some(old) = self.entries.remove(instance_id) {
            self.order.remove(&old.stamp);
        }
        if self.enabled() {
            self.pending_evictions.push(instance_id.to_owned());
        }
    }

    /// Evictions to send to the driver now.
    pub fn take_evictions(&mut self) -> Vec<String> {
        std::mem::take(&mut self.pending_evictions)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn least_recently_advanced_entries_are_evicted_and_reported() {
        let mut c = GeneratorCache::new(2);
        c.advance("a", 1, 3);
        c.advance("b", 1, 3);
        c.advance("a", 1, 5);
        c.advance("c", 1, 2);
        assert!(c.is_current("a", 1, 5));
        assert!(!c.is_current("b", 1, 3));
        assert!(!c.is_current("a", 2, 5));
        assert_eq!(c.take_evictions(), vec!["b".to_owned()]);
        c.evict("a");
        assert_eq!(c.take_evictions(), vec!["a".to_owned()]);
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn capacity_zero_caches_nothing() {
        let mut c = GeneratorCache::new(0);
        c.advance("a", 1, 3);
        c.evict("a");
        assert!(!c.is_current("a", 1, 3));
        assert!(c.take_evictions().is_empty());
    }
}
