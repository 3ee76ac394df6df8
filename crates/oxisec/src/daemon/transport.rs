//! Transport mode (RFC 4303 §3.1.1, host to host) in the TUN data plane.
//!
//! A transport-mode CHILD_SA protects the traffic between the two IKE
//! endpoints themselves, so the route that sends it into the TUN device is
//! the peer's own address — the address the daemon's IKE and ESP packets
//! go to as well. Those must keep their normal path, or the tunnel would
//! swallow its own transport. The route therefore lives in a table of its
//! own, consulted by a policy-routing rule after an exemption for the
//! daemon's own packets:
//!
//! ```text
//! prio 5400  ipproto udp sport 500   lookup main   (our IKE)
//! prio 5400  ipproto udp sport 4500  lookup main   (our IKE and ESP in UDP)
//! prio 5400  ipproto esp (50)        lookup main   (raw ESP; the kernel here has none of its own)
//! prio 5401                          lookup 5401   (transport-mode peers)
//! table 5401: <peer>/32 (/128) dev oxisec0 src <our IKE address> mtu <fits ESP>
//! ```
//!
//! The exemption matches the daemon's sockets by their fixed source ports
//! (and ESP by protocol) rather than by a socket mark: no socket needs an
//! option, so every socket the daemon opens now or later (the lanes' UDP
//! 4500, raw ESP) is covered, and an administrator's own `fwmark` rules
//! are left alone. Only the daemon can hold those ports. The rules carry
//! routing protocol [`RULE_PROTOCOL`] like the shunts' and are only put in
//! place with the first transport-mode SA; on stop, and on start after a
//! crash, every rule of ours at [`EXEMPT_PRIORITY`]/[`TABLE`] and every
//! route in [`TABLE`] is removed. Shunt rules (4300–5300) come first, so a
//! shunt still wins over a transport-mode SA, as RFC 4301 orders them.
//! A route outlives the last SA that used it by [`ROUTE_GRACE`]: a rekey
//! may delete the old outbound SA before it installs the new one, and in
//! between the peer's traffic must be dropped (no policy), not sent in
//! clear.
//!
//! Reverse-path filtering: a packet the data plane writes to the TUN device
//! after decapsulation comes from the peer's address, and the route back to
//! it is the table's route through the same device, so even a strict
//! `rp_filter` accepts it.
//!
//! In the packet path, outbound needs nothing special (the ESP crate strips
//! the IP header; `lane.rs` moves the ESP packet to where the batch
//! expects it). Inbound, the rebuilt IP header (20/40 bytes) is longer
//! than the ESP header and IV it replaces with AEAD suites (16): the
//! receive batch keeps free bytes in front of every datagram, and a
//! datagram without enough room in front (a later segment of a UDP GRO
//! run over IPv6) is decapsulated in [`TransportScratch`] instead.
//!
//! NAT: the engine does not carry the original addresses (NAT-OA), and the
//! selectors of a host behind a NAT name its private address, which the
//! peer never sees; the daemon refuses transport mode through a NAT
//! (see `Daemon::apply`) rather than install policies that cannot match.
use std::collections::{BTreeMap, BTreeSet};
use std::io::IoSlice;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::Range;

use futures_util::TryStreamExt;
use netlink_packet_route::route::{RouteAttribute, RouteMessage, RouteMetric};
use netlink_packet_route::rule::RuleMessage;
use oxisec_esp::{OuterAddrs, PacketBuf};
use oxisec_ike::ChildId;
use rtnetlink::{Handle, IpVersion, RouteMessageBuilder};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use super::dataplane::DropCounters;
use super::dataplane::lane::RxCounts;
use super::dataplane::mtu::clamp_mss;
use super::dataplane::offload::Coalescer;
use super::esp::{Decap, Worker};
use super::shunts::{RULE_PROTOCOL, RuleSpec, describe, route_table, rule_message, rule_priority};

