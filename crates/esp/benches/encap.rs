//! Encapsulation / decapsulation cost per suite and inner packet size, next to
//! the bare aws-lc-rs AEAD seal and open they are built on (the floor): for
//! each AEAD suite and size, `raw-seal/S/N` vs `encap/S/N` and `raw-open/S/N`
//! vs `decap/S/N`. The encapsulation includes copying the inner packet into
//! the buffer (what a driver does), the raw seal does not.
//!
//! Kept short: `cargo bench -p oxisec-esp --bench encap` runs in about two
//! minutes. Filter with e.g. `-- '/1400'` or `-- 'aes128gcm'`.
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::aead;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use oxisec_crypto::{
    Secret,
    esp_cipher::{EspCipher, EspSuite},
};
use oxisec_esp::{
    InboundSa, IpFamily, OutboundSa, PacketBuf, Sad, Selector, decapsulate, encapsulate,
};
use oxisec_wire::{TransformId, encr, integ};

const SIZES: [usize; 3] = [64, 512, 1400];
const SPI: u32 = 0x1000_0001;

fn suites() -> [(&'static str, EspSuite); 4] {
    let s = |encr: TransformId, bits: Option<u16>, integ: Option<TransformId>| EspSuite {
        encr,
        encr_key_bits: bits,
        integ,
        esn: true,
    };
    [
        ("aes128gcm", s(encr::AES_GCM_16, Some(128), None)),
        ("aes256gcm", s(encr::AES_GCM_16, Some(256), None)),
        ("chacha20poly1305", s(encr::CHACHA20_POLY1305, None, None)),
        (
            "aes128cbc-sha256",
            s(encr::AES_CBC, Some(128), Some(integ::HMAC_SHA2_256_128)),
        ),
    ]
}

fn cipher(suite: EspSuite) -> EspCipher {
    EspCipher::new(suite, &Secret::new(vec![0x3c; suite.keymat_len()])).unwrap()
}

/// An IPv4/UDP packet of `size` bytes in total.
fn inner(size: usize) -> Vec<u8> {
    let mut p = vec![0u8; size];
    p[..20].copy_from_slice(&[
        0x45,
        0,
        (size >> 8) as u8,
        size as u8,
        0,
        0,
        0,
        0,
        64,
        17,
        0,
        0,
        192,
        0,
        2,
        1,
        198,
        51,
        100,
        1,
    ]);
    p[20..24].copy_from_slice(&[0x30, 0x39, 0x00, 0x35]);
    p
}

fn bench(c: &mut Criterion) {
    let any = vec![Selector::any(IpFamily::V4)];
    let mut g = c.benchmark_group("esp");
    g.warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(1500))
        .sample_size(30);

    for size in SIZES {
        g.throughput(Throughput::Bytes(size as u64));
        let packet = inner(size);

        // The floor: one bare AEAD seal (and open) of the same bytes.
        for (name, alg, key_len) in [
            ("aes128gcm", &aead::AES_128_GCM, 16),
            ("aes256gcm", &aead::AES_256_GCM, 32),
            ("chacha20poly1305", &aead::CHACHA20_POLY1305, 32),
        ] {
            let key =
                aead::LessSafeKey::new(aead::UnboundKey::new(alg, &[7; 32][..key_len]).unwrap());
            let nonce_of = |n: u64| {
                let mut nonce = [0u8; 12];
                nonce[4..].copy_from_slice(&n.to_be_bytes());
                aead::Nonce::assume_unique_for_key(nonce)
            };
            let mut data = packet.clone();
            let mut n = 0u64;
            g.bench_function(format!("raw-seal/{name}/{size}"), |b| {
                b.iter(|| {
                    n += 1;
                    key.seal_in_place_separate_tag(
                        nonce_of(n),
                        aead::Aad::from(&[0u8; 8]),
                        &mut data,
                    )
                    .unwrap()
                })
            });
            let mut sealed = packet.clone();
            let tag = key
                .seal_in_place_separate_tag(nonce_of(0), aead::Aad::from(&[0u8; 8]), &mut sealed)
                .unwrap();
            g.bench_function(format!("raw-open/{name}/{size}"), |b| {
                b.iter_batched_ref(
                    || sealed.clone(),
                    |ct| {
                        key.open_in_place_separate_tag(
                            nonce_of(0),
                            aead::Aad::from(&[0u8; 8]),
                            tag.as_ref(),
                            ct,
                        )
                        .unwrap();
                    },
                    BatchSize::SmallInput,
                )
            });
        }

        for (name, suite) in suites() {
            let out = OutboundSa::new(SPI, cipher(suite), any.clone(), any.clone(), None);
            let mut buf = PacketBuf::with_default_room();
            g.bench_function(format!("encap/{name}/{size}"), |b| {
                b.iter(|| {
                    buf.set_data(&packet).unwrap();
                    encapsulate(&out, &mut buf).unwrap();
                    black_box(buf.as_slice());
                })
            });

            // Decapsulation needs a fresh sequence number each time (the
            // replay window), so packets are encapsulated outside the timing.
            let sender = OutboundSa::new(SPI, cipher(suite), any.clone(), any.clone(), None);
            let mut sad = Sad::new();
            sad.insert_inbound(Arc::new(
                InboundSa::new(SPI, cipher(suite), 1024, any.clone(), any.clone()).unwrap(),
            ));
            g.bench_function(format!("decap/{name}/{size}"), |b| {
                b.iter_batched_ref(
                    || {
                        let mut buf = PacketBuf::with_default_room();
                        buf.set_data(&packet).unwrap();
                        encapsulate(&sender, &mut buf).unwrap();
                        buf
                    },
                    |buf| {
                        decapsulate(&sad, buf).unwrap();
                    },
                    BatchSize::SmallInput,
                )
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
