//! Interop tests against real IKE peers in network namespaces.
//!
//! Root only (they skip with a printed reason otherwise, or fail when
//! `OXISEC_INTEROP_REQUIRED=1`). They run one at a time (`common::serial`).
//! See `tests/common/mod.rs` for the harness and the topology.

mod common;

use std::time::Duration;

use common::peer::RekeyKind;
use common::scenario::{self, Rekey, Scenario};
use common::{PeerKind, Side, Tool};

/// IKE AES-GCM-128 / X25519, ESP AES-GCM-128: the modern default.
const GCM: (&str, &str) = ("aes128gcm16-prfsha256-x25519", "aes128gcm16");
/// IKE AES-CBC-256 + HMAC-SHA-256 / MODP-2048, ESP ChaCha20-Poly1305: the
/// classic non-AEAD IKE suite plus the other AEAD.
const CBC_CHACHA: (&str, &str) = ("aes256-sha256-modp2048", "chacha20poly1305");

const STRONGSWAN_TOOLS: &[Tool] = &[Tool::Charon, Tool::Swanctl, Tool::Iperf3, Tool::Ping];
/// oxisec on both sides: no strongSwan needed.
const OXISEC_TOOLS: &[Tool] = &[Tool::Iperf3, Tool::Ping];

fn tools(left: PeerKind, right: PeerKind) -> &'static [Tool] {
    if left == PeerKind::StrongSwan || right == PeerKind::StrongSwan {
        STRONGSWAN_TOOLS
    } else {
        OXISEC_TOOLS
    }
}

fn run(s: Scenario) {
    let _serial = common::serial();
    if common::skip(s.test, tools(s.left, s.right)) {
        return;
    }
    if let Err(e) = scenario::run(&s) {
        panic!("{e}");
    }
}

/// strongSwan ↔ strongSwan: proves the harness (namespaces, charon under
/// libipsec, routes, traffic checks) before oxisec takes one side.
mod strongswan_baseline {
    use super::*;

    #[test]
    fn aes128gcm_x25519() {
        run(Scenario::new(
            "strongswan_baseline_gcm",
            PeerKind::StrongSwan,
            PeerKind::StrongSwan,
            GCM,
        ));
    }

    #[test]
    fn aes256sha256_modp2048_chacha20poly1305() {
        run(Scenario {
            // The responder deletes: covers the other DELETE direction.
            terminator: Side::Right,
            ..Scenario::new(
                "strongswan_baseline_chacha",
                PeerKind::StrongSwan,
                PeerKind::StrongSwan,
                CBC_CHACHA,
            )
        });
    }
}

/// oxisec ↔ strongSwan 5.9.8, oxisec as initiator and as responder, for
/// both suites. The DELETE comes from the initiator in the GCM tests and
/// from the responder in the ChaCha20 ones, so that each implementation
/// sends and receives an IKE delete in each role.
mod oxisec_strongswan {
    use super::*;

    #[test]
    fn oxisec_initiator_gcm() {
        run(Scenario::new(
            "oxisec_init_gcm",
            PeerKind::Oxisec,
            PeerKind::StrongSwan,
            GCM,
        ));
    }

    #[test]
    fn oxisec_responder_gcm() {
        run(Scenario::new(
            "oxisec_resp_gcm",
            PeerKind::StrongSwan,
            PeerKind::Oxisec,
            GCM,
        ));
    }

    #[test]
    fn oxisec_initiator_cbc_chacha() {
        run(Scenario {
            // strongSwan (responder) deletes.
            terminator: Side::Right,
            ..Scenario::new(
                "oxisec_init_chacha",
                PeerKind::Oxisec,
                PeerKind::StrongSwan,
                CBC_CHACHA,
            )
        });
    }

    #[test]
    fn oxisec_responder_cbc_chacha() {
        run(Scenario {
            // oxisec (responder) deletes.
            terminator: Side::Right,
            ..Scenario::new(
                "oxisec_resp_chacha",
                PeerKind::StrongSwan,
                PeerKind::Oxisec,
                CBC_CHACHA,
            )
        });
    }
}

/// oxisec ↔ oxisec, both suites; the ChaCha20 run deletes from the responder.
mod oxisec_oxisec {
    use super::*;

