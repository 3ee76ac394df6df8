//! Remote access between engines: a gateway assigns virtual IPs from pools
//! through the configuration payload (RFC 7296 §2.19, §3.15) with DNS
//! servers, domains and split-tunnel subnets; clients ask for them; the
//! CHILD_SA's selectors follow the assigned address ("dynamic").
mod common;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use common::*;
use oxisec_ike::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn pool(name: &str, first: &str, last: &str) -> PoolConfig {
    PoolConfig {
        name: name.into(),
        first: ip(first),
        last: ip(last),
    }
}

/// The gateway (192.0.2.2): pool 10.3.0.1–10.3.0.254 (and an IPv6 pool),
/// DNS 10.3.0.53, domain corp.example, the client's selectors dynamic.
fn gateway() -> Side {
    Side {
        local_ts: vec!["0.0.0.0/0", "::/0"],
        remote_ts: vec![],
        remote_access: RemoteAccess {
            pools: vec!["v4".into(), "v6".into()],
            dns: vec![ip("10.3.0.53"), ip("2001:db8:3::53")],
            dns_domains: vec!["corp.example".into()],
            ..RemoteAccess::default()
        },
        pools: vec![
            pool("v4", "10.3.0.1", "10.3.0.254"),
            pool("v6", "2001:db8:3::1", "2001:db8:3::ffff"),
        ],
        peer_id: None,
        ..Side::b()
    }
}

/// A road warrior asking for `vips`, sending everything into the tunnel.
fn client(vips: &[&str]) -> Side {
    Side {
        local_ts: vec![],
        remote_ts: vec!["0.0.0.0/0", "::/0"],
        remote_access: RemoteAccess {
            request_vips: vips.iter().map(|v| ip(v)).collect(),
            ..RemoteAccess::default()
        },
        ..Side::a()
    }
}

fn vip_events(p: &Peer) -> Vec<(Vec<IpAddr>, Vec<IpAddr>, Vec<String>)> {
    p.events
        .iter()
        .filter_map(|e| match e {
            Event::VirtualIp {
                addresses,
                dns,
                domains,
                ..
            } => Some((addresses.clone(), dns.clone(), domains.clone())),
            _ => None,
        })
        .collect()
}

fn child(p: &Peer) -> ChildSaStatus {
    let s = p.engine.status();
    assert_eq!(s.len(), 1, "{s:?}");
    assert_eq!(s[0].children.len(), 1, "{s:?}");
    s[0].children[0].clone()
}

#[test]
fn a_client_gets_an_address_dns_and_selectors_narrowed_to_it() {
    let mut w = World::new(client(&["0.0.0.0"]), gateway());
    w.connect();
    assert_eq!(
        vip_events(&w.a),
        vec![(
            vec![ip("10.3.0.1")],
            vec![ip("10.3.0.53")],
            vec!["corp.example".to_string()]
        )]
    );
    let (a, b) = (child(&w.a), child(&w.b));
    assert_eq!(
        a.local_ts,
        vec![TsRange::subnet(ip("10.3.0.1"), 32).unwrap()]
    );
    assert_eq!(b.remote_ts, a.local_ts);
    assert_eq!(b.local_ts, a.remote_ts);
    assert_consistent(&w.a.dp, &w.b.dp);
    assert_eq!(w.b.engine.leases().len(), 1);
}

#[test]
fn dual_stack_and_a_requested_address() {
    let mut w = World::new(client(&["10.3.0.77", "::"]), gateway());
    w.connect();
    let ev = vip_events(&w.a);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].0, vec![ip("10.3.0.77"), ip("2001:db8:3::1")]);
    assert_eq!(ev[0].1, vec![ip("10.3.0.53"), ip("2001:db8:3::53")]);
    let a = child(&w.a);
    assert_eq!(a.local_ts.len(), 2);
    assert_consistent(&w.a.dp, &w.b.dp);
}

