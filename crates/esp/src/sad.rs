//! The security association database: inbound SAs by SPI, outbound SAs by the
//! engine's child-SA id.
//!
//! A `Sad` is a value: the control plane builds a new one (`clone`, change,
//! publish through a [`Snapshot`](crate::snapshot::Snapshot)) and the packet
//! path reads whichever snapshot it holds, without locks. Cloning copies two
//! maps of `Arc`s; the SAs themselves, with their counters and replay windows,
//! are shared between snapshots. So are the global counters.
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use crate::sa::{InboundSa, OutboundSa};
use crate::stats::{DropCounters, DropCounts, DropReason};

/// A multiplicative hasher for integer keys. SPIs and child ids are chosen by
/// us at random (or counted), never by a peer, so a cheap hash cannot be
/// forced into collisions; lookups of attacker-chosen SPIs just miss.
#[derive(Default, Clone, Copy)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
    fn write_u64(&mut self, n: u64) {
        // Fibonacci hashing: spreads low-entropy keys over the high bits,
        // which hashbrown uses for its control bytes.
        self.0 = (self.0 ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// Drops not attributable to an SA (no SPI yet, or an unknown one).
#[derive(Debug, Default)]
struct Global {
    drops: DropCounters,
}

/// The SA database. Cheap to clone (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct Sad {
    inbound: IdMap<u32, Arc<InboundSa>>,
    outbound: IdMap<u64, Arc<OutboundSa>>,
    /// How many inbound SAs are in transport mode: with none, the receive
    /// path needs no per-packet lookup to learn how much room a rebuilt IP
    /// header takes.
    transport_inbound: usize,
    global: Arc<Global>,
}

impl Sad {
    pub fn new() -> Sad {
        Sad::default()
    }

    /// Adds an inbound SA under its SPI; returns the one it replaces.
    pub fn insert_inbound(&mut self, sa: Arc<InboundSa>) -> Option<Arc<InboundSa>> {
        self.count_transport(&sa, true);
        let old = self.inbound.insert(sa.spi(), sa);
        if let Some(old) = &old {
            self.count_transport(old, false);
        }
        old
    }

    pub fn remove_inbound(&mut self, spi: u32) -> Option<Arc<InboundSa>> {
        let old = self.inbound.remove(&spi);
        if let Some(old) = &old {
            self.count_transport(old, false);
        }
        old
    }

    fn count_transport(&mut self, sa: &InboundSa, added: bool) {
        if sa.mode() == crate::Mode::Transport {
            if added {
                self.transport_inbound += 1;
            } else {
                self.transport_inbound -= 1;
            }
        }
    }

    /// Whether any inbound SA is in transport mode.
    pub fn has_transport_inbound(&self) -> bool {
        self.transport_inbound > 0
    }

    pub fn inbound(&self, spi: u32) -> Option<&Arc<InboundSa>> {
        self.inbound.get(&spi)
    }

    /// Adds the outbound SA of child SA `child` (the engine's id), replacing
    /// (and returning) the previous one, e.g. on rekey.
    pub fn insert_outbound(&mut self, child: u64, sa: Arc<OutboundSa>) -> Option<Arc<OutboundSa>> {
        self.outbound.insert(child, sa)
    }

    pub fn remove_outbound(&mut self, child: u64) -> Option<Arc<OutboundSa>> {
        self.outbound.remove(&child)
    }

    pub fn outbound(&self, child: u64) -> Option<&Arc<OutboundSa>> {
        self.outbound.get(&child)
    }

    pub fn inbound_sas(&self) -> impl Iterator<Item = &Arc<InboundSa>> {
        self.inbound.values()
    }

    pub fn outbound_sas(&self) -> impl Iterator<Item = (u64, &Arc<OutboundSa>)> {
        self.outbound.iter().map(|(k, v)| (*k, v))
    }

    /// Drops counted before an SA was found (truncated header, unknown SPI).
    pub fn global_drops(&self) -> DropCounts {
        self.global.drops.snapshot()
    }

    pub(crate) fn drop_global(&self, reason: DropReason) {
        self.global.drops.bump(reason);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxisec_crypto::{
        Secret,
        esp_cipher::{EspCipher, EspSuite},
    };
    use oxisec_wire::encr;

    fn cipher() -> EspCipher {
        let s = EspSuite {
            encr: encr::CHACHA20_POLY1305,
            encr_key_bits: None,
            integ: None,
            esn: false,
        };
        EspCipher::new(s, &Secret::new(vec![1; 36])).unwrap()
    }

    #[test]
    fn insert_lookup_remove() {
        let mut sad = Sad::new();
        let a = Arc::new(InboundSa::new(0x1000, cipher(), 64, vec![], vec![]).unwrap());
        assert!(sad.insert_inbound(a.clone()).is_none());
        assert!(Arc::ptr_eq(sad.inbound(0x1000).unwrap(), &a));
        assert!(sad.inbound(0x1001).is_none());
        let o = Arc::new(OutboundSa::new(0x2000, cipher(), vec![], vec![], None));
        sad.insert_outbound(7, o);
        assert_eq!(sad.outbound(7).unwrap().spi(), 0x2000);
        assert_eq!(sad.outbound_sas().count(), 1);
        assert!(sad.remove_inbound(0x1000).is_some());
        assert!(sad.remove_outbound(7).is_some());
        assert_eq!(sad.inbound_sas().count(), 0);
    }

    #[test]
    fn clones_share_sas_and_global_counters() {
        let mut sad = Sad::new();
        sad.insert_inbound(Arc::new(
            InboundSa::new(5, cipher(), 64, vec![], vec![]).unwrap(),
        ));
        let mut next = sad.clone();
        next.remove_inbound(5);
        assert!(sad.inbound(5).is_some() && next.inbound(5).is_none());
        next.drop_global(DropReason::UnknownSpi);
        assert_eq!(sad.global_drops().get(DropReason::UnknownSpi), 1);
    }

    #[test]
    fn counts_transport_mode_inbound_sas() {
        let sa = |spi, mode| {
            Arc::new(
                InboundSa::new(spi, cipher(), 64, vec![], vec![])
                    .unwrap()
                    .with_mode(mode),
            )
        };
        let mut sad = Sad::new();
        sad.insert_inbound(sa(1, crate::Mode::Tunnel));
        assert!(!sad.has_transport_inbound());
        sad.insert_inbound(sa(2, crate::Mode::Transport));
        assert!(sad.has_transport_inbound());
        // Replaced by a tunnel-mode SA under the same SPI, then gone.
        sad.insert_inbound(sa(2, crate::Mode::Tunnel));
        assert!(!sad.has_transport_inbound());
        sad.insert_inbound(sa(3, crate::Mode::Transport));
        let next = sad.clone();
        sad.remove_inbound(3);
        assert!(!sad.has_transport_inbound() && next.has_transport_inbound());
        assert!(sad.remove_inbound(3).is_none());
        assert!(!sad.has_transport_inbound());
    }

    #[test]
    fn hasher_spreads_keys() {
        let mut seen = std::collections::HashSet::new();
        for k in 0u32..1000 {
            let mut h = IdHasher::default();
            h.write_u32(k);
            seen.insert(h.finish() >> 57);
        }
        assert!(seen.len() > 100, "top 7 bits take {} values", seen.len());
    }
}
