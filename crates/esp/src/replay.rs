//! Anti-replay window (RFC 4303 §3.4.3 and Appendix A), with 64-bit extended
//! sequence numbers.
//!
//! Decapsulation calls [`ReplayWindow::check`] with the 32 bits from the ESP
//! header *before* spending cycles on decryption; it returns the full 64-bit
//! sequence number (the high half inferred per RFC 4303 Appendix A2.2 when ESN
//! is on, 0 otherwise) that the ICV is then checked against. Only a packet whose
//! ICV verified is [`commit`](ReplayWindow::commit)ted, so forged packets can
//! neither advance nor poison the window.
//!
//! `check` takes `&self` and `commit` reports a duplicate again: when two
//! threads decrypt copies of the same packet concurrently (the lock is not held
//! across decryption), exactly one commit wins and the other copy is dropped.
//!
//! The bitmap is allocated once in [`ReplayWindow::new`]; `check` and `commit`
//! allocate nothing and cost O(1), except a jump forward, which clears at most
//! one window's worth of bits, a word at a time.

/// Largest supported window, in packets. 64 Ki packets is 8 KiB of bitmap per
/// inbound SA: room for heavy reordering across data-plane threads.
pub const MAX_WINDOW: u32 = 1 << 16;
/// A default that tolerates the reordering of a multi-threaded sender.
pub const DEFAULT_WINDOW: u32 = 1024;

/// Why a sequence number is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    /// Already received.
    #[error("duplicate sequence number")]
    Duplicate,
    /// Left of the window (or sequence number 0, which is never sent, or an
    /// ESN high half that cannot exist).
    #[error("sequence number left of the replay window")]
    TooOld,
}

/// The window size is 0 or above [`MAX_WINDOW`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("replay window size must be 1..={MAX_WINDOW} packets, not {0}")]
pub struct WindowSizeError(pub u32);

/// Receiver state for one inbound SA.
#[derive(Clone)]
pub struct ReplayWindow {
    /// W: how many sequence numbers at and below `top` are tracked.
    size: u32,
    esn: bool,
    /// Highest committed sequence number; 0 before the first packet.
    top: u64,
    /// Ring of `bits.len() * 64 >= size` bits; bit `s % nbits` stands for `s`.
    bits: Box<[u64]>,
}

impl core::fmt::Debug for ReplayWindow {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ReplayWindow")
            .field("size", &self.size)
            .field("esn", &self.esn)
            .field("highest", &self.top)
            .finish()
    }
}

impl ReplayWindow {
    /// A window of `size` packets (1..=[`MAX_WINDOW`]). `esn`: the SA uses
    /// 64-bit extended sequence numbers.
    pub fn new(size: u32, esn: bool) -> Result<ReplayWindow, WindowSizeError> {
        if size == 0 || size > MAX_WINDOW {
            return Err(WindowSizeError(size));
        }
        let words = (size as usize).div_ceil(64);
        Ok(ReplayWindow {
            size,
            esn,
            top: 0,
            bits: vec![0u64; words].into_boxed_slice(),
        })
    }

    pub fn size(&self) -> u32 {
        self.size
    }

    pub fn esn(&self) -> bool {
        self.esn
    }

    /// The highest sequence number committed so far (0 if none).
    pub fn highest(&self) -> u64 {
        self.top
    }

    fn nbits(&self) -> u64 {
        self.bits.len() as u64 * 64
    }

    fn bit(&self, seq: u64) -> bool {
        let pos = seq % self.nbits();
        self.bits[(pos / 64) as usize] & (1 << (pos % 64)) != 0
    }

    fn set_bit(&mut self, seq: u64) {
        let pos = seq % self.nbits();
        self.bits[(pos / 64) as usize] |= 1 << (pos % 64);
    }

    /// Clears the bits of `count` (< nbits) sequence numbers from `first` on.
    fn clear_range(&mut self, first: u64, count: u64) {
        let nbits = self.nbits();
        let mut pos = first % nbits;
        let mut left = count;
        while left > 0 {
            let bit = pos % 64;
            let take = (64 - bit).min(left);
            let mask = if take == 64 {
                u64::MAX
            } else {
                ((1u64 << take) - 1) << bit
            };
            self.bits[(pos / 64) as usize] &= !mask;
            left -= take;
            pos = (pos + take) % nbits;
        }
    }

