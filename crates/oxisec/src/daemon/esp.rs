//! The adapter between the engine's [`SaCommand`]s and the ESP crate's SAD
//! and SPD, and the per-thread packet workers that use them.
//!
//! The control plane (the engine task) is the only writer: it publishes new
//! SAD/SPD values through [`Snapshot`]s. Each packet thread holds its own
//! [`Worker`] with [`SnapshotReader`]s, so the per-packet path is one atomic
//! load per table and no lock (the ESP crate's design).
use std::net::SocketAddr;
use std::sync::Arc;

use oxisec_crypto::esp_cipher::EspCipher;
use oxisec_esp::{
    DropReason, InboundSa, OutboundSa, PacketBuf, PolicyAction, Sad, Selector, Snapshot,
    SnapshotReader, Spd, SpdEntry, UdpEncap, decapsulate, encapsulate,
};
use oxisec_ike::{SaCommand, TsRange};

use crate::status::Traffic;

/// Packets tracked by each inbound SA's anti-replay window. Generous: a
/// userspace data plane reorders across threads and the peer may batch.
const REPLAY_WINDOW: u32 = 1024;

/// What the UDP thread does with a received ESP packet.
pub enum Decap {
    /// The buffer's window holds the inner packet: write it to the TUN device.
    Deliver,
    Drop(DropReason),
}

/// What the TUN thread does with a packet read from the TUN device.
pub enum Encap {
    /// The buffer's window holds the ESP packet: send it as the UDP payload
    /// from `local` to `remote`.
    Send {
        local: SocketAddr,
        remote: SocketAddr,
    },
    /// No policy covers this packet (it was routed into the TUN device by
    /// something other than us, or its SA just went away).
    NoPolicy,
    Drop(String),
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

/// The SAD and SPD as published to the packet threads.
pub struct Tables {
    sad: Arc<Snapshot<Sad>>,
    spd: Arc<Snapshot<Spd>>,
}

impl Default for Tables {
    fn default() -> Self {
        Tables {
            sad: Arc::new(Snapshot::new(Sad::new())),
            spd: Arc::new(Snapshot::new(Spd::new())),
        }
    }
}

impl Tables {
    pub fn engine_name() -> &'static str {
        "oxisec-esp"
    }

    /// A packet thread's view.
    pub fn worker(&self) -> Worker {
        Worker {
            sad: SnapshotReader::new(Arc::clone(&self.sad)),
            spd: SnapshotReader::new(Arc::clone(&self.spd)),
        }
    }

    /// Applies one engine command. Inbound SAs go in before the outbound
    /// half and the policy (the engine emits them in that order); on delete,
    /// the policy goes first so that no packet is steered to a missing SA.
    pub fn apply(&self, cmd: &SaCommand) -> Result<(), String> {
        match cmd {
            SaCommand::InstallInbound {
                sa,
                local_ts,
                remote_ts,
                ..
            } => {
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
                self.sad.update(|s| {
                    s.insert_inbound(Arc::new(inbound));
                });
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
                if !udp_encap {
                    return Err(format!(
                        "outbound SA {:08x} without UDP encapsulation: raw ESP is not supported",
                        sa.spi
                    ));
                }
                let cipher = EspCipher::new(sa.suite, &sa.keys)
                    .map_err(|e| format!("outbound SA {:08x}: {e}", sa.spi))?;
                let (l, r) = (selectors(local_ts)?, selectors(remote_ts)?);
                let outbound = OutboundSa::new(
                    sa.spi,
                    cipher,
                    l.clone(),
                    r.clone(),
                    Some(UdpEncap {
                        local: *local,
                        remote: *remote,
                    }),
                );
                self.sad.update(|s| {
                    s.insert_outbound(child.0, Arc::new(outbound));
                });
                self.spd.update(|p| {
                    p.remove_child(child.0);
                    p.push(SpdEntry::new(l, r, PolicyAction::Protect(child.0)));
                });
            }
            SaCommand::Delete {
                spi, inbound: true, ..
            } => {
                self.sad.update(|s| {
                    s.remove_inbound(*spi);
                });
            }
            SaCommand::Delete {
                child,
                spi,
                inbound: false,
            } => {
                self.spd.update(|p| {
                    p.remove_child(child.0);
                });
                self.sad.update(|s| {
                    if s.outbound(child.0).is_some_and(|o| o.spi() == *spi) {
                        s.remove_outbound(child.0);
                    }
                });
            }
            SaCommand::UpdateEndpoints {
                child,
                spi,
                local,
                remote,
            } => {
                // Same keys, sequence counter and statistics; new UDP endpoints.
                let encap = Some(UdpEncap {
                    local: *local,
                    remote: *remote,
                });
                self.sad.update(|s| {
                    let moved = s
                        .outbound(child.0)
                        .filter(|o| o.spi() == *spi)
                        .map(|o| Arc::new(o.with_udp_encap(encap)));
                    if let Some(o) = moved {
                        s.insert_outbound(child.0, o);
                    }
                });
            }
        }
        Ok(())
    }

