//! The per-packet path must not allocate: encapsulate and decapsulate with
//! reused buffers, for every suite, under a counting global allocator.
//! (Its own test binary, so no other test allocates concurrently.)
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use oxisec_crypto::{
    Secret,
    esp_cipher::{EspCipher, EspSuite},
};
use oxisec_esp::{
    DropReason, EncapError, InboundSa, IpFamily, Limits, OutboundSa, PacketBuf, PolicyAction, Sad,
    Selector, Spd, SpdEntry, decapsulate, encapsulate,
};
use oxisec_wire::{encr, integ};

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

#[test]
fn encap_and_decap_do_not_allocate() {
    let suites = [
        (encr::AES_GCM_16, Some(128), None),
        (encr::AES_GCM_16, Some(256), None),
        (encr::CHACHA20_POLY1305, None, None),
        (encr::AES_CBC, Some(128), Some(integ::HMAC_SHA2_256_128)),
        (encr::AES_CBC, Some(256), Some(integ::HMAC_SHA2_512_256)),
    ];
    let any = vec![Selector::any(IpFamily::V4)];
    let mut inner = vec![0u8; 200];
    inner[..20].copy_from_slice(&[
        0x45, 0, 0, 200, 0, 0, 0, 0, 64, 17, 0, 0, 192, 0, 2, 1, 198, 51, 100, 1,
    ]);
    let spd = Spd::from_entries(vec![SpdEntry::new(
        any.clone(),
        any.clone(),
        PolicyAction::Protect(1),
    )]);
    for (e, bits, i) in suites {
        for esn in [false, true] {
            let suite = EspSuite {
                encr: e,
                encr_key_bits: bits,
                integ: i,
                esn,
            };
            let km = || Secret::new(vec![0x11; suite.keymat_len()]);
            // Limits crossed during the armed cycles, so that the crossing
            // and the expired drop paths are measured too: inbound expires
            // after 20 packets, outbound after 30.
            let out = OutboundSa::new(
                9,
                EspCipher::new(suite, &km()).unwrap(),
                any.clone(),
                any.clone(),
                None,
            )
            .with_limits(Limits {
                soft_packets: 10,
                hard_packets: 30,
                ..Limits::NONE
            });
            let inb = InboundSa::new(
                9,
                EspCipher::new(suite, &km()).unwrap(),
                64,
                any.clone(),
                any.clone(),
            )
            .unwrap()
            .with_limits(Limits {
                soft_bytes: 2000,
                hard_packets: 20,
                ..Limits::NONE
            });
            let mut sad = Sad::new();
            sad.insert_inbound(Arc::new(inb));
            let mut tx = PacketBuf::with_default_room();
            let mut rx = PacketBuf::with_default_room();
            let mut cycle = || {
                tx.set_data(&inner).unwrap();
                assert!(spd.lookup_packet(tx.as_slice()).unwrap().is_some());
                match encapsulate(&out, &mut tx) {
                    Ok(_) => {
                        rx.set_data(tx.as_slice()).unwrap();
                        match decapsulate(&sad, &mut rx) {
                            Ok(_) => assert_eq!(rx.as_slice(), &inner[..]),
                            Err(e) => assert_eq!(e, DropReason::Expired),
                        }
                    }
                    Err(e) => assert_eq!(e, EncapError::Expired),
                }
                // A drop path too.
                rx.set_data(&[0xde, 0xad]).unwrap();
                assert!(decapsulate(&sad, &mut rx).is_err());
            };
            // Warm up: first use may set up per-thread provider state.
            cycle();
            ALLOCS.store(0, Ordering::Relaxed);
            ARMED.store(true, Ordering::Relaxed);
            for _ in 0..50 {
                cycle();
            }
            ARMED.store(false, Ordering::Relaxed);
            assert_eq!(ALLOCS.load(Ordering::Relaxed), 0, "{suite:?}");
            assert_eq!(out.stats().drops.get(DropReason::Expired), 51 - 30);
        }
    }
}
