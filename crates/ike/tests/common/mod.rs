//! A two-engine harness for scripted tests: deterministic randomness, a
//! virtual clock, and a "wire" the test can inspect, drop or alter.
#![allow(dead_code)]

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use oxisec_crypto::{Rng, Secret};
use oxisec_ike::*;

/// SplitMix64: deterministic, good enough to draw keys and nonces in tests.
pub struct TestRng(pub u64);

impl Rng for TestRng {
    fn fill(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            chunk.copy_from_slice(&z.to_be_bytes()[..chunk.len()]);
        }
    }
}

pub fn ts(s: &str) -> TsRange {
    s.parse().unwrap()
}

/// A gateway's configuration with one connection "tunnel" and one child "net".
pub struct Side {
    pub addr: IpAddr,
    pub peer: IpAddr,
    pub id: &'static str,
    pub peer_id: Option<&'static str>,
    pub psk: &'static str,
    pub peer_psk: &'static str,
    pub ike: Vec<&'static str>,
    pub esp: Vec<&'static str>,
    pub local_ts: Vec<&'static str>,
    pub remote_ts: Vec<&'static str>,
    /// More children: (name, local_ts, remote_ts), all with `esp` proposals.
    pub extra_children: Vec<(&'static str, &'static str, &'static str)>,
    /// Lifetimes and liveness; all off unless a test sets them, so that a
    /// test's clock can run to the end of every timer.
    pub child_lifetime: ChildLifetime,
    /// Mode of every child, and whether it is required (no tunnel fallback).
    pub mode: (oxisec_ike::ChildMode, bool),
    pub replay_window: u32,
    pub ike_lifetime: IkeLifetime,
    pub dpd_delay: Duration,
    pub dpd_action: DpdAction,
    /// Certificate (or mixed) authentication: (how we prove ourselves, what
    /// the peer must prove) instead of the two PSKs.
    pub auth: Option<(Auth, Auth)>,
    /// Virtual IPs (client or gateway side) and the gateway's pools.
    pub remote_access: RemoteAccess,
    pub pools: Vec<PoolConfig>,
}

/// Lifetimes that never fire.
pub fn no_child_lifetime() -> ChildLifetime {
    ChildLifetime {
        rekey_time: Duration::ZERO,
        life_time: Duration::ZERO,
        rand_time: Duration::ZERO,
        ..ChildLifetime::default()
    }
}

impl Side {
    pub fn a() -> Side {
        Side {
            addr: "192.0.2.1".parse().unwrap(),
            peer: "192.0.2.2".parse().unwrap(),
            id: "gw-a.example.com",
            peer_id: Some("gw-b.example.com"),
            psk: "correct horse battery staple 42",
            peer_psk: "correct horse battery staple 42",
            ike: vec!["aes128gcm16-prfsha256-x25519"],
            esp: vec!["aes128gcm16"],
            local_ts: vec!["198.51.100.0/24"],
            remote_ts: vec!["203.0.113.0/24"],
            extra_children: Vec::new(),
            child_lifetime: no_child_lifetime(),
            mode: (oxisec_ike::ChildMode::Tunnel, false),
            replay_window: oxisec_ike::config::DEFAULT_REPLAY_WINDOW,
            ike_lifetime: IkeLifetime::from_rekey_time(Duration::ZERO),
            dpd_delay: Duration::ZERO,
            dpd_action: DpdAction::Clear,
            auth: None,
            remote_access: RemoteAccess::default(),
            pools: Vec::new(),
        }
    }

    pub fn b() -> Side {
        Side {
            addr: "192.0.2.2".parse().unwrap(),
            peer: "192.0.2.1".parse().unwrap(),
            id: "gw-b.example.com",
            peer_id: Some("gw-a.example.com"),
            local_ts: vec!["203.0.113.0/24"],
            remote_ts: vec!["198.51.100.0/24"],
            ..Side::a()
        }
    }

