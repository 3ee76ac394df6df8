//! One node's ESP data plane: the esp crate's real SAD and SPD, changed only
//! by the engine's [`SaCommand`]s applied in the order they were emitted
//! (as the daemon's adapter does), plus the inner packets of the test flow.
//!
//! Besides the tables it keeps a fingerprint of each SA's keys, never the
//! keys, so that a consistency check can tell that an outbound SA of one
//! node and the inbound SA of the other with the same SPI also share keys.
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use oxisec_crypto::esp_cipher::EspCipher;
use oxisec_esp::SaStats;
use oxisec_esp::{
    DropReason, EncapError, InboundSa, OutboundSa, PacketBuf, PolicyAction, Sad, Selector, Spd,
    SpdEntry, UdpEncap, decapsulate, encapsulate,
};
use oxisec_ike::{DataplaneEvent, SaCommand, SaLimits, TsRange};

/// Anti-replay window of every inbound SA (the daemon's value).
pub const REPLAY_WINDOW: u32 = 1024;

/// A 64-bit FNV-1a digest of key material, salted so that it cannot be
/// mistaken for anything else. Only ever compared, never printed.
fn fingerprint(keys: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in b"oxisec-sim key fingerprint".iter().chain(keys) {
        h = (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn selectors(ts: &[TsRange]) -> Result<Vec<Selector>, String> {
    ts.iter()
        .map(|t| {
            Selector::range(t.start, t.end)
                .map(|s| {
                    s.with_protocol(t.protocol)
                        .with_ports(t.start_port, t.end_port)
                })
                .map_err(|e| format!("traffic selector {t}: {e}"))
        })
        .collect()
}

/// Why an inner packet could not be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxError {
    /// No SPD entry covers the packet.
    NoPolicy,
    /// The policy names a CHILD_SA whose outbound SA is not installed.
    NoSa(u64),
    /// The SA has no UDP endpoints (the sim only carries ESP in UDP).
    NoUdpEncap,
    Encap(String),
}

/// How often at most inbound traffic on one SA is reported to the engine
/// (the engine's contract for `DataplaneEvent::InboundActivity`).
pub const ACTIVITY_INTERVAL: Duration = Duration::from_secs(1);

/// An SA's volume limits and which crossings were already reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Watch {
    limits: SaLimits,
    soft_reported: bool,
    hard_reported: bool,
}

impl Watch {
    fn new(limits: SaLimits) -> Watch {
        Watch {
            limits,
            soft_reported: false,
            hard_reported: false,
        }
    }

    /// The crossings `stats` newly reached, once each.
    fn check(&mut self, spi: u32, inbound: bool, stats: SaStats, out: &mut Vec<DataplaneEvent>) {
        let over = |bytes: u64, packets: u64| {
            (bytes != 0 && stats.bytes >= bytes) || (packets != 0 && stats.packets >= packets)
        };
        let l = self.limits;
        if !self.soft_reported && over(l.soft_bytes, l.soft_packets) {
            self.soft_reported = true;
            out.push(DataplaneEvent::SoftExpired { spi, inbound });
        }
        if !self.hard_reported && over(l.hard_bytes, l.hard_packets) {
            self.hard_reported = true;
            out.push(DataplaneEvent::HardExpired { spi, inbound });
        }
    }
}

/// An installed outbound SA as the checker sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct OutboundRecord {
    spi: u32,
    keys: u64,
    watch: Watch,
}

/// An installed inbound SA as the checker sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct InboundRecord {
    keys: u64,
    watch: Watch,
    /// When inbound activity was last reported to the engine.
    reported: Option<Instant>,
}

