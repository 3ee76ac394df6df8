//! End-to-end data-plane performance in namespaces, run by
//! `bench/throughput.sh`: one table, every row measured in the same run so
//! that the rows compare (absolute numbers drift from machine to machine
//! and with load).
//!
//! Rows: plain veth (no IPsec); strongSwan ↔ strongSwan (charon with
//! kernel-libipsec, ESP in UDP); oxisec ↔ oxisec; oxisec ↔ strongSwan
//! (oxisec initiates and sends) — each tunnel with AES-128-GCM and
//! ChaCha20-Poly1305, in UDP 4500 on both sides (`encap`, as strongSwan's
//! kernel-libipsec needs); and oxisec ↔ oxisec over raw ESP (`encap =
//! false`, no NAT) with AES-128-GCM. Columns: iperf3 TCP with one and with four streams
//! (receiver goodput), iperf3 UDP flood with 64- and 1400-byte IP packets
//! (packets per second delivered), and ping round-trip time (p50/p99).
//! A second table gives each tunnel's ratio to strongSwan ↔ strongSwan with
//! the same cipher and to plain veth, and the round trip it adds to veth's.
//!
//! `#[ignore]`d so that `cargo test` does not spend minutes on it; the
//! script runs it with `--ignored --nocapture` in a release build (so that
//! the oxisec rows measure optimised code). Knobs (environment):
//!
//! * `OXISEC_BENCH_SECS` — seconds per iperf3 run (default 4);
//! * `OXISEC_BENCH_RUNS` — runs per measurement, the median is reported
//!   (default 1);
//! * `OXISEC_BENCH_ONLY` — comma-separated row keys to run (`veth`,
//!   `ss-gcm`, `ss-chacha`, `ox-gcm`, `ox-chacha`, `oxss-gcm`,
//!   `oxss-chacha`, `ox-raw-gcm`; default all);
//! * `OXISEC_BENCH_ABLATION=1` — add oxisec ↔ oxisec AES-128-GCM rows with
//!   the data plane's optimisations switched off one after the other
//!   (through `OXISEC_DATAPLANE`, see `daemon/dataplane.rs`);
//! * `OXISEC_DATAPLANE` — passed on to every oxisec daemon.
//!
//! One quick test runs with plain `cargo test` (root only): the kernel
//! takes the coalescer's merged UDP write on a real TUN device and hands
//! the receiving socket the original datagrams.

mod common;

use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use common::oxisec_peer::{OxisecPeer, oxisec_toml};
use common::peer::{Peer, tunnel_up};
use common::{
    CONN, LEFT_HOST, LEFT_OUTER, Netns, PeerKind, RIGHT_HOST, RIGHT_OUTER, Side, Tool, Topology,
    netns, tail, traffic, wait_until,
};

const IKE: &str = "aes128gcm16-prfsha256-x25519";
const GCM: (&str, &str) = ("AES-128-GCM", "aes128gcm16");
const CHACHA: (&str, &str) = ("ChaCha20-Poly1305", "chacha20poly1305");
const PORT: &str = "5201";
/// Pings per RTT measurement, and their spacing: dense (a conversation,
/// the machine's CPUs awake and its caches warm) and sparse (an idle
/// tunnel: every packet meets sleeping threads and cold caches).
const RTT_DENSE: (usize, &str) = (1000, "0.001");
const RTT_SPARSE: (usize, &str) = (200, "0.01");