    pub fn connection(&self) -> Connection {
        Connection {
            name: "tunnel".into(),
            local_addrs: vec![self.addr],
            remote_addrs: vec![self.peer],
            remote_port: 500,
            local_id: self.id.parse().unwrap(),
            remote_id: self.peer_id.map(|s| s.parse().unwrap()),
            local_auth: match &self.auth {
                Some((local, _)) => local.clone(),
                None => Auth::Psk(Secret::from_slice(self.psk.as_bytes())),
            },
            remote_auth: match &self.auth {
                Some((_, remote)) => remote.clone(),
                None => Auth::Psk(Secret::from_slice(self.peer_psk.as_bytes())),
            },
            ike_proposals: self
                .ike
                .iter()
                .map(|s| IkeProposal::parse(s).unwrap())
                .collect(),
            children: std::iter::once(("net", self.local_ts.clone(), self.remote_ts.clone()))
                .chain(
                    self.extra_children
                        .iter()
                        .map(|(n, l, r)| (*n, vec![*l], vec![*r])),
                )
                .map(|(name, l, r)| ChildConfig {
                    name: name.into(),
                    local_ts: l.iter().map(|s| ts(s)).collect(),
                    remote_ts: r.iter().map(|s| ts(s)).collect(),
                    esp_proposals: self
                        .esp
                        .iter()
                        .map(|s| EspProposal::parse(s).unwrap())
                        .collect(),
                    start_action: StartAction::Start,
                    lifetime: self.child_lifetime,
                    mode: self.mode.0,
                    mode_required: self.mode.1,
                    replay_window: self.replay_window,
                })
                .collect(),
            force_encap: true,
            ike_lifetime: self.ike_lifetime,
            dpd_delay: self.dpd_delay,
            dpd_action: self.dpd_action,
            remote_access: self.remote_access.clone(),
        }
    }

    pub fn engine(&self, seed: u64) -> Peer {
        let config = Config {
            connections: vec![Arc::new(self.connection())],
            retransmit: RetransmitConfig::default(),
            pools: self.pools.clone(),
            ..Config::default()
        };
        Peer {
            engine: Engine::new(config, Box::new(TestRng(seed))),
            commands: Vec::new(),
            events: Vec::new(),
            sent: Vec::new(),
            dp: DataPlane::default(),
        }
    }
}

/// What the data plane would hold after applying every SaCommand in order.
#[derive(Debug, Default)]
pub struct DataPlane {
    /// SPI → keys.
    pub inbound: std::collections::BTreeMap<u32, Vec<u8>>,
    /// SPI → (child, keys).
    pub outbound: std::collections::BTreeMap<u32, (ChildId, Vec<u8>)>,
}

impl DataPlane {
    pub fn apply(&mut self, c: &SaCommand) {
        match c {
            SaCommand::InstallInbound { sa, .. } => {
                let fresh = self
                    .inbound
                    .insert(sa.spi, sa.keys.as_bytes().to_vec())
                    .is_none();
                assert!(fresh, "inbound SPI {:08x} installed twice", sa.spi);
            }
            SaCommand::InstallOutbound { child, sa, .. } => {
                let v = (*child, sa.keys.as_bytes().to_vec());
                let fresh = self.outbound.insert(sa.spi, v).is_none();
                assert!(fresh, "outbound SPI {:08x} installed twice", sa.spi);
            }
            SaCommand::Delete {
                spi, inbound: true, ..
            } => {
                assert!(
                    self.inbound.remove(spi).is_some(),
                    "deleting unknown inbound {spi:08x}"
                );
            }
            SaCommand::UpdateEndpoints { spi, .. } => {
                assert!(
                    self.outbound.contains_key(spi),
                    "moving unknown outbound {spi:08x}"
                );
            }
            SaCommand::Delete {
                spi,
                inbound: false,
                ..
            } => {
                assert!(
                    self.outbound.remove(spi).is_some(),
                    "deleting unknown outbound {spi:08x}"
                );
            }
        }
    }
}

/// Every outbound SA of one side is an inbound SA of the other with the same keys.
pub fn assert_consistent(a: &DataPlane, b: &DataPlane) {
    for (x, y, name) in [(a, b, "A→B"), (b, a, "B→A")] {
        for (spi, (_, keys)) in &x.outbound {
            assert_eq!(
                y.inbound.get(spi),
                Some(keys),
                "{name}: outbound {spi:08x} has no inbound twin"
            );
        }
    }
}

pub struct Peer {
    pub engine: Engine,
    pub commands: Vec<SaCommand>,
    pub events: Vec<Event>,
    /// Everything this peer transmitted, in order.
    pub sent: Vec<Transmit>,
    pub dp: DataPlane,
}

impl Peer {
    /// Drains the engine's outputs; returns its transmits.
    pub fn drain(&mut self) -> Vec<Transmit> {
        while let Some(c) = self.engine.poll_sa_command() {
            self.dp.apply(&c);
            self.commands.push(c);
        }
        while let Some(e) = self.engine.poll_event() {
            self.events.push(e);
        }
        let mut out = Vec::new();
        while let Some(t) = self.engine.poll_transmit() {
            self.sent.push(t.clone());
            out.push(t);
        }
        out
    }

