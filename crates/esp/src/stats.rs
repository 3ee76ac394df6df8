//! Per-SA and global counters: relaxed atomics bumped on the packet path, read
//! as plain snapshot structs by the control plane (status output, lifetimes).
use core::sync::atomic::{AtomicU64, Ordering};

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
}

impl DropReason {
    /// Number of reasons (size of the counter arrays).
    pub const COUNT: usize = 15;

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
        }
    }

    /// Drops that are part of normal operation and not worth a log line
    /// (dummy packets are sent on purpose by traffic-flow-confidential peers).
    pub fn is_silent(self) -> bool {
        matches!(self, DropReason::DummyPacket)
    }
}

// A new reason must be appended last and counted in COUNT and ALL.
const _: () = assert!(DropReason::CryptoFailure as usize + 1 == DropReason::COUNT);

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
    pub(crate) fn count_packet(&self, inner_len: usize) {
        self.packets.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(inner_len as u64, Ordering::Relaxed);
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
        c.count_packet(100);
        c.count_packet(20);
        c.drop(DropReason::BadPadding);
        c.drop(DropReason::BadPadding);
        c.drop(DropReason::DummyPacket);
        let s = c.snapshot();
        assert_eq!((s.packets, s.bytes), (2, 120));
        assert_eq!(s.drops.get(DropReason::BadPadding), 2);
        assert_eq!(s.drops.total(), 3);
        assert_eq!(s.drops.iter().count(), 2);
    }
}