#[test]
fn a_reconnecting_client_gets_its_address_back_and_rekeys_keep_it() {
    let mut w = World::new(client(&["0.0.0.0"]), gateway());
    w.connect();
    let first = vip_events(&w.a)[0].0.clone();
    // An IKE rekey does not give the address up on either side.
    w.b.engine.handle_command(
        w.now,
        Command::RekeyIke {
            connection: "tunnel".into(),
        },
    );
    w.pump();
    assert!(
        !w.a.events
            .iter()
            .any(|e| matches!(e, Event::VirtualIpReleased { .. })),
        "{:?}",
        w.a.events
    );
    assert_eq!(w.b.engine.pool_usage()[0], ("v4".to_string(), 1, 0));
    // The client goes, and the lease stays for it, offline.
    w.a.engine.handle_command(
        w.now,
        Command::TerminateIke {
            connection: "tunnel".into(),
        },
    );
    w.pump();
    assert!(
        w.a.events.iter().any(
            |e| matches!(e, Event::VirtualIpReleased { addresses, .. } if *addresses == first)
        )
    );
    assert_eq!(w.b.engine.pool_usage()[0], ("v4".to_string(), 0, 1));
    w.initiate();
    w.pump();
    assert_eq!(vip_events(&w.a).last().unwrap().0, first);
}

#[test]
fn leases_survive_a_gateway_restart() {
    let mut w = World::new(client(&["0.0.0.0"]), gateway());
    w.connect();
    let first = vip_events(&w.a)[0].0.clone();
    let saved = w.b.engine.leases();
    assert_eq!(saved.len(), 1);
    // A new gateway engine with another client first: without the saved
    // leases that client would take 10.3.0.1.
    let mut w = World::new(
        Side {
            id: "other-client.example.com",
            ..client(&["0.0.0.0"])
        },
        gateway(),
    );
    assert_eq!(w.b.engine.restore_leases(&saved), 1);
    w.connect();
    assert_ne!(
        vip_events(&w.a)[0].0,
        first,
        "the saved lease is kept for its owner"
    );
}

#[test]
fn a_gateway_without_pools_gives_no_address_and_the_client_gives_up() {
    let gw = Side {
        remote_access: RemoteAccess::default(),
        pools: Vec::new(),
        remote_ts: vec!["0.0.0.0/0"],
        ..gateway()
    };
    let mut w = World::new(client(&["0.0.0.0"]), gw);
    w.connect();
    assert!(vip_events(&w.a).is_empty());
    assert_eq!(w.a.established(), 0);
    let why = w.a.events.iter().find_map(|e| match e {
        Event::IkeDown {
            reason: DownReason::Failed(r),
            ..
        } => Some(r.clone()),
        _ => None,
    });
    assert!(why.is_some_and(|r| r.contains("no virtual IP")));
    // The gateway heard the delete.
    assert_eq!(w.b.established(), 0, "{:?}", w.b.engine.status());
    assert!(w.a.dp.outbound.is_empty() && w.b.dp.outbound.is_empty());
}

/// A gateway and several clients on one wire, each client at its own
/// address with its own identity.
struct Hub {
    now: Instant,
    gw: Peer,
    clients: Vec<Peer>,
}

impl Hub {
    fn new(gw: Side, n: usize) -> Hub {
        Hub::asking(gw, &vec![&["0.0.0.0"][..]; n])
    }