    #[test]
    fn aes128gcm_x25519() {
        run(Scenario::new(
            "oxisec_oxisec_gcm",
            PeerKind::Oxisec,
            PeerKind::Oxisec,
            GCM,
        ));
    }

    #[test]
    fn aes256sha256_modp2048_chacha20poly1305() {
        run(Scenario {
            terminator: Side::Right,
            ..Scenario::new(
                "oxisec_oxisec_chacha",
                PeerKind::Oxisec,
                PeerKind::Oxisec,
                CBC_CHACHA,
            )
        });
    }
}

/// Rekeys under load (issue "IKEv2 lifecycle"): a 10 s iperf3 run with a
/// rekey started 3 s into it. iperf3 must not fail, and afterwards both
/// sides list exactly one IKE SA and one CHILD_SA, with new ESP SPIs (CHILD
/// rekey) or new IKE SPIs and the CHILD_SA unchanged (IKE rekey), and the
/// new SAs carry pings both ways. Each side starts each kind of rekey once;
/// the rekeying side is the original initiator for the CHILD_SA rekeys and
/// the original responder for the IKE rekeys (so the IKE roles swap).
mod rekey {
    use super::*;

    /// ESP with PFS (X25519 in the CHILD_SA rekey).
    const GCM_PFS: (&str, &str) = ("aes128gcm16-prfsha256-x25519", "aes128gcm16-x25519");

    fn under_load(
        test: &'static str,
        left: PeerKind,
        right: PeerKind,
        proposals: (&'static str, &'static str),
        initiator: Side,
        by: Side,
        kind: RekeyKind,
    ) -> Scenario {
        Scenario {
            initiator,
            iperf_seconds: 10,
            rekey: Some(Rekey {
                by,
                kind,
                after: Duration::from_secs(3),
            }),
            ..Scenario::new(test, left, right, proposals)
        }
    }

    #[test]
    fn child_by_oxisec_initiator() {
        run(under_load(
            "rekey_child_by_oxisec",
            PeerKind::Oxisec,
            PeerKind::StrongSwan,
            GCM,
            Side::Left,
            Side::Left,
            RekeyKind::Child,
        ));
    }

    #[test]
    fn child_by_strongswan_initiator_with_pfs() {
        run(under_load(
            "rekey_child_by_strongswan",
            PeerKind::StrongSwan,
            PeerKind::Oxisec,
            GCM_PFS,
            Side::Left,
            Side::Left,
            RekeyKind::Child,
        ));
    }

    #[test]
    fn ike_by_oxisec_responder() {
        run(under_load(
            "rekey_ike_by_oxisec",
            PeerKind::StrongSwan,
            PeerKind::Oxisec,
            GCM,
            Side::Left,
            Side::Right,
            RekeyKind::Ike,
        ));
    }

    #[test]
    fn ike_by_strongswan_responder() {
        run(under_load(
            "rekey_ike_by_strongswan",
            PeerKind::Oxisec,
            PeerKind::StrongSwan,
            GCM,
            Side::Left,
            Side::Right,
            RekeyKind::Ike,
        ));
    }

    #[test]
    fn oxisec_oxisec_child_by_responder_with_pfs() {
        run(under_load(
            "rekey_oxisec_oxisec_child",
            PeerKind::Oxisec,
            PeerKind::Oxisec,
            GCM_PFS,
            Side::Left,
            Side::Right,
            RekeyKind::Child,
        ));
    }

    #[test]
    fn oxisec_oxisec_ike_by_initiator() {
        run(under_load(
            "rekey_oxisec_oxisec_ike",
            PeerKind::Oxisec,
            PeerKind::Oxisec,
            GCM,
            Side::Left,
            Side::Left,
            RekeyKind::Ike,
        ));
    }
}

/// A PSK mismatch: the responder rejects the initiator with
/// AUTHENTICATION_FAILED; nothing is left behind and oxisec says so once.
mod wrong_psk {
    use super::*;
    use common::scenario::WrongPsk;

    fn run_wrong(w: WrongPsk) {
        let _serial = common::serial();
        if common::skip(w.test, tools(w.left, w.right)) {
            return;
        }
        if let Err(e) = scenario::run_wrong_psk(&w) {
            panic!("{e}");
        }
    }