    pub fn established(&self) -> usize {
        self.engine
            .status()
            .iter()
            .filter(|s| s.state == "ESTABLISHED")
            .count()
    }

    pub fn children(&self) -> usize {
        self.engine.status().iter().map(|s| s.children.len()).sum()
    }

    pub fn auth_failures(&self) -> usize {
        self.events
            .iter()
            .filter(|e| matches!(e, Event::AuthFailed { .. }))
            .count()
    }
}

pub fn deliver(to: &mut Peer, now: Instant, t: &Transmit) {
    to.engine.handle_datagram(
        now,
        Datagram {
            local: t.remote,
            remote: t.local,
            data: t.data.clone(),
        },
    );
}

/// A virtual clock and a lossless wire between two peers; `filter` may drop
/// (return false) or alter datagrams.
pub struct World {
    pub now: Instant,
    pub a: Peer,
    pub b: Peer,
}

impl World {
    pub fn new(a: Side, b: Side) -> World {
        World {
            now: Instant::now(),
            a: a.engine(1),
            b: b.engine(2),
        }
    }

    /// Moves datagrams until both peers are quiet; returns how many moved.
    pub fn pump_with(&mut self, mut filter: impl FnMut(bool, &mut Transmit) -> bool) -> usize {
        let mut moved = 0;
        for _ in 0..1000 {
            let from_a = self.a.drain();
            let from_b = self.b.drain();
            if from_a.is_empty() && from_b.is_empty() {
                return moved;
            }
            for mut t in from_a {
                if filter(true, &mut t) {
                    moved += 1;
                    deliver(&mut self.b, self.now, &t);
                }
            }
            for mut t in from_b {
                if filter(false, &mut t) {
                    moved += 1;
                    deliver(&mut self.a, self.now, &t);
                }
            }
        }
        panic!("peers never went quiet");
    }

    pub fn pump(&mut self) -> usize {
        self.pump_with(|_, _| true)
    }

    /// Advances the clock to the next timeout of either engine (at most `max`).
    pub fn advance(&mut self, max: Duration) -> bool {
        let limit = self.now + max;
        let next = [self.a.engine.poll_timeout(), self.b.engine.poll_timeout()]
            .into_iter()
            .flatten()
            .min();
        match next {
            Some(t) if t <= limit => {
                self.now = self.now.max(t);
                self.a.engine.handle_timeout(self.now);
                self.b.engine.handle_timeout(self.now);
                true
            }
            _ => {
                self.now = limit;
                false
            }
        }
    }

    pub fn initiate(&mut self) {
        self.a.engine.handle_command(
            self.now,
            Command::Initiate {
                connection: "tunnel".into(),
                child: None,
            },
        );
    }

    pub fn connect(&mut self) {
        self.initiate();
        self.pump();
    }

    /// Gives both engines the wall-clock time of `self.now` (certificate
    /// validity is checked against it).
    pub fn set_wall_clock(&mut self, wall: std::time::SystemTime) {
        self.a.engine.set_wall_clock(self.now, wall);
        self.b.engine.set_wall_clock(self.now, wall);
    }
}

/// The installed SAs of a peer as (spi, keys, inbound) in command order.
pub fn installs(p: &Peer) -> Vec<(u32, Vec<u8>, bool)> {
    p.commands
        .iter()
        .filter_map(|c| match c {
            SaCommand::InstallInbound { sa, .. } => {
                Some((sa.spi, sa.keys.as_bytes().to_vec(), true))
            }
            SaCommand::InstallOutbound { sa, .. } => {
                Some((sa.spi, sa.keys.as_bytes().to_vec(), false))
            }
            _ => None,
        })
        .collect()
}