fn env_u32(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One measured quantity of one row: the median of the runs, or why not.
type Cell = Result<f64, String>;

/// What one row measured.
#[derive(Debug, Default)]
struct Metrics {
    tcp1: Option<Cell>,
    tcp4: Option<Cell>,
    udp64: Option<Cell>,
    udp1400: Option<Cell>,
    /// (p50, p99) in microseconds, pings 1 ms apart.
    rtt: Option<Result<(f64, f64), String>>,
    /// The same, pings 10 ms apart.
    rtt_sparse: Option<Result<(f64, f64), String>>,
}

/// A row to measure.
struct Plan {
    key: String,
    setup: &'static str,
    cipher: &'static str,
    /// (left, right, ESP proposal); `None`: plain veth.
    tunnel: Option<(PeerKind, PeerKind, &'static str)>,
    /// `OXISEC_DATAPLANE` for this row's daemons.
    dataplane: Option<&'static str>,
    /// oxisec peers with `encap = false`: raw ESP (no NAT here). Every
    /// other row has `encap = true`/`yes` on both sides, the only mode
    /// strongSwan's kernel-libipsec has, so that the rows compare.
    raw_esp: bool,
}

struct Row {
    key: String,
    setup: String,
    cipher: &'static str,
    m: Result<Metrics, String>,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Starts `iperf3 -s` in `ns` for one test, runs the client with `args` in
/// `client_ns`, returns the client's JSON.
fn iperf3(
    server_ns: &Netns,
    server: IpAddr,
    client_ns: &Netns,
    client: IpAddr,
    args: &[&str],
    secs: u32,
    dir: &Path,
) -> common::Result<serde_json::Value> {
    let (server_s, client_s) = (server.to_string(), client.to_string());
    let log = dir.join("iperf3-server.log");
    let mut srv = server_ns.spawn(
        "iperf3",
        &["-s", "-1", "-B", &server_s, "-p", PORT],
        Some(&log),
    )?;
    let result = (|| {
        wait_until("iperf3 server to listen", Duration::from_secs(10), || {
            if let Some(status) = srv.try_wait()? {
                return Err(format!("iperf3 server exited: {status}: {}", tail(&log, 10)).into());
            }
            let tcp = server_ns.exec("ss", &["-Hltn", "sport", "=", &format!(":{PORT}")])?;
            Ok((!tcp.stdout.is_empty()).then_some(()))
        })?;
        let secs_s = secs.to_string();
        let mut cmd = client_ns.command("iperf3");
        cmd.args(["-c", &server_s, "-B", &client_s, "-p", PORT, "-t", &secs_s])
            .args(["-J", "--connect-timeout", "5000"])
            .args(args);
        let out = netns::run_output(&mut cmd, Duration::from_secs(u64::from(secs) + 30))?;
        let text = String::from_utf8_lossy(&out.stdout);
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| format!("`{}`: not JSON ({e}): {text}", netns::describe(&cmd)))?;
        if let Some(err) = v.get("error").and_then(|e| e.as_str()) {
            return Err(format!("`{}`: iperf3: {err}", netns::describe(&cmd)).into());
        }
        Ok(v)
    })();
    if wait_until("iperf3 server to exit", Duration::from_secs(5), || {
        Ok(srv.try_wait()?.map(|_| ()))
    })
    .is_err()
    {
        let _ = srv.kill();
        let _ = srv.wait();
    }
    result
}

/// Where traffic flows in one row: from `client` in `client_ns` to
/// `server` in `server_ns`.
struct Path2<'a> {
    client_ns: &'a Netns,
    client: IpAddr,
    server_ns: &'a Netns,
    server: IpAddr,
    dir: &'a Path,
}

impl Path2<'_> {
    fn tcp(&self, streams: u32, secs: u32) -> common::Result<f64> {
        let p = streams.to_string();
        let v = iperf3(
            self.server_ns,
            self.server,
            self.client_ns,
            self.client,
            &["-P", &p],
            secs,
            self.dir,
        )?;
        let r = traffic::parse_iperf3_json(&v.to_string())?;
        Ok(r.received_bps / 1e6)
    }

    /// Packets per second delivered by a UDP flood of `ip_len`-byte IP
    /// packets (iperf3 `-b 0`: as fast as the sender can).
    fn udp(&self, ip_len: usize, secs: u32) -> common::Result<f64> {
        let payload = (ip_len - 28).to_string();
        let v = iperf3(
            self.server_ns,
            self.server,
            self.client_ns,
            self.client,
            &["-u", "-b", "0", "-l", &payload],
            secs,
            self.dir,
        )?;
        let r = &v["end"]["sum_received"];
        let (packets, lost, seconds) = (
            r["packets"].as_f64(),
            r["lost_packets"].as_f64(),
            r["seconds"].as_f64(),
        );
        match (packets, lost, seconds) {
            (Some(p), Some(l), Some(s)) if s > 0.0 => Ok((p - l).max(0.0) / s),
            _ => Err(format!("iperf3 UDP: no sum_received in {v}").into()),
        }
    }

    /// Round-trip times of `pings` pings `interval` seconds apart: (p50,
    /// p99) in µs.
    fn rtt(&self, (pings, interval): (usize, &str)) -> common::Result<(f64, f64)> {
        let (src, dst) = (self.client.to_string(), self.server.to_string());
        let count = pings.to_string();
        let mut cmd = self.client_ns.command("ping");
        cmd.args([
            "-n", "-c", &count, "-i", interval, "-W", "1", "-I", &src, &dst,
        ]);
        let out = netns::run_output(&mut cmd, Duration::from_secs(30))?;
        let text = String::from_utf8_lossy(&out.stdout);
        let mut us: Vec<f64> = text
            .lines()
            .filter_map(|l| l.split("time=").nth(1))
            .filter_map(|t| t.split_whitespace().next()?.parse::<f64>().ok())
            .map(|ms| ms * 1000.0)
            .collect();
        if us.len() < pings / 2 {
            return Err(format!("ping: only {} of {pings} replies", us.len()).into());
        }
        us.sort_by(f64::total_cmp);
        let at = |q: f64| us[((us.len() - 1) as f64 * q).round() as usize];
        Ok((at(0.5), at(0.99)))
    }

    fn measure(&self, secs: u32, runs: u32) -> Metrics {
        let many = |f: &dyn Fn() -> common::Result<f64>| -> Cell {
            let v: Result<Vec<f64>, String> =
                (0..runs).map(|_| f().map_err(|e| e.to_string())).collect();
            v.map(median)
        };
        Metrics {
            tcp1: Some(many(&|| self.tcp(1, secs))),
            tcp4: Some(many(&|| self.tcp(4, secs))),
            udp64: Some(many(&|| self.udp(64, secs))),
            udp1400: Some(many(&|| self.udp(1400, secs))),
            rtt: Some(self.rtt(RTT_DENSE).map_err(|e| e.to_string())),
            rtt_sparse: Some(self.rtt(RTT_SPARSE).map_err(|e| e.to_string())),
        }
    }
}