/// The SAD, the SPD and what the checker needs to know about them.
#[derive(Default)]
pub struct DataPlane {
    sad: Sad,
    spd: Spd,
    /// Inbound SPI → key fingerprint and volume watch.
    inbound: BTreeMap<u32, InboundRecord>,
    /// CHILD_SA id → outbound SA.
    outbound: BTreeMap<u64, OutboundRecord>,
    /// Commands that did not fit the tables (double install, delete of
    /// something absent). Each is an engine or adapter bug.
    pub errors: Vec<String>,
    /// Whether an outbound SA was ever installed: from then on a packet
    /// without an SA counts as lost to a missing SA.
    pub ever_up: bool,
    /// What the data plane has to tell the engine (volume limits crossed,
    /// inbound activity, ESP on unknown SPIs), in order.
    pub events: Vec<DataplaneEvent>,
}

impl std::fmt::Debug for DataPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hex = |m: &mut dyn Iterator<Item = u32>| -> Vec<String> {
            m.map(|s| format!("{s:08x}")).collect()
        };
        f.debug_struct("DataPlane")
            .field("inbound", &hex(&mut self.inbound.keys().copied()))
            .field(
                "outbound",
                &self
                    .outbound
                    .iter()
                    .map(|(c, o)| format!("child {c}: {:08x}", o.spi))
                    .collect::<Vec<_>>(),
            )
            .field("spd_entries", &self.spd.entries().len())
            .field("errors", &self.errors)
            .finish()
    }
}

impl DataPlane {
    pub fn new() -> DataPlane {
        DataPlane::default()
    }

    /// Applies one engine command. A command that cannot be applied is
    /// recorded in [`errors`](Self::errors) and returned.
    pub fn apply(&mut self, cmd: &SaCommand) -> Result<(), String> {
        let r = self.apply_inner(cmd);
        if let Err(e) = &r {
            self.errors.push(e.clone());
        }
        r
    }

    fn apply_inner(&mut self, cmd: &SaCommand) -> Result<(), String> {
        match cmd {
            SaCommand::InstallInbound {
                sa,
                local_ts,
                remote_ts,
                ..
            } => {
                if self.inbound.contains_key(&sa.spi) {
                    return Err(format!("inbound SA {:08x} installed twice", sa.spi));
                }
                let cipher = EspCipher::new(sa.suite, &sa.keys)
                    .map_err(|e| format!("inbound SA {:08x}: {e}", sa.spi))?;
                let inbound = InboundSa::new(
                    sa.spi,
                    cipher,
                    REPLAY_WINDOW,
                    selectors(local_ts)?,
                    selectors(remote_ts)?,
                )
                .map_err(|e| format!("inbound SA {:08x}: {e}", sa.spi))?;
                self.sad.insert_inbound(Arc::new(inbound));
                self.inbound.insert(
                    sa.spi,
                    InboundRecord {
                        keys: fingerprint(sa.keys.as_bytes()),
                        watch: Watch::new(sa.limits),
                        reported: None,
                    },
                );
            }
            SaCommand::InstallOutbound {
                child,
                sa,
                local_ts,
                remote_ts,
                local,
                remote,
                udp_encap,
            } => {
                if let Some(o) = self.outbound.get(&child.0) {
                    return Err(format!(
                        "outbound SA {:08x} for child {} which already sends on {:08x}",
                        sa.spi, child.0, o.spi
                    ));
                }
                if !udp_encap {
                    return Err(format!(
                        "outbound SA {:08x} without UDP encapsulation",
                        sa.spi
                    ));
                }
                let cipher = EspCipher::new(sa.suite, &sa.keys)
                    .map_err(|e| format!("outbound SA {:08x}: {e}", sa.spi))?;
                let (l, r) = (selectors(local_ts)?, selectors(remote_ts)?);
                let out = OutboundSa::new(
                    sa.spi,
                    cipher,
                    l.clone(),
                    r.clone(),
                    Some(UdpEncap {
                        local: *local,
                        remote: *remote,
                    }),
                );
                self.sad.insert_outbound(child.0, Arc::new(out));
                // Appended: an older CHILD_SA with the same selectors keeps
                // matching first until it is deleted (make-before-break).
                self.spd.remove_child(child.0);
                self.spd
                    .push(SpdEntry::new(l, r, PolicyAction::Protect(child.0)));
                self.outbound.insert(
                    child.0,
                    OutboundRecord {
                        spi: sa.spi,
                        keys: fingerprint(sa.keys.as_bytes()),
                        watch: Watch::new(sa.limits),
                    },
                );
                self.ever_up = true;
            }
            SaCommand::Delete {
                spi, inbound: true, ..
            } => {
                if self.inbound.remove(spi).is_none() {
                    return Err(format!(
                        "delete of inbound SA {spi:08x} which is not installed"
                    ));
                }
                self.sad.remove_inbound(*spi);
            }
            SaCommand::Delete {
                child,
                spi,
                inbound: false,
            } => {
                match self.outbound.get(&child.0) {
                    Some(o) if o.spi == *spi => {}
                    Some(o) => {
                        return Err(format!(
                            "delete of outbound SA {spi:08x} of child {} which sends on {:08x}",
                            child.0, o.spi
                        ));
                    }
                    None => {
                        return Err(format!(
                            "delete of outbound SA {spi:08x} of child {} which has none",
                            child.0
                        ));
                    }
                }
                self.outbound.remove(&child.0);
                self.spd.remove_child(child.0);
                self.sad.remove_outbound(child.0);
            }
            SaCommand::UpdateEndpoints {
                child,
                spi,
                local,
                remote,
            } => {
                let sa = self
                    .sad
                    .outbound(child.0)
                    .filter(|o| o.spi() == *spi)
                    .ok_or_else(|| {
                        format!("endpoint update of outbound SA {spi:08x} of child {} which is not installed", child.0)
                    })?;
                let moved = sa.with_udp_encap(Some(UdpEncap {
                    local: *local,
                    remote: *remote,
                }));
                self.sad.insert_outbound(child.0, Arc::new(moved));
            }
        }
        Ok(())
    }

