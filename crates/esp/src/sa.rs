//! Security associations as the data plane holds them: keys ready to use,
//! traffic selectors, and the little per-packet state there is (the outbound
//! sequence counter, the inbound replay window, counters).
//!
//! SAs are immutable once built except for that per-packet state, which is
//! atomics, plus the replay window behind a `Mutex` held only for the check
//! and the commit, never across decryption. They are shared as `Arc`s between
//! the [`Sad`](crate::sad::Sad) snapshots and the worker threads.
//!
//! Keys never appear in `Debug` output: [`EspCipher`]'s is redacted, and the
//! SAs print only SPI, suite, selectors and endpoints.
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use oxisec_crypto::esp_cipher::{EspCipher, EspSuite};

use crate::limits::Limits;
use crate::replay::{ReplayError, ReplayWindow, WindowSizeError};
use crate::selector::Selector;
use crate::stats::{SaCounters, SaStats};

/// ESP-in-UDP endpoints (RFC 3948) of an SA behind a NAT: the driver sends
/// the ESP packet from `local` to `remote`, port 4500 normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UdpEncap {
    pub local: SocketAddr,
    pub remote: SocketAddr,
}

/// ESP mode of an SA (RFC 4303 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Mode {
    /// The whole inner IP packet is protected; next header 4 or 41.
    #[default]
    Tunnel,
    /// Host to host: the IP header stays outside, only the transport
    /// segment is protected; next header is its protocol (see
    /// [`transport`](crate::transport)).
    Transport,
}

/// The outbound sequence number counter would wrap (RFC 4303 §3.3.3): the
/// SA must be rekeyed before another packet can be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("ESP sequence numbers exhausted, SA must be rekeyed")]
pub struct SequenceExhausted;

/// State shared by every copy of one outbound SA (see
/// [`OutboundSa::with_udp_encap`]): one counter, so a sequence number — and
/// with AEAD ciphers the nonce derived from it — is never used twice.
#[derive(Debug)]
struct OutboundState {
    /// The next sequence number to hand out; starts at 1.
    next_seq: AtomicU64,
    counters: SaCounters,
}

/// A suite's per-packet sizes, worked out once per SA rather than per
/// packet (each answer of [`EspSuite`] re-derives the cipher kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sizes {
    /// ESP header and IV.
    pub head: usize,
    pub icv: usize,
    /// The payload incl. trailer ends on a multiple of this (≥ 4).
    pub align: usize,
}

impl Sizes {
    fn of(suite: EspSuite) -> Sizes {
        Sizes {
            head: oxisec_wire::esp::ESP_HEADER_LEN + suite.iv_len(),
            icv: suite.icv_len(),
            align: suite.block_align().max(4),
        }
    }
}

/// One outbound (sending) ESP SA.
pub struct OutboundSa {
    spi: u32,
    sizes: Sizes,
    cipher: Arc<EspCipher>,
    state: Arc<OutboundState>,
    local_ts: Vec<Selector>,
    remote_ts: Vec<Selector>,
    udp_encap: Option<UdpEncap>,
    limits: Limits,
    mode: Mode,
}

