//! Engine configurations for the two simulated gateways: connection
//! "tunnel" with one child "net" protecting 198.51.100.0/24 (behind A) ↔
//! 203.0.113.0/24 (behind B), PSK authentication, ESP in UDP.
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use oxisec_crypto::Secret;
use oxisec_ike::{
    Auth, ChildConfig, ChildLifetime, Config, Connection, DpdAction, EspProposal, IkeLifetime,
    IkeProposal, NatKeepalive, RetransmitConfig, StartAction, TsRange,
};

/// The connection name every gateway uses.
pub const CONNECTION: &str = "tunnel";
/// The child name every gateway uses.
pub const CHILD: &str = "net";

/// One gateway's settings; [`Gateway::a`] and [`Gateway::b`] fit together.
#[derive(Debug, Clone)]
pub struct Gateway {
    pub addr: Ipv4Addr,
    pub peer: Ipv4Addr,
    pub id: String,
    pub peer_id: String,
    pub psk: String,
    /// IKE proposals in the engine's syntax, e.g. "aes128gcm16-prfsha256-x25519".
    pub ike: Vec<String>,
    /// ESP proposals; a key exchange method in them means PFS on rekey.
    pub esp: Vec<String>,
    pub local_net: String,
    pub remote_net: String,
    /// The host behind this gateway that sends the test flow.
    pub host: Ipv4Addr,
    pub retransmit: RetransmitConfig,
    /// Lifetimes; [`Gateway::a`] and [`Gateway::b`] disable every timer
    /// (zero) so that scripted tests start each exchange themselves and the
    /// engines fall idle in between. See [`Gateway::with_lifetimes`].
    pub child_lifetime: ChildLifetime,
    pub ike_lifetime: IkeLifetime,
    /// Liveness check interval; zero disables it.
    pub dpd_delay: Duration,
    pub dpd_action: DpdAction,
    /// NAT keepalive interval; zero disables them.
    pub nat_keepalive: Duration,
}

/// A lifetime with every timer and limit off.
fn no_child_lifetime() -> ChildLifetime {
    ChildLifetime {
        rekey_time: Duration::ZERO,
        life_time: Duration::ZERO,
        rand_time: Duration::ZERO,
        rekey_bytes: 0,
        life_bytes: 0,
        rekey_packets: 0,
        life_packets: 0,
    }
}

impl Gateway {
    pub fn a() -> Gateway {
        Gateway {
            addr: Ipv4Addr::new(192, 0, 2, 1),
            peer: Ipv4Addr::new(192, 0, 2, 2),
            id: "gw-a.example.com".into(),
            peer_id: "gw-b.example.com".into(),
            psk: "simulated pre-shared key, 32 bytes".into(),
            ike: vec!["aes128gcm16-prfsha256-x25519".into()],
            esp: vec!["aes128gcm16".into()],
            local_net: "198.51.100.0/24".into(),
            remote_net: "203.0.113.0/24".into(),
            host: Ipv4Addr::new(198, 51, 100, 1),
            retransmit: RetransmitConfig::default(),
            child_lifetime: no_child_lifetime(),
            ike_lifetime: IkeLifetime {
                rekey_time: Duration::ZERO,
                over_time: Duration::ZERO,
                rand_time: Duration::ZERO,
                reauth_time: Duration::ZERO,
            },
            dpd_delay: Duration::ZERO,
            dpd_action: DpdAction::Clear,
            nat_keepalive: Duration::ZERO,
        }
    }

    pub fn b() -> Gateway {
        let a = Gateway::a();
        Gateway {
            addr: a.peer,
            peer: a.addr,
            id: a.peer_id.clone(),
            peer_id: a.id.clone(),
            local_net: a.remote_net.clone(),
            remote_net: a.local_net.clone(),
            host: Ipv4Addr::new(203, 0, 113, 1),
            ..a
        }
    }

    /// Both gateways with the same ESP proposals.
    pub fn pair_with_esp(esp: &str) -> (Gateway, Gateway) {
        let mut a = Gateway::a();
        let mut b = Gateway::b();
        a.esp = vec![esp.into()];
        b.esp = vec![esp.into()];
        (a, b)
    }

    pub fn with_retransmit(mut self, r: RetransmitConfig) -> Gateway {
        self.retransmit = r;
        self
    }

    /// Turns on the engine's own rekeying: CHILD_SAs after `child_rekey`
    /// and IKE SAs after `ike_rekey`, each with strongSwan's derived hard
    /// limits and jitter (life = rekey + 10 %, jitter up to the difference).
    pub fn with_lifetimes(mut self, child_rekey: Duration, ike_rekey: Duration) -> Gateway {
        self.child_lifetime = ChildLifetime::from_rekey_time(child_rekey);
        self.ike_lifetime = IkeLifetime::from_rekey_time(ike_rekey);
        self
    }

    pub fn ip(&self) -> IpAddr {
        IpAddr::V4(self.addr)
    }

    /// The engine configuration. Panics on a malformed proposal or
    /// selector string: these are test fixtures.
    pub fn config(&self) -> Config {
        let ts = |s: &str| -> TsRange {
            s.parse()
                .unwrap_or_else(|e| panic!("selector {s:?}: {e:?}"))
        };
        let conn = Connection {
            name: CONNECTION.into(),
            local_addrs: vec![self.ip()],
            remote_addrs: vec![IpAddr::V4(self.peer)],
            remote_port: 500,
            local_id: self.id.parse().expect("local identity"),
            remote_id: Some(self.peer_id.parse().expect("remote identity")),
            local_auth: Auth::Psk(Secret::from_slice(self.psk.as_bytes())),
            remote_auth: Auth::Psk(Secret::from_slice(self.psk.as_bytes())),
            ike_proposals: self
                .ike
                .iter()
                .map(|s| IkeProposal::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e:?}")))
                .collect(),
            children: vec![ChildConfig {
                name: CHILD.into(),
                local_ts: vec![ts(&self.local_net)],
                remote_ts: vec![ts(&self.remote_net)],
                esp_proposals: self
                    .esp
                    .iter()
                    .map(|s| EspProposal::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e:?}")))
                    .collect(),
                start_action: StartAction::Start,
                lifetime: self.child_lifetime,
            }],
            force_encap: true,
            ike_lifetime: self.ike_lifetime,
            dpd_delay: self.dpd_delay,
            dpd_action: self.dpd_action,
            remote_access: Default::default(),
        };
        Config {
            connections: vec![Arc::new(conn)],
            retransmit: self.retransmit,
            nat_keepalive: NatKeepalive(self.nat_keepalive),
            ..Config::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_two_gateways_mirror_each_other() {
        let (a, b) = (Gateway::a(), Gateway::b());
        assert_eq!((a.addr, a.peer), (b.peer, b.addr));
        assert_eq!(
            (a.local_net.as_str(), a.id.as_str()),
            (b.remote_net.as_str(), b.peer_id.as_str())
        );
        let c = a.config();
        assert_eq!(c.connections[0].children[0].name, CHILD);
        let (pa, pb) = Gateway::pair_with_esp("aes128gcm16-x25519");
        assert_eq!(pa.esp, pb.esp);
        b.config();
        pa.config();
    }
}