    #[test]
    fn oxisec_initiator_strongswan_responder() {
        run_wrong(WrongPsk {
            test: "wrong_psk_oxisec_init",
            left: PeerKind::Oxisec,
            right: PeerKind::StrongSwan,
            initiator: Side::Left,
        });
    }

    #[test]
    fn strongswan_initiator_oxisec_responder() {
        run_wrong(WrongPsk {
            test: "wrong_psk_oxisec_resp",
            left: PeerKind::StrongSwan,
            right: PeerKind::Oxisec,
            initiator: Side::Left,
        });
    }

    #[test]
    fn oxisec_oxisec() {
        run_wrong(WrongPsk {
            test: "wrong_psk_oxisec_oxisec",
            left: PeerKind::Oxisec,
            right: PeerKind::Oxisec,
            initiator: Side::Left,
        });
    }
}

/// IKEv2 lifecycle against strongSwan (issue "IKEv2 lifecycle", item 9):
/// dead peer detection, NAT traversal through a real NAT, COOKIE challenges
/// under a spoofed flood. Short timers keep each under about 30 s; see
/// `tests/common/lifecycle.rs` for what each checks.
mod lifecycle {
    use super::*;
    use common::lifecycle;
    use common::peer::DpdAction;

    fn guarded<T>(test: &str, f: impl FnOnce() -> common::Result<T>) -> Option<T> {
        let _serial = common::serial();
        if common::skip(test, STRONGSWAN_TOOLS) {
            return None;
        }
        let started = std::time::Instant::now();
        let out = f().unwrap_or_else(|e| panic!("{e}"));
        eprintln!("{test}: passed in {:.1} s", started.elapsed().as_secs_f64());
        Some(out)
    }

    /// strongSwan dies (SIGKILL): oxisec clears the SAs and the route.
    #[test]
    fn dead_peer_clear() {
        guarded("dead_peer_clear", || {
            lifecycle::run_liveness("dead_peer_clear", DpdAction::Clear)
        });
    }

    /// strongSwan dies, then comes back: oxisec reconnects on its own.
    #[test]
    fn dead_peer_restart() {
        guarded("dead_peer_restart", || {
            lifecycle::run_liveness("dead_peer_restart", DpdAction::Restart)
        });
    }

    #[test]
    fn nat_oxisec_behind_nat_initiates_to_strongswan() {
        guarded("nat_oxisec_inside", || {
            lifecycle::run_nat("nat_oxisec_inside", PeerKind::Oxisec, PeerKind::StrongSwan)
        });
    }

    #[test]
    fn nat_strongswan_behind_nat_initiates_to_oxisec() {
        guarded("nat_strongswan_inside", || {
            lifecycle::run_nat(
                "nat_strongswan_inside",
                PeerKind::StrongSwan,
                PeerKind::Oxisec,
            )
        });
    }

    /// 2000 spoofed IKE_SA_INIT requests in 4 s; strongSwan still gets in.
    #[test]
    fn cookie_flood_strongswan_still_connects() {
        guarded("cookie_flood", || {
            lifecycle::run_cookie_flood("cookie_flood", 2000, Duration::from_secs(4))
        });
    }
}

