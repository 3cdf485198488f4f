//! Rust's mirror of the driver's generator cache: which executions the JavaScript side
//! holds a live generator for, and how far each has advanced. Rust decides every
//! activation's shape (incremental or full replay) from it and tells the driver what to
//! evict, so the two sides never disagree.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::engine::ExecutionState;

/// Where a generator is in its instance's history: execution, history length, and the
/// timestamp of the last event. The timestamp tells apart a history that was rewound
/// (`retryInstance`) and grew back to the same length: its new events have new times.
pub type Position = (u64, u64, i64);

#[derive(Debug)]
struct Entry {
    position: Position,
    stamp: u64,
    /// The engine's state at `position`, while no turn has taken it: with it a claim reads
    /// only the history after `position`.
    state: Option<ExecutionState>,
}

#[derive(Debug, Default)]
pub struct GeneratorCache {
    capacity: usize,
    entries: HashMap<String, Entry>,
    order: BTreeMap<u64, String>,
    clock: u64,
    /// Evictions the driver has not been told about yet.
    pending_evictions: Vec<String>,
    /// Instances whose activation the driver holds and whose turn has not ended.
    inflight: HashSet<String>,
    /// In-flight instances evicted meanwhile: the driver may drop (or already dropped) their
    /// generator, so the turn's end must not record it as cached.
    dirty: HashSet<String>,
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

    /// Whether the driver's generator for this instance is exactly at `position`.
    pub fn is_current(&self, instance_id: &str, position: Position) -> bool {
        matches!(self.entries.get(instance_id), Some(e) if e.position == position)
    }

    /// `(execution, history length)` of the cached state a claim may start reading after.
    pub fn known(&self, instance_id: &str) -> Option<(u64, u64)> {
        if self.inflight.contains(instance_id) {
            return None;
        }
        match self.entries.get(instance_id) {
            Some(e) if e.state.is_some() => Some((e.position.0, e.position.1)),
            _ => None,
        }
    }

    /// Takes the engine's state at `position` for a turn (it comes back with the turn's end).
    pub fn take_state(&mut self, instance_id: &str, position: Position) -> Option<ExecutionState> {
        match self.entries.get_mut(instance_id) {
            Some(e) if e.position == position => e.state.take(),
            _ => None,
        }
    }

    /// Records that the driver's generator advanced to `position` (a committed turn), and
    /// the engine's state there when the turn kept it.
    pub fn advance(
        &mut self,
        instance_id: &str,
        position: Position,
        state: Option<ExecutionState>,
    ) {
        if !self.enabled() {
            return;
        }
        self.clock += 1;
        if let Some(old) = self.entries.insert(
            instance_id.to_owned(),
            Entry {
                position,
                stamp: self.clock,
                state,
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
            if self.inflight.contains(&oldest) {
                self.dirty.insert(oldest.clone());
            }
            self.pending_evictions.push(oldest);
        }
    }

    /// An activation for this instance was handed to the driver.
    pub fn begin_turn(&mut self, instance_id: &str) {
        self.inflight.insert(instance_id.to_owned());
    }

    /// The turn ended: `advanced_to` is the position when it committed and the driver's
    /// generator is now at that point; `None` when it is not usable.
    pub fn end_turn(
        &mut self,
        instance_id: &str,
        advanced_to: Option<Position>,
        state: Option<ExecutionState>,
    ) {
        self.inflight.remove(instance_id);
        let dirty = self.dirty.remove(instance_id);
        match advanced_to {
            Some(position) if !dirty => self.advance(instance_id, position, state),
            _ => self.evict(instance_id),
        }
    }

    /// Forgets an instance; the driver is told with the next delivery.
    pub fn evict(&mut self, instance_id: &str) {
        if let Some(old) = self.entries.remove(instance_id) {
            self.order.remove(&old.stamp);
        }
        if self.inflight.contains(instance_id) {
            self.dirty.insert(instance_id.to_owned());
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
        c.advance("a", (1, 3, 0), None);
        c.advance("b", (1, 3, 0), None);
        c.advance("a", (1, 5, 0), None);
        c.advance("c", (1, 2, 0), None);
        assert!(c.is_current("a", (1, 5, 0)));
        assert!(!c.is_current("b", (1, 3, 0)));
        assert!(!c.is_current("a", (2, 5, 0)));
        assert_eq!(c.take_evictions(), vec!["b".to_owned()]);
        c.evict("a");
        assert_eq!(c.take_evictions(), vec!["a".to_owned()]);
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn an_instance_evicted_during_its_turn_is_not_recorded_as_cached() {
        let mut c = GeneratorCache::new(1);
        c.advance("a", (1, 3, 0), None);
        c.begin_turn("a");
        c.advance("b", (1, 2, 0), None); // pushes "a" out while its turn runs
        assert_eq!(c.take_evictions(), vec!["a".to_owned()]);
        c.end_turn("a", Some((1, 5, 0)), None);
        assert!(!c.is_current("a", (1, 5, 0)));
        // ... and the driver is told again, after the activation it already processed.
        assert_eq!(c.take_evictions(), vec!["a".to_owned()]);
        c.begin_turn("b");
        c.end_turn("b", Some((1, 4, 0)), None);
        assert!(c.is_current("b", (1, 4, 0)));
    }

    #[test]
    fn capacity_zero_caches_nothing() {
        let mut c = GeneratorCache::new(0);
        c.advance("a", (1, 3, 0), None);
        assert!(c.is_empty());
        c.evict("a");
        assert!(!c.is_current("a", (1, 3, 0)));
        assert!(c.take_evictions().is_empty());
    }

    #[test]
    fn a_history_rewound_to_the_same_length_is_not_current() {
        let mut c = GeneratorCache::new(4);
        c.advance("a", (1, 5, 100), None);
        assert!(c.is_current("a", (1, 5, 100)));
        // Retried: events 4.. were replaced by newer ones and the length is 5 again.
        assert!(!c.is_current("a", (1, 5, 250)));
    }
}
