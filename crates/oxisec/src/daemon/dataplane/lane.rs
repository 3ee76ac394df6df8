//! The per-packet work of a data-plane lane, without the I/O: what the
//! TUN reader does with one read ([`encap_read`] into a [`TxArena`]) and
//! what the UDP reader does with one received datagram ([`RxPath`]).
//!
//! Kept apart from the loops in the parent module so that tests can drive
//! it with real SAs and check that the steady state neither allocates nor
//! loses a byte (`tests/dataplane_alloc.rs`).
use std::io::IoSlice;
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::atomic::Ordering;

use oxisec_esp::{DropReason, PacketBuf, UdpEncap, encap_overhead};
use oxisec_ike::Datagram;
use oxisec_wire::esp::{Udp4500, classify_udp4500};

use super::DropCounters;
use super::batch::{MAX_GSO_BYTES, MAX_GSO_SEGMENTS, SendBatch, SendMsg};
use super::mtu::{IPV6_MIN_MTU, MtuSettings, clamp_mss, too_big_reply};
use super::offload::{Coalescer, Segmenter};
use crate::daemon::esp::{Decap, Encap, EncapDrop, Worker};
use crate::daemon::rawesp::is_raw;
use crate::daemon::transport::TransportScratch;

/// Where a TUN reader builds ESP packets, back to back, and the messages
/// (runs of equal-size packets to one peer) that send them.
pub struct TxArena {
    arena: Box<[u8]>,
    used: usize,
    v4: SendBatch,
    v6: SendBatch,
    /// Raw ESP (protocol 50) messages: one packet each, no GSO.
    raw4: SendBatch,
    raw6: SendBatch,
}

/// Which socket a batch of [`TxArena::flush_with`] goes out on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Via {
    /// IPv4 (else IPv6) peers.
    pub v4: bool,
    /// Raw ESP (else ESP in UDP).
    pub raw: bool,
}

impl TxArena {
    /// `bytes` of arena; up to `msgs` messages per family and flush; `gso`:
    /// runs of packets go out as one UDP GSO send.
    pub fn new(bytes: usize, msgs: usize, gso: bool) -> TxArena {
        TxArena {
            arena: vec![0u8; bytes].into_boxed_slice(),
            used: 0,
            v4: SendBatch::new(msgs, gso),
            v6: SendBatch::new(msgs, gso),
            raw4: SendBatch::new(msgs, false),
            raw6: SendBatch::new(msgs, false),
        }
    }

    fn batch(&mut self, udp: &UdpEncap) -> &mut SendBatch {
        match (udp.remote.is_ipv4(), is_raw(udp)) {
            (true, false) => &mut self.v4,
            (false, false) => &mut self.v6,
            (true, true) => &mut self.raw4,
            (false, true) => &mut self.raw6,
        }
    }

    /// Whether a packet of `len` bytes to `udp` fits without a flush.
    fn room(&mut self, len: usize, udp: &UdpEncap) -> bool {
        self.used + len <= self.arena.len() && !self.batch(udp).is_full()
    }

    /// Whether nothing waits to be sent.
    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty() && self.raw4.is_empty() && self.raw6.is_empty()
    }

    /// Records the ESP packet at `at..at + len` (just after the previous
    /// one) for `udp`: it extends the last message when that goes to the
    /// same peer, all its packets have this length (a shorter one may end
    /// a run) and the run has room.
    fn commit(&mut self, at: usize, len: usize, udp: UdpEncap) {
        self.used = at + len;
        let b = self.batch(&udp);
        let local = udp.local.ip();
        if b.gso()
            && let Some(m) = b.last_mut()
            && m.remote == udp.remote
            && m.local == local
            && m.range.end == at
            && m.range.len() == m.seg * m.count
            && len <= m.seg
            && m.count < MAX_GSO_SEGMENTS
            && m.range.len() + len <= MAX_GSO_BYTES
        {
            m.range.end += len;
            m.count += 1;
            return;
        }
        let pushed = b.push(SendMsg {
            range: at..at + len,
            seg: len,
            count: 1,
            local,
            remote: udp.remote,
        });
        debug_assert!(pushed, "room() checked the batch");
    }

    /// Hands every queued message to `send` (one call per socket kind
    /// with its batch and the arena) and starts over.
    pub fn flush_with(&mut self, mut send: impl FnMut(Via, &mut SendBatch, &[u8])) {
        let arena = &self.arena[..self.used];
        for (v4, raw, b) in [
            (true, false, &mut self.v4),
            (false, false, &mut self.v6),
            (true, true, &mut self.raw4),
            (false, true, &mut self.raw6),
        ] {
            if !b.is_empty() {
                send(Via { v4, raw }, b, arena);
            }
        }
        self.used = 0;
    }
}

