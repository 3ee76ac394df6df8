//! ESP decapsulation (RFC 4303) on hostile packets.
//!
//! A fresh SAD per input holds one inbound SA per implemented suite, with and
//! without ESN, with fixed keys, various replay-window sizes and either "any"
//! or narrow traffic selectors. The input is a sequence of records (see
//! `oxisec_fuzz::Records`), one packet each, so the replay window sees a
//! history. `op & 3` picks how the packet is made, `op >> 2` which SA it is
//! meant for:
//!
//! * 0 `raw`: the data is the ESP packet as received.
//! * 1 `encap`: the data is an inner packet, encapsulated by an `OutboundSa`
//!   with the same keys: the fuzzer reaches everything after the ICV check
//!   (next header, inner IP header, selectors). Oracle: it decapsulates back
//!   to exactly the inner packet (up to its IP length) unless the inner packet
//!   is malformed, outside the selectors or the replay window moved past it.
//! * 2 `seal`: the data is a sequence number (8 bytes) and the whole
//!   plaintext (inner packet, padding, pad length, next header), sealed with
//!   the SA's cipher: padding and trailer checks, replay window with chosen
//!   sequence numbers (including ESN wrap-around).
//! * 3 `spi`: like `raw`, with the SA's SPI written over the first 4 bytes so
//!   that mutated garbage still reaches the per-SA path (length checks,
//!   replay check, ICV).
#![no_main]

use std::net::IpAddr;
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use oxisec_crypto::Secret;
use oxisec_crypto::esp_cipher::{EspCipher, EspSuite};
use oxisec_esp::inner;
use oxisec_esp::selector::any_matches;
use oxisec_esp::{
    DropReason, InboundSa, IpFamily, OutboundSa, PacketBuf, Sad, Selector, decapsulate, encapsulate,
};
use oxisec_fuzz::{Fields, Records};
use oxisec_wire::{TransformId, encr, integ};

/// Packets per input: enough to move replay windows around, few enough to
/// keep executions fast.
const MAX_PACKETS: usize = 64;

/// Every suite the data plane implements.
fn suites() -> Vec<EspSuite> {
    let s = |encr: TransformId, bits: Option<u16>, integ: Option<TransformId>| EspSuite {
        encr,
        encr_key_bits: bits,
        integ,
        esn: false,
    };
    let mut v = vec![s(encr::CHACHA20_POLY1305, None, None)];
    for bits in [128, 192, 256] {
        v.push(s(encr::AES_GCM_16, Some(bits), None));
        for i in [
            integ::HMAC_SHA2_256_128,
            integ::HMAC_SHA2_384_192,
            integ::HMAC_SHA2_512_256,
        ] {
            v.push(s(encr::AES_CBC, Some(bits), Some(i)));
        }
    }
    v
}

fn cipher(suite: EspSuite, salt: u8) -> EspCipher {
    let keymat = Secret::new((0..suite.keymat_len()).map(|i| i as u8 ^ salt).collect());
    EspCipher::new(suite, &keymat).expect("fixed test keys fit the suite")
}

fn net(s: &str, len: u8) -> Selector {
    Selector::prefix(s.parse::<IpAddr>().unwrap(), len).unwrap()
}

/// One SA of the fixture: the inbound half lives in the SAD, the outbound
/// half (same keys) makes valid packets for it.
struct Pair {
    spi: u32,
    suite: EspSuite,
    out: OutboundSa,
    cipher: EspCipher,
}

struct Fixture {
    sad: Sad,
    /// Indexed like [`SA_COUNT`]; `None` for SAs the input never names
    /// (keying all of them for every input would cost most of the time).
    pairs: Vec<Option<Pair>>,
}

/// 13 suites × ESN on/off.
const SA_COUNT: usize = 26;

/// Installs the SAs whose index `wanted` says.
fn fixture(wanted: &[bool; SA_COUNT]) -> Fixture {
    let mut sad = Sad::new();
    let mut pairs = Vec::new();
    let any = vec![Selector::any(IpFamily::V4), Selector::any(IpFamily::V6)];
    // Site A behind the peer, site B behind us; UDP to port 53 only on v4.
    let a = vec![net("192.0.2.0", 24), net("2001:db8:a::", 48)];
    let b = vec![
        net("198.51.100.0", 24).with_protocol(17).with_ports(53, 53),
        net("2001:db8:b::", 48),
    ];
    let windows = [1, 32, 64, 128, 1024, 4096];
    for (i, mut suite) in suites().into_iter().enumerate() {
        for esn in [false, true] {
            suite.esn = esn;
            let n = pairs.len();
            if !wanted[n] {
                pairs.push(None);
                continue;
            }
            let spi = 0x1000 + n as u32;
            let narrow = n % 3 == 2;
            let (local, remote) = if narrow {
                (b.clone(), a.clone())
            } else {
                (any.clone(), any.clone())
            };
            let salt = 0x5c ^ (i as u8);
            let out = OutboundSa::new(
                spi,
                cipher(suite, salt),
                remote.clone(),
                local.clone(),
                None,
            );
            let inb = InboundSa::new(
                spi,
                cipher(suite, salt),
                windows[n % windows.len()],
                local,
                remote,
            )
            .expect("valid window size");
            sad.insert_inbound(Arc::new(inb));
            pairs.push(Some(Pair {
                spi,
                suite,
                out,
                cipher: cipher(suite, salt),
            }));
        }
    }
    assert_eq!(pairs.len(), SA_COUNT);
    Fixture { sad, pairs }
}