    /// Inbound SPIs with their key fingerprints.
    pub fn inbound(&self) -> BTreeMap<u32, u64> {
        self.inbound.iter().map(|(s, r)| (*s, r.keys)).collect()
    }

    /// Outbound SPIs with their key fingerprints.
    pub fn outbound(&self) -> BTreeMap<u32, u64> {
        self.outbound.values().map(|o| (o.spi, o.keys)).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.inbound.is_empty() && self.outbound.is_empty() && self.spd.entries().is_empty()
    }

    /// SPD lookup and encapsulation of an inner packet; returns the ESP
    /// packet and the UDP endpoints to send it between.
    pub fn encapsulate(&mut self, inner: &[u8]) -> Result<(Vec<u8>, UdpEncap), TxError> {
        let child = match self.spd.lookup_packet(inner) {
            Ok(Some(e)) => match e.action {
                PolicyAction::Protect(c) => c,
                PolicyAction::Bypass | PolicyAction::Discard => return Err(TxError::NoPolicy),
            },
            Ok(None) => return Err(TxError::NoPolicy),
            Err(e) => return Err(TxError::Encap(format!("not an IP packet: {e}"))),
        };
        let sa = self.sad.outbound(child).ok_or(TxError::NoSa(child))?;
        let udp = sa.udp_encap().ok_or(TxError::NoUdpEncap)?;
        let mut buf = PacketBuf::with_default_room();
        buf.set_data(inner)
            .map_err(|e| TxError::Encap(e.to_string()))?;
        encapsulate(sa, &mut buf).map_err(|e: EncapError| TxError::Encap(e.to_string()))?;
        let (spi, stats) = (sa.spi(), sa.stats());
        if let Some(r) = self.outbound.get_mut(&child) {
            r.watch.check(spi, false, stats, &mut self.events);
        }
        Ok((buf.as_slice().to_vec(), udp))
    }