/// Priority of the rules that keep the daemon's own IKE and ESP on the
/// normal path (after the shunts' 4300..=5300).
pub const EXEMPT_PRIORITY: u32 = 5400;
/// The routing table of transport-mode peers, and the priority of the rule
/// that looks it up.
pub const TABLE: u32 = 5401;
/// The main routing table.
const MAIN_TABLE: u32 = 254;

// After every shunt priority (shunts win, as RFC 4301 orders BYPASS and
// DISCARD first), the exemption before the lookup, both before the main
// table's rule (32766).
const _: () = assert!(
    EXEMPT_PRIORITY > super::shunts::RULE_PRIORITY + super::shunts::MAX_SHUNTS
        && EXEMPT_PRIORITY < TABLE
        && TABLE < 32766
);
/// IP protocol numbers.
const UDP: u8 = 17;
const ESP: u8 = 50;

/// The outer addresses of an ESP packet received on `local` from `remote`,
/// for the transport-mode header rebuild: `None` when they are not both of
/// one family or our address is unknown (then a transport-mode SA drops
/// the packet; tunnel mode does not use them).
pub fn outer_addrs(local: SocketAddr, remote: SocketAddr) -> Option<OuterAddrs> {
    let (src, dst) = (remote.ip(), local.ip());
    (src.is_ipv4() == dst.is_ipv4() && !dst.is_unspecified()).then_some(OuterAddrs { src, dst })
}

/// The rules transport mode needs, both families: the exemption of our
/// own IKE/ESP, then the lookup of [`TABLE`].
pub fn plan() -> Vec<RuleSpec> {
    let mut out = Vec::new();
    for v4 in [true, false] {
        let exempt = |protocol, sport| RuleSpec {
            v4,
            priority: EXEMPT_PRIORITY,
            src: None,
            dst: None,
            protocol,
            sport,
            dport: None,
            table: MAIN_TABLE,
        };
        out.push(exempt(UDP, Some((500, 500))));
        out.push(exempt(UDP, Some((4500, 4500))));
        out.push(exempt(ESP, None));
        out.push(RuleSpec {
            v4,
            priority: TABLE,
            src: None,
            dst: None,
            protocol: 0,
            sport: None,
            dport: None,
            table: TABLE,
        });
    }
    out
}

/// Whether a rule is one of ours: our routing protocol and priority.
fn is_ours(m: &RuleMessage) -> bool {
    use netlink_packet_route::route::RouteProtocol;
    use netlink_packet_route::rule::RuleAttribute;
    m.attributes
        .contains(&RuleAttribute::Protocol(RouteProtocol::from(RULE_PROTOCOL)))
        && rule_priority(m).is_some_and(|p| p == EXEMPT_PRIORITY || p == TABLE)
}

/// Requests to the transport route task.
#[derive(Debug)]
pub enum TransportOp {
    /// Route `peer` into the TUN device for `child`'s transport-mode SA,
    /// with our IKE address `local` as the source and the SA's `mtu`.
    Add {
        child: ChildId,
        peer: IpAddr,
        local: IpAddr,
        mtu: Option<u32>,
    },
    /// `child`'s outbound SA is gone (rekeyed or deleted); a route stays
    /// as long as another child (the rekey's successor) uses it.
    Remove { child: ChildId },
    /// Remove every rule and route and acknowledge (shutdown).
    RemoveAll(oneshot::Sender<()>),
    /// Internal: the grace of `peer`'s route, unused since its `n`-th
    /// removal, is over.
    Expire { peer: IpAddr, n: u64 },
}

/// How long a route with no SA left stays: a rekey deletes the old
/// outbound SA and installs the new one in either order, and without the
/// route the packets in between would leave in clear instead of being
/// dropped for want of a policy.
const ROUTE_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

struct State {
    handle: Handle,
    tun_index: u32,
    rules: bool,
    /// peer → children routed to it.
    routes: BTreeMap<IpAddr, BTreeSet<ChildId>>,
    /// Removals so far, and the last one of each unused route: its grace
    /// timer ends the route.
    removals: u64,
    graces: BTreeMap<IpAddr, u64>,
    /// The task's own sender, for the grace timers.
    me: Option<mpsc::WeakUnboundedSender<TransportOp>>,
}