impl core::fmt::Debug for OutboundSa {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("OutboundSa")
            .field("spi", &format_args!("{:08x}", self.spi))
            .field("suite", &self.cipher.suite())
            .field("local_ts", &self.local_ts)
            .field("remote_ts", &self.remote_ts)
            .field("udp_encap", &self.udp_encap)
            .field("mode", &self.mode)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl OutboundSa {
    /// `spi` is the peer's inbound SPI; `local_ts`/`remote_ts` the
    /// negotiated selectors (sources of our packets / their destinations).
    pub fn new(
        spi: u32,
        cipher: EspCipher,
        local_ts: Vec<Selector>,
        remote_ts: Vec<Selector>,
        udp_encap: Option<UdpEncap>,
    ) -> OutboundSa {
        OutboundSa {
            spi,
            sizes: Sizes::of(cipher.suite()),
            cipher: Arc::new(cipher),
            state: Arc::new(OutboundState {
                next_seq: AtomicU64::new(1),
                counters: SaCounters::default(),
            }),
            local_ts,
            remote_ts,
            udp_encap,
            limits: Limits::NONE,
            mode: Mode::Tunnel,
        }
    }

    /// The same SA in `mode` (tunnel by default). Set it before the SA is
    /// shared, like the limits.
    pub fn with_mode(mut self, mode: Mode) -> OutboundSa {
        self.mode = mode;
        self
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The same SA with volume limits (none by default). Set them before
    /// the SA is shared: copies made earlier by
    /// [`with_udp_encap`](Self::with_udp_encap) keep their own limits.
    pub fn with_limits(mut self, limits: Limits) -> OutboundSa {
        self.limits = limits;
        self
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The same SA (same keys, same sequence counter, same counters) with new
    /// UDP endpoints, e.g. after a NAT mapping changed or MOBIKE moved the SA.
    /// Publish it in a new SAD snapshot; packets still sent through the old
    /// copy draw from the same counter, so no sequence number repeats.
    pub fn with_udp_encap(&self, udp_encap: Option<UdpEncap>) -> OutboundSa {
        OutboundSa {
            spi: self.spi,
            sizes: self.sizes,
            cipher: Arc::clone(&self.cipher),
            state: Arc::clone(&self.state),
            local_ts: self.local_ts.clone(),
            remote_ts: self.remote_ts.clone(),
            udp_encap,
            limits: self.limits,
            mode: self.mode,
        }
    }

    pub fn spi(&self) -> u32 {
        self.spi
    }

    pub fn suite(&self) -> EspSuite {
        self.cipher.suite()
    }

    pub fn cipher(&self) -> &EspCipher {
        &self.cipher
    }

    pub(crate) fn sizes(&self) -> Sizes {
        self.sizes
    }

    pub fn local_ts(&self) -> &[Selector] {
        &self.local_ts
    }

    pub fn remote_ts(&self) -> &[Selector] {
        &self.remote_ts
    }

    pub fn udp_encap(&self) -> Option<UdpEncap> {
        self.udp_encap
    }

    /// The highest sequence number a packet may carry: 2^32 − 1, or 2^64 − 1
    /// with ESN (RFC 4303 §3.3.3: the counter must not cycle).
    pub fn max_seq(&self) -> u64 {
        if self.cipher.suite().esn {
            u64::MAX
        } else {
            u64::from(u32::MAX)
        }
    }

    /// Takes the next sequence number. Lock-free; concurrent callers get
    /// distinct numbers.
    pub fn next_seq(&self) -> Result<u64, SequenceExhausted> {
        let max = self.max_seq();
        // fetch_update rather than fetch_add: the counter must stop at the
        // limit instead of wrapping (it is u64, and ESN uses all of it).
        self.state
            .next_seq
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n <= max && n != 0).then(|| n.wrapping_add(1))
            })
            .map_err(|_| SequenceExhausted)
    }

    /// Sequence numbers handed out so far (= the last one used).
    pub fn seq_used(&self) -> u64 {
        match self.state.next_seq.load(Ordering::Relaxed) {
            // Wrapped to 0 after handing out u64::MAX.
            0 => u64::MAX,
            n => n - 1,
        }
    }

    pub fn stats(&self) -> SaStats {
        self.state.counters.snapshot()
    }

    pub(crate) fn counters(&self) -> &SaCounters {
        &self.state.counters
    }

    #[cfg(test)]
    pub(crate) fn set_next_seq(&self, n: u64) {
        self.state.next_seq.store(n, Ordering::Relaxed);
    }
}

/// One inbound (receiving) ESP SA.
pub struct InboundSa {
    spi: u32,
    sizes: Sizes,
    cipher: EspCipher,
    replay: Mutex<ReplayWindow>,
    local_ts: Vec<Selector>,
    remote_ts: Vec<Selector>,
    counters: SaCounters,
    limits: Limits,
    mode: Mode,
    /// When the driver last reported inbound activity on this SA, in its
    /// own clock's units ([`claim_report`](Self::claim_report)); `NEVER`
    /// before the first report.
    last_report: AtomicU64,
}

/// `last_report` before any report.
const NEVER: u64 = u64::MAX;

