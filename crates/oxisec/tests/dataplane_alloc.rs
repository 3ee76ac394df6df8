//! A data-plane lane's per-packet work must not allocate, and must give
//! back exactly what went in: a 40 KB TCP super-packet from the TUN device
//! is cut, encrypted into the arena, "sent" (copied into a receive area as
//! the kernel would deliver the GSO run), decrypted in place and merged
//! back into one TUN write equal to the original — under a counting global
//! allocator, with and without the offloads. (Its own test binary, so that
//! no other test allocates concurrently.)
use std::alloc::{GlobalAlloc, Layout, System};
use std::io::IoSlice;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use oxisec::daemon::dataplane::DropCounters;
use oxisec::daemon::dataplane::lane::{RxPath, TxArena, encap_read};
use oxisec::daemon::dataplane::mtu::MtuSettings;
use oxisec::daemon::dataplane::offload::{
    F_NEEDS_CSUM, GSO_TCPV4, Segmenter, VNET_HDR_LEN, VnetHdr, csum,
};
use oxisec::daemon::dataplane::{Reporter, Tables};
use oxisec_crypto::Secret;
use oxisec_crypto::esp_cipher::EspSuite;
use oxisec_ike::{ChildId, EspSaParams, SaCommand, TsRange};
use oxisec_wire::encr;

struct Counting;

static ARMED: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if ARMED.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if ARMED.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const SPI: u32 = 0x0a0b_0c0d;
const MSS: u16 = 1348;

fn ts(s: &str) -> TsRange {
    s.parse().unwrap()
}

fn params(suite: EspSuite) -> EspSaParams {
    EspSaParams {
        spi: SPI,
        suite,
        keys: Secret::new((0..suite.keymat_len() as u8).collect()),
        limits: Default::default(),
        mode: Default::default(),
        replay_window: 64,
    }
}

