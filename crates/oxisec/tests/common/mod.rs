//! Shared harness for the interop tests: real IKE peers (strongSwan now,
//! oxisec once its daemon lands) in two network namespaces.
//!
//! ```text
//!   ns "left"                                    ns "right"
//!   lo 198.51.100.1/24                           lo 203.0.113.1/24
//!   veth-l 192.0.2.1/24 <------ veth ------> veth-r 192.0.2.2/24
//!   peer (charon / oxisec)  == ESP-in-UDP 4500 ==  peer
//! ```
//!
//! Use it as
//!
//! ```ignore
//! let _serial = common::serial();              // one interop test at a time
//! if common::skip("my_test", &[Tool::Charon]) { return; }
//! let topo = Topology::new("my_test")?;        // namespaces, veth, addresses
//! let (l, r) = topo.tunnel_specs("aes128gcm16-prfsha256-x25519", "aes128gcm16");
//! let left = PeerKind::StrongSwan.start(&topo, Side::Left, &l)?;
//! let right = PeerKind::StrongSwan.start(&topo, Side::Right, &r)?;
//! left.initiate(&l.name)?;
//! ...
//! ```
//!
//! or run a whole site-to-site scenario with [`scenario::run`].
//!
//! The lifecycle scenarios ([`lifecycle`]: dead peer, NAT traversal, COOKIE
//! flood) add a three-namespace topology with a NAT box ([`nat`]), sockets
//! opened inside a namespace from the test process ([`netsys`]: ctnetlink,
//! raw IPv4) and a spoofed IKE_SA_INIT flood ([`flood`]).
//!
//! Every resource is a guard: namespaces ([`Netns`]), daemons (the peers)
//! and the log directory ([`TestDir`]) clean up on drop, also when a test
//! panics; the log directory is kept (and its path printed) when the test
//! failed. Every wait has a timeout.

// Each test binary uses a different subset of this module.
#![allow(dead_code, unused_imports)]

pub mod certs;
pub mod espwire;
pub mod flood;
pub mod lifecycle;
pub mod matrix;
pub mod nat;
pub mod netsys;
pub mod oxisec_peer;
pub mod peer;
pub mod scenario;
pub mod strongswan;
pub mod traffic;

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub use ::oxisec::netns::{self, Netns};
pub use peer::{PeerKind, StartAction, Tuning, TunnelSpec};

/// Errors of the harness: anything printable, with context added as text.
pub type Error = Box<dyn std::error::Error + Send + Sync>;
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Outer (IKE/ESP) address of the left gateway, on the veth.
pub const LEFT_OUTER: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
/// Outer address of the right gateway.
pub const RIGHT_OUTER: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
/// Host on the left protected subnet (on the left namespace's `lo`).
pub const LEFT_HOST: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1));
/// Host on the right protected subnet (on the right namespace's `lo`).
pub const RIGHT_HOST: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 1));
pub const LEFT_SUBNET: &str = "198.51.100.0/24";
pub const RIGHT_SUBNET: &str = "203.0.113.0/24";
/// Pre-shared key of the test tunnels (a test value, not a secret).
pub const TEST_PSK: &str = "oxisec-interop-test-psk-0123456789";
/// Connection and child name used by the scenarios.
pub const CONN: &str = "net";

/// Which gateway of the topology.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Left,
    Right,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Left => "left",
            Side::Right => "right",
        }
    }
}

/// Serialises the interop tests of one test binary.
///
/// They would not collide (each has its own namespaces, sockets and files),
/// but on a 2-core machine two userspace data planes plus iperf3 running at
/// once starve each other: handshakes time out, throughput numbers mean
/// nothing and the logs of a failure interleave. A process-wide lock makes
/// plain `cargo test` (parallel threads) safe without `--test-threads=1`;
/// cargo runs different test binaries one after the other anyway.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    // A test that panicked while holding the lock poisons it; the unit value
    // it protects cannot be inconsistent, so carry on.
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// External programs a test needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    Charon,
    Swanctl,
    Iperf3,
    Ping,
}

impl Tool {
    fn path(self) -> PathBuf {
        match self {
            Tool::Charon => strongswan::charon_path(),
            Tool::Swanctl => PathBuf::from("swanctl"),
            Tool::Iperf3 => PathBuf::from("iperf3"),
            Tool::Ping => PathBuf::from("ping"),
        }
    }

    fn available(self) -> bool {
        let p = self.path();
        if p.is_absolute() {
            return p.exists();
        }
        std::env::var_os("PATH").is_some_and(|paths| {
            std::env::split_paths(&paths)
                .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
                .any(|dir| dir.join(&p).exists())
        })
    }
}

/// Says whether `test` must be skipped (and prints why, visibly, on stderr).
///
/// Interop tests need root for namespaces and the listed tools. When the
/// environment variable `OXISEC_INTEROP_REQUIRED=1` is set (scripts/test.sh
/// sets it) a missing prerequisite is a failure instead: CI must not go green
/// by skipping everything.
pub fn skip(test: &str, tools: &[Tool]) -> bool {
    let mut reasons = Vec::new();
    if !netns::is_root() {
        reasons.push("needs root (network namespaces)".to_owned());
    }
    for tool in tools {
        if !tool.available() {
            reasons.push(format!(
                "needs {} (run scripts/test.sh to install it)",
                tool.path().display()
            ));
        }
    }
    if reasons.is_empty() {
        return false;
    }
    let reason = reasons.join("; ");
    if std::env::var("OXISEC_INTEROP_REQUIRED").is_ok_and(|v| v == "1") {
        panic!("{test}: {reason} (OXISEC_INTEROP_REQUIRED=1 forbids skipping)");
    }
    eprintln!("SKIP: {test} {reason}");
    true
}

