//! Volume limits of an SA: the byte and packet halves of an SA's lifetime
//! (RFC 4301 §4.4.2.1), a soft one that asks the control plane to rekey and
//! a hard one after which the SA protects and accepts nothing more.
//!
//! The data plane counts every packet anyway ([`SaCounters`]); the limits are
//! checked against the values those `fetch_add`s return, so a crossing is
//! seen by exactly the one packet (on whichever thread) that took a counter
//! over the limit, with no lock and no extra atomic on the ordinary path.
//! Soft and hard are each reported once per SA even when both the byte and
//! the packet limit are crossed (by different packets, possibly
//! concurrently): a per-SA bit set with `fetch_or` decides who reports.
//!
//! [`SaCounters`]: crate::stats::SaCounters

/// Byte and packet limits of one SA; 0 = no limit. Bytes are inner
/// (plaintext IP) bytes, the unit of the counters.
///
/// A limit of `n` is *reached* by the packet that takes the count to `n` or
/// beyond: that packet still passes and reports the crossing; with a hard
/// limit every later packet is dropped
/// ([`DropReason::Expired`](crate::DropReason::Expired)). Senders on several
/// threads may each get one more packet through while the limit is being
/// reached; the sequence number limit itself is exact regardless.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Limits {
    pub soft_bytes: u64,
    pub hard_bytes: u64,
    pub soft_packets: u64,
    pub hard_packets: u64,
}

/// Which limits one packet crossed: at most once each per SA, so a `true`
/// here is the data plane's cue to tell the control plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Crossed {
    /// The first soft limit (bytes or packets) was reached: rekey.
    pub soft: bool,
    /// The first hard limit was reached: the SA is finished.
    pub hard: bool,
}

impl Crossed {
    /// Nothing crossed (the usual case).
    pub const NONE: Crossed = Crossed {
        soft: false,
        hard: false,
    };

    pub fn any(self) -> bool {
        self.soft || self.hard
    }
}

/// Bits of the per-SA "already reported" byte.
pub(crate) const SOFT_BIT: u8 = 1;
pub(crate) const HARD_BIT: u8 = 2;

/// The count above which limit `l` is reached: `l − 1`, and `u64::MAX` for
/// "no limit" (0), which no count can exceed. Branch-free.
#[inline]
fn threshold(l: u64) -> u64 {
    l.wrapping_sub(1)
}

impl Limits {
    /// No limits at all.
    pub const NONE: Limits = Limits {
        soft_bytes: 0,
        hard_bytes: 0,
        soft_packets: 0,
        hard_packets: 0,
    };

    /// Whether counts of `packets` and `bytes` have reached a hard limit.
    #[inline]
    pub(crate) fn hard_reached(&self, packets: u64, bytes: u64) -> bool {
        packets > threshold(self.hard_packets) || bytes > threshold(self.hard_bytes)
    }

    /// The bits (`SOFT_BIT`, `HARD_BIT`) of the limits that one packet of
    /// `len` bytes, counted on top of `old_packets` / `old_bytes`, took the
    /// counters over.
    #[inline]
    pub(crate) fn crossings(&self, old_packets: u64, old_bytes: u64, len: u64) -> u8 {
        let new_packets = old_packets.saturating_add(1);
        let new_bytes = old_bytes.saturating_add(len);
        let over = |limit: u64, old: u64, new: u64| {
            let t = threshold(limit);
            old <= t && new > t
        };
        let mut bits = 0;
        if over(self.soft_packets, old_packets, new_packets)
            || over(self.soft_bytes, old_bytes, new_bytes)
        {
            bits |= SOFT_BIT;
        }
        if over(self.hard_packets, old_packets, new_packets)
            || over(self.hard_bytes, old_bytes, new_bytes)
        {
            bits |= HARD_BIT;
        }
        bits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_means_no_limit() {
        let l = Limits::NONE;
        assert!(!l.hard_reached(u64::MAX - 1, u64::MAX - 1));
        assert_eq!(l.crossings(u64::MAX - 2, u64::MAX - 10, 9), 0);
        assert_eq!(l.crossings(0, 0, 1500), 0);
    }

    #[test]
    fn packet_limits_are_reached_by_the_nth_packet() {
        let l = Limits {
            soft_packets: 3,
            hard_packets: 5,
            ..Limits::NONE
        };
        let bits: Vec<u8> = (0..8).map(|old| l.crossings(old, old * 100, 100)).collect();
        assert_eq!(bits, [0, 0, SOFT_BIT, 0, HARD_BIT, 0, 0, 0]);
        assert!(!l.hard_reached(4, 0));
        assert!(l.hard_reached(5, 0));
    }

    #[test]
    fn byte_limits_are_crossed_by_the_packet_that_passes_them() {
        let l = Limits {
            soft_bytes: 1000,
            hard_bytes: 2000,
            ..Limits::NONE
        };
        assert_eq!(l.crossings(0, 0, 999), 0);
        assert_eq!(l.crossings(1, 999, 1), SOFT_BIT);
        assert_eq!(l.crossings(2, 1000, 500), 0);
        // One big packet over both at once.
        assert_eq!(l.crossings(0, 0, 5000), SOFT_BIT | HARD_BIT);
        assert!(!l.hard_reached(3, 1999));
        assert!(l.hard_reached(3, 2000));
    }

    #[test]
    fn counters_near_the_top_do_not_wrap() {
        let l = Limits {
            hard_bytes: u64::MAX,
            ..Limits::NONE
        };
        assert_eq!(l.crossings(0, u64::MAX - 1, 10), HARD_BIT);
        assert_eq!(l.crossings(0, u64::MAX, 10), 0);
    }
}