/// Extra tailroom for a transport-mode packet: its padding is computed
/// for the segment without the IP header, at most one cipher block more.
const TRANSPORT_SLACK: usize = 16;

/// Encapsulates every packet one TUN read stands for into `tx`, calling
/// `flush` whenever the arena is full. One policy and SA lookup for all
/// segments (they share addresses, protocol and ports); each segment then
/// takes its own sequence number and is counted on the SA as usual.
///
/// Segments larger than the SA carries on the path ([`MtuSettings`]) are
/// dropped (`out: too_big`) and answered, once per read and rate-limited,
/// with an ICMP "too big" handed to `reply` for the TUN device; SYNs get
/// their MSS clamped when configured.
pub fn encap_read(
    worker: &mut Worker,
    seg: &Segmenter<'_>,
    tx: &mut TxArena,
    drops: &DropCounters,
    mtu: &MtuSettings,
    reply: &mut impl FnMut(&[u8]),
    flush: &mut impl FnMut(&mut TxArena),
) {
    let n = seg.count() as u64;
    // A single packet may wait for its trap's SA (a TSO read stands for
    // many, which would need their offload header kept too).
    let out = match worker.outbound_or_hold(seg.packet(), n == 1) {
        Ok(o) => o,
        Err(Encap::NoPolicy) => {
            drops.no_policy.fetch_add(n, Ordering::Relaxed);
            return;
        }
        Err(Encap::Drop(d)) => {
            count_drop(drops, d, n);
            return;
        }
        Err(Encap::Send { .. }) => return,
    };
    let v4 = out.udp.remote.is_ipv4();
    let transport = out.sa.mode() == oxisec_esp::Mode::Transport;
    let limit = mtu.limit(out.sa, v4);
    let mss = mtu.tx_mss(limit);
    let mut answered = false;
    for i in 0..seg.count() {
        let inner_len = seg.len(i);
        if inner_len > limit {
            drops.too_big.fetch_add(1, Ordering::Relaxed);
            if !answered && mtu.icmp_allowed() {
                answered = true;
                let mut icmp = [0u8; IPV6_MIN_MTU];
                if let Some(n) = too_big_reply(seg.packet(), limit, &mut icmp) {
                    reply(&icmp[..n]);
                }
            }
            continue;
        }
        let (head, tail) = encap_overhead(out.sa, inner_len);
        // Transport mode pads the segment without its IP header, which
        // may take up to a block more than the whole packet would.
        let slack = if transport { TRANSPORT_SLACK } else { 0 };
        let len = head + inner_len + tail + slack;
        if !tx.room(len, &out.udp) {
            flush(tx);
        }
        let at = tx.used;
        let Some(frame) = tx.arena.get_mut(at..at + len) else {
            // Larger than the whole arena: cannot be (segments are at most
            // 64 KiB and the arena is larger), but not worth a panic.
            count_drop(drops, EncapDrop::Esp(DropReason::NoRoom), 1);
            continue;
        };
        if seg.write(i, &mut frame[head..head + inner_len]).is_none() {
            count_drop(drops, EncapDrop::Esp(DropReason::NoRoom), 1);
            continue;
        }
        if let Some(mss) = mss {
            clamp_mss(&mut frame[head..head + inner_len], mss);
        }
        let Ok(mut pb) = PacketBuf::over(frame, head, head + inner_len) else {
            continue;
        };
        match out.encapsulate(&mut pb) {
            Ok(()) if transport => {
                // The IP header was stripped: the ESP packet starts where
                // it ended. Move it to `at`, where a GSO run expects it.
                let esp = pb.range();
                tx.arena.copy_within(at + esp.start..at + esp.end, at);
                tx.commit(at, esp.len(), out.udp);
            }
            Ok(()) => tx.commit(at, len, out.udp),
            Err(d) => count_drop(drops, d, 1),
        }
    }
}