    /// Decapsulates an ESP packet that came from `remote` to `local`;
    /// returns the inner packet. Inbound activity (at most once per
    /// [`ACTIVITY_INTERVAL`] per SA), crossed limits and unknown SPIs are
    /// queued in [`events`](Self::events) as a driver reports them.
    pub fn decapsulate(
        &mut self,
        now: Instant,
        esp: &[u8],
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Result<Vec<u8>, DropReason> {
        let mut buf = PacketBuf::new(0, esp.len(), 0);
        buf.set_data(esp).map_err(|_| DropReason::NoRoom)?;
        let d = match decapsulate(&self.sad, &mut buf) {
            Ok(d) => d,
            Err(DropReason::UnknownSpi) => {
                let spi = esp
                    .get(..4)
                    .and_then(|b| <[u8; 4]>::try_from(b).ok())
                    .map_or(0, u32::from_be_bytes);
                self.events
                    .push(DataplaneEvent::UnknownSpi { spi, local, remote });
                return Err(DropReason::UnknownSpi);
            }
            Err(e) => return Err(e),
        };
        if let (Some(r), Some(sa)) = (self.inbound.get_mut(&d.spi), self.sad.inbound(d.spi)) {
            r.watch.check(d.spi, true, sa.stats(), &mut self.events);
            if r.reported.is_none_or(|t| now >= t + ACTIVITY_INTERVAL) {
                r.reported = Some(now);
                self.events
                    .push(DataplaneEvent::InboundActivity { spi: d.spi });
            }
        }
        Ok(buf.as_slice().to_vec())
    }
}

/// The test flow's inner packets: IPv4/UDP, port 9 to port 9 (discard),
/// whose payload starts with a magic, the sending node and a sequence number.
pub mod flow_packet {
    use super::*;

    const MAGIC: &[u8; 4] = b"oxsm";
    /// IPv4 (20) + UDP (8).
    const HEADERS: usize = 28;
    /// Magic, node, sequence number.
    pub const MIN_PAYLOAD: usize = 4 + 1 + 8;

