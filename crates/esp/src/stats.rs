//! Per-SA and global counters: relaxed atomics bumped on the packet path, read
//! as plain snapshot structs by the control plane (status output, lifetimes).
use core::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use crate::limits::{Crossed, HARD_BIT, Limits, SOFT_BIT};

/// Why a packet was dropped (or, for outbound, not sent). Inbound reasons are
/// listed in the order decapsulation checks them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum DropReason {
    /// Too short for the ESP header, IV, trailer and ICV.
    #[error("truncated ESP packet")]
    Truncated,
    /// No inbound SA has this SPI.
    #[error("unknown SPI")]
    UnknownSpi,
    /// Sequence number already received.
    #[error("replayed sequence number")]
    ReplayDuplicate,
    /// Sequence number left of the replay window.
    #[error("sequence number too old")]
    ReplayTooOld,
    /// The ICV did not verify (forged, corrupted, or the wrong ESN high half).
    #[error("integrity check failed")]
    IntegrityFailed,
    /// The ciphertext's length does not fit the cipher (e.g. CBC blocks).
    #[error("malformed ciphertext")]
    Malformed,
    /// Next header 59: a dummy packet (RFC 4303 §2.6), dropped silently.
    #[error("dummy packet")]
    DummyPacket,
    /// Pad length or padding bytes are wrong.
    #[error("bad padding")]
    BadPadding,
    /// Next header is neither IPv4 (4) nor IPv6 (41): not tunnel mode.
    #[error("unsupported next header")]
    BadNextHeader,
    /// The inner packet is not a sane IP packet of the announced version.
    #[error("malformed inner packet")]
    MalformedInner,
    /// The inner packet's addresses, protocol or ports are outside the SA's
    /// traffic selectors (RFC 4301 §5.2 step 4).
    #[error("inner packet outside the SA's selectors")]
    SelectorMismatch,
    /// Outbound: the buffer is not an IP packet.
    #[error("not an IP packet")]
    NotIp,
    /// Outbound: not enough head- or tailroom in the buffer.
    #[error("no room in buffer")]
    NoRoom,
    /// Outbound: the sequence number counter is exhausted; rekey.
    #[error("sequence numbers exhausted")]
    SequenceExhausted,
    /// Outbound: the cipher failed (should not happen).
    #[error("encryption failed")]
    CryptoFailure,
    /// The SA reached a hard byte or packet limit
    /// ([`Limits`](crate::limits::Limits)): it neither protects nor accepts
    /// packets any more, and waits for the control plane to delete it.
    #[error("SA expired (hard volume limit reached)")]
    Expired,
}

impl DropReason {
    /// Number of reasons (size of the counter arrays).
    pub const COUNT: usize = 16;

    /// Every reason, in declaration order.
    pub const ALL: [DropReason; DropReason::COUNT] = [
        DropReason::Truncated,
        DropReason::UnknownSpi,
        DropReason::ReplayDuplicate,
        DropReason::ReplayTooOld,
        DropReason::IntegrityFailed,
        DropReason::Malformed,
        DropReason::DummyPacket,
        DropReason::BadPadding,
        DropReason::BadNextHeader,
        DropReason::MalformedInner,
        DropReason::SelectorMismatch,
        DropReason::NotIp,
        DropReason::NoRoom,
        DropReason::SequenceExhausted,
        DropReason::CryptoFailure,
        DropReason::Expired,
    ];

    fn index(self) -> usize {
        self as usize
    }

    /// A short stable name for status output and metrics.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::Truncated => "truncated",
            DropReason::UnknownSpi => "unknown_spi",
            DropReason::ReplayDuplicate => "replay_duplicate",
            DropReason::ReplayTooOld => "replay_too_old",
            DropReason::IntegrityFailed => "integrity_failed",
            DropReason::Malformed => "malformed",
            DropReason::DummyPacket => "dummy_packet",
            DropReason::BadPadding => "bad_padding",
            DropReason::BadNextHeader => "bad_next_header",
            DropReason::MalformedInner => "malformed_inner",
            DropReason::SelectorMismatch => "selector_mismatch",
            DropReason::NotIp => "not_ip",
            DropReason::NoRoom => "no_room",
            DropReason::SequenceExhausted => "sequence_exhausted",
            DropReason::CryptoFailure => "crypto_failure",
            DropReason::Expired => "expired",
        }
    }

    /// Drops that are part of normal operation and not worth a log line
    /// (dummy packets are sent on purpose by traffic-flow-confidential peers).
    pub fn is_silent(self) -> bool {
        matches!(self, DropReason::DummyPacket)
    }
}

// A new reason must be appended last and counted in COUNT and ALL.
const _: () = assert!(DropReason::Expired as usize + 1 == DropReason::COUNT);

/// A snapshot of drop counts by reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DropCounts([u64; DropReason::COUNT]);

impl DropCounts {
    pub fn get(&self, reason: DropReason) -> u64 {
        self.0[reason.index()]
    }
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
    /// Reasons with a non-zero count.
    pub fn iter(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL
            .iter()
            .map(|r| (*r, self.get(*r)))
            .filter(|(_, n)| *n != 0)
    }
}