fn count_drop(drops: &DropCounters, d: EncapDrop, n: u64) {
    match d {
        EncapDrop::NoSa => {
            drops.no_sa.fetch_add(n, Ordering::Relaxed);
        }
        EncapDrop::NoUdpEncap => {
            drops.no_udp_encap.fetch_add(n, Ordering::Relaxed);
        }
        EncapDrop::PolicyDiscard => {
            drops.policy_discard.fetch_add(n, Ordering::Relaxed);
        }
        EncapDrop::TrapNoSa => {
            drops.trap_no_sa.fetch_add(n, Ordering::Relaxed);
        }
        EncapDrop::TrapHeld => {}
        EncapDrop::PolicyBypass => {
            drops.policy_bypass.fetch_add(n, Ordering::Relaxed);
        }
        EncapDrop::Esp(r) => {
            for _ in 0..n {
                drops.encap.bump(r);
            }
        }
    }
}

/// What became of one received datagram (for logging by the caller).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RxCounts {
    pub delivered: usize,
    /// The last decapsulation drop, if any.
    pub dropped: Option<DropReason>,
}

/// The UDP reader's per-datagram work: demultiplex (ESP, IKE behind the
/// non-ESP marker, keepalive), decapsulate in place, and hand the inner
/// packets to the TUN writer — merged by the [`Coalescer`] when the TUN
/// device takes offloaded packets, one by one otherwise.
pub struct RxPath {
    coalescer: Coalescer,
    offload: bool,
    /// Clamp the MSS of SYNs coming out of the tunnel to this (IPv4 figure).
    pub mss: Option<u16>,
    /// Free bytes in front of each datagram range handed to
    /// [`datagram`](Self::datagram) (the receive batch's headroom): where
    /// transport mode rebuilds the IP header in place.
    pub headroom: usize,
    /// Transport mode when the room in front of a datagram is too short
    /// (a later segment of a GRO run, IPv6): decapsulated here instead.
    scratch: TransportScratch,
}

impl RxPath {
    /// `offload`: the TUN device takes virtio headers (TCP segments are
    /// merged); `udp`: it also takes UDP segmentation offload (datagrams
    /// are merged too).
    pub fn new(offload: bool, udp: bool) -> RxPath {
        RxPath {
            coalescer: Coalescer::new(offload && udp),
            offload,
            mss: None,
            headroom: 0,
            scratch: TransportScratch::new(),
        }
    }

    /// The same path, for datagram ranges with `headroom` free bytes in
    /// front (the receive batch's [`RX_HEADROOM`](super::batch::RX_HEADROOM)).
    pub fn with_headroom(mut self, headroom: usize) -> RxPath {
        self.headroom = headroom;
        self
    }