fn plain_veth(secs: u32, runs: u32) -> common::Result<Metrics> {
    let topo = Topology::new("bench_veth")?;
    Ok(Path2 {
        client_ns: &topo.left,
        client: LEFT_OUTER,
        server_ns: &topo.right,
        server: RIGHT_OUTER,
        dir: topo.dir.path(),
    }
    .measure(secs, runs))
}

/// Brings a tunnel up between `left` (initiator, traffic source) and
/// `right`, measures, tears it down (dropping the peers).
fn tunnel(
    left: PeerKind,
    right: PeerKind,
    esp: &str,
    raw_esp: bool,
    secs: u32,
    runs: u32,
) -> common::Result<Metrics> {
    let topo = Topology::new("bench_tunnel")?;
    let result = (|| {
        let (l, r) = topo.tunnel_specs(IKE, esp);
        let start = |kind: PeerKind, side: Side, spec| -> common::Result<Box<dyn Peer>> {
            if !raw_esp || kind != PeerKind::Oxisec {
                return kind.start(&topo, side, spec);
            }
            let toml = oxisec_toml(spec).replace("encap = true\n", "encap = false\n");
            Ok(Box::new(OxisecPeer::start_with_config(
                topo.ns(side).clone(),
                topo.dir.sub(side.as_str())?,
                format!("oxisec@{}", side.as_str()),
                &toml,
            )?))
        };
        let lp = start(left, Side::Left, &l)?;
        let rp = start(right, Side::Right, &r)?;
        let with_logs = |e: common::Error| -> common::Error {
            format!(
                "{e}\n=== {} ===\n{}\n=== {} ===\n{}",
                lp.label(),
                lp.log_tail(30),
                rp.label(),
                rp.log_tail(30)
            )
            .into()
        };
        lp.initiate(CONN).map_err(with_logs)?;
        for p in [&lp, &rp] {
            wait_until("the tunnel to be up", Duration::from_secs(20), || {
                Ok(tunnel_up(&p.list_sas()?, CONN).then_some(()))
            })
            .map_err(with_logs)?;
        }
        // Routes and SAs in place on both sides: one ping must pass.
        wait_until(
            "a first ping through the tunnel",
            Duration::from_secs(10),
            || {
                Ok(
                    (traffic::ping(&topo.left, LEFT_HOST, RIGHT_HOST, 1)?.received == 1)
                        .then_some(()),
                )
            },
        )
        .map_err(with_logs)?;
        let m = Path2 {
            client_ns: &topo.left,
            client: LEFT_HOST,
            server_ns: &topo.right,
            server: RIGHT_HOST,
            dir: topo.dir.path(),
        }
        .measure(secs, runs);
        Ok(m)
    })();
    result.inspect_err(|_| topo.dir.keep())
}