    /// One client per entry of `vips`, asking for those addresses.
    fn asking(gw: Side, vips: &[&[&str]]) -> Hub {
        let clients = vips
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let addr: IpAddr = format!("192.0.2.{}", 10 + i).parse().unwrap();
                let id: &'static str = Box::leak(format!("user{i}.example.com").into_boxed_str());
                Side {
                    addr,
                    id,
                    ..client(v)
                }
                .engine(100 + i as u64)
            })
            .collect();
        // The gateway answers clients at any address.
        let mut conn = gw.connection();
        conn.remote_addrs.clear();
        let config = Config {
            connections: vec![std::sync::Arc::new(conn)],
            pools: gw.pools.clone(),
            ..Config::default()
        };
        let gw = Peer {
            engine: Engine::new(config, Box::new(TestRng(1))),
            commands: Vec::new(),
            events: Vec::new(),
            sent: Vec::new(),
            dp: DataPlane::default(),
        };
        Hub {
            now: Instant::now(),
            gw,
            clients,
        }
    }

    fn connect_all(&mut self) {
        for c in &mut self.clients {
            c.engine.handle_command(
                self.now,
                Command::Initiate {
                    connection: "tunnel".into(),
                    child: None,
                },
            );
        }
        for _ in 0..100 {
            let mut moved = false;
            for c in &mut self.clients {
                for t in c.drain() {
                    moved = true;
                    deliver(&mut self.gw, self.now, &t);
                }
            }
            for t in self.gw.drain() {
                moved = true;
                let to = self
                    .clients
                    .iter_mut()
                    .find(|c| c.engine.config().connections[0].local_addrs[0] == t.remote.ip())
                    .expect("a client at that address");
                deliver(to, self.now, &t);
            }
            if !moved {
                return;
            }
        }
        panic!("never quiet");
    }
}

#[test]
fn several_clients_get_distinct_addresses_and_a_full_pool_refuses_cleanly() {
    let gw = Side {
        pools: vec![pool("v4", "10.3.0.1", "10.3.0.5")],
        remote_access: RemoteAccess {
            pools: vec!["v4".into()],
            ..RemoteAccess::default()
        },
        ..gateway()
    };
    let mut hub = Hub::new(gw, 6);
    hub.connect_all();
    let mut got: Vec<IpAddr> = hub
        .clients
        .iter()
        .filter_map(|c| vip_events(c).first().map(|e| e.0[0]))
        .collect();
    got.sort();
    got.dedup();
    assert_eq!(got.len(), 5, "five distinct addresses: {got:?}");
    // The sixth has no address, no CHILD_SA, and knows why.
    let refused: Vec<&Peer> = hub
        .clients
        .iter()
        .filter(|c| vip_events(c).is_empty())
        .collect();
    assert_eq!(refused.len(), 1);
    assert!(refused[0].dp.outbound.is_empty());
    assert!(refused[0].events.iter().any(|e| matches!(e,
        Event::IkeDown { reason: DownReason::Failed(r), .. } if r.contains("INTERNAL_ADDRESS_FAILURE"))));
    assert_eq!(hub.gw.engine.pool_usage()[0].1, 5);
    assert_eq!(hub.gw.dp.outbound.len(), 5);
    let _ = Duration::ZERO;
}

/// A road warrior that reauthenticates (reauth_time) keeps its virtual IP:
/// the new IKE SA gets the same address from the gateway, and the old
/// one's deletion does not take it off the client (no VirtualIpReleased)
/// nor the lease offline on the gateway.
#[test]
fn reauthentication_keeps_the_virtual_ip() {
    let mut c = client(&["0.0.0.0"]);
    c.ike_lifetime = IkeLifetime {
        reauth_time: Duration::from_secs(600),
        rand_time: Duration::ZERO,
        over_time: Duration::from_secs(60),
        ..IkeLifetime::from_rekey_time(Duration::ZERO)
    };
    let mut w = World::new(c, gateway());
    w.connect();
    let first = w.a.engine.status()[0].spi_i;
    for _ in 0..20 {
        if !w.advance(Duration::from_secs(700)) {
            break;
        }
        w.pump();
        if w.a.engine.status().iter().all(|s| s.spi_i != first) {
            break;
        }
    }
    let st = w.a.engine.status();
    assert_eq!(st.len(), 1, "{st:?}");
    assert_ne!(st[0].spi_i, first, "reauthenticated");
    assert_eq!(st[0].own_vips, vec![ip("10.3.0.1")]);
    assert_eq!(w.b.engine.status().len(), 1);
    let vips = vip_events(&w.a);
    assert_eq!(vips.len(), 2, "one VirtualIp per IKE SA: {vips:?}");
    assert!(vips.iter().all(|v| v.0 == vec![ip("10.3.0.1")]));
    let released =
        w.a.events
            .iter()
            .filter(|e| matches!(e, Event::VirtualIpReleased { .. }))
            .count();
    assert_eq!(released, 0, "{:?}", w.a.events);
    assert_eq!(
        w.b.engine.pool_usage(),
        vec![("v4".to_string(), 1, 0), ("v6".to_string(), 0, 0)]
    );
    assert_consistent(&w.a.dp, &w.b.dp);
}