/// Facts about strongSwan in a namespace that the harness relies on; if one
/// of them changes with a strongSwan update, this test says which.
#[test]
fn strongswan_routes_via_libipsec_tun() {
    use common::strongswan::routed_via_ipsec0;
    use common::{RIGHT_HOST, Topology};

    let _serial = common::serial();
    if common::skip("strongswan_routes_via_libipsec_tun", STRONGSWAN_TOOLS) {
        return;
    }
    let result = (|| -> common::Result<()> {
        let topo = Topology::new("strongswan_routes")?;
        let (l, r) = topo.tunnel_specs(GCM.0, GCM.1);
        let left = PeerKind::StrongSwan.start(&topo, Side::Left, &l)?;
        let _right = PeerKind::StrongSwan.start(&topo, Side::Right, &r)?;
        // The TUN exists from start-up, MTU 1400, but nothing is routed yet.
        let link = topo.left.ip(&["-o", "link", "show", "ipsec0"])?;
        if !link.contains("mtu 1400") {
            return Err(format!("ipsec0 MTU changed: {link}").into());
        }
        if routed_via_ipsec0(&topo.left, RIGHT_HOST)? {
            return Err("remote subnet routed into ipsec0 before any SA".into());
        }
        left.initiate(common::CONN)?;
        let table = topo.left.ip(&["route", "show", "table", "220"])?;
        if !table.contains("203.0.113.0/24 dev ipsec0") || !table.contains("src 198.51.100.1") {
            return Err(format!("unexpected table 220: {table}").into());
        }
        if !routed_via_ipsec0(&topo.left, RIGHT_HOST)? {
            return Err("remote host not routed via ipsec0 with the SA up".into());
        }
        left.terminate(common::CONN)?;
        common::wait_until("route removal", std::time::Duration::from_secs(5), || {
            Ok((!routed_via_ipsec0(&topo.left, RIGHT_HOST)?).then_some(()))
        })?;
        Ok(())
    })();
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// Parsers, no root needed.
mod parsers {
    use super::common::oxisec_peer::{oxisec_toml, parse_status_json};
    use super::common::peer::{ChildSa, IkeSa, tunnel_up};
    use super::common::strongswan::{parse_list_sas, swanctl_conf};
    use super::common::traffic::{PingStats, parse_iperf3_json, parse_ping};

    const LIST_SAS: &str = "\
net: #1, ESTABLISHED, IKEv2, 2de67268015f69ed_i* 324c011e8c80a81a_r
  local  'left' @ 192.0.2.1[4500]
  remote 'right' @ 192.0.2.2[4500]
  AES_GCM_16-128/PRF_HMAC_SHA2_256/CURVE_25519
  established 0s ago, rekeying in 13282s
  net: #1, reqid 1, INSTALLED, TUNNEL-in-UDP, ESP:AES_GCM_16-128
    installed 0s ago, rekeying in 3379s, expires in 3960s
    in  643e514e,      0 bytes,     0 packets
    out 176a6ef9,      0 bytes,     0 packets
    local  198.51.100.0/24
    remote 203.0.113.0/24
other: #2, CONNECTING, IKEv2, 1111111111111111_i* 0000000000000000_r
";

    #[test]
    fn swanctl_list_sas() {
        let sas = parse_list_sas(LIST_SAS);
        assert_eq!(
            sas,
            vec![
                IkeSa {
                    name: "net".into(),
                    state: "ESTABLISHED".into(),
                    spi_i: "2de67268015f69ed".into(),
                    spi_r: "324c011e8c80a81a".into(),
                    children: vec![ChildSa {
                        name: "net".into(),
                        state: "INSTALLED".into(),
                        spi_in: "643e514e".into(),
                        spi_out: "176a6ef9".into(),
                    }],
                },
                IkeSa {
                    name: "other".into(),
                    state: "CONNECTING".into(),
                    spi_i: "1111111111111111".into(),
                    spi_r: "0000000000000000".into(),
                    children: vec![],
                },
            ]
        );
        assert!(tunnel_up(&sas, "net"));
        assert!(!tunnel_up(&sas, "other"));
        assert!(parse_list_sas("").is_empty());
    }

    #[test]
    fn ping_summary() {
        let out = "PING 203.0.113.1 (203.0.113.1) from 198.51.100.1 : 56(84) bytes of data.\n\
                   64 bytes from 203.0.113.1: icmp_seq=1 ttl=64 time=2.21 ms\n\n\
                   --- 203.0.113.1 ping statistics ---\n\
                   3 packets transmitted, 2 received, 33.3333% packet loss, time 402ms\n";
        assert_eq!(
            parse_ping(out),
            Some(PingStats {
                transmitted: 3,
                received: 2
            })
        );
        assert_eq!(
            parse_ping("1 packets transmitted, 0 received, +1 errors, 100% packet loss"),
            Some(PingStats {
                transmitted: 1,
                received: 0
            })
        );
        assert_eq!(parse_ping("garbage"), None);
    }

    #[test]
    fn iperf3_json() {
        let ok = r#"{"start":{},"intervals":[],"end":{
            "sum_sent":{"bytes":1,"bits_per_second":3.0e8,"retransmits":12},
            "sum_received":{"bytes":1,"bits_per_second":2.9e8}}}"#;
        let r = parse_iperf3_json(ok).unwrap();
        assert_eq!(r.sent_bps, 3.0e8);
        assert_eq!(r.received_bps, 2.9e8);
        assert_eq!(r.retransmits, 12);
        let err = r#"{"start":{},"intervals":[],"end":{},"error":"unable to connect to server: Connection refused"}"#;
        let e = parse_iperf3_json(err).unwrap_err().to_string();
        assert!(e.contains("unable to connect"), "{e}");
        assert!(parse_iperf3_json("not json").is_err());
    }

    /// The daemon's real report type, serialized as the daemon does.
    #[test]
    fn oxisec_status_json() {
        use oxisec::status::{ChildSaInfo, IkeSaInfo, StatusReport};
        let child = ChildSaInfo {
            id: 2,
            name: "net".into(),
            state: "INSTALLED".into(),
            spi_in: "c0ffee01".into(),
            spi_out: "00001234".into(),
            algorithms: "AES_GCM_16_128".into(),
            local_ts: vec!["198.51.100.0/24".into()],
            remote_ts: vec!["203.0.113.0/24".into()],
            installed_secs: 1,
            mode: "tunnel".into(),
            traffic_in: None,
            traffic_out: None,
        };
        let ike = IkeSaInfo {
            id: 1,
            connection: "net".into(),
            state: "ESTABLISHED".into(),
            initiator: true,
            local: "192.0.2.1:4500".parse().unwrap(),
            remote: "192.0.2.2:4500".parse().unwrap(),
            local_id: "left.example.org".into(),
            remote_id: "right.example.org".into(),
            spi_i: "00000000000000AA".into(),
            spi_r: "00000000000000bb".into(),
            algorithms: "AES_GCM_16_128/PRF_HMAC_SHA2_256/CURVE_25519".into(),
            established_secs: Some(1),
            children: vec![child],
            nat_local: false,
            nat_remote: false,
            virtual_ips: vec![],
            peer_virtual_ips: vec![],
            eap_identity: None,
            peer_groups: vec![],
            access_group: None,
        };
        let mut report = StatusReport {
            version: "0".into(),
            pid: 1,
            uptime_secs: 1,
            dataplane: "userspace".into(),
            drops: Default::default(),
            connections: vec![],
            ike_sas: vec![ike],
            pools: vec![],
            ike_counters: Default::default(),
        };
        let sas = parse_status_json(&serde_json::to_string_pretty(&report).unwrap()).unwrap();
        assert!(tunnel_up(&sas, "net"));
        assert_eq!(sas[0].spi_i, "00000000000000aa");
        assert_eq!(sas[0].spi_r, "00000000000000bb");
        assert_eq!(sas[0].children[0].spi_in, "c0ffee01");
        assert_eq!(sas[0].children[0].spi_out, "00001234");
        report.ike_sas.clear();
        let empty = serde_json::to_string(&report).unwrap();
        assert!(parse_status_json(&empty).unwrap().is_empty());
        assert!(parse_status_json("{}").is_err());
        assert!(parse_status_json(r#"{"ike_sas":[]}"#).is_err());
    }

    #[test]
    fn oxisec_auth_failure_lines() {
        use super::common::scenario::auth_failure_lines;
        let log = "\
2026-11-26T07:00:30.846438Z  WARN oxisec_ike::exchange::ike_auth: authentication failed: peer 192.0.2.2:4500 rejected our authentication (AUTHENTICATION_FAILED) peer=192.0.2.2:4500
2026-11-26T07:00:30.846466Z  WARN oxisec_ike::exchange: IKE SA down connection=net peer=192.0.2.2:4500 reason=AuthFailed
2026-11-26T07:00:30.846490Z DEBUG oxisec::daemon: event: authentication failed on net with 192.0.2.2
2026-11-26T07:00:30.846511Z  INFO oxisec::daemon: something else
";
        let lines = auth_failure_lines(log);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].contains("rejected our authentication"));
    }

    #[test]
    fn generated_configs() {
        let topo_less = super::common::TunnelSpec {
            name: "net".into(),
            local_addr: super::common::LEFT_OUTER,
            remote_addr: super::common::RIGHT_OUTER,
            local_id: "left.example.org".into(),
            remote_id: "right.example.org".into(),
            local_ts: super::common::LEFT_SUBNET.into(),
            remote_ts: super::common::RIGHT_SUBNET.into(),
            psk: "a\"b".into(),
            ike_proposal: "aes128gcm16-prfsha256-x25519".into(),
            esp_proposal: "aes128gcm16".into(),
            start_action: super::common::StartAction::None,
            remote_any: false,
            dpd: None,
            tuning: Default::default(),
        };
        let swan = swanctl_conf(&topo_less);
        assert!(swan.contains("encap = yes"));
        assert!(swan.contains("remote_ts = 203.0.113.0/24"));
        // Every key = value on its own line.
        assert!(swan.lines().all(|l| l.matches(" = ").count() <= 1));
        let toml_text = oxisec_toml(&topo_less);
        let v: toml::Table = toml_text.parse().unwrap();
        let conn = &v["connections"]["net"];
        assert_eq!(conn["psk"].as_str(), Some("a\"b"));
        assert_eq!(
            conn["children"]["net"]["remote_ts"][0].as_str(),
            Some("203.0.113.0/24")
        );
        let mirrored = topo_less.mirrored();
        assert_eq!(mirrored.local_addr, super::common::RIGHT_OUTER);
        assert_eq!(mirrored.local_ts, super::common::RIGHT_SUBNET);
        assert_eq!(mirrored.remote_id, "left.example.org");
    }

    #[test]
    fn swanctl_list_sas_raw_nat_flags() {
        use super::common::strongswan::{NatFlags, parse_nat_flags};
        // Captured from strongSwan 5.9.8 behind the test NAT (one line).
        let raw = "list-sa event {net {uniqueid=1 version=2 state=ESTABLISHED local-host=192.0.2.1 local-port=4500 local-id=inside.example.org remote-host=198.51.100.2 remote-port=4500 remote-id=outside.example.org initiator=yes initiator-spi=add9819d1528508b responder-spi=4e3c95083aeaa52e nat-local=yes nat-remote=yes nat-any=yes encr-alg=AES_GCM_16 encr-keysize=128 prf-alg=PRF_HMAC_SHA2_256 dh-group=CURVE_25519 established=0 rekey-time=13175 child-sas {net-1 {name=net uniqueid=1 reqid=1 state=INSTALLED mode=TUNNEL protocol=ESP encap=yes spi-in=47011ab1 spi-out=8deb96bf encr-alg=AES_GCM_16 encr-keysize=128 bytes-in=0 packets-in=0 bytes-out=0 packets-out=0 rekey-time=3278 life-time=3960 install-time=0 local-ts=[203.0.113.0/25] remote-ts=[203.0.113.128/25]}}}}\nlist-sas reply {}\n";
        assert_eq!(
            parse_nat_flags(raw),
            vec![NatFlags {
                name: "net".into(),
                local: true,
                remote: true,
                fake: false,
                any: true,
                remote_host: "198.51.100.2".into(),
                remote_port: "4500".into(),
            }]
        );
        let public = "list-sa event {net {uniqueid=1 remote-host=198.51.100.254 remote-port=40476 nat-remote=yes nat-any=yes child-sas {}}}";
        let f = &parse_nat_flags(public)[0];
        assert!(f.remote && f.any && !f.local);
        assert_eq!(f.remote_port, "40476");
        assert!(parse_nat_flags("list-sas reply {}\n").is_empty());
    }

    #[test]
    fn nft_counter_and_vm_rss() {
        use super::common::nat::parse_nft_packets;
        use super::common::oxisec_peer::parse_vm_rss_kib;
        let counter = "table ip oxnat {\n\tcounter keepalives {\n\t\tpackets 3 bytes 87\n\t}\n}\n";
        assert_eq!(parse_nft_packets(counter), Some(3));
        assert_eq!(parse_nft_packets("table ip oxnat {}"), None);
        let status = "Name:\toxisec\nVmPeak:\t  20000 kB\nVmRSS:\t   16088 kB\nThreads:\t9\n";
        assert_eq!(parse_vm_rss_kib(status), Some(16088));
        assert_eq!(parse_vm_rss_kib("Name:\tx\n"), None);
    }

    #[test]
    fn conntrack_flush_netlink_messages() {
        use super::common::netsys::{conntrack_flush_request, parse_netlink_ack};
        let m = conntrack_flush_request(7);
        assert_eq!(m.len(), 20);
        assert_eq!(u32::from_ne_bytes(m[0..4].try_into().unwrap()), 20);
        // NFNL_SUBSYS_CTNETLINK << 8 | IPCTNL_MSG_CT_DELETE
        assert_eq!(u16::from_ne_bytes(m[4..6].try_into().unwrap()), 0x0102);
        // NLM_F_REQUEST | NLM_F_ACK
        assert_eq!(u16::from_ne_bytes(m[6..8].try_into().unwrap()), 0x5);
        assert_eq!(u32::from_ne_bytes(m[8..12].try_into().unwrap()), 7);
        assert_eq!(m[16], libc::AF_INET as u8);
        // An acknowledgement: nlmsghdr(type NLMSG_ERROR) + error code.
        let ack = |code: i32| {
            let mut a = Vec::new();
            a.extend_from_slice(&36u32.to_ne_bytes());
            a.extend_from_slice(&2u16.to_ne_bytes());
            a.extend_from_slice(&[0; 10]);
            a.extend_from_slice(&code.to_ne_bytes());
            a.extend_from_slice(&m[..16]);
            a
        };
        parse_netlink_ack(&ack(0)).unwrap();
        let e = parse_netlink_ack(&ack(-libc::EPERM))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not permitted"), "{e}");
        assert!(parse_netlink_ack(&[0; 8]).is_err());
    }

    /// The flood's requests are valid IKE_SA_INIT messages, and the packet
    /// around them a valid IPv4/UDP datagram (checksums included).
    #[test]
    fn flood_packets() {
        use super::common::flood::ike_sa_init_request;
        use super::common::netsys::udp_packet;
        use oxisec_wire::{ExchangeType, Message, Payload};
        let ike = ike_sa_init_request(0x1122_3344_5566_7788, 42);
        let msg = Message::parse(&ike).unwrap();
        assert_eq!(msg.header.spi_i, 0x1122_3344_5566_7788);
        assert_eq!(msg.header.spi_r, 0);
        assert_eq!(msg.header.exchange, ExchangeType::IKE_SA_INIT);
        assert!(msg.header.flags.initiator() && !msg.header.flags.response());
        assert!(matches!(
            msg.payloads[..],
            [Payload::Sa(_), Payload::Ke(_), Payload::Nonce(_)]
        ));
        assert_ne!(ike, ike_sa_init_request(0x1122_3344_5566_7788, 43));

        let src = "192.0.2.129:500".parse().unwrap();
        let dst = "192.0.2.2:500".parse().unwrap();
        let p = udp_packet(src, dst, &ike);
        assert_eq!(p.len(), 28 + ike.len());
        assert_eq!(p[9], 17);
        assert_eq!(&p[12..16], &[192, 0, 2, 129]);
        assert_eq!(u16::from_be_bytes([p[24], p[25]]) as usize, 8 + ike.len());
        // Summing the pseudo header and the datagram, checksum included,
        // gives 0xffff when the checksum is right.
        let mut sum: u32 = 0;
        let mut add = |b: &[u8]| {
            for c in b.chunks(2) {
                sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
            }
        };
        add(&p[12..20]);
        add(&[0, 17]);
        add(&((p.len() - 20) as u16).to_be_bytes());
        add(&p[20..]);
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        assert_eq!(sum, 0xffff);
    }

    #[test]
    fn lifecycle_configs() {
        use super::common::lifecycle::{FAST, FAST_RETRANSMIT, info_lines};
        use super::common::peer::Dpd;
        use super::common::peer::DpdAction;
        use super::common::strongswan::strongswan_conf;
        let mut spec = super::common::TunnelSpec {
            name: "net".into(),
            local_addr: super::common::RIGHT_OUTER,
            remote_addr: super::common::LEFT_OUTER,
            local_id: "right.example.org".into(),
            remote_id: "left.example.org".into(),
            local_ts: super::common::RIGHT_SUBNET.into(),
            remote_ts: super::common::LEFT_SUBNET.into(),
            psk: "k".into(),
            ike_proposal: "aes128gcm16-prfsha256-x25519".into(),
            esp_proposal: "aes128gcm16".into(),
            start_action: super::common::StartAction::None,
            remote_any: true,
            dpd: Some(Dpd {
                delay_secs: 2,
                action: DpdAction::Restart,
            }),
            tuning: FAST,
        };
        let v: toml::Table = oxisec_toml(&spec).parse().unwrap();
        assert_eq!(v["daemon"]["retransmit_timeout"].as_float(), Some(1.0));
        assert_eq!(v["daemon"]["retransmit_base"].as_float(), Some(1.8));
        assert_eq!(v["daemon"]["retransmit_tries"].as_integer(), Some(3));
        assert_eq!(v["daemon"]["nat_keepalive"].as_str(), Some("1s"));
        assert!(v["daemon"].get("cookie_threshold").is_none());
        let conn = &v["connections"]["net"];
        assert_eq!(conn["remote_addrs"].as_array().map(Vec::len), Some(0));
        assert_eq!(conn["dpd_delay"].as_str(), Some("2s"));
        assert_eq!(conn["dpd_action"].as_str(), Some("restart"));
        let swan = swanctl_conf(&spec);
        assert!(swan.contains("remote_addrs = %any\n"), "{swan}");
        assert!(swan.contains("dpd_delay = 2s\n"), "{swan}");
        assert!(swan.contains("dpd_action = restart\n"), "{swan}");
        assert!(swan.lines().all(|l| l.matches(" = ").count() <= 1));
        let conf = strongswan_conf(std::path::Path::new("/x"), &FAST);
        for want in [
            "retransmit_timeout = 1\n",
            "retransmit_base = 1.8\n",
            "retransmit_tries = 3\n",
            "keep_alive = 1s\n",
        ] {
            assert!(conf.contains(want), "{want:?} missing in\n{conf}");
        }
        spec.tuning.dos = Some(super::common::lifecycle::COOKIE_TEST_LIMITS);
        let v: toml::Table = oxisec_toml(&spec).parse().unwrap();
        assert_eq!(v["daemon"]["cookie_threshold"].as_integer(), Some(20));
        assert_eq!(v["daemon"]["block_threshold"].as_integer(), Some(5));
        assert_eq!(v["daemon"]["half_open_limit"].as_integer(), Some(1000));
        let conf = strongswan_conf(std::path::Path::new("/x"), &spec.tuning);
        assert!(conf.contains("cookie_threshold = 20\n"), "{conf}");
        assert!(conf.contains("init_limit_half_open = 1000\n"), "{conf}");
        // Without settings nothing is written: the defaults stay.
        spec.tuning = Default::default();
        spec.dpd = None;
        spec.remote_any = false;
        let v: toml::Table = oxisec_toml(&spec).parse().unwrap();
        assert!(v.get("daemon").is_none());
        assert!(v["connections"]["net"].get("dpd_delay").is_none());
        assert!(!swanctl_conf(&spec).contains("dpd"));
        assert!(!strongswan_conf(std::path::Path::new("/x"), &spec.tuning).contains("retransmit"));
        // 1 + 1.8 + 3.24 + 5.832 s
        let t = FAST_RETRANSMIT.give_up_after().as_secs_f64();
        assert!((t - 11.872).abs() < 1e-9, "{t}");

        let log = "\
2026-11-26T07:29:52.933266Z  WARN oxisec_ike::engine: peer did not answer: giving up on the IKE SA connection=net peer=192.0.2.2:4500
2026-11-26T07:29:52.933369Z  WARN oxisec_ike::exchange: IKE SA down connection=net peer=right.example.org (192.0.2.2:4500) reason=PeerDead
2026-11-26T07:29:50.000000Z DEBUG oxisec_ike::engine: peer did not answer: giving up on the IKE SA
";
        assert_eq!(info_lines(log, "peer did not answer").len(), 1);
    }
}