/// Sets `OXISEC_DATAPLANE` for the daemons started next (they inherit our
/// environment); `None` restores what the caller had.
fn set_dataplane(spec: Option<&str>, original: &Option<String>) {
    // SAFETY: the benchmark runs alone (--test-threads=1, no other thread
    // of this process reads the environment while it runs).
    unsafe {
        match (spec, original) {
            (Some(s), _) => std::env::set_var("OXISEC_DATAPLANE", s),
            (None, Some(o)) => std::env::set_var("OXISEC_DATAPLANE", o),
            (None, None) => std::env::remove_var("OXISEC_DATAPLANE"),
        }
    }
}

fn fmt_cell(c: &Option<Cell>, scale: f64, prec: usize) -> String {
    match c {
        None => "-".into(),
        Some(Ok(v)) => format!("{:.*}", prec, v / scale),
        Some(Err(_)) => "err".into(),
    }
}

fn ratio(a: &Option<Cell>, b: Option<&Option<Cell>>) -> String {
    match (a, b) {
        (Some(Ok(a)), Some(Some(Ok(b)))) if *b > 0.0 => format!("{:.1}", a / b),
        _ => "-".into(),
    }
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
    let started = Instant::now();
    let secs = env_u32("OXISEC_BENCH_SECS", 4).max(1);
    let runs = env_u32("OXISEC_BENCH_RUNS", 1).max(1);
    let only: Option<Vec<String>> = std::env::var("OXISEC_BENCH_ONLY")
        .ok()
        .map(|s| s.split(',').map(|k| k.trim().to_string()).collect());
    let wanted = |key: &str| only.as_ref().is_none_or(|o| o.iter().any(|k| k == key));
    let original = std::env::var("OXISEC_DATAPLANE").ok();

    let mut plan = vec![Plan {
        key: "veth".into(),
        setup: "plain veth (no IPsec)",
        cipher: "-",
        tunnel: None,
        dataplane: None,
        raw_esp: false,
    }];
    let pairs = [
        (
            "ss",
            "strongSwan <-> strongSwan",
            PeerKind::StrongSwan,
            PeerKind::StrongSwan,
        ),
        (
            "ox",
            "oxisec <-> oxisec",
            PeerKind::Oxisec,
            PeerKind::Oxisec,
        ),
        (
            "oxss",
            "oxisec -> strongSwan",
            PeerKind::Oxisec,
            PeerKind::StrongSwan,
        ),
    ];
    for (k, setup, l, r) in pairs {
        for (cipher, esp) in [GCM, CHACHA] {
            let key = format!("{k}-{}", if esp == GCM.1 { "gcm" } else { "chacha" });
            plan.push(Plan {
                key,
                setup,
                cipher,
                tunnel: Some((l, r, esp)),
                dataplane: None,
                raw_esp: false,
            });
        }
    }
    plan.push(Plan {
        key: "ox-raw-gcm".into(),
        setup: "oxisec <-> oxisec, raw ESP (encap=false)",
        cipher: GCM.0,
        tunnel: Some((PeerKind::Oxisec, PeerKind::Oxisec, GCM.1)),
        dataplane: None,
        raw_esp: true,
    });
    if std::env::var("OXISEC_BENCH_ABLATION").is_ok_and(|v| v == "1") {
        for (key, setup, spec) in [
            ("ox-1lane", "oxisec, 1 lane", "lanes=1"),
            ("ox-nouso", "oxisec, no UDP merging", "uso=off"),
            ("ox-nooff", "oxisec, no TUN offload", "offload=off"),
            (
                "ox-nogso",
                "oxisec, no TUN offload/UDP GSO/GRO",
                "offload=off,gso=off,gro=off",
            ),
            (
                "ox-none",
                "oxisec, 1 lane, no offloads, no batching",
                "lanes=1,offload=off,gso=off,gro=off,batch=1",
            ),
        ] {
            plan.push(Plan {
                key: key.into(),
                setup,
                cipher: GCM.0,
                tunnel: Some((PeerKind::Oxisec, PeerKind::Oxisec, GCM.1)),
                dataplane: Some(spec),
                raw_esp: false,
            });
        }
    }

    let mut rows = Vec::new();
    for Plan {
        key,
        setup,
        cipher,
        tunnel: tunnel_of,
        dataplane,
        raw_esp,
    } in plan
    {
        if !wanted(&key) {
            continue;
        }
        let t0 = Instant::now();
        set_dataplane(dataplane, &original);
        let m = match tunnel_of {
            None => plain_veth(secs, runs),
            Some((l, r, esp)) => tunnel(l, r, esp, raw_esp, secs, runs),
        }
        .map_err(|e| e.to_string());
        set_dataplane(None, &original);
        eprintln!("{key}: {:.0} s", t0.elapsed().as_secs_f64());
        rows.push(Row {
            key,
            setup: setup.to_string(),
            cipher,
            m,
        });
    }

    let mut failed = Vec::new();
    let rtt_cell = |r: &Option<Result<(f64, f64), String>>| match r {
        Some(Ok((p50, p99))) => format!("{p50:.0}/{p99:.0}"),
        Some(Err(_)) => "err".into(),
        None => "-".into(),
    };
    println!();
    println!(
        "{secs} s per iperf3 run, median of {runs} run(s); IKE {IKE}; ESP in UDP 4500 \
         (encap on both sides) except the raw ESP row; \
         UDP = iperf3 -b 0 flood, IP packet size; RTT = {} pings {} s apart (dense), \
         {} pings {} s apart (sparse)",
        RTT_DENSE.0, RTT_DENSE.1, RTT_SPARSE.0, RTT_SPARSE.1
    );
    let header = |a: &str, b: &str, c: [&str; 6]| {
        println!(
            "{a:<42} {b:<18} {:>8} {:>8} {:>8} {:>8} {:>11} {:>11}",
            c[0], c[1], c[2], c[3], c[4], c[5]
        )
    };
    header(
        "setup",
        "ESP cipher",
        [
            "TCPx1",
            "TCPx4",
            "UDP64",
            "UDP1400",
            "RTT dense",
            "RTT sparse",
        ],
    );
    header(
        "",
        "",
        [
            "Mbit/s",
            "Mbit/s",
            "kpps",
            "kpps",
            "p50/p99 us",
            "p50/p99 us",
        ],
    );
    println!("{}", "-".repeat(121));
    for row in &rows {
        match &row.m {
            Ok(m) => {
                println!(
                    "{:<42} {:<18} {:>8} {:>8} {:>8} {:>8} {:>11} {:>11}",
                    row.setup,
                    row.cipher,
                    fmt_cell(&m.tcp1, 1.0, 0),
                    fmt_cell(&m.tcp4, 1.0, 0),
                    fmt_cell(&m.udp64, 1e3, 1),
                    fmt_cell(&m.udp1400, 1e3, 1),
                    rtt_cell(&m.rtt),
                    rtt_cell(&m.rtt_sparse),
                );
                for (what, c) in [
                    ("TCPx1", &m.tcp1),
                    ("TCPx4", &m.tcp4),
                    ("UDP64", &m.udp64),
                    ("UDP1400", &m.udp1400),
                ] {
                    if let Some(Err(e)) = c {
                        failed.push(format!("{} / {} / {what}: {e}", row.setup, row.cipher));
                    }
                }
                for r in [&m.rtt, &m.rtt_sparse] {
                    if let Some(Err(e)) = r {
                        failed.push(format!("{} / {} / RTT: {e}", row.setup, row.cipher));
                    }
                }
            }
            Err(e) => {
                println!(
                    "{:<42} {:<18} {:>8} {}",
                    row.setup,
                    row.cipher,
                    "-",
                    e.lines().next().unwrap_or("")
                );
                failed.push(format!("{} / {}: {e}", row.setup, row.cipher));
            }
        }
    }

    // Ratios: to strongSwan <-> strongSwan with the same cipher, and to veth.
    let find = |key: &str| {
        rows.iter()
            .find(|r| r.key == key)
            .and_then(|r| r.m.as_ref().ok())
    };
    let veth = find("veth");
    println!();
    println!(
        "ratios: x strongSwan <-> strongSwan (same cipher) / x plain veth; RTT added to veth's"
    );
    header(
        "setup",
        "ESP cipher",
        [
            "TCPx1",
            "TCPx4",
            "UDP64",
            "UDP1400",
            "+RTT dense",
            "+RTT sparse",
        ],
    );
    header(
        "",
        "",
        [
            "ss/veth", "ss/veth", "ss/veth", "ss/veth", "p50 us", "p50 us",
        ],
    );
    println!("{}", "-".repeat(121));
    let added = |m: &Option<Result<(f64, f64), String>>,
                 v: Option<&Option<Result<(f64, f64), String>>>| {
        match (m, v) {
            (Some(Ok((p50, _))), Some(Some(Ok((v50, _))))) => format!("{:.0}", p50 - v50),
            _ => "-".into(),
        }
    };
    for row in rows.iter().filter(|r| r.key != "veth") {
        let Ok(m) = &row.m else { continue };
        let ss = find(if row.cipher == CHACHA.0 {
            "ss-chacha"
        } else {
            "ss-gcm"
        });
        let both = |c: &Option<Cell>, f: fn(&Metrics) -> &Option<Cell>| {
            format!("{}/{}", ratio(c, ss.map(f)), ratio(c, veth.map(f)))
        };
        println!(
            "{:<42} {:<18} {:>8} {:>8} {:>8} {:>8} {:>11} {:>11}",
            row.setup,
            row.cipher,
            both(&m.tcp1, |m| &m.tcp1),
            both(&m.tcp4, |m| &m.tcp4),
            both(&m.udp64, |m| &m.udp64),
            both(&m.udp1400, |m| &m.udp1400),
            added(&m.rtt, veth.map(|v| &v.rtt)),
            added(&m.rtt_sparse, veth.map(|v| &v.rtt_sparse)),
        );
    }
    println!();
    println!("measured in {:.0} s", started.elapsed().as_secs_f64());
    assert!(
        failed.is_empty(),
        "measurements failed:\n{}",
        failed.join("\n\n")
    );
}

