//! The engine's deadline index: each IKE SA's next deadline, ordered, so that
//! finding what is due and the next wake-up costs O(log n) instead of a scan
//! of every SA (which a flood of half-open SAs would turn quadratic).
use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use crate::api::IkeId;

#[derive(Debug, Default)]
pub(crate) struct Timers {
    order: BTreeSet<(Instant, IkeId)>,
    at: HashMap<IkeId, Instant>,
}

impl Timers {
    /// Sets (or clears) the deadline of one SA.
    pub fn set(&mut self, id: IkeId, deadline: Option<Instant>) {
        if let Some(old) = self.at.remove(&id) {
            self.order.remove(&(old, id));
        }
        if let Some(t) = deadline {
            self.at.insert(id, t);
            self.order.insert((t, id));
        }
    }

    pub fn first(&self) -> Option<Instant> {
        self.order.first().map(|(t, _)| *t)
    }

    /// The SAs whose deadline is at or before `now`, earliest first.
    pub fn due(&self, now: Instant) -> Vec<IkeId> {
        self.order
            .iter()
            .take_while(|(t, _)| *t <= now)
            .map(|(_, id)| *id)
            .collect()
    }

    pub fn shrink(&mut self) {
        if self.at.capacity() > 4096 && self.at.len() * 4 < self.at.capacity() {
            self.at.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn orders_updates_and_clears() {
        let t0 = Instant::now();
        let mut t = Timers::default();
        t.set(IkeId(1), Some(t0 + Duration::from_secs(5)));
        t.set(IkeId(2), Some(t0 + Duration::from_secs(1)));
        t.set(IkeId(3), Some(t0 + Duration::from_secs(9)));
        assert_eq!(t.first(), Some(t0 + Duration::from_secs(1)));
        t.set(IkeId(2), Some(t0 + Duration::from_secs(7)));
        assert_eq!(t.due(t0 + Duration::from_secs(7)), vec![IkeId(1), IkeId(2)]);
        t.set(IkeId(1), None);
        t.set(IkeId(2), None);
        assert_eq!(t.due(t0 + Duration::from_secs(8)), vec![]);
        assert_eq!(t.first(), Some(t0 + Duration::from_secs(9)));
    }
}