    /// Processes the datagram `area[range]` received on `local` from
    /// `remote`: a run of `seg`-byte datagrams when the kernel coalesced
    /// them (UDP GRO). `ike` gets IKE messages (marker stripped), `write`
    /// whole TUN writes (with the virtio header when offloading).
    #[allow(clippy::too_many_arguments)]
    pub fn datagram(
        &mut self,
        worker: &mut Worker,
        area: &mut [u8],
        range: Range<usize>,
        seg: usize,
        local: SocketAddr,
        remote: SocketAddr,
        drops: &DropCounters,
        ike: &mut impl FnMut(Datagram),
        write: &mut impl FnMut(&[IoSlice<'_>]),
    ) -> RxCounts {
        let mut counts = RxCounts::default();
        let seg = seg.max(1);
        let mut at = range.start;
        // Bytes before a datagram nobody refers to any more: the headroom,
        // then what follows the last inner packet handed on (its ESP
        // trailer and ICV).
        let mut free_from = range.start.saturating_sub(self.headroom);
        while at < range.end {
            let one = at..(at + seg).min(range.end);
            at = one.end;
            match classify_udp4500(&area[one.clone()]) {
                Udp4500::Keepalive => continue,
                Udp4500::Invalid => {
                    drops.invalid_4500.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                Udp4500::Ike(msg) => {
                    ike(Datagram {
                        local,
                        remote,
                        data: msg.to_vec(),
                    });
                    continue;
                }
                Udp4500::Esp(_) => {}
            }
            self.esp(
                worker,
                area,
                one,
                &mut free_from,
                (local, remote),
                drops,
                write,
                &mut counts,
            );
        }
        counts
    }

    /// Decapsulates the ESP packet `area[one]` (from UDP 4500 behind the
    /// marker demux, or from a raw protocol 50 socket: the same checks and
    /// counters) in place and hands the inner packet to `write`. The bytes
    /// from `free_from` to the packet are free (headroom, a stripped outer
    /// header, what is left of the previous packet) for transport mode's
    /// rebuilt IP header; `free_from` moves past the inner packet.
    #[allow(clippy::too_many_arguments)]
    pub fn esp(
        &mut self,
        worker: &mut Worker,
        area: &mut [u8],
        one: Range<usize>,
        free_from: &mut usize,
        (local, remote): (SocketAddr, SocketAddr),
        drops: &DropCounters,
        write: &mut impl FnMut(&[IoSlice<'_>]),
        counts: &mut RxCounts,
    ) {
        if one.end > area.len() || *free_from > one.start {
            return;
        }
        let room = one.start - *free_from;
        // The SA lookup only where the room might not do (an IPv6
        // header over an 8-byte ESP header without IV needs 32).
        if room < 32 && worker.transport_headroom(&area[one.clone()], remote) > room {
            let out = (&mut self.coalescer, self.offload, self.mss);
            self.scratch.datagram(
                worker,
                area,
                one,
                (local, remote),
                out,
                drops,
                counts,
                write,
            );
            return;
        }
        let Ok(mut pb) =
            PacketBuf::over(&mut area[*free_from..one.end], room, one.end - *free_from)
        else {
            return;
        };
        match worker.decapsulate(&mut pb, local, remote) {
            Decap::Deliver => {
                let w = pb.range();
                let inner = *free_from + w.start..*free_from + w.end;
                *free_from = inner.end;
                counts.delivered += 1;
                if let Some(mss) = self.mss {
                    clamp_mss(&mut area[inner.clone()], mss);
                }
                if self.offload {
                    self.coalescer.push(area, inner, write);
                } else {
                    write(&[IoSlice::new(&area[inner])]);
                }
            }
            Decap::Drop(why) => {
                drops.decap.bump(why);
                counts.dropped = Some(why);
            }
        }
    }

    /// The free bytes this path was told precede each received datagram.
    pub fn headroom(&self) -> usize {
        self.headroom
    }

    /// Writes whatever the coalescer still holds: call after the last
    /// datagram of a receive batch, before the area is reused.
    pub fn end_batch(&mut self, area: &mut [u8], write: &mut impl FnMut(&[IoSlice<'_>])) {
        self.coalescer.flush(area, write);
    }

    /// TUN writes made and packets they carried (statistics).
    pub fn writes(&self) -> (u64, u64) {
        (self.coalescer.writes, self.coalescer.packets)
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::rawesp::raw_endpoints;

    fn udp(remote: &str) -> UdpEncap {
        let remote: SocketAddr = remote.parse().unwrap();
        let local = if remote.is_ipv4() {
            "192.0.2.1:4500"
        } else {
            "[2001:db8::1]:4500"
        };
        UdpEncap {
            local: local.parse().unwrap(),
            remote,
        }
    }

    /// Raw ESP packets go to their own batches (one packet per message,
    /// never merged into a GSO run), apart from ESP in UDP, per family.
    #[test]
    fn raw_and_udp_packets_leave_on_their_own_sockets() {
        let mut tx = TxArena::new(4096, 8, true);
        let raw4 = raw_endpoints(
            "192.0.2.1:500".parse().unwrap(),
            "192.0.2.2:500".parse().unwrap(),
        );
        let raw6 = raw_endpoints(
            "[2001:db8::1]:500".parse().unwrap(),
            "[2001:db8::2]:500".parse().unwrap(),
        );
        let mut at = 0;
        for ep in [
            udp("192.0.2.2:4500"),
            udp("192.0.2.2:4500"),
            raw4,
            raw4,
            raw6,
            udp("[2001:db8::2]:4500"),
        ] {
            assert!(tx.room(100, &ep));
            tx.commit(at, 100, ep);
            at += 100;
        }
        let mut seen = Vec::new();
        tx.flush_with(|via, batch, arena| {
            assert_eq!(arena.len(), 600);
            let msgs: Vec<(usize, u16)> = batch
                .messages()
                .iter()
                .map(|m| (m.count, m.remote.port()))
                .collect();
            seen.push((via, msgs));
            batch.clear();
        });
        let via = |v4, raw| Via { v4, raw };
        assert_eq!(
            seen,
            [
                (via(true, false), vec![(2, 4500)]),
                (via(false, false), vec![(1, 4500)]),
                (via(true, true), vec![(1, 0), (1, 0)]),
                (via(false, true), vec![(1, 0)]),
            ]
        );
        assert!(tx.is_empty());
    }
}