/// An IPv4 UDP datagram 192.0.2.2:4000 → 192.0.2.1:5201, with a correct
/// checksum or (legal over IPv4) none.
fn udp4(payload: &[u8], with_csum: bool) -> Vec<u8> {
    use oxisec::daemon::dataplane::offload::csum;
    let len = 28 + payload.len();
    let mut p = vec![0u8; len];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
    p[6] = 0x40;
    p[8] = 64;
    p[9] = 17;
    p[12..20].copy_from_slice(&[192, 0, 2, 2, 192, 0, 2, 1]);
    let c = !csum::sum(&p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p[20..22].copy_from_slice(&4000u16.to_be_bytes());
    p[22..24].copy_from_slice(&5201u16.to_be_bytes());
    p[24..26].copy_from_slice(&((len - 20) as u16).to_be_bytes());
    p[28..].copy_from_slice(payload);
    if with_csum {
        let pseudo = csum::pseudo(&p[12..16], &p[16..20], 17, len - 20);
        let c = !csum::add(pseudo, csum::sum(&p[20..]));
        p[26..28].copy_from_slice(&c.to_be_bytes());
    }
    p
}

/// The one thing unit tests cannot show about merging received UDP
/// (`GSO_UDP_L4` writes): that this kernel accepts the virtio header the
/// coalescer builds, and cuts the super-packet back into exactly the
/// datagrams that went in, in order, for a socket that did not ask for
/// UDP GRO.
#[test]
fn kernel_splits_merged_udp_back_into_the_datagrams() {
    use oxisec::daemon::dataplane::offload::Coalescer;
    use std::io::IoSlice;
    use std::os::fd::AsRawFd;

    let _serial = common::serial();
    if common::skip("kernel_splits_merged_udp_back_into_the_datagrams", &[]) {
        return;
    }
    let ns = Netns::create("uso").expect("namespace");
    let path = format!("/run/netns/{}", ns.name());
    let got = std::thread::spawn(move || -> Result<Vec<Vec<u8>>, String> {
        let nsf = std::fs::File::open(&path).map_err(|e| format!("{path}: {e}"))?;
        // SAFETY: a plain system call on a descriptor we own; it moves only
        // this thread (which ends with the test) into the namespace.
        if unsafe { libc::setns(nsf.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(format!("setns: {}", std::io::Error::last_os_error()));
        }
        let dev = tun_rs::DeviceBuilder::new()
            .name("oxuso0")
            .ipv4("192.0.2.1", 24, None)
            .mtu(1500)
            .offload(true)
            .enable(true)
            .build_sync()
            .map_err(|e| format!("TUN: {e}"))?;
        if !dev.udp_gso() {
            eprintln!("SKIP: this kernel has no UDP segmentation offload on TUN");
            return Ok(Vec::new());
        }
        let sock = std::net::UdpSocket::bind("192.0.2.1:5201").map_err(|e| e.to_string())?;
        sock.set_read_timeout(Some(Duration::from_secs(3)))
            .map_err(|e| e.to_string())?;
        // Five datagrams of one flow, the last one short, one of them
        // without a checksum: one write.
        let mut area = Vec::new();
        let mut ranges = Vec::new();
        for i in 0..5u8 {
            let d = udp4(&vec![i + 1; if i == 4 { 300 } else { 1000 }], i != 2);
            ranges.push(area.len()..area.len() + d.len());
            area.extend_from_slice(&d);
        }
        let mut c = Coalescer::new(true);
        let mut err = None;
        let mut write = |iov: &[IoSlice<'_>]| {
            if let Err(e) = dev.send_vectored(iov) {
                err = Some(e);
            }
        };
        for r in ranges {
            c.push(&mut area, r, &mut write);
        }
        c.flush(&mut area, &mut write);
        if let Some(e) = err {
            return Err(format!("TUN write: {e}"));
        }
        assert_eq!(c.writes, 1, "five datagrams, one write");
        let mut got = Vec::new();
        let mut buf = [0u8; 2048];
        for _ in 0..5 {
            let (n, from) = sock
                .recv_from(&mut buf)
                .map_err(|e| format!("after {} datagram(s): {e}", got.len()))?;
            assert_eq!(from, "192.0.2.2:4000".parse().unwrap());
            got.push(buf[..n].to_vec());
        }
        Ok(got)
    })
    .join()
    .expect("thread");
    let got = got.unwrap();
    if got.is_empty() {
        return;
    }
    let want: Vec<Vec<u8>> = (0..5u8)
        .map(|i| vec![i + 1; if i == 4 { 300 } else { 1000 }])
        .collect();
    assert_eq!(got, want);
}