    pub(crate) fn checksum(data: &[u8]) -> u16 {
        let mut sum: u32 = data
            .chunks(2)
            .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
            .sum();
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    /// Builds packet number `seq` from `node` (0 or 1); `payload_len` is
    /// raised to [`MIN_PAYLOAD`] if smaller.
    pub fn build(src: Ipv4Addr, dst: Ipv4Addr, node: u8, seq: u64, payload_len: usize) -> Vec<u8> {
        let payload_len = payload_len.max(MIN_PAYLOAD);
        let total = HEADERS + payload_len;
        let total16 = u16::try_from(total).unwrap_or(u16::MAX);
        let mut p = Vec::with_capacity(total);
        p.extend_from_slice(&[0x45, 0]);
        p.extend_from_slice(&total16.to_be_bytes());
        p.extend_from_slice(&(seq as u16).to_be_bytes());
        p.extend_from_slice(&[0x40, 0, 64, 17, 0, 0]);
        p.extend_from_slice(&src.octets());
        p.extend_from_slice(&dst.octets());
        let c = checksum(&p);
        p[10..12].copy_from_slice(&c.to_be_bytes());
        let udp_len = u16::try_from(8 + payload_len).unwrap_or(u16::MAX);
        p.extend_from_slice(&9u16.to_be_bytes());
        p.extend_from_slice(&9u16.to_be_bytes());
        p.extend_from_slice(&udp_len.to_be_bytes());
        // No UDP checksum (allowed for IPv4): the ESP ICV protects the packet.
        p.extend_from_slice(&[0, 0]);
        p.extend_from_slice(MAGIC);
        p.push(node);
        p.extend_from_slice(&seq.to_be_bytes());
        p.resize(total, 0xa5);
        p
    }

    /// The (node, sequence number) of a flow packet, checking addresses.
    pub fn parse(p: &[u8], src: IpAddr, dst: IpAddr) -> Option<(u8, u64)> {
        if p.len() < HEADERS + MIN_PAYLOAD || p[0] != 0x45 || p[9] != 17 {
            return None;
        }
        let s = IpAddr::from(<[u8; 4]>::try_from(&p[12..16]).ok()?);
        let d = IpAddr::from(<[u8; 4]>::try_from(&p[16..20]).ok()?);
        if s != src || d != dst || &p[HEADERS..HEADERS + 4] != MAGIC {
            return None;
        }
        let node = p[HEADERS + 4];
        let seq = u64::from_be_bytes(p[HEADERS + 5..HEADERS + 13].try_into().ok()?);
        Some((node, seq))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxisec_crypto::Secret;
    use oxisec_crypto::esp_cipher::EspSuite;
    use oxisec_ike::{ChildId, EspSaParams};
    use oxisec_wire::encr;

    fn ts(s: &str) -> TsRange {
        s.parse().unwrap()
    }

    fn params(spi: u32, key: u8) -> EspSaParams {
        EspSaParams {
            spi,
            suite: EspSuite {
                encr: encr::AES_GCM_16,
                encr_key_bits: Some(128),
                integ: None,
                esn: false,
            },
            keys: Secret::new(vec![key; 20]),
            limits: SaLimits::default(),
            mode: Default::default(),
            replay_window: 64,
        }
    }

    fn out(child: u64, spi: u32, key: u8) -> SaCommand {
        SaCommand::InstallOutbound {
            child: ChildId(child),
            sa: params(spi, key),
            local_ts: vec![ts("198.51.100.0/24")],
            remote_ts: vec![ts("203.0.113.0/24")],
            local: "192.0.2.1:4500".parse().unwrap(),
            remote: "192.0.2.2:4500".parse().unwrap(),
            udp_encap: true,
        }
    }

    fn inb(child: u64, spi: u32, key: u8) -> SaCommand {
        SaCommand::InstallInbound {
            child: ChildId(child),
            sa: params(spi, key),
            local_ts: vec![ts("203.0.113.0/24")],
            remote_ts: vec![ts("198.51.100.0/24")],
        }
    }

    fn del(child: u64, spi: u32, inbound: bool) -> SaCommand {
        SaCommand::Delete {
            child: ChildId(child),
            spi,
            inbound,
        }
    }

    fn packet(seq: u64) -> Vec<u8> {
        flow_packet::build(
            "198.51.100.1".parse().unwrap(),
            "203.0.113.1".parse().unwrap(),
            0,
            seq,
            32,
        )
    }

    #[test]
    fn flow_packet_round_trips() {
        let p = packet(77);
        assert_eq!(p.len(), 60);
        let got = flow_packet::parse(
            &p,
            "198.51.100.1".parse().unwrap(),
            "203.0.113.1".parse().unwrap(),
        );
        assert_eq!(got, Some((0, 77)));
        assert_eq!(flow_packet::checksum(&p[..20]), 0);
        assert_eq!(
            flow_packet::parse(
                &p,
                "10.0.0.1".parse().unwrap(),
                "203.0.113.1".parse().unwrap()
            ),
            None
        );
    }

    #[test]
    fn packet_goes_through_sender_and_receiver_tables() {
        let (mut a, mut b) = (DataPlane::new(), DataPlane::new());
        assert_eq!(a.encapsulate(&packet(1)), Err(TxError::NoPolicy));
        a.apply(&out(1, 0x1000, 7)).unwrap();
        b.apply(&inb(5, 0x1000, 7)).unwrap();
        assert_eq!(a.outbound(), b.inbound());
        let (esp, udp) = a.encapsulate(&packet(1)).unwrap();
        assert_eq!(udp.remote, "192.0.2.2:4500".parse().unwrap());
        let t = Instant::now();
        let (l, r) = (udp.remote, udp.local);
        assert_eq!(b.decapsulate(t, &esp, l, r), Ok(packet(1)));
        assert_eq!(
            b.decapsulate(t, &esp, l, r),
            Err(DropReason::ReplayDuplicate)
        );
        // Different keys under the same SPI do not decrypt.
        let mut c = DataPlane::new();
        c.apply(&inb(5, 0x1000, 8)).unwrap();
        assert_ne!(a.outbound(), c.inbound());
        assert_eq!(
            c.decapsulate(t, &esp, l, r),
            Err(DropReason::IntegrityFailed)
        );
        let mut d = DataPlane::new();
        assert_eq!(d.decapsulate(t, &esp, l, r), Err(DropReason::UnknownSpi));
        assert_eq!(
            d.events,
            [DataplaneEvent::UnknownSpi {
                spi: 0x1000,
                local: l,
                remote: r
            }]
        );
        assert_eq!(b.events, [DataplaneEvent::InboundActivity { spi: 0x1000 }]);
    }

    #[test]
    fn limits_and_activity_are_reported_once() {
        let (mut a, mut b) = (DataPlane::new(), DataPlane::new());
        let limits = SaLimits {
            soft_packets: 2,
            hard_packets: 3,
            ..SaLimits::default()
        };
        for (p, cmd) in [(&mut a, out(1, 0x1000, 7)), (&mut b, inb(5, 0x1000, 7))] {
            let cmd = match cmd {
                SaCommand::InstallOutbound {
                    child,
                    mut sa,
                    local_ts,
                    remote_ts,
                    local,
                    remote,
                    udp_encap,
                } => {
                    sa.limits = limits;
                    SaCommand::InstallOutbound {
                        child,
                        sa,
                        local_ts,
                        remote_ts,
                        local,
                        remote,
                        udp_encap,
                    }
                }
                SaCommand::InstallInbound {
                    child,
                    mut sa,
                    local_ts,
                    remote_ts,
                } => {
                    sa.limits = limits;
                    SaCommand::InstallInbound {
                        child,
                        sa,
                        local_ts,
                        remote_ts,
                    }
                }
                other => other,
            };
            p.apply(&cmd).unwrap();
        }
        let t = Instant::now();
        for i in 0..4u64 {
            let (esp, udp) = a.encapsulate(&packet(i)).unwrap();
            let at = t + Duration::from_millis(600 * i);
            b.decapsulate(at, &esp, udp.remote, udp.local).unwrap();
        }
        let soft = |inbound| DataplaneEvent::SoftExpired {
            spi: 0x1000,
            inbound,
        };
        let hard = |inbound| DataplaneEvent::HardExpired {
            spi: 0x1000,
            inbound,
        };
        assert_eq!(a.events, [soft(false), hard(false)]);
        let act = DataplaneEvent::InboundActivity { spi: 0x1000 };
        // Activity at 0 s and 1.2 s (not at 0.6 s or 1.8 s), after the
        // limits the same packet crossed.
        assert_eq!(b.events, [act.clone(), soft(true), hard(true), act]);
    }

    #[test]
    fn older_child_keeps_the_traffic_until_it_is_deleted() {
        let mut a = DataPlane::new();
        a.apply(&out(1, 0x1000, 7)).unwrap();
        a.apply(&out(2, 0x2000, 8)).unwrap();
        let spi = |esp: &[u8]| u32::from_be_bytes(esp[..4].try_into().unwrap());
        assert_eq!(spi(&a.encapsulate(&packet(1)).unwrap().0), 0x1000);
        a.apply(&del(1, 0x1000, false)).unwrap();
        assert_eq!(spi(&a.encapsulate(&packet(2)).unwrap().0), 0x2000);
        a.apply(&del(2, 0x2000, false)).unwrap();
        assert_eq!(a.encapsulate(&packet(3)), Err(TxError::NoPolicy));
        assert!(a.is_empty());
        assert!(a.ever_up);
    }

    #[test]
    fn commands_that_do_not_fit_are_recorded() {
        let mut a = DataPlane::new();
        a.apply(&inb(1, 0x1000, 7)).unwrap();
        assert!(a.apply(&inb(2, 0x1000, 7)).is_err());
        assert!(a.apply(&del(1, 0x2000, true)).is_err());
        a.apply(&out(1, 0x3000, 7)).unwrap();
        assert!(a.apply(&out(1, 0x4000, 7)).is_err());
        assert!(a.apply(&del(1, 0x4000, false)).is_err());
        assert!(a.apply(&del(9, 0x3000, false)).is_err());
        assert_eq!(a.errors.len(), 5, "{:?}", a.errors);
    }
}