    /// RFC 4303 Appendix A2.2: the high half of the sequence number for a
    /// received low half. `None` if it would fall outside 1..2^64.
    fn infer(&self, seq_low: u32) -> Option<u64> {
        if !self.esn {
            return Some(u64::from(seq_low));
        }
        let tl = self.top as u32;
        let th = (self.top >> 32) as u32;
        // Bottom of the window, Tl - W + 1, modulo 2^32.
        let bottom = tl.wrapping_sub(self.size - 1);
        let seqh = if tl >= self.size - 1 {
            // Case A: the window lies within one 2^32 subspace.
            if seq_low >= bottom {
                Some(th)
            } else {
                th.checked_add(1)
            }
        } else {
            // Case B: the window spans the boundary into the previous subspace.
            if seq_low >= bottom {
                th.checked_sub(1)
            } else {
                Some(th)
            }
        };
        seqh.map(|h| (u64::from(h) << 32) | u64::from(seq_low))
    }

    /// Checks a received sequence number before decryption. Returns the full
    /// 64-bit sequence number the ICV must be verified with.
    pub fn check(&self, seq_low: u32) -> Result<u64, ReplayError> {
        let seq = self.infer(seq_low).ok_or(ReplayError::TooOld)?;
        self.check_full(seq)?;
        Ok(seq)
    }

    fn check_full(&self, seq: u64) -> Result<(), ReplayError> {
        if seq == 0 {
            return Err(ReplayError::TooOld);
        }
        if seq > self.top {
            return Ok(());
        }
        if self.top - seq >= u64::from(self.size) {
            return Err(ReplayError::TooOld);
        }
        if self.bit(seq) {
            return Err(ReplayError::Duplicate);
        }
        Ok(())
    }

