//! Hostile datagrams: nothing panics, nothing changes, drops are counted.
mod common;

use common::*;
use oxisec_ike::*;

fn dgram(data: Vec<u8>) -> Datagram {
    Datagram {
        local: "192.0.2.2:500".parse().unwrap(),
        remote: "192.0.2.1:500".parse().unwrap(),
        data,
    }
}

fn snapshot(p: &Peer) -> Vec<(String, &'static str, usize)> {
    p.engine
        .status()
        .iter()
        .map(|s| (s.connection.clone(), s.state, s.children.len()))
        .collect()
}

#[test]
fn garbage_and_truncations_never_panic_nor_change_state() {
    let mut w = World::new(Side::a(), Side::b());
    w.connect();
    let before_a = snapshot(&w.a);
    let before_b = snapshot(&w.b);
    let samples: Vec<Vec<u8>> =
        w.a.sent
            .iter()
            .chain(w.b.sent.iter())
            .map(|t| t.data.clone())
            .collect();
    let mut rng = TestRng(99);
    for s in &samples {
        for cut in 0..s.len() {
            w.b.engine.handle_datagram(w.now, dgram(s[..cut].to_vec()));
            w.a.engine.handle_datagram(w.now, dgram(s[..cut].to_vec()));
        }
        for i in 0..s.len() {
            let mut m = s.clone();
            let mut r = [0u8; 1];
            oxisec_crypto::Rng::fill(&mut rng, &mut r);
            m[i] ^= r[0] | 1;
            w.b.engine.handle_datagram(w.now, dgram(m.clone()));
            w.a.engine.handle_datagram(w.now, dgram(m));
        }
    }
    for len in [0, 1, 27, 28, 29, 100, 1500] {
        let mut g = vec![0u8; len];
        oxisec_crypto::Rng::fill(&mut rng, &mut g);
        w.b.engine.handle_datagram(w.now, dgram(g));
    }
    // Flipped IKE_SA_INIT requests may create half-open SAs on B; those are
    // legitimate new requests. Established state must be untouched.
    w.a.drain();
    w.b.drain();
    assert_eq!(snapshot(&w.a), before_a);
    let established_b: Vec<_> = snapshot(&w.b)
        .into_iter()
        .filter(|s| s.1 == "ESTABLISHED")
        .collect();
    assert_eq!(established_b, before_b);
    let st = w.b.engine.stats();
    assert!(
        st.malformed > 0 && st.unknown_spi + st.integrity_failed + st.out_of_window > 0,
        "{st:?}"
    );
    // Still works afterwards.
    w.a.engine.handle_command(
        w.now,
        Command::TerminateIke {
            connection: "tunnel".into(),
        },
    );
    w.pump();
    assert_eq!(w.a.engine.ike_sa_count(), 0);
}

#[test]
fn unsupported_critical_payload_in_ike_sa_init_is_answered() {
    let mut w = World::new(Side::a(), Side::b());
    w.initiate();
    let req = w.a.drain().remove(0);
    let mut m = oxisec_wire::Message::parse(&req.data).unwrap();
    m.payloads.insert(
        0,
        oxisec_wire::Payload::Unknown {
            ty: oxisec_wire::PayloadType(200),
            critical: true,
            body: vec![1, 2, 3],
        },
    );
    w.b.engine.handle_datagram(
        w.now,
        Datagram {
            local: req.remote,
            remote: req.local,
            data: m.emit(),
        },
    );
    let out = w.b.drain();
    assert_eq!(out.len(), 1);
    let resp = oxisec_wire::Message::parse(&out[0].data).unwrap();
    assert!(
        resp.payloads
            .iter()
            .any(|p| matches!(p, oxisec_wire::Payload::Notify(n)
        if n.ty == oxisec_wire::NotifyType::UNSUPPORTED_CRITICAL_PAYLOAD && n.data == vec![200]))
    );
    assert_eq!(w.b.engine.ike_sa_count(), 0);
}