    /// Bytes and packets an SA carried.
    pub fn counters(&self, spi: u32, inbound: bool) -> Option<Traffic> {
        let sad = self.sad.load();
        let stats = if inbound {
            sad.inbound(spi)?.stats()
        } else {
            sad.outbound_sas().find(|(_, o)| o.spi() == spi)?.1.stats()
        };
        Some(Traffic {
            bytes: stats.bytes,
            packets: stats.packets,
        })
    }

    /// Drops everything (shutdown).
    pub fn clear(&self) {
        self.spd.store(Spd::new());
        self.sad.store(Sad::new());
    }
}

/// One packet thread's lock-free view of the tables.
pub struct Worker {
    sad: SnapshotReader<Sad>,
    spd: SnapshotReader<Spd>,
}

impl Worker {
    /// Decapsulates the ESP packet in `buf` in place.
    pub fn decapsulate(&mut self, buf: &mut PacketBuf) -> Decap {
        match decapsulate(self.sad.get(), buf) {
            Ok(_) => Decap::Deliver,
            Err(r) => Decap::Drop(r),
        }
    }

    /// Finds the policy for the IP packet in `buf` and encapsulates it in
    /// place.
    pub fn encapsulate(&mut self, buf: &mut PacketBuf) -> Encap {
        let child = match self.spd.get().lookup_packet(buf.as_slice()) {
            Ok(Some(e)) => match e.action {
                PolicyAction::Protect(c) => c,
                PolicyAction::Bypass | PolicyAction::Discard => return Encap::NoPolicy,
            },
            Ok(None) => return Encap::NoPolicy,
            Err(e) => return Encap::Drop(format!("not an IP packet: {e}")),
        };
        let Some(sa) = self.sad.get().outbound(child).cloned() else {
            return Encap::Drop(format!("no outbound SA for child {child} yet"));
        };
        let Some(udp) = sa.udp_encap() else {
            return Encap::Drop("SA without UDP encapsulation".into());
        };
        match encapsulate(&sa, buf) {
            Ok(()) => Encap::Send {
                local: udp.local,
                remote: udp.remote,
            },
            Err(e) => Encap::Drop(format!("SA {:08x}: {e}", sa.spi())),
        }
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

    fn params(spi: u32) -> EspSaParams {
        EspSaParams {
            spi,
            suite: EspSuite {
                encr: encr::AES_GCM_16,
                encr_key_bits: Some(128),
                integ: None,
                esn: false,
            },
            keys: Secret::new((0u8..20).collect()),
            limits: Default::default(),
        }
    }

    /// An ICMP echo from `src` to `dst`.
    fn ipv4(src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
        let mut p = vec![0x45, 0, 0, 28, 0, 1, 0, 0, 64, 1, 0, 0];
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p.extend_from_slice(&[8, 0, 0, 0, 0, 1, 0, 1]);
        p
    }

    fn outbound(child: u64, spi: u32) -> SaCommand {
        SaCommand::InstallOutbound {
            child: ChildId(child),
            sa: params(spi),
            local_ts: vec![ts("198.51.100.0/24")],
            remote_ts: vec![ts("203.0.113.0/24")],
            local: "192.0.2.1:4500".parse().unwrap(),
            remote: "192.0.2.2:4500".parse().unwrap(),
            udp_encap: true,
        }
    }

    fn inbound(child: u64, spi: u32) -> SaCommand {
        // The peer's view: packets come from 198.51.100.0/24 to 203.0.113.0/24.
        SaCommand::InstallInbound {
            child: ChildId(child),
            sa: params(spi),
            local_ts: vec![ts("203.0.113.0/24")],
            remote_ts: vec![ts("198.51.100.0/24")],
        }
    }

    #[test]
    fn encapsulated_packet_decapsulates_on_the_peer() {
        let (a, b) = (Tables::default(), Tables::default());
        a.apply(&outbound(1, 0xc0ffee01)).unwrap();
        b.apply(&inbound(7, 0xc0ffee01)).unwrap();
        let (mut wa, mut wb) = (a.worker(), b.worker());

        let inner = ipv4([198, 51, 100, 1], [203, 0, 113, 1]);
        let mut buf = PacketBuf::with_default_room();
        buf.set_data(&inner).unwrap();
        match wa.encapsulate(&mut buf) {
            Encap::Send { local, remote } => {
                assert_eq!(local, "192.0.2.1:4500".parse().unwrap());
                assert_eq!(remote, "192.0.2.2:4500".parse().unwrap());
            }
            _ => panic!("not encapsulated"),
        }
        assert_eq!(&buf.as_slice()[..4], &0xc0ffee01u32.to_be_bytes());
        let mut rx = PacketBuf::new(0, 4096, 0);
        rx.set_data(buf.as_slice()).unwrap();
        assert!(matches!(wb.decapsulate(&mut rx), Decap::Deliver));
        assert_eq!(rx.as_slice(), &inner[..]);
        assert_eq!(
            a.counters(0xc0ffee01, false),
            Some(Traffic {
                bytes: 28,
                packets: 1
            })
        );
        assert_eq!(
            b.counters(0xc0ffee01, true),
            Some(Traffic {
                bytes: 28,
                packets: 1
            })
        );
        // The same packet again is a replay.
        rx.set_data(buf.as_slice()).unwrap();
        assert!(matches!(
            wb.decapsulate(&mut rx),
            Decap::Drop(DropReason::ReplayDuplicate)
        ));
    }

    #[test]
    fn packets_outside_the_policy_are_not_protected() {
        let a = Tables::default();
        a.apply(&outbound(1, 0x100)).unwrap();
        let mut w = a.worker();
        let mut buf = PacketBuf::with_default_room();
        buf.set_data(&ipv4([10, 0, 0, 1], [203, 0, 113, 1]))
            .unwrap();
        assert!(matches!(w.encapsulate(&mut buf), Encap::NoPolicy));
        buf.set_data(&[0x00, 1, 2]).unwrap();
        assert!(matches!(w.encapsulate(&mut buf), Encap::Drop(_)));
    }

    #[test]
    fn delete_removes_policy_then_sa() {
        let a = Tables::default();
        a.apply(&inbound(1, 0x200)).unwrap();
        a.apply(&outbound(1, 0x201)).unwrap();
        assert!(a.counters(0x200, true).is_some());
        a.apply(&SaCommand::Delete {
            child: ChildId(1),
            spi: 0x201,
            inbound: false,
        })
        .unwrap();
        assert!(a.counters(0x201, false).is_none());
        let mut w = a.worker();
        let mut buf = PacketBuf::with_default_room();
        buf.set_data(&ipv4([198, 51, 100, 1], [203, 0, 113, 1]))
            .unwrap();
        assert!(matches!(w.encapsulate(&mut buf), Encap::NoPolicy));
        a.apply(&SaCommand::Delete {
            child: ChildId(1),
            spi: 0x200,
            inbound: true,
        })
        .unwrap();
        assert!(a.counters(0x200, true).is_none());
    }

    #[test]
    fn rejects_raw_esp_and_bad_keys() {
        let a = Tables::default();
        let mut cmd = outbound(1, 0x300);
        if let SaCommand::InstallOutbound { udp_encap, .. } = &mut cmd {
            *udp_encap = false;
        }
        assert!(a.apply(&cmd).unwrap_err().contains("raw ESP"));
        let mut cmd = inbound(1, 0x301);
        if let SaCommand::InstallInbound { sa, .. } = &mut cmd {
            sa.keys = Secret::new(vec![0; 3]);
        }
        assert!(a.apply(&cmd).is_err());
    }
}