/// Live drop counters.
#[derive(Debug, Default)]
pub struct DropCounters([AtomicU64; DropReason::COUNT]);

impl DropCounters {
    pub fn bump(&self, reason: DropReason) {
        self.0[reason.index()].fetch_add(1, Ordering::Relaxed);
    }
    pub fn snapshot(&self) -> DropCounts {
        DropCounts(core::array::from_fn(|i| self.0[i].load(Ordering::Relaxed)))
    }
}

/// Live counters of one SA (one direction).
#[derive(Debug, Default)]
pub struct SaCounters {
    packets: AtomicU64,
    /// Inner (plaintext IP) bytes, the unit of RFC 4301 byte lifetimes.
    bytes: AtomicU64,
    drops: DropCounters,
    /// Which limit crossings were reported (`SOFT_BIT`, `HARD_BIT`): each at
    /// most once, even when bytes and packets cross on different threads.
    reported: AtomicU8,
}

/// A snapshot of one SA's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SaStats {
    /// Packets encapsulated (outbound) or successfully decapsulated (inbound).
    pub packets: u64,
    /// Inner IP bytes of those packets.
    pub bytes: u64,
    pub drops: DropCounts,
}

impl SaCounters {
    /// Counts one packet of `inner_len` bytes and returns the limits it
    /// crossed first. The `fetch_add`s tell exactly which packet took a
    /// counter over a limit; only then is the `reported` byte touched.
    #[inline]
    pub(crate) fn count_packet(&self, inner_len: usize, limits: &Limits) -> Crossed {
        let len = inner_len as u64;
        let old_packets = self.packets.fetch_add(1, Ordering::Relaxed);
        let old_bytes = self.bytes.fetch_add(len, Ordering::Relaxed);
        let bits = limits.crossings(old_packets, old_bytes, len);
        if bits == 0 {
            return Crossed::NONE;
        }
        // Rare: claim the crossings nobody reported yet.
        let before = self.reported.fetch_or(bits, Ordering::Relaxed);
        let new = bits & !before;
        Crossed {
            soft: new & SOFT_BIT != 0,
            hard: new & HARD_BIT != 0,
        }
    }

    /// Whether the SA has reached a hard limit and must drop packets: two
    /// relaxed loads of counters this SA writes anyway.
    #[inline]
    pub(crate) fn hard_reached(&self, limits: &Limits) -> bool {
        limits.hard_reached(
            self.packets.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
        )
    }
    pub(crate) fn drop(&self, reason: DropReason) {
        self.drops.bump(reason);
    }
    pub fn snapshot(&self) -> SaStats {
        SaStats {
            packets: self.packets.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            drops: self.drops.snapshot(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_is_complete_and_ordered() {
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
        let names: std::collections::HashSet<_> =
            DropReason::ALL.iter().map(|r| r.name()).collect();
        assert_eq!(names.len(), DropReason::COUNT);
    }

    #[test]
    fn counts() {
        let c = SaCounters::default();
        c.count_packet(100, &Limits::NONE);
        c.count_packet(20, &Limits::NONE);
        c.drop(DropReason::BadPadding);
        c.drop(DropReason::BadPadding);
        c.drop(DropReason::DummyPacket);
        let s = c.snapshot();
        assert_eq!((s.packets, s.bytes), (2, 120));
        assert_eq!(s.drops.get(DropReason::BadPadding), 2);
        assert_eq!(s.drops.total(), 3);
        assert_eq!(s.drops.iter().count(), 2);
    }

    #[test]
    fn each_crossing_is_reported_once() {
        let c = SaCounters::default();
        let l = Limits {
            soft_packets: 2,
            soft_bytes: 250,
            hard_packets: 4,
            hard_bytes: 0,
        };
        let got: Vec<Crossed> = (0..6).map(|_| c.count_packet(100, &l)).collect();
        let soft = Crossed {
            soft: true,
            hard: false,
        };
        let hard = Crossed {
            soft: false,
            hard: true,
        };
        // Packet 2 reaches the soft packet limit; packet 3 the soft byte
        // limit (300 > 250), which is not reported again.
        assert_eq!(
            got,
            [
                Crossed::NONE,
                soft,
                Crossed::NONE,
                hard,
                Crossed::NONE,
                Crossed::NONE
            ]
        );
        assert!(c.hard_reached(&l));
    }

    #[test]
    fn concurrent_crossings_are_reported_once() {
        let c = std::sync::Arc::new(SaCounters::default());
        let l = Limits {
            soft_packets: 1000,
            soft_bytes: 30_000,
            hard_packets: 3000,
            hard_bytes: 90_000,
        };
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let c = std::sync::Arc::clone(&c);
                std::thread::spawn(move || {
                    let (mut soft, mut hard) = (0, 0);
                    for _ in 0..2000 {
                        let x = c.count_packet(40, &l);
                        soft += usize::from(x.soft);
                        hard += usize::from(x.hard);
                    }
                    (soft, hard)
                })
            })
            .collect();
        let (soft, hard) = handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
        assert_eq!((soft, hard), (1, 1));
    }
}