/// Starts the transport route task on its own rtnetlink connection, after
/// removing what a previous run may have left.
pub async fn start(tun_index: u32) -> std::io::Result<mpsc::UnboundedSender<TransportOp>> {
    let (conn, handle, _) = rtnetlink::new_connection()?;
    tokio::spawn(conn);
    let mut st = State {
        handle,
        tun_index,
        rules: false,
        routes: BTreeMap::new(),
        removals: 0,
        graces: BTreeMap::new(),
        me: None,
    };
    st.remove_all().await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    st.me = Some(tx.downgrade());
    tokio::spawn(async move {
        while let Some(op) = rx.recv().await {
            match op {
                TransportOp::Add {
                    child,
                    peer,
                    local,
                    mtu,
                } => st.add(child, peer, local, mtu).await,
                TransportOp::Remove { child } => st.remove(child),
                TransportOp::Expire { peer, n } => st.expire(peer, n).await,
                TransportOp::RemoveAll(ack) => {
                    st.remove_all().await;
                    let _ = ack.send(());
                }
            }
        }
    });
    Ok(tx)
}

impl State {
    fn route(&self, peer: IpAddr, local: Option<IpAddr>) -> RouteMessage {
        match peer {
            IpAddr::V4(a) => {
                let mut b = RouteMessageBuilder::<Ipv4Addr>::new()
                    .destination_prefix(a, 32)
                    .output_interface(self.tun_index)
                    .table_id(TABLE);
                if let Some(IpAddr::V4(s)) = local {
                    b = b.pref_source(s);
                }
                b.build()
            }
            IpAddr::V6(a) => {
                let mut b = RouteMessageBuilder::<Ipv6Addr>::new()
                    .destination_prefix(a, 128)
                    .output_interface(self.tun_index)
                    .table_id(TABLE);
                if let Some(IpAddr::V6(s)) = local {
                    b = b.pref_source(s);
                }
                b.build()
            }
        }
    }

    async fn add(&mut self, child: ChildId, peer: IpAddr, local: IpAddr, mtu: Option<u32>) {
        if !self.rules {
            self.rules = true;
            for r in plan() {
                let mut req = self.handle.rule().add();
                *req.message_mut() = rule_message(&r);
                match req.execute().await {
                    Ok(()) => debug!("transport mode rule added: {}", describe(&r)),
                    Err(e) => warn!("cannot add transport mode rule {}: {e}", describe(&r)),
                }
            }
        }
        // Added (or replaced, for a rekey's new MTU) every time.
        let mut msg = self.route(peer, (!local.is_unspecified()).then_some(local));
        if let Some(m) = mtu {
            msg.attributes
                .push(RouteAttribute::Metrics(vec![RouteMetric::Mtu(m)]));
        }
        let len = if peer.is_ipv4() { 32 } else { 128 };
        match self.handle.route().add(msg).replace().execute().await {
            Ok(()) => {
                if self.routes.get(&peer).is_none_or(|c| c.is_empty()) {
                    info!(
                        "transport mode: {peer}/{len} routed into the tunnel (table {TABLE}, src {local}{})",
                        mtu.map(|m| format!(", mtu {m}")).unwrap_or_default()
                    );
                }
                self.routes.entry(peer).or_default().insert(child);
            }
            Err(e) => warn!("transport mode: cannot route {peer}/{len} into the tunnel: {e}"),
        }
    }