/// A TSO super-packet as the kernel hands it over with `IFF_VNET_HDR`:
/// IPv4 + TCP with timestamps, `payload` bytes, the checksum field holding
/// only the pseudo-header sum.
fn super_packet(payload: usize) -> (VnetHdr, Vec<u8>) {
    let len = 20 + 32 + payload;
    let mut p = vec![0u8; len];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
    p[4..6].copy_from_slice(&0x3000u16.to_be_bytes());
    p[6] = 0x40;
    p[8] = 64;
    p[9] = 6;
    p[12..16].copy_from_slice(&[198, 51, 100, 1]);
    p[16..20].copy_from_slice(&[203, 0, 113, 1]);
    let c = !csum::sum(&p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    let t = 20;
    p[t..t + 2].copy_from_slice(&40000u16.to_be_bytes());
    p[t + 2..t + 4].copy_from_slice(&5201u16.to_be_bytes());
    p[t + 4..t + 8].copy_from_slice(&7u32.to_be_bytes());
    p[t + 8..t + 12].copy_from_slice(&9u32.to_be_bytes());
    p[t + 12] = 8 << 4;
    p[t + 13] = 0x18; // ACK | PSH
    p[t + 14..t + 16].copy_from_slice(&500u16.to_be_bytes());
    p[t + 20..t + 32].copy_from_slice(&[1, 1, 8, 10, 0, 0, 1, 0, 0, 0, 2, 0]);
    for (i, b) in p[t + 32..].iter_mut().enumerate() {
        *b = (i % 251) as u8;
    }
    let pseudo = csum::pseudo(&p[12..16], &p[16..20], 6, len - 20);
    p[t + 16..t + 18].copy_from_slice(&pseudo.to_be_bytes());
    let h = VnetHdr {
        flags: F_NEEDS_CSUM,
        gso_type: GSO_TCPV4,
        hdr_len: 52,
        gso_size: MSS,
        csum_start: 20,
        csum_offset: 16,
    };
    (h, p)
}

/// Whether the iovecs, after the virtio header, are `want` byte for byte —
/// without allocating.
fn iov_equals(iov: &[IoSlice<'_>], skip: usize, want: &[u8]) -> bool {
    let mut at = 0;
    let mut skip = skip;
    for s in iov {
        let mut s: &[u8] = s;
        let cut = skip.min(s.len());
        s = &s[cut..];
        skip -= cut;
        if want.get(at..at + s.len()) != Some(s) {
            return false;
        }
        at += s.len();
    }
    at == want.len()
}

fn round_trip(offload: bool, gso: bool) {
    let suite = EspSuite {
        encr: encr::AES_GCM_16,
        encr_key_bits: Some(128),
        integ: None,
        esn: true,
    };
    let (local, remote): (SocketAddr, SocketAddr) = (
        "192.0.2.1:4500".parse().unwrap(),
        "192.0.2.2:4500".parse().unwrap(),
    );
    let (a, b) = (Tables::default(), Tables::default());
    a.apply(&SaCommand::InstallOutbound {
        child: ChildId(1),
        sa: params(suite),
        local_ts: vec![ts("198.51.100.0/24")],
        remote_ts: vec![ts("203.0.113.0/24")],
        local,
        remote,
        udp_encap: true,
    })
    .unwrap();
    b.apply(&SaCommand::InstallInbound {
        child: ChildId(1),
        sa: params(suite),
        local_ts: vec![ts("203.0.113.0/24")],
        remote_ts: vec![ts("198.51.100.0/24")],
    })
    .unwrap();
    let (ev_tx, _ev_rx) = tokio::sync::mpsc::unbounded_channel();
    let reporter = Reporter::new(ev_tx);
    let (mut wa, mut wb) = (a.worker(reporter.clone()), b.worker(reporter));
    let drops = DropCounters::default();
    let (hdr, sp) = super_packet(40_000);
    let segments = 40_000usize.div_ceil(usize::from(MSS));
    let want_single: Vec<Vec<u8>> = {
        let s = Segmenter::new(&hdr, &sp).unwrap();
        (0..s.count())
            .map(|i| {
                let mut out = vec![0u8; s.len(i)];
                s.write(i, &mut out).unwrap();
                out
            })
            .collect()
    };

    let mut tx = TxArena::new(256 * 1024, 64, gso);
    let mut rx_area = vec![0u8; 256 * 1024].into_boxed_slice();
    let mut received = [(0usize, 0usize, 0usize); 64];
    let mut path = RxPath::new(offload, true);
    let mut cycle = |check: bool| {
        let seg = Segmenter::new(&hdr, &sp).unwrap();
        let mut n_msgs = 0;
        let mut used = 0;
        let mut flush = |tx: &mut TxArena| {
            tx.flush_with(|_v4, batch, arena| {
                for m in batch.messages() {
                    let len = m.range.len();
                    rx_area[used..used + len].copy_from_slice(&arena[m.range.clone()]);
                    received[n_msgs] = (used, used + len, m.seg);
                    n_msgs += 1;
                    used += len;
                }
                batch.clear();
            })
        };
        encap_read(
            &mut wa,
            &seg,
            &mut tx,
            &drops,
            &MtuSettings::default(),
            &mut |_| {},
            &mut flush,
        );
        if !tx.is_empty() {
            flush(&mut tx);
        }
        assert_eq!(n_msgs, if gso { 1 } else { segments });
        let mut writes = 0usize;
        let mut ok = true;
        let mut write = |iov: &[IoSlice<'_>]| {
            if check {
                ok &= if offload {
                    iov_equals(iov, VNET_HDR_LEN, &sp)
                } else {
                    iov_equals(iov, 0, &want_single[writes])
                };
            }
            writes += 1;
        };
        let mut ike = |_| panic!("no IKE here");
        wb.start_batch();
        for &(start, end, seg) in &received[..n_msgs] {
            let c = path.datagram(
                &mut wb,
                &mut rx_area,
                start..end,
                seg,
                local,
                remote,
                &drops,
                &mut ike,
                &mut write,
            );
            assert_eq!(c.dropped, None);
        }
        path.end_batch(&mut rx_area, &mut write);
        assert!(ok, "the TUN writes are not the packet that was sent");
        assert_eq!(writes, if offload { 1 } else { segments });
    };
    // Warm up: first use may set up per-thread state (and the first
    // inbound packet reports activity to the engine, which allocates).
    cycle(true);
    cycle(true);
    ALLOCS.store(0, Ordering::Relaxed);
    ARMED.store(true, Ordering::Relaxed);
    for _ in 0..50 {
        cycle(false);
    }
    ARMED.store(false, Ordering::Relaxed);
    assert_eq!(
        ALLOCS.load(Ordering::Relaxed),
        0,
        "offload {offload}, gso {gso}"
    );
    cycle(true);
    let out = a.counters(SPI, false).unwrap();
    assert_eq!(out.packets, 53 * segments as u64);
    assert_eq!(b.counters(SPI, true).unwrap().packets, out.packets);
    assert!(out.drops.is_empty());
}

#[test]
fn lane_work_round_trips_without_allocating() {
    round_trip(true, true);
    round_trip(false, false);
    round_trip(true, false);
    round_trip(false, true);
}