/// What a successful decapsulation must look like.
fn check_ok(pair: &Pair, sad: &Sad, buf: &PacketBuf, d: &oxisec_esp::Decapsulated) {
    assert_eq!(d.spi, pair.spi);
    let info = inner::parse(buf.as_slice()).expect("delivered packet parses");
    assert_eq!(
        info.total_len,
        buf.len(),
        "delivered packet has trailing bytes"
    );
    assert_eq!(info.flow, d.flow);
    let sa = sad.inbound(pair.spi).expect("SA still installed");
    assert!(any_matches(
        sa.remote_ts(),
        d.flow.src,
        d.flow.protocol,
        d.flow.src_port
    ));
    assert!(any_matches(
        sa.local_ts(),
        d.flow.dst,
        d.flow.protocol,
        d.flow.dst_port
    ));
    if !pair.suite.esn {
        assert!(d.seq <= u64::from(u32::MAX));
    }
}

fuzz_target!(|data: &[u8]| {
    let mut wanted = [false; SA_COUNT];
    for rec in Records::new(data).take(MAX_PACKETS) {
        wanted[usize::from(rec.op >> 2) % SA_COUNT] = true;
    }
    let fx = fixture(&wanted);
    // SAs that saw a `seal` packet: its sequence number may have moved the
    // window far from the outbound SA's counter.
    let mut moved = [false; SA_COUNT];
    for rec in Records::new(data).take(MAX_PACKETS) {
        let Some(pair) = &fx.pairs[usize::from(rec.op >> 2) % SA_COUNT] else {
            unreachable!("every SA an op names is installed")
        };
        let mut buf;
        let mut expect_inner = None;
        match rec.op & 3 {
            0 => buf = PacketBuf::from_slice(rec.data),
            1 => {
                buf = PacketBuf::with_default_room();
                if buf.set_data(rec.data).is_err() || encapsulate(&pair.out, &mut buf).is_err() {
                    continue;
                }
                expect_inner = Some(rec.data);
            }
            2 => {
                moved[usize::from(rec.op >> 2) % SA_COUNT] = true;
                let mut f = Fields::new(rec.data);
                let mut seq = f.u64();
                if !pair.suite.esn {
                    seq &= u64::from(u32::MAX);
                }
                let plain = f.rest();
                let align = pair.suite.block_align();
                let plain = &plain[..plain.len() - plain.len() % align];
                let mut p = pair.spi.to_be_bytes().to_vec();
                p.extend_from_slice(&(seq as u32).to_be_bytes());
                p.resize(p.len() + pair.suite.iv_len(), 0);
                p.extend_from_slice(plain);
                p.resize(p.len() + pair.suite.icv_len(), 0);
                pair.cipher
                    .seal(seq, &mut p)
                    .expect("aligned plaintext seals");
                buf = PacketBuf::from_slice(&p);
            }
            _ => {
                let mut p = rec.data.to_vec();
                let n = p.len().min(4);
                p[..n].copy_from_slice(&pair.spi.to_be_bytes()[..n]);
                buf = PacketBuf::from_slice(&p);
            }
        }
        match decapsulate(&fx.sad, &mut buf) {
            Ok(d) => {
                check_ok(pair, &fx.sad, &buf, &d);
                if let Some(inner) = expect_inner {
                    assert_eq!(buf.as_slice(), &inner[..buf.len()]);
                }
            }
            Err(reason) => {
                if let Some(inner) = expect_inner {
                    // A valid packet of ours may only fail for what is wrong
                    // with the inner packet, or for the window.
                    let sa = fx.sad.inbound(pair.spi).expect("SA installed");
                    let why = match inner::parse(inner) {
                        Err(_) => DropReason::MalformedInner,
                        Ok(i)
                            if !any_matches(
                                sa.remote_ts(),
                                i.flow.src,
                                i.flow.protocol,
                                i.flow.src_port,
                            ) || !any_matches(
                                sa.local_ts(),
                                i.flow.dst,
                                i.flow.protocol,
                                i.flow.dst_port,
                            ) =>
                        {
                            DropReason::SelectorMismatch
                        }
                        Ok(_) => DropReason::ReplayTooOld,
                    };
                    // With ESN, a window moved by `seal` packets infers another
                    // high half for our sequence numbers (RFC 4303 A2.2), so
                    // the ICV fails: correct, if unfortunate, behaviour.
                    let desync = pair.suite.esn
                        && moved[usize::from(rec.op >> 2) % SA_COUNT]
                        && reason == DropReason::IntegrityFailed;
                    assert!(
                        reason == why
                            || desync
                            || matches!(
                                reason,
                                DropReason::ReplayTooOld | DropReason::ReplayDuplicate
                            ),
                        "encapsulated packet dropped for {reason:?}, expected {why:?}"
                    );
                }
            }
        }
    }
    // Counters stay consistent whatever happened.
    let _ = fx.sad.global_drops().total();
    for p in fx.pairs.iter().flatten() {
        let _ = fx.sad.inbound(p.spi).map(|sa| sa.stats());
    }
});