    /// Forgets `child`; a route no child uses any more goes after
    /// [`ROUTE_GRACE`] unless a child (the rekey's successor) takes it.
    fn remove(&mut self, child: ChildId) {
        for (peer, children) in &mut self.routes {
            if children.remove(&child) && children.is_empty() {
                self.removals += 1;
                let (peer, n) = (*peer, self.removals);
                self.graces.insert(peer, n);
                let me = self.me.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(ROUTE_GRACE).await;
                    if let Some(tx) = me.and_then(|w| w.upgrade()) {
                        let _ = tx.send(TransportOp::Expire { peer, n });
                    }
                });
            }
        }
    }

    /// The grace of `peer`'s route after removal `n` is over: delete it if
    /// no child took it meanwhile.
    async fn expire(&mut self, peer: IpAddr, n: u64) {
        // Taken again, or a later removal restarted the grace.
        if self.routes.get(&peer).is_none_or(|c| !c.is_empty())
            || self.graces.get(&peer) != Some(&n)
        {
            return;
        }
        self.graces.remove(&peer);
        self.routes.remove(&peer);
        let msg = self.route(peer, None);
        match self.handle.route().del(msg).execute().await {
            Ok(()) => info!("transport mode: route to {peer} removed"),
            Err(e) => debug!("cannot remove the transport mode route to {peer}: {e}"),
        }
    }

    /// Removes every rule of ours and empties [`TABLE`].
    async fn remove_all(&mut self) {
        self.routes.clear();
        self.graces.clear();
        self.rules = false;
        for v in [IpVersion::V4, IpVersion::V6] {
            let rules: Vec<RuleMessage> = self
                .handle
                .rule()
                .get(v)
                .execute()
                .try_collect()
                .await
                .unwrap_or_default();
            for r in rules {
                if is_ours(&r)
                    && let Err(e) = self.handle.rule().del(r).execute().await
                {
                    debug!("cannot remove a transport mode rule: {e}");
                }
            }
        }
        for dump in [
            RouteMessageBuilder::<Ipv4Addr>::new().build(),
            RouteMessageBuilder::<Ipv6Addr>::new().build(),
        ] {
            let routes: Vec<RouteMessage> = self
                .handle
                .route()
                .get(dump)
                .execute()
                .try_collect()
                .await
                .unwrap_or_default();
            for m in routes {
                if route_table(&m) == TABLE
                    && let Err(e) = self.handle.route().del(m).execute().await
                {
                    debug!("cannot remove a transport mode route: {e}");
                }
            }
        }
    }
}

/// Where a transport-mode ESP packet is decapsulated when the receive
/// area has too little room in front of it: a copy with headroom. Made
/// once per receive lane (no allocation per packet).
pub struct TransportScratch {
    buf: Box<[u8]>,
}

/// Free bytes in front of the copy: more than any IP header needs.
const SCRATCH_HEADROOM: usize = 64;

impl Default for TransportScratch {
    fn default() -> Self {
        TransportScratch::new()
    }
}

impl TransportScratch {
    pub fn new() -> TransportScratch {
        TransportScratch {
            buf: vec![0u8; SCRATCH_HEADROOM + 65_536].into_boxed_slice(),
        }
    }