/// Polls `probe` every 100 ms until it yields a value or `timeout` passes.
/// An error from the probe ends the wait at once (a daemon that exited will
/// not come back); probes map transient failures to `Ok(None)` themselves.
pub fn wait_until<T>(
    what: &str,
    timeout: Duration,
    probe: impl FnMut() -> Result<Option<T>>,
) -> Result<T> {
    wait_until_every(what, timeout, Duration::from_millis(100), probe)
}

/// [`wait_until`] polling every `interval`: for cheap probes of things
/// that happen within milliseconds (a daemon's start or exit), where a
/// 100 ms step would dominate a short test case.
pub fn wait_until_every<T>(
    what: &str,
    timeout: Duration,
    interval: Duration,
    mut probe: impl FnMut() -> Result<Option<T>>,
) -> Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe().map_err(|e| format!("while waiting for {what}: {e}"))? {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            return Err(format!("timed out after {timeout:?} waiting for {what}").into());
        }
        std::thread::sleep(interval);
    }
}

/// The last `n` lines of a text file, or a note saying why there are none.
pub fn tail(path: &Path, n: usize) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            let start = lines.len().saturating_sub(n);
            lines[start..].join("\n")
        }
        Err(e) => format!("<{}: {e}>", path.display()),
    }
}

/// A directory for one test's configuration files, sockets and logs under
/// `$TMPDIR/oxisec-interop/`. Removed on drop when the test passed; kept
/// (and its path printed) when the test panicked, [`TestDir::keep`] was
/// called, or `OXISEC_KEEP_LOGS=1` is set.
#[derive(Debug)]
pub struct TestDir {
    path: PathBuf,
    keep: Mutex<bool>,
}

impl TestDir {
    pub fn new(test: &str) -> Result<TestDir> {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir()
            .join("oxisec-interop")
            .join(format!("{test}-{}-{n}", std::process::id()));
        if path.exists() {
            std::fs::remove_dir_all(&path)?;
        }
        std::fs::create_dir_all(&path).map_err(|e| format!("creating {}: {e}", path.display()))?;
        Ok(TestDir {
            path,
            keep: Mutex::new(false),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A subdirectory, created if missing.
    pub fn sub(&self, name: &str) -> Result<PathBuf> {
        let p = self.path.join(name);
        std::fs::create_dir_all(&p).map_err(|e| format!("creating {}: {e}", p.display()))?;
        Ok(p)
    }

    /// Keep the directory after the test (used when a test fails by `Err`).
    pub fn keep(&self) {
        *self.keep.lock().unwrap_or_else(|e| e.into_inner()) = true;
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let keep = *self.keep.lock().unwrap_or_else(|e| e.into_inner())
            || std::thread::panicking()
            || std::env::var("OXISEC_KEEP_LOGS").is_ok_and(|v| v == "1");
        if keep {
            eprintln!("test files kept in {}", self.path.display());
        } else if let Err(e) = std::fs::remove_dir_all(&self.path) {
            eprintln!("removing {}: {e}", self.path.display());
        }
    }
}

/// The two-gateway topology every interop test uses (see the module doc).
pub struct Topology {
    pub left: Arc<Netns>,
    pub right: Arc<Netns>,
    pub dir: TestDir,
}

impl Topology {
    /// Creates both namespaces, the veth between them and the addresses.
    /// `test` names the log directory.
    pub fn new(test: &str) -> Result<Topology> {
        let dir = TestDir::new(test)?;
        let left = Arc::new(Netns::create("left")?);
        let right = Arc::new(Netns::create("right")?);
        netns::veth_pair(&left, "veth-l", &right, "veth-r")?;
        left.add_address("veth-l", LEFT_OUTER, 24)?;
        right.add_address("veth-r", RIGHT_OUTER, 24)?;
        left.add_lo_address(LEFT_HOST, 24)?;
        right.add_lo_address(RIGHT_HOST, 24)?;
        Ok(Topology { left, right, dir })
    }

    pub fn ns(&self, side: Side) -> &Arc<Netns> {
        match side {
            Side::Left => &self.left,
            Side::Right => &self.right,
        }
    }

    /// The tunnel as each side configures it: `(left, right)`, mirror images
    /// of each other, named [`CONN`], PSK-authenticated with FQDN identities.
    pub fn tunnel_specs(&self, ike_proposal: &str, esp_proposal: &str) -> (TunnelSpec, TunnelSpec) {
        let left = TunnelSpec {
            name: CONN.to_owned(),
            local_addr: LEFT_OUTER,
            remote_addr: RIGHT_OUTER,
            local_id: "left.example.org".to_owned(),
            remote_id: "right.example.org".to_owned(),
            local_ts: LEFT_SUBNET.to_owned(),
            remote_ts: RIGHT_SUBNET.to_owned(),
            psk: TEST_PSK.to_owned(),
            ike_proposal: ike_proposal.to_owned(),
            esp_proposal: esp_proposal.to_owned(),
            start_action: StartAction::None,
            remote_any: false,
            dpd: None,
            tuning: Tuning::default(),
        };
        let right = left.mirrored();
        (left, right)
    }
}
