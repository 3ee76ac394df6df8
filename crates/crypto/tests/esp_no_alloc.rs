//! `EspCipher::seal` and `open` must not allocate, for every suite: they run
//! per packet on the data-plane threads. Checked under a counting global
//! allocator (its own test binary, so no other test allocates concurrently).
//! Only Rust-side allocations are counted: the aws-lc primitives used per
//! packet work on key schedules and contexts prepared in `EspCipher::new`
//! (AES-CMAC is ours, over RustCrypto's `aes`, precisely because aws-lc-rs
//! allocates a C context per CMAC message).
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use oxisec_crypto::Secret;
use oxisec_crypto::esp_cipher::{EspCipher, EspSuite};
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
fn seal_and_open_do_not_allocate() {
    let integs = [
        integ::HMAC_SHA2_256_128,
        integ::HMAC_SHA2_512_256,
        integ::AES_XCBC_96,
        integ::AES_CMAC_96,
        integ::HMAC_SHA1_96,
    ];
    let mut suites = vec![];
    for esn in [false, true] {
        let s = |encr, encr_key_bits, integ| EspSuite {
            encr,
            encr_key_bits,
            integ,
            esn,
        };
        suites.push(s(encr::CHACHA20_POLY1305, None, None));
        for e in [
            encr::AES_GCM_16,
            encr::AES_GCM_12,
            encr::AES_GCM_8,
            encr::AES_CCM_16,
            encr::AES_CCM_12,
            encr::AES_CCM_8,
        ] {
            suites.push(s(e, Some(128), None));
            suites.push(s(e, Some(256), None));
        }
        for i in integs {
            suites.push(s(encr::AES_CBC, Some(256), Some(i)));
            suites.push(s(encr::AES_CTR, Some(128), Some(i)));
            suites.push(s(encr::TRIPLE_DES, None, Some(i)));
            suites.push(s(encr::NULL, None, Some(i)));
        }
    }
    for suite in suites {
        let km = (0..suite.keymat_len()).map(|i| i as u8 ^ 0xa5).collect();
        let c = EspCipher::new(suite, &Secret::new(km)).unwrap();
        let payload = 1392;
        let mut packet = vec![0u8; 8 + suite.iv_len() + payload + suite.icv_len()];
        let mut bad = packet.clone();
        ALLOCS.store(0, Ordering::Relaxed);
        ARMED.store(true, Ordering::Relaxed);
        for seq in 1..=50u64 {
            packet[4..8].copy_from_slice(&(seq as u32).to_be_bytes());
            c.seal(seq, &mut packet).unwrap();
            bad.copy_from_slice(&packet);
            c.open(seq, &mut packet).unwrap();
            // The failure paths too.
            let last = bad.len() - 1;
            bad[last] ^= 1;
            assert!(c.open(seq, &mut bad).is_err());
        }
        ARMED.store(false, Ordering::Relaxed);
        assert_eq!(ALLOCS.load(Ordering::Relaxed), 0, "{suite:?}");
    }
}