    /// Decapsulates the ESP packet `area[esp]` (received on `local` from
    /// `remote`, `addrs`) in the scratch buffer and writes the inner packet
    /// to the TUN device after whatever the coalescer holds from `area`,
    /// keeping the order. `out`: the lane's coalescer, whether the TUN
    /// device takes offload headers, and the MSS to clamp SYNs to.
    #[allow(clippy::too_many_arguments)]
    pub fn datagram(
        &mut self,
        worker: &mut Worker,
        area: &mut [u8],
        esp: Range<usize>,
        addrs: (SocketAddr, SocketAddr),
        out: (&mut Coalescer, bool, Option<u16>),
        drops: &DropCounters,
        counts: &mut RxCounts,
        write: &mut impl FnMut(&[IoSlice<'_>]),
    ) {
        let (coalescer, offload, mss) = out;
        let len = esp.len();
        let (Some(dst), Some(src)) = (
            self.buf.get_mut(SCRATCH_HEADROOM..SCRATCH_HEADROOM + len),
            area.get(esp),
        ) else {
            drops.decap.bump(oxisec_esp::DropReason::NoRoom);
            counts.dropped = Some(oxisec_esp::DropReason::NoRoom);
            return;
        };
        dst.copy_from_slice(src);
        let Ok(mut pb) = PacketBuf::over(&mut self.buf, SCRATCH_HEADROOM, SCRATCH_HEADROOM + len)
        else {
            return;
        };
        match worker.decapsulate(&mut pb, addrs.0, addrs.1) {
            Decap::Deliver => {
                let inner = pb.range();
                counts.delivered += 1;
                if let Some(m) = mss {
                    clamp_mss(&mut self.buf[inner.clone()], m);
                }
                coalescer.flush(area, write);
                if offload {
                    coalescer.push(&mut self.buf, inner, write);
                    coalescer.flush(&mut self.buf, write);
                } else {
                    write(&[IoSlice::new(&self.buf[inner])]);
                }
            }
            Decap::Drop(why) => {
                drops.decap.bump(why);
                counts.dropped = Some(why);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn outer_addresses_are_the_peer_to_us_of_one_family() {
        let o = outer_addrs(sa("192.0.2.1:4500"), sa("192.0.2.2:4500")).unwrap();
        assert_eq!(o.src, "192.0.2.2".parse::<IpAddr>().unwrap());
        assert_eq!(o.dst, "192.0.2.1".parse::<IpAddr>().unwrap());
        assert!(outer_addrs(sa("0.0.0.0:4500"), sa("192.0.2.2:4500")).is_none());
        assert!(outer_addrs(sa("[2001:db8::1]:4500"), sa("192.0.2.2:4500")).is_none());
        assert!(outer_addrs(sa("[2001:db8::1]:4500"), sa("[2001:db8::2]:4500")).is_some());
    }

    #[test]
    fn rules_exempt_our_ike_and_esp_before_the_transport_table() {
        let rules = plan();
        assert_eq!(rules.len(), 8);
        for v4 in [true, false] {
            let fam: Vec<&RuleSpec> = rules.iter().filter(|r| r.v4 == v4).collect();
            let exempt: Vec<_> = fam
                .iter()
                .filter(|r| r.priority == EXEMPT_PRIORITY)
                .map(|r| (r.protocol, r.sport, r.table))
                .collect();
            assert_eq!(
                exempt,
                [
                    (UDP, Some((500, 500)), MAIN_TABLE),
                    (UDP, Some((4500, 4500)), MAIN_TABLE),
                    (ESP, None, MAIN_TABLE)
                ]
            );
            let lookup: Vec<_> = fam.iter().filter(|r| r.priority == TABLE).collect();
            assert_eq!(lookup.len(), 1);
            assert_eq!(
                (
                    lookup[0].table,
                    lookup[0].src,
                    lookup[0].dst,
                    lookup[0].protocol
                ),
                (TABLE, None, None, 0)
            );
        }
    }

    mod packets {
        use super::super::super::dataplane::batch::RX_HEADROOM;
        use super::super::super::dataplane::lane::{RxPath, TxArena, encap_read};
        use super::super::super::dataplane::mtu::MtuSettings;
        use super::super::super::dataplane::offload::{
            F_NEEDS_CSUM, GSO_TCPV4, GSO_TCPV6, Segmenter, VnetHdr, csum,
        };
        use super::super::super::dataplane::{DropCounters, Reporter, Tables};
        use super::*;
        use oxisec_crypto::Secret;
        use oxisec_crypto::esp_cipher::EspSuite;
        use oxisec_ike::{ChildMode, EspSaParams, SaCommand, TsRange};
        use oxisec_wire::encr;

        const SPI: u32 = 0x0102_0304;
        const MSS: u16 = 1000;

        fn params() -> EspSaParams {
            let suite = EspSuite {
                encr: encr::AES_GCM_16,
                encr_key_bits: Some(128),
                integ: None,
                esn: true,
            };
            EspSaParams {
                spi: SPI,
                suite,
                keys: Secret::new((0..suite.keymat_len() as u8).collect()),
                limits: Default::default(),
                mode: ChildMode::Transport,
                replay_window: 64,
            }
        }

        /// A TSO super-packet from `src` to `dst` (same family) of
        /// `payload` TCP bytes, checksum offloaded, as the TUN device
        /// hands it over.
        fn super_packet(src: IpAddr, dst: IpAddr, payload: usize) -> (VnetHdr, Vec<u8>) {
            let (v6, hl) = (src.is_ipv6(), if src.is_ipv6() { 40 } else { 20 });
            let len = hl + 20 + payload;
            let mut p = vec![0u8; len];
            let (s, d): (Vec<u8>, Vec<u8>) = match (src, dst) {
                (IpAddr::V4(a), IpAddr::V4(b)) => (a.octets().into(), b.octets().into()),
                (IpAddr::V6(a), IpAddr::V6(b)) => (a.octets().into(), b.octets().into()),
                _ => unreachable!(),
            };
            if v6 {
                p[0] = 0x60;
                p[4..6].copy_from_slice(&((len - 40) as u16).to_be_bytes());
                p[6] = 6;
                p[7] = 64;
                p[8..24].copy_from_slice(&s);
                p[24..40].copy_from_slice(&d);
            } else {
                p[0] = 0x45;
                p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
                p[6] = 0x40;
                p[8] = 64;
                p[9] = 6;
                p[12..16].copy_from_slice(&s);
                p[16..20].copy_from_slice(&d);
                let c = !csum::sum(&p[..20]);
                p[10..12].copy_from_slice(&c.to_be_bytes());
            }
            let t = hl;
            p[t..t + 2].copy_from_slice(&40000u16.to_be_bytes());
            p[t + 2..t + 4].copy_from_slice(&5201u16.to_be_bytes());
            p[t + 4..t + 8].copy_from_slice(&7u32.to_be_bytes());
            p[t + 12] = 5 << 4;
            p[t + 13] = 0x10;
            p[t + 14..t + 16].copy_from_slice(&500u16.to_be_bytes());
            for (i, b) in p[t + 20..].iter_mut().enumerate() {
                *b = (i % 251) as u8;
            }
            let pseudo = csum::pseudo(&s, &d, 6, len - hl);
            p[t + 16..t + 18].copy_from_slice(&pseudo.to_be_bytes());
            let h = VnetHdr {
                flags: F_NEEDS_CSUM,
                gso_type: if v6 { GSO_TCPV6 } else { GSO_TCPV4 },
                hdr_len: (hl + 20) as u16,
                gso_size: MSS,
                csum_start: hl as u16,
                csum_offset: 16,
            };
            (h, p)
        }

        /// A TSO read from `a` to `b` in transport mode: one GSO run of
        /// ESP packets without inner IP headers, received as one GRO
        /// datagram and decapsulated into the segments the TUN device
        /// would have sent, with the IP header rebuilt (later segments of
        /// an IPv6 run through the scratch buffer).
        fn round_trip(a_addr: &str, b_addr: &str) {
            let (la, ra): (IpAddr, IpAddr) = (a_addr.parse().unwrap(), b_addr.parse().unwrap());
            let (local, remote) = (SocketAddr::new(la, 4500), SocketAddr::new(ra, 4500));
            let host = |a: IpAddr| a.to_string().parse::<TsRange>().unwrap();
            let (a, b) = (Tables::default(), Tables::default());
            a.apply(&SaCommand::InstallOutbound {
                child: ChildId(1),
                sa: params(),
                local_ts: vec![host(la)],
                remote_ts: vec![host(ra)],
                local,
                remote,
                udp_encap: true,
            })
            .unwrap();
            b.apply(&SaCommand::InstallInbound {
                child: ChildId(1),
                sa: params(),
                local_ts: vec![host(ra)],
                remote_ts: vec![host(la)],
            })
            .unwrap();
            let (ev_tx, _ev_rx) = mpsc::unbounded_channel();
            let reporter = Reporter::new(ev_tx);
            let (mut wa, mut wb) = (a.worker(reporter.clone()), b.worker(reporter));
            let drops = DropCounters::default();
            let (hdr, sp) = super_packet(la, ra, 3 * usize::from(MSS) - 10);
            let seg = Segmenter::new(&hdr, &sp).unwrap();
            let want: Vec<Vec<u8>> = (0..seg.count())
                .map(|i| {
                    let mut out = vec![0u8; seg.len(i)];
                    seg.write(i, &mut out).unwrap();
                    out
                })
                .collect();
            assert_eq!(want.len(), 3);

            let mut tx = TxArena::new(64 * 1024, 16, true);
            let mut rx = vec![0u8; RX_HEADROOM + 64 * 1024];
            let mut runs = Vec::new();
            let mut flush = |tx: &mut TxArena| {
                tx.flush_with(|_, batch, arena| {
                    for m in batch.messages() {
                        runs.push((arena[m.range.clone()].to_vec(), m.seg, m.count));
                    }
                    batch.clear();
                })
            };
            let mtu = MtuSettings::default();
            encap_read(
                &mut wa,
                &seg,
                &mut tx,
                &drops,
                &mtu,
                &mut |_| {},
                &mut flush,
            );
            flush(&mut tx);
            assert_eq!(runs.len(), 1, "one GSO run");
            let (esp, seg_size, count) = runs.pop().unwrap();
            assert_eq!(count, 3);
            // No inner IP header: each ESP packet is 36 bytes (header,
            // IV, pad length, next header, ICV, up to 3 padding) longer
            // than the TCP segment alone.
            let hl = if la.is_ipv6() { 40 } else { 20 };
            let tcp_len = want[0].len() - hl;
            assert!(
                seg_size >= tcp_len + 34 && seg_size <= tcp_len + 37,
                "{seg_size} vs {tcp_len}"
            );
            rx[RX_HEADROOM..RX_HEADROOM + esp.len()].copy_from_slice(&esp);

            let mut path = RxPath::new(false, false).with_headroom(RX_HEADROOM);
            let mut got: Vec<Vec<u8>> = Vec::new();
            let mut write = |iov: &[IoSlice<'_>]| got.push(iov[0].to_vec());
            let mut ike = |_| panic!("no IKE here");
            wb.start_batch();
            let c = path.datagram(
                &mut wb,
                &mut rx,
                RX_HEADROOM..RX_HEADROOM + esp.len(),
                seg_size,
                // Received on b from a.
                remote,
                local,
                &drops,
                &mut ike,
                &mut write,
            );
            path.end_batch(&mut rx, &mut write);
            assert_eq!((c.delivered, c.dropped), (3, None));
            assert_eq!(got.len(), 3);
            for (g, w) in got.iter().zip(&want) {
                assert_eq!(g.len(), w.len());
                // The transport segment, checksum included, is as sent;
                // the rebuilt header has the hosts' addresses.
                assert_eq!(g[hl..], w[hl..]);
                if hl == 20 {
                    assert_eq!(g[12..20], w[12..20]);
                    assert_eq!(g[2..4], w[2..4]);
                    assert_eq!(csum::sum(&g[..20]), 0xffff);
                } else {
                    assert_eq!(g[..40], w[..40]);
                }
            }
        }

        #[test]
        fn ipv4_tso_read_round_trips_in_transport_mode() {
            round_trip("192.0.2.1", "192.0.2.2");
        }

        #[test]
        fn ipv6_tso_read_round_trips_through_the_scratch_buffer() {
            round_trip("2001:db8::1", "2001:db8::2");
        }
    }

    #[test]
    fn rule_messages_are_recognised_as_ours_for_cleanup() {
        for r in plan() {
            assert!(is_ours(&rule_message(&r)), "{}", describe(&r));
        }
        let mut shunt = plan()[0].clone();
        shunt.priority = 4300;
        assert!(!is_ours(&rule_message(&shunt)));
    }
}