    /// Records a sequence number whose packet passed its ICV check. Fails if
    /// it was committed meanwhile (a concurrent copy) or has fallen out of the
    /// window since `check`; the packet must then be dropped.
    pub fn commit(&mut self, seq: u64) -> Result<(), ReplayError> {
        self.check_full(seq)?;
        if seq > self.top {
            let shift = seq - self.top;
            if shift >= self.nbits() {
                self.bits.fill(0);
            } else {
                self.clear_range(self.top + 1, shift);
            }
            self.top = seq;
        }
        self.set_bit(seq);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn accept(w: &mut ReplayWindow, low: u32) -> Result<u64, ReplayError> {
        let s = w.check(low)?;
        w.commit(s)?;
        Ok(s)
    }

    #[test]
    fn rejects_bad_sizes() {
        assert!(ReplayWindow::new(0, false).is_err());
        assert!(ReplayWindow::new(MAX_WINDOW + 1, false).is_err());
        assert!(ReplayWindow::new(MAX_WINDOW, true).is_ok());
        assert!(ReplayWindow::new(4096, true).is_ok());
        assert!(ReplayWindow::new(1, false).is_ok());
    }

    #[test]
    fn first_packet_and_zero() {
        let mut w = ReplayWindow::new(64, false).unwrap();
        assert_eq!(w.check(0), Err(ReplayError::TooOld));
        assert_eq!(accept(&mut w, 1), Ok(1));
        assert_eq!(accept(&mut w, 1), Err(ReplayError::Duplicate));
        // A first packet far ahead is fine too.
        let mut w = ReplayWindow::new(64, false).unwrap();
        assert_eq!(accept(&mut w, 1000), Ok(1000));
        assert_eq!(accept(&mut w, 999), Ok(999));
    }

    #[test]
    fn exact_window_boundary() {
        for size in [1u32, 32, 64, 65, 100, 4096] {
            let mut w = ReplayWindow::new(size, false).unwrap();
            let top = 10_000u32;
            accept(&mut w, top).unwrap();
            let lowest = top - (size - 1);
            // The oldest number still inside the window is accepted once…
            if size > 1 {
                assert_eq!(accept(&mut w, lowest), Ok(u64::from(lowest)), "size {size}");
            }
            assert_eq!(
                accept(&mut w, lowest),
                Err(ReplayError::Duplicate),
                "size {size}"
            );
            // …one below it is too old.
            assert_eq!(w.check(lowest - 1), Err(ReplayError::TooOld), "size {size}");
        }
    }

    #[test]
    fn duplicate_of_the_top_and_inside() {
        let mut w = ReplayWindow::new(128, false).unwrap();
        for s in [5, 7, 6, 100, 50] {
            accept(&mut w, s).unwrap();
        }
        for s in [5, 7, 6, 100, 50] {
            assert_eq!(w.check(s), Err(ReplayError::Duplicate), "{s}");
        }
        assert_eq!(accept(&mut w, 8), Ok(8));
    }

    #[test]
    fn big_jump_clears_the_bitmap() {
        let mut w = ReplayWindow::new(256, false).unwrap();
        for s in 1..=256 {
            accept(&mut w, s).unwrap();
        }
        // Jump by more than a window: nothing old may linger as "seen".
        accept(&mut w, 256 + 1000).unwrap();
        for s in 1001..1256 {
            assert_eq!(accept(&mut w, s), Ok(u64::from(s)));
        }
        assert_eq!(w.check(1000), Err(ReplayError::TooOld));
        // Jump by less than a window: the skipped numbers become acceptable.
        let mut w = ReplayWindow::new(256, false).unwrap();
        for s in 1..=300 {
            accept(&mut w, s).unwrap();
        }
        accept(&mut w, 400).unwrap();
        for s in 301..400 {
            assert_eq!(accept(&mut w, s), Ok(u64::from(s)));
        }
        for s in 145..=400 {
            assert_eq!(w.check(s), Err(ReplayError::Duplicate), "{s}");
        }
        assert_eq!(w.check(144), Err(ReplayError::TooOld));
    }

    #[test]
    fn commit_reports_a_concurrent_duplicate() {
        let mut w = ReplayWindow::new(64, false).unwrap();
        let a = w.check(9).unwrap();
        let b = w.check(9).unwrap();
        assert_eq!(w.commit(a), Ok(()));
        assert_eq!(w.commit(b), Err(ReplayError::Duplicate));
        // And one that fell out of the window between check and commit.
        let old = w.check(5).unwrap();
        w.commit(1000).unwrap();
        assert_eq!(w.commit(old), Err(ReplayError::TooOld));
    }

    #[test]
    fn without_esn_there_is_no_high_half() {
        let mut w = ReplayWindow::new(64, false).unwrap();
        accept(&mut w, u32::MAX).unwrap();
        assert_eq!(w.highest(), u64::from(u32::MAX));
        // Numbers do not wrap to 2^32 without ESN: 1 is simply too old.
        assert_eq!(w.check(1), Err(ReplayError::TooOld));
    }

    #[test]
    fn esn_wraps_across_the_2_32_boundary() {
        let mut w = ReplayWindow::new(64, true).unwrap();
        let near = u32::MAX - 10;
        // (A first packet this close to 2^32 would be read as the previous
        // subspace's — RFC 4303 A2.2 case B with an empty window.)
        assert_eq!(accept(&mut w, near - 100), Ok(u64::from(near - 100)));
        assert_eq!(accept(&mut w, near), Ok(u64::from(near)));
        // Low half wrapped: inferred in the next subspace.
        assert_eq!(accept(&mut w, 3), Ok((1 << 32) | 3));
        assert_eq!(w.highest(), (1 << 32) | 3);
        // Window now spans the boundary (case B): late packets of the
        // previous subspace still get high half 0.
        assert_eq!(accept(&mut w, u32::MAX), Ok(u64::from(u32::MAX)));
        assert_eq!(accept(&mut w, near + 1), Ok(u64::from(near + 1)));
        assert_eq!(w.check(near), Err(ReplayError::Duplicate));
        // 2^32 itself (low half 0) is a valid ESN sequence number.
        assert_eq!(accept(&mut w, 0), Ok(1 << 32));
        assert_eq!(w.check(0), Err(ReplayError::Duplicate));
        // The bottom of the window is still in the old subspace…
        let lowest = ((1u64 << 32) | 3) - 63;
        assert_eq!(w.check(lowest as u32), Ok(lowest));
        // …and a low half just below it can only be read as the next
        // subspace (A2.2 case B): far ahead, where its ICV check fails.
        let below = lowest as u32 - 1;
        assert_eq!(w.check(below), Ok((1 << 32) | (lowest - 1)));
        assert_ne!(w.check(below), Ok(lowest - 1));
    }

    #[test]
    fn esn_case_a_far_below_is_read_as_next_subspace() {
        // RFC 4303 A2.2: in case A a low half below the window is taken to
        // be in the next subspace; the ICV check then rejects a replay.
        let mut w = ReplayWindow::new(64, true).unwrap();
        accept(&mut w, 10_000).unwrap();
        assert_eq!(w.check(100), Ok((1 << 32) | 100));
    }

    #[test]
    fn esn_first_packets() {
        let mut w = ReplayWindow::new(64, true).unwrap();
        assert_eq!(w.check(0), Err(ReplayError::TooOld));
        // Before anything arrived the window spans 0: the top of subspace -1.
        assert_eq!(w.check(u32::MAX), Err(ReplayError::TooOld));
        assert_eq!(accept(&mut w, 1), Ok(1));
    }

    #[test]
    fn esn_top_of_the_sequence_space() {
        let mut w = ReplayWindow::new(64, true).unwrap();
        w.commit(u64::MAX).unwrap();
        assert_eq!(w.check(u32::MAX), Err(ReplayError::Duplicate));
        assert_eq!(w.check(u32::MAX - 1), Ok(u64::MAX - 1));
        // Would need a high half of 2^32.
        assert_eq!(w.check(5), Err(ReplayError::TooOld));
    }

    /// Naive model: the set of committed numbers and the highest.
    #[derive(Default)]
    struct Model {
        seen: BTreeSet<u64>,
        top: u64,
    }

    impl Model {
        fn acceptable(&self, seq: u64, size: u32) -> bool {
            seq != 0
                && !self.seen.contains(&seq)
                && (seq > self.top || self.top - seq < u64::from(size))
        }
        fn commit(&mut self, seq: u64) {
            self.seen.insert(seq);
            self.top = self.top.max(seq);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Without ESN the window must agree exactly with the model.
        #[test]
        fn matches_naive_model(
            size in prop_oneof![Just(1u32), Just(64), 1u32..300, Just(4096)],
            seqs in prop::collection::vec(
                prop_oneof![0u32..20, 0u32..400, 4000u32..5000, any::<u32>()], 1..300),
        ) {
            let mut w = ReplayWindow::new(size, false).unwrap();
            let mut m = Model::default();
            for low in seqs {
                let seq = u64::from(low);
                let expected = m.acceptable(seq, size);
                let got = w.check(low);
                prop_assert_eq!(got.is_ok(), expected, "check {} top {}", seq, m.top);
                if let Ok(s) = got {
                    prop_assert_eq!(s, seq);
                    prop_assert!(w.commit(s).is_ok());
                    m.commit(s);
                }
                prop_assert_eq!(w.highest(), m.top);
            }
        }

        /// With ESN: whenever the true number is acceptable the window must
        /// infer it and accept it; when it is not, the window must refuse it
        /// or infer a different number (whose ICV check would then fail).
        #[test]
        fn esn_matches_naive_model(
            size in prop_oneof![Just(1u32), Just(64), 2u32..300, Just(4096)],
            start in prop_oneof![Just(1u64), (1u64 << 32) - 5000..(1u64 << 32) + 10, 1u64..u64::MAX / 2],
            steps in prop::collection::vec(
                prop_oneof![
                    4 => 1i64..4,
                    2 => -300i64..300,
                    1 => 1i64..(1 << 31),
                    1 => -9000i64..0,
                ], 1..300),
        ) {
            let mut w = ReplayWindow::new(size, true).unwrap();
            let mut m = Model::default();
            let mut cur = start;
            for step in steps {
                // Keep within what the sender could have sent: ahead of the
                // window by less than 2^31, behind it by a bounded amount.
                let next = cur.saturating_add_signed(step).max(1);
                let seq = if next > m.top + (1 << 31) { m.top + 1 } else { next };
                cur = seq;
                let expected = m.acceptable(seq, size);
                match w.check(seq as u32) {
                    Ok(s) if s == seq => {
                        prop_assert!(expected, "accepted {} top {}", seq, m.top);
                        prop_assert!(w.commit(s).is_ok());
                        m.commit(s);
                    }
                    Ok(other) => {
                        prop_assert!(!expected, "inferred {} for {} top {}", other, seq, m.top);
                    }
                    Err(_) => prop_assert!(!expected, "refused {} top {}", seq, m.top),
                }
                prop_assert_eq!(w.highest(), m.top);
            }
        }
    }
}