impl core::fmt::Debug for InboundSa {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("InboundSa")
            .field("spi", &format_args!("{:08x}", self.spi))
            .field("suite", &self.cipher.suite())
            .field("local_ts", &self.local_ts)
            .field("remote_ts", &self.remote_ts)
            .field("mode", &self.mode)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl InboundSa {
    /// `spi` is our inbound SPI. Decapsulated packets must come from
    /// `remote_ts` and go to `local_ts`. `replay_window`: packets tracked by
    /// the anti-replay window (1..=[`MAX_WINDOW`](crate::replay::MAX_WINDOW)).
    pub fn new(
        spi: u32,
        cipher: EspCipher,
        replay_window: u32,
        local_ts: Vec<Selector>,
        remote_ts: Vec<Selector>,
    ) -> Result<InboundSa, WindowSizeError> {
        let replay = ReplayWindow::new(replay_window, cipher.suite().esn)?;
        Ok(InboundSa {
            spi,
            sizes: Sizes::of(cipher.suite()),
            cipher,
            replay: Mutex::new(replay),
            local_ts,
            remote_ts,
            counters: SaCounters::default(),
            limits: Limits::NONE,
            mode: Mode::Tunnel,
            last_report: AtomicU64::new(NEVER),
        })
    }

    /// The same SA in `mode` (tunnel by default). A transport-mode SA needs
    /// the packet's outer addresses: see
    /// [`decapsulate_from`](crate::decapsulate_from).
    pub fn with_mode(mut self, mode: Mode) -> InboundSa {
        self.mode = mode;
        self
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The same SA with volume limits (none by default).
    pub fn with_limits(mut self, limits: Limits) -> InboundSa {
        self.limits = limits;
        self
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Rate limit for the driver's "traffic arrived on this SA" reports
    /// (a liveness hint to the control plane): true at most once per
    /// `interval`, for the caller that gets to report. `now` and `interval`
    /// are in any monotonic unit the caller picks (e.g. milliseconds since
    /// it started); this crate reads no clock. One relaxed load per packet
    /// while a report is not due; a compare-exchange when it is, so
    /// concurrent threads report once.
    #[inline]
    pub fn claim_report(&self, now: u64, interval: u64) -> bool {
        let last = self.last_report.load(Ordering::Relaxed);
        if last != NEVER && now.saturating_sub(last) < interval {
            return false;
        }
        self.last_report
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }

    pub fn spi(&self) -> u32 {
        self.spi
    }

    pub fn suite(&self) -> EspSuite {
        self.cipher.suite()
    }

    pub(crate) fn cipher(&self) -> &EspCipher {
        &self.cipher
    }

    pub(crate) fn sizes(&self) -> Sizes {
        self.sizes
    }

    pub fn local_ts(&self) -> &[Selector] {
        &self.local_ts
    }

    pub fn remote_ts(&self) -> &[Selector] {
        &self.remote_ts
    }

    /// The highest authenticated sequence number received so far.
    pub fn highest_seq(&self) -> u64 {
        self.window().highest()
    }

    pub fn stats(&self) -> SaStats {
        self.counters.snapshot()
    }

    pub(crate) fn counters(&self) -> &SaCounters {
        &self.counters
    }

    /// The replay window. A panic elsewhere while it was held cannot leave
    /// it half-updated (every update is a few plain stores), so a poisoned
    /// lock is simply taken over.
    fn window(&self) -> MutexGuard<'_, ReplayWindow> {
        self.replay.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn replay_check(&self, seq_low: u32) -> Result<u64, ReplayError> {
        self.window().check(seq_low)
    }

    pub(crate) fn replay_commit(&self, seq: u64) -> Result<(), ReplayError> {
        self.window().commit(seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxisec_crypto::Secret;
    use oxisec_wire::encr;

    fn cipher(esn: bool) -> EspCipher {
        let suite = EspSuite {
            encr: encr::AES_GCM_16,
            encr_key_bits: Some(128),
            integ: None,
            esn,
        };
        EspCipher::new(suite, &Secret::new(vec![0x42; 20])).unwrap()
    }

    #[test]
    fn sequence_numbers_start_at_one_and_stop_at_the_limit() {
        let sa = OutboundSa::new(1, cipher(false), vec![], vec![], None);
        assert_eq!(sa.seq_used(), 0);
        assert_eq!(sa.next_seq(), Ok(1));
        assert_eq!(sa.next_seq(), Ok(2));
        assert_eq!(sa.seq_used(), 2);
        sa.set_next_seq(u64::from(u32::MAX));
        assert_eq!(sa.next_seq(), Ok(u64::from(u32::MAX)));
        assert_eq!(sa.next_seq(), Err(SequenceExhausted));
        assert_eq!(sa.next_seq(), Err(SequenceExhausted));
        assert_eq!(sa.seq_used(), u64::from(u32::MAX));
    }

    #[test]
    fn esn_counter_uses_64_bits_and_does_not_wrap() {
        let sa = OutboundSa::new(1, cipher(true), vec![], vec![], None);
        sa.set_next_seq(u64::from(u32::MAX));
        assert_eq!(sa.next_seq(), Ok(u64::from(u32::MAX)));
        assert_eq!(sa.next_seq(), Ok(1 << 32));
        sa.set_next_seq(u64::MAX);
        assert_eq!(sa.next_seq(), Ok(u64::MAX));
        assert_eq!(sa.next_seq(), Err(SequenceExhausted));
        assert_eq!(sa.seq_used(), u64::MAX);
    }

    #[test]
    fn copies_with_new_endpoints_share_the_counter() {
        let sa = OutboundSa::new(1, cipher(false), vec![], vec![], None);
        let ep = UdpEncap {
            local: "192.0.2.1:4500".parse().unwrap(),
            remote: "198.51.100.1:4500".parse().unwrap(),
        };
        let moved = sa.with_udp_encap(Some(ep));
        assert_eq!(sa.next_seq(), Ok(1));
        assert_eq!(moved.next_seq(), Ok(2));
        assert_eq!(moved.udp_encap(), Some(ep));
        assert_eq!(sa.udp_encap(), None);
    }

    #[test]
    fn concurrent_senders_never_share_a_number() {
        let sa = Arc::new(OutboundSa::new(1, cipher(false), vec![], vec![], None));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let sa = Arc::clone(&sa);
                std::thread::spawn(move || {
                    (0..1000)
                        .map(|_| sa.next_seq().unwrap())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all: Vec<u64> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 4000);
        assert_eq!(all.last(), Some(&4000));
    }

    #[test]
    fn inbound_window_size_is_checked() {
        assert!(InboundSa::new(1, cipher(false), 0, vec![], vec![]).is_err());
        let sa = InboundSa::new(1, cipher(true), 4096, vec![], vec![]).unwrap();
        assert_eq!(sa.highest_seq(), 0);
    }

    #[test]
    fn debug_shows_no_keys() {
        let sa = InboundSa::new(0xabcd, cipher(false), 64, vec![], vec![]).unwrap();
        let s = format!("{sa:?}");
        assert!(s.contains("0000abcd") && !s.contains("42"), "{s}");
        let sa = OutboundSa::new(0xabcd, cipher(false), vec![], vec![], None);
        let s = format!("{sa:?}");
        assert!(s.contains("0000abcd") && !s.contains("42"), "{s}");
    }

    #[test]
    fn limits_follow_copies_and_default_to_none() {
        let l = Limits {
            hard_packets: 7,
            ..Limits::NONE
        };
        let sa = OutboundSa::new(1, cipher(false), vec![], vec![], None);
        assert_eq!(*sa.limits(), Limits::NONE);
        let sa = sa.with_limits(l);
        assert_eq!(*sa.with_udp_encap(None).limits(), l);
        let sa = InboundSa::new(1, cipher(false), 64, vec![], vec![])
            .unwrap()
            .with_limits(l);
        assert_eq!(*sa.limits(), l);
    }

    #[test]
    fn activity_reports_are_rate_limited() {
        let sa = InboundSa::new(1, cipher(false), 64, vec![], vec![]).unwrap();
        // The first report is always due, even at time 0.
        assert!(sa.claim_report(0, 1000));
        assert!(!sa.claim_report(0, 1000));
        assert!(!sa.claim_report(999, 1000));
        assert!(sa.claim_report(1000, 1000));
        assert!(!sa.claim_report(1500, 1000));
        // A clock that went backwards reports nothing rather than flooding.
        assert!(!sa.claim_report(10, 1000));
        assert!(sa.claim_report(5000, 1000));
    }

    #[test]
    fn sas_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<OutboundSa>();
        check::<InboundSa>();
    }
}
