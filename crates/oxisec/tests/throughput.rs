//! End-to-end throughput in namespaces, run by `bench/throughput.sh`.
//!
//! `#[ignore]`d so that `cargo test` does not spend a minute on it; the
//! script runs it with `--ignored --nocapture` in a release build (so that
//! the oxisec rows measure optimised code). Knobs (environment):
//!
//! * `OXISEC_BENCH_SECS` — iperf3 duration per row (default 5);
//! * `OXISEC_BENCH_RUNS` — runs per row, the median is reported (default 1);
//! * `OXISEC_BENCH_OXISEC=1` — also measure the oxisec rows (off until the
//!   daemon works; they print as "pending" meanwhile).

mod common;

use common::scenario::{self, Scenario};
use common::traffic;
use common::{LEFT_OUTER, PeerKind, RIGHT_OUTER, Tool, Topology};

fn env_u32(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One line of the table.
struct Row {
    setup: String,
    cipher: &'static str,
    /// Receiver-side Mbit/s of each run, or why there is none.
    result: Result<Vec<(f64, u64)>, String>,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn plain_veth(secs: u32) -> common::Result<(f64, u64)> {
    let topo = Topology::new("bench_veth")?;
    let r = traffic::iperf3_tcp(
        &topo.right,
        RIGHT_OUTER,
        &topo.left,
        LEFT_OUTER,
        secs,
        topo.dir.path(),
    )?;
    Ok((r.received_bps / 1e6, r.retransmits))
}

fn tunnel(
    left: PeerKind,
    right: PeerKind,
    esp: &'static str,
    secs: u32,
) -> common::Result<(f64, u64)> {
    let outcome = scenario::run(&Scenario {
        test: "bench_tunnel",
        iperf_seconds: secs,
        ..Scenario::new(
            "bench_tunnel",
            left,
            right,
            ("aes128gcm16-prfsha256-x25519", esp),
        )
    })?;
    let r = outcome.iperf.ok_or("no iperf3 result")?;
    Ok((r.received_bps / 1e6, r.retransmits))
}

fn measure(
    runs: u32,
    mut f: impl FnMut() -> common::Result<(f64, u64)>,
) -> Result<Vec<(f64, u64)>, String> {
    (0..runs).map(|_| f().map_err(|e| e.to_string())).collect()
}

#[test]
#[ignore = "benchmark: run bench/throughput.sh"]
fn throughput_table() {
    let _serial = common::serial();
    if common::skip(
        "throughput_table",
        &[Tool::Charon, Tool::Swanctl, Tool::Iperf3, Tool::Ping],
    ) {
        return;
    }
    let secs = env_u32("OXISEC_BENCH_SECS", 5).max(1);
    let runs = env_u32("OXISEC_BENCH_RUNS", 1).max(1);
    let with_oxisec = std::env::var("OXISEC_BENCH_OXISEC").is_ok_and(|v| v == "1");
    const GCM: (&str, &str) = ("AES-128-GCM", "aes128gcm16");
    const CHACHA: (&str, &str) = ("ChaCha20-Poly1305", "chacha20poly1305");

    let mut rows = vec![Row {
        setup: "plain veth (no IPsec)".into(),
        cipher: "-",
        result: measure(runs, || plain_veth(secs)),
    }];
    for (cipher, esp) in [GCM, CHACHA] {
        rows.push(Row {
            setup: "strongSwan <-> strongSwan (libipsec)".into(),
            cipher,
            result: measure(runs, || {
                tunnel(PeerKind::StrongSwan, PeerKind::StrongSwan, esp, secs)
            }),
        });
    }
    // Slots for oxisec: filled once the daemon works (OXISEC_BENCH_OXISEC=1).
    let oxisec_pairs = [
        ("oxisec <-> oxisec", PeerKind::Oxisec, PeerKind::Oxisec),
        (
            "oxisec -> strongSwan (oxisec initiates)",
            PeerKind::Oxisec,
            PeerKind::StrongSwan,
        ),
        (
            "strongSwan -> oxisec (oxisec responds)",
            PeerKind::StrongSwan,
            PeerKind::Oxisec,
        ),
    ];
    for (setup, left, right) in oxisec_pairs {
        for (cipher, esp) in [GCM, CHACHA] {
            rows.push(Row {
                setup: setup.into(),
                cipher,
                result: if with_oxisec {
                    measure(runs, || tunnel(left, right, esp, secs))
                } else {
                    Err("pending (daemon not ready; OXISEC_BENCH_OXISEC=1)".into())
                },
            });
        }
    }

    let mut failed = Vec::new();
    println!();
    println!(
        "iperf3 TCP, 1 stream, {secs} s, receiver goodput, median of {runs} run(s); \
         IKE aes128gcm16-prfsha256-x25519, ESP in UDP 4500"
    );
    println!(
        "{:<42} {:<18} {:>10} {:>12}",
        "setup", "ESP cipher", "Mbit/s", "retransmits"
    );
    println!("{}", "-".repeat(85));
    for row in &rows {
        match &row.result {
            Ok(v) => {
                let mbps = median(v.iter().map(|r| r.0).collect());
                let retr = median(v.iter().map(|r| r.1 as f64).collect());
                let spread = if v.len() > 1 {
                    let lo = v.iter().map(|r| r.0).fold(f64::INFINITY, f64::min);
                    let hi = v.iter().map(|r| r.0).fold(0.0, f64::max);
                    format!("  ({lo:.0}-{hi:.0})")
                } else {
                    String::new()
                };
                println!(
                    "{:<42} {:<18} {:>10.0} {:>12.0}{spread}",
                    row.setup, row.cipher, mbps, retr
                );
            }
            Err(e) => {
                let short = e.lines().next().unwrap_or("");
                println!("{:<42} {:<18} {:>10} {short}", row.setup, row.cipher, "-");
                if !e.starts_with("pending") {
                    failed.push(format!("{} / {}: {e}", row.setup, row.cipher));
                }
            }
        }
    }
    println!();
    assert!(failed.is_empty(), "rows failed:\n{}", failed.join("\n\n"));
}