/// Bad input: a client that asks for an address it may not have — another
/// identity's lease (online or offline), one outside the pools — does not
/// get it: the gateway assigns a free one of its own choosing and narrows
/// the client's selectors to that, so the client cannot send from (or
/// receive for) the address it asked for.
#[test]
fn a_client_asking_for_an_address_it_may_not_have_gets_another() {
    let gw = Side {
        pools: vec![pool("v4", "10.3.0.1", "10.3.0.10")],
        remote_access: RemoteAccess {
            pools: vec!["v4".into()],
            ..RemoteAccess::default()
        },
        ..gateway()
    };
    // user0 takes 10.3.0.1; user1 asks for it, user2 for one outside the
    // pool, user3 for the gateway's own address.
    let mut hub = Hub::asking(
        gw,
        &[&["0.0.0.0"], &["10.3.0.1"], &["10.9.0.1"], &["192.0.2.2"]],
    );
    hub.connect_all();
    let got: Vec<IpAddr> = hub
        .clients
        .iter()
        .map(|c| vip_events(c).first().expect("an address").0[0])
        .collect();
    assert_eq!(got[0], ip("10.3.0.1"));
    let mut distinct = got.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 4, "{got:?}");
    for (c, a) in hub.clients.iter().zip(&got) {
        let pool_range = ip("10.3.0.1")..=ip("10.3.0.10");
        assert!(pool_range.contains(a), "{a}");
        // The CHILD_SA carries the assigned address only.
        assert_eq!(
            child(c).local_ts,
            vec![TsRange::subnet(*a, 32).unwrap()],
            "{a}"
        );
    }
    // The gateway's inbound SAs accept each client's own address only.
    let gw_status = hub.gw.engine.status();
    let remote: Vec<Vec<TsRange>> = gw_status
        .iter()
        .flat_map(|s| s.children.iter().map(|c| c.remote_ts.clone()))
        .collect();
    assert_eq!(remote.len(), got.len());
    for a in &got {
        let want = vec![TsRange::subnet(*a, 32).unwrap()];
        assert!(remote.contains(&want), "{a} in {remote:?}");
    }

    // user0 goes offline: its lease is still not for the taking.
    let gw = Side {
        pools: vec![pool("v4", "10.3.0.1", "10.3.0.10")],
        remote_access: RemoteAccess {
            pools: vec!["v4".into()],
            ..RemoteAccess::default()
        },
        ..gateway()
    };
    let saved = hub.gw.engine.leases();
    let mut hub = Hub::asking(gw, &[&["0.0.0.0"], &["10.3.0.1"]]);
    // Only user0's lease comes back (offline); user1 starts afresh.
    let user0: Vec<Lease> = saved
        .into_iter()
        .filter(|l| l.identity.starts_with("user0"))
        .collect();
    assert_eq!(hub.gw.engine.restore_leases(&user0), 1);
    hub.clients.remove(0);
    hub.connect_all();
    let got = vip_events(&hub.clients[0])[0].0[0];
    assert_ne!(
        got,
        ip("10.3.0.1"),
        "an offline lease is not for the taking"
    );
}
