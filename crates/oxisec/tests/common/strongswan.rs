//! strongSwan (charon + swanctl) as a test peer inside a network namespace.
//!
//! How charon runs here, and why (all checked on this machine, strongSwan
//! 5.9.8 from Debian, kernel without ESP):
//!
//! * **Data plane**: the kernel has no ESP transform, so charon must use its
//!   userspace one, the `kernel-libipsec` plugin. libipsec only does ESP in
//!   UDP, hence `encap = yes` on every connection (it forces UDP 4500 even
//!   without a NAT). `kernel-libipsec` is listed *before* `kernel-netlink` in
//!   `load`: both provide the IPsec kernel interface and the first one
//!   registered wins, while `kernel-netlink` is still needed for addresses,
//!   routes and the routing rule.
//! * **Routes**: when a CHILD_SA is installed, charon (kernel-netlink with
//!   libipsec) adds `<remote subnet> dev ipsec0 table 220 src <local host>`
//!   and a rule `220: from all lookup 220`. The `src` is the address of the
//!   local traffic selector found on an interface (here 198.51.100.1 on
//!   `lo`), so a plain `ping 203.0.113.1` already leaves from the protected
//!   subnet; the tests pass `-I`/`-B` anyway. Terminating the SA removes the
//!   route. The TUN device `ipsec0` is created at start-up, MTU 1400.
//! * **Isolation of two charons on one machine**: the pid file is fixed at
//!   `/var/run/charon.pid` (`/var/run` → `/run`), so charon runs under
//!   `unshare -m` with a private tmpfs on `/run` (only charon's mount
//!   namespace sees it). Each instance has its own `STRONGSWAN_CONF` (only
//!   `charon.*` and `swanctl.*` sections, so `/etc/strongswan.d` is not read)
//!   and its own VICI socket in the test directory.
//! * **Algorithms**: `openssl` provides X25519, ChaCha20-Poly1305 and
//!   AES-GCM; `gmp` the MODP groups; `kdf` prf+ (5.9.6+). There is no
//!   `curve25519` or `chapoly` plugin in Debian's packages.
//! * Loading: `swanctl --load-all --file <dir>/swanctl/swanctl.conf`;
//!   swanctl looks for credential directories (`x509`, `private`, …) next to
//!   that file and complains on stderr if they are missing, so they are
//!   created empty.
//! * What the data plane can carry: libipsec builds ESP contexts for the
//!   AEADs AES-GCM (8/12/16) and ChaCha20-Poly1305 only (no AES-CCM), any
//!   cipher + integrity pair otherwise (CBC, CTR, 3DES, NULL), and refuses
//!   extended sequence numbers ("IPsec SA: ESN not supported"). IKE itself
//!   (charon's crypto plugins) has CCM, and charon negotiates ESN.
//! * `ip netns exec` and `unshare` exec rather than fork, so the pid of the
//!   spawned child is charon's own and SIGTERM reaches it: charon then sends
//!   DELETEs, removes its routes and the TUN device, and exits.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::Duration;

use super::peer::{ChildSa, IkeSa, Peer, PeerKind, RekeyKind, StartAction, Tuning, TunnelSpec};
use super::{Netns, Result, netns, tail, wait_until};

/// charon's location in Debian's `strongswan-charon`; `OXISEC_CHARON`
/// overrides it.
pub fn charon_path() -> PathBuf {
    std::env::var_os("OXISEC_CHARON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/ipsec/charon"))
}

/// Plugins charon loads, in this order (see the module documentation).
/// `xcbc` gives AES-XCBC (integrity and PRF); `cmac` gives AES-CMAC and
/// comes from `libstrongswan-extra-plugins` (scripts/test.sh installs it;
/// without it charon logs the missing plugin and carries on, and the
/// algorithm matrix reports the CMAC cases as not runnable).
const CHARON_PLUGINS: &str = "random nonce openssl aes sha1 sha2 hmac gcm gmp kdf xcbc cmac \
     pem pkcs1 pkcs8 pubkey x509 kernel-libipsec kernel-netlink socket-default vici";

/// What EAP-MSCHAPv2 adds: the methods themselves, and `md4` and `des`
/// for NtPasswordHash and the DES-based ChallengeResponse (RFC 2759). The
/// Debian package has neither an md4 nor a des plugin: the openssl plugin
/// provides both through OpenSSL 3's legacy provider, which strongSwan
/// loads by default (`charon.plugins.openssl.load_legacy`), so only the
/// EAP plugins are listed.
#[allow(dead_code)]
pub const EAP_PLUGINS: &str = "eap-identity eap-mschapv2";

/// Plugins swanctl needs to parse credentials (none for PSK, but certificate
/// tests will want them).
const SWANCTL_PLUGINS: &str = "pem pkcs1 pkcs8 x509 pubkey openssl random";

/// Credential directories swanctl scans next to `swanctl.conf`.
const SWANCTL_DIRS: &[&str] = &[
    "x509", "x509ca", "x509ocsp", "x509aa", "x509ac", "x509crl", "pubkey", "private", "rsa",
    "ecdsa", "bliss", "pkcs8", "pkcs12",
];

const START_TIMEOUT: Duration = Duration::from_secs(15);
const SWANCTL_TIMEOUT: Duration = Duration::from_secs(30);
/// Passed to `swanctl --initiate/--terminate --timeout` (seconds); below
/// SWANCTL_TIMEOUT so that swanctl reports the failure itself.
const IKE_TIMEOUT_SECS: &str = "20";

/// A charon running in a namespace, stopped on drop.
pub struct StrongSwan {
    ns: Arc<Netns>,
    dir: PathBuf,
    label: String,
    child: Option<Child>,
}

impl StrongSwan {
    /// Writes the configuration into `dir`, starts charon in `ns`, waits for
    /// its VICI socket and loads `spec`.
    pub fn start(
        ns: Arc<Netns>,
        dir: PathBuf,
        label: String,
        spec: &TunnelSpec,
    ) -> Result<StrongSwan> {
        StrongSwan::start_with_swanctl(ns, dir, label, &spec.tuning, &swanctl_conf(spec))
    }

    /// Starts charon with a swanctl.conf written by the caller.
    pub fn start_with_swanctl(
        ns: Arc<Netns>,
        dir: PathBuf,
        label: String,
        tuning: &Tuning,
        swanctl: &str,
    ) -> Result<StrongSwan> {
        StrongSwan::start_with_plugins(ns, dir, label, tuning, swanctl, "")
    }

    /// [`StrongSwan::start_with_swanctl`] with more charon plugins loaded
    /// after the usual ones (e.g. [`EAP_PLUGINS`]), for the tests that need
    /// them only.
    pub fn start_with_plugins(
        ns: Arc<Netns>,
        dir: PathBuf,
        label: String,
        tuning: &Tuning,
        swanctl: &str,
        extra_plugins: &str,
    ) -> Result<StrongSwan> {
        let conf = dir.join("strongswan.conf");
        std::fs::write(&conf, strongswan_conf_with(&dir, tuning, extra_plugins))?;
        let swanctl_dir = dir.join("swanctl");
        for sub in SWANCTL_DIRS {
            std::fs::create_dir_all(swanctl_dir.join(sub))?;
        }
        std::fs::write(swanctl_dir.join("swanctl.conf"), swanctl)?;

        let charon = charon_path();
        let script = format!(
            "mount -t tmpfs -o mode=0755 tmpfs /run && exec {}",
            charon.display()
        );
        let log = dir.join("charon.stdout");
        let mut cmd = ns.command("unshare");
        cmd.args(["-m", "sh", "-c", &script])
            .env("STRONGSWAN_CONF", &conf)
            .stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(&log)?)
            .stderr(std::fs::File::options().append(true).open(&log)?);
        let child = cmd
            .spawn()
            .map_err(|e| format!("starting charon (`{}`): {e}", netns::describe(&cmd)))?;
        let mut me = StrongSwan {
            ns,
            dir,
            label,
            child: Some(child),
        };
        me.wait_ready()
            .and_then(|()| me.load())
            .map_err(|e| me.with_log(e))?;
        Ok(me)
    }

    fn vici_uri(&self) -> String {
        format!("unix://{}", self.dir.join("vici.sock").display())
    }

    /// Waits until charon answers on VICI, failing early if it exited.
    fn wait_ready(&mut self) -> Result<()> {
        let uri = self.vici_uri();
        let ns = self.ns.clone();
        let child = self.child.as_mut().ok_or("charon not running")?;
        wait_until("charon's VICI socket", START_TIMEOUT, || {
            if let Some(status) = child.try_wait()? {
                return Err(format!("charon exited during start-up: {status}").into());
            }
            match netns::run(
                ns.command("swanctl").args(["--stats", "--uri", &uri]),
                Duration::from_secs(5),
            ) {
                Ok(_) => Ok(Some(())),
                Err(_) => Ok(None),
            }
        })
    }

    /// Runs `swanctl args… --uri <ours>` inside the namespace.
    pub fn swanctl(&self, args: &[&str]) -> Result<String> {
        let uri = self.vici_uri();
        let mut cmd = self.ns.command("swanctl");
        cmd.args(args).args(["--uri", &uri]);
        let out = netns::run(&mut cmd, SWANCTL_TIMEOUT)?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// (Re)loads connections and secrets from the configuration directory.
    pub fn load(&self) -> Result<()> {
        let file = self.dir.join("swanctl").join("swanctl.conf");
        let file = file.to_string_lossy();
        self.swanctl(&["--load-all", "--noprompt", "--file", &file])
            .map(drop)
    }

    /// Replaces the tunnel configuration and reloads it.
    pub fn reconfigure(&self, spec: &TunnelSpec) -> Result<()> {
        std::fs::write(
            self.dir.join("swanctl").join("swanctl.conf"),
            swanctl_conf(spec),
        )?;
        self.load()
    }

    /// Replaces the whole swanctl.conf with `conf` and the credentials with
    /// `creds` (`(subdirectory, file)`: `x509ca`, `x509`, `private`,
    /// `x509crl`, …; copied under their own file names), then reloads with
    /// `--clear`, so that no certificate or key of an earlier case stays
    /// loaded. For the certificate tests, whose configuration a
    /// [`TunnelSpec`] cannot express.
    pub fn reconfigure_with(&self, conf: &str, creds: &[(&str, &Path)]) -> Result<()> {
        let swanctl_dir = self.dir.join("swanctl");
        for sub in SWANCTL_DIRS {
            let d = swanctl_dir.join(sub);
            for entry in std::fs::read_dir(&d)? {
                std::fs::remove_file(entry?.path())?;
            }
        }
        for (sub, file) in creds {
            let name = file
                .file_name()
                .ok_or_else(|| format!("{}: not a file", file.display()))?;
            let to = swanctl_dir.join(sub).join(name);
            std::fs::copy(file, &to)
                .map_err(|e| format!("copying {} to {}: {e}", file.display(), to.display()))?;
        }
        std::fs::write(swanctl_dir.join("swanctl.conf"), conf)?;
        let file = swanctl_dir.join("swanctl.conf");
        let file = file.to_string_lossy();
        self.swanctl(&["--load-all", "--clear", "--noprompt", "--file", &file])
            .map(drop)
            .map_err(|e| self.with_log(e))
    }

    /// The negotiated algorithms of every SA, from `swanctl --list-sas
    /// --raw`, in oxisec's notation (see [`SaAlgorithms`]).
    pub fn sa_algorithms(&self) -> Result<Vec<SaAlgorithms>> {
        Ok(parse_sa_algorithms(
            &self.swanctl(&["--list-sas", "--raw"])?,
        ))
    }

    /// The algorithm names charon's loaded plugins provide (`swanctl
    /// --list-algs`, e.g. `AES_CMAC_96`, `CURVE_448`), without the plugin
    /// in brackets.
    pub fn list_algs(&self) -> Result<Vec<String>> {
        Ok(self
            .swanctl(&["--list-algs"])?
            .lines()
            .filter(|l| l.starts_with("  "))
            .filter_map(|l| l.trim().split('[').next())
            .map(str::to_owned)
            .collect())
    }

    /// Appends charon's log tail to an error (for callers outside the
    /// [`Peer`] methods, which add it themselves).
    pub fn explain(&self, e: super::Error) -> super::Error {
        self.with_log(e)
    }

    /// Kills charon with SIGKILL, as a crash or a power cut would: no
    /// DELETE reaches the peer. Its TUN device (and with it the routes into
    /// the tunnel) goes with the process. Idempotent.
    pub fn kill_hard(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// The NAT conditions charon found for each IKE SA, from `swanctl
    /// --list-sas --raw` (the VICI keys `nat-local`, `nat-remote`,
    /// `nat-fake`, `nat-any`, present only when set).
    pub fn nat_flags(&self) -> Result<Vec<NatFlags>> {
        Ok(parse_nat_flags(&self.swanctl(&["--list-sas", "--raw"])?))
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("charon.log")
    }

    /// Appends the log tail to an error, so that a failing test shows why.
    fn with_log(&self, e: super::Error) -> super::Error {
        format!(
            "{}: {e}\n--- {} (last 60 lines) ---\n{}\n--- stdout/stderr ---\n{}",
            self.label,
            self.log_path().display(),
            tail(&self.log_path(), 60),
            tail(&self.dir.join("charon.stdout"), 20)
        )
        .into()
    }

    /// SIGTERM, then SIGKILL if charon has not exited within 5 s.
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        let _ = netns::run_output(
            Command::new("kill").args(["-TERM", &child.id().to_string()]),
            netns::COMMAND_TIMEOUT,
        );
        let exited = wait_until("charon to exit", Duration::from_secs(5), || {
            Ok(child.try_wait()?.map(|_| ()))
        });
        if exited.is_err() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Peer for StrongSwan {
    fn label(&self) -> String {
        self.label.clone()
    }

    fn initiate(&self, name: &str) -> Result<()> {
        self.swanctl(&["--initiate", "--child", name, "--timeout", IKE_TIMEOUT_SECS])
            .map(drop)
            .map_err(|e| self.with_log(e))
    }

    fn terminate(&self, name: &str) -> Result<()> {
        self.swanctl(&["--terminate", "--ike", name, "--timeout", IKE_TIMEOUT_SECS])
            .map(drop)
            .map_err(|e| self.with_log(e))
    }

    fn rekey(&self, name: &str, kind: RekeyKind) -> Result<()> {
        let what = match kind {
            RekeyKind::Child => "--child",
            RekeyKind::Ike => "--ike",
        };
        self.swanctl(&["--rekey", what, name])
            .map(drop)
            .map_err(|e| self.with_log(e))
    }

    fn list_sas(&self) -> Result<Vec<IkeSa>> {
        Ok(parse_list_sas(&self.swanctl(&["--list-sas"])?))
    }

    fn log_tail(&self, lines: usize) -> String {
        tail(&self.log_path(), lines)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn kind(&self) -> PeerKind {
        PeerKind::StrongSwan
    }

    fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for StrongSwan {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- {} log {} (last 80 lines) ---\n{}",
                self.label,
                self.log_path().display(),
                self.log_tail(80)
            );
        }
        self.stop();
    }
}

/// charon's and swanctl's settings for one instance living in `dir`.
pub fn strongswan_conf(dir: &Path, tuning: &Tuning) -> String {
    strongswan_conf_with(dir, tuning, "")
}

/// [`strongswan_conf`] with `extra_plugins` appended to charon's list.
pub fn strongswan_conf_with(dir: &Path, tuning: &Tuning, extra_plugins: &str) -> String {
    let plugins = format!("{CHARON_PLUGINS} {extra_plugins}");
    let plugins = plugins.trim_end();
    let dir = dir.display();
    let mut timers = String::new();
    if let Some(r) = tuning.retransmit {
        let _ = write!(
            timers,
            "    retransmit_timeout = {}\n    retransmit_base = {}\n    retransmit_tries = {}\n",
            r.timeout_secs, r.base, r.tries
        );
    }
    if let Some(k) = tuning.keepalive_secs {
        let _ = writeln!(timers, "    keep_alive = {k}s");
    }
    if let Some(d) = tuning.dos {
        let _ = write!(
            timers,
            "    cookie_threshold = {}\n    block_threshold = {}\n    init_limit_half_open = {}\n",
            d.cookie_threshold, d.block_threshold, d.half_open_limit
        );
    }
    format!(
        r#"# Generated by the oxisec interop harness.
charon {{
{timers}    load_modular = no
    load = {plugins}
    port = 500
    port_nat_t = 4500
    # Routes to the remote subnet go via the libipsec TUN (table 220).
    install_routes = yes
    plugins {{
        vici {{
            socket = unix://{dir}/vici.sock
        }}
    }}
    filelog {{
        test {{
            path = {dir}/charon.log
            time_format = %T
            ike_name = yes
            flush_line = yes
            default = 1
            ike = 2
            cfg = 2
            knl = 2
        }}
    }}
}}
swanctl {{
    load = {SWANCTL_PLUGINS}
}}
"#
    )
}

/// swanctl.conf for one tunnel. Every `key = value` on its own line
/// (swanctl's parser wants that).
pub fn swanctl_conf(spec: &TunnelSpec) -> String {
    let start_action = match spec.start_action {
        StartAction::None => "none",
        StartAction::Start => "start",
    };
    let remote_addr = if spec.remote_any {
        "%any".to_owned()
    } else {
        spec.remote_addr.to_string()
    };
    let (dpd_delay, dpd_action) = match spec.dpd {
        Some(d) => (
            format!("        dpd_delay = {}s\n", d.delay_secs),
            format!("                dpd_action = {}\n", d.action.as_str()),
        ),
        None => (String::new(), String::new()),
    };
    let mut s = String::new();
    let _ = write!(
        s,
        r#"# Generated by the oxisec interop harness.
connections {{
    {name} {{
        version = 2
        local_addrs = {local_addr}
        remote_addrs = {remote_addr}
        # kernel-libipsec only handles ESP in UDP.
        encap = yes
        proposals = {ike}
{dpd_delay}        local {{
            auth = psk
            id = {local_id}
        }}
        remote {{
            auth = psk
            id = {remote_id}
        }}
        children {{
            {name} {{
                local_ts = {local_ts}
                remote_ts = {remote_ts}
                esp_proposals = {esp}
                mode = tunnel
                start_action = {start_action}
{dpd_action}            }}
        }}
    }}
}}
secrets {{
    ike-{name} {{
        id-local = {local_id}
        id-remote = {remote_id}
        secret = "{psk}"
    }}
}}
"#,
        name = spec.name,
        local_addr = spec.local_addr,
        ike = spec.ike_proposal,
        esp = spec.esp_proposal,
        local_id = spec.local_id,
        remote_id = spec.remote_id,
        local_ts = spec.local_ts,
        remote_ts = spec.remote_ts,
        psk = spec.psk,
    );
    s
}

/// Parses the default (human) output of `swanctl --list-sas`:
///
/// ```text
/// net: #1, ESTABLISHED, IKEv2, 2de67268015f69ed_i* 324c011e8c80a81a_r
///   local  'left' @ 192.0.2.1[4500]
///   ...
///   net: #1, reqid 1, INSTALLED, TUNNEL-in-UDP, ESP:AES_GCM_16-128
///     installed 0s ago, rekeying in 3379s, expires in 3960s
///     in  643e514e,      0 bytes,     0 packets
///     out 176a6ef9,      0 bytes,     0 packets
/// ```
///
/// An IKE SA starts in column 0, a child SA is indented by two spaces; both
/// are `<name>: #<unique id>, …` and the state is the first all-caps field
/// after the id (`reqid N` comes first for children). The IKE SPIs are the
/// `…_i` and `…_r` fields (a `*` marks our own), the child's SPIs the
/// `in`/`out` lines below it. Other lines are ignored.
pub fn parse_list_sas(text: &str) -> Vec<IkeSa> {
    let mut sas: Vec<IkeSa> = Vec::new();
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        let trimmed = line.trim_start();
        if indent == 4 {
            let mut words = trimmed.split_whitespace();
            let dir = words.next();
            let spi = words
                .next()
                .unwrap_or("")
                .trim_end_matches(',')
                .to_ascii_lowercase();
            if let Some(child) = sas.last_mut().and_then(|ike| ike.children.last_mut()) {
                match dir {
                    Some("in") => child.spi_in = spi,
                    Some("out") => child.spi_out = spi,
                    _ => {}
                }
            }
            continue;
        }
        let Some((name, rest)) = trimmed.split_once(": #") else {
            continue;
        };
        if name.is_empty() || name.contains(' ') {
            continue;
        }
        let fields: Vec<&str> = rest.split(", ").collect();
        let state = fields
            .iter()
            .skip(1)
            .find(|f| !f.is_empty() && f.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
            .copied()
            .unwrap_or("UNKNOWN")
            .to_owned();
        match indent {
            0 => {
                // "2de67268015f69ed_i* 324c011e8c80a81a_r"
                let spi = |suffix: &str| {
                    fields
                        .iter()
                        .flat_map(|f| f.split_whitespace())
                        .find_map(|w| w.trim_end_matches('*').strip_suffix(suffix))
                        .unwrap_or("")
                        .to_ascii_lowercase()
                };
                sas.push(IkeSa {
                    name: name.to_owned(),
                    state,
                    spi_i: spi("_i"),
                    spi_r: spi("_r"),
                    children: Vec::new(),
                })
            }
            2 => {
                if let Some(ike) = sas.last_mut() {
                    ike.children.push(ChildSa {
                        name: name.to_owned(),
                        state,
                        spi_in: String::new(),
                        spi_out: String::new(),
                    });
                }
            }
            _ => {}
        }
    }
    sas
}

/// Whether `addr` is routed via libipsec's TUN in `ns` (table 220), i.e.
/// whether traffic to it would enter the tunnel.
pub fn routed_via_ipsec0(ns: &Netns, addr: IpAddr) -> Result<bool> {
    let out = netns::run_output(
        Command::new("ip").args(["-n", ns.name(), "route", "get", &addr.to_string()]),
        netns::COMMAND_TIMEOUT,
    )?;
    // "Network is unreachable" (exit 2) when no table has a route at all.
    Ok(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("dev ipsec0"))
}

/// NAT conditions of one IKE SA as charon reports them over VICI.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NatFlags {
    /// The IKE SA's name (the connection).
    pub name: String,
    /// This host is behind a NAT (the peer's NAT_DETECTION_DESTINATION_IP
    /// did not match our address).
    pub local: bool,
    /// The peer is behind a NAT, or claims to be (`encap = yes` fakes it).
    pub remote: bool,
    /// We faked our own NAT_DETECTION_SOURCE_IP (`encap = yes`).
    pub fake: bool,
    /// Any of the above.
    pub any: bool,
    /// The peer's address and port as charon now talks to it
    /// (`remote-host`, `remote-port`).
    pub remote_host: String,
    pub remote_port: String,
}

/// Parses `swanctl --list-sas --raw`: one line per IKE SA,
///
/// ```text
/// list-sa event {net {uniqueid=1 version=2 state=ESTABLISHED local-host=192.0.2.1
///   local-port=4500 ... nat-local=yes nat-any=yes ... child-sas {...}}}
/// ```
///
/// (all on one line). The SA's name is the first word inside the event's
/// braces; the flags are `key=value` words at any depth before its
/// `child-sas`, which is enough since children have no such keys.
pub fn parse_nat_flags(text: &str) -> Vec<NatFlags> {
    text.lines()
        .filter_map(|line| {
            let body = line.trim().strip_prefix("list-sa event {")?;
            let name = body.split_whitespace().next()?.trim_end_matches('{');
            let ike = body.split("child-sas").next().unwrap_or(body);
            let mut f = NatFlags {
                name: name.to_owned(),
                ..NatFlags::default()
            };
            for word in ike.split_whitespace() {
                let Some((k, v)) = word.split_once('=') else {
                    continue;
                };
                let v = v.trim_end_matches('}');
                match k {
                    "nat-local" => f.local = v == "yes",
                    "nat-remote" => f.remote = v == "yes",
                    "nat-fake" => f.fake = v == "yes",
                    "nat-any" => f.any = v == "yes",
                    "remote-host" => f.remote_host = v.to_owned(),
                    "remote-port" => f.remote_port = v.to_owned(),
                    _ => {}
                }
            }
            Some(f)
        })
        .collect()
}

/// A value in VICI's raw rendering (`swanctl --raw`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Vici {
    Str(String),
    List(Vec<String>),
    Section(Vec<(String, Vici)>),
}

impl Vici {
    /// The member `key` of a section.
    pub fn get(&self, key: &str) -> Option<&Vici> {
        match self {
            Vici::Section(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn str(&self, key: &str) -> Option<&str> {
        match self.get(key)? {
            Vici::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The members of a section, in order.
    pub fn members(&self) -> &[(String, Vici)] {
        match self {
            Vici::Section(m) => m,
            _ => &[],
        }
    }
}

/// Parses one message of VICI's raw rendering, the part after the event or
/// reply name: `{key=value list=[a b] sub {…} …}`. Values with blanks are
/// not quoted by swanctl and come out split (none of the keys the tests
/// read has any). `None` for unbalanced input.
pub fn parse_vici_raw(text: &str) -> Option<Vici> {
    // Tokens: "{", "}", "[", "]" and words (which may end in "=").
    let mut tokens = Vec::new();
    let mut word = String::new();
    for c in text.chars() {
        match c {
            '{' | '}' | '[' | ']' => {
                if !word.is_empty() {
                    tokens.push(std::mem::take(&mut word));
                }
                tokens.push(c.to_string());
            }
            c if c.is_whitespace() => {
                if !word.is_empty() {
                    tokens.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        tokens.push(word);
    }
    let mut it = tokens.into_iter().peekable();
    if it.next()? != "{" {
        return None;
    }
    let v = parse_section(&mut it)?;
    it.next().is_none().then_some(v)
}

/// After an opening brace: members until the matching closing brace.
fn parse_section(it: &mut std::iter::Peekable<std::vec::IntoIter<String>>) -> Option<Vici> {
    let mut members = Vec::new();
    loop {
        let tok = it.next()?;
        match tok.as_str() {
            "}" => return Some(Vici::Section(members)),
            "{" | "[" | "]" => return None,
            _ => {}
        }
        if let Some((key, value)) = tok.split_once('=') {
            if value.is_empty() && it.peek().map(String::as_str) == Some("[") {
                it.next();
                let mut items = Vec::new();
                loop {
                    let t = it.next()?;
                    match t.as_str() {
                        "]" => break,
                        "{" | "}" | "[" => return None,
                        _ => items.push(t),
                    }
                }
                members.push((key.to_owned(), Vici::List(items)));
            } else {
                members.push((key.to_owned(), Vici::Str(value.to_owned())));
            }
        } else if it.peek().map(String::as_str) == Some("{") {
            it.next();
            members.push((tok, parse_section(it)?));
        } else {
            return None;
        }
    }
}

/// The algorithms of one IKE SA and its CHILD_SAs as charon reports them,
/// written the way oxisec's status does (`AES_CBC_128/HMAC_SHA2_256_128/
/// PRF_HMAC_SHA2_256/CURVE_25519`, children `AES_GCM_16_128/ESN`), so
/// that the two sides' views compare as strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaAlgorithms {
    /// The connection name.
    pub name: String,
    pub state: String,
    pub ike: String,
    /// (child name, child state, algorithms)
    pub children: Vec<(String, String, String)>,
}

/// One SA's (IKE or child) VICI algorithm keys in oxisec's notation:
/// encryption (with the key size where the transform has a Key Length
/// attribute), integrity, PRF, key exchange, then `ESN`.
fn algorithms_of(sa: &Vici) -> String {
    let mut parts = Vec::new();
    if let Some(encr) = sa.str("encr-alg") {
        // Transforms without a Key Length attribute: charon still reports
        // their (fixed) key size, oxisec's names carry none.
        let name = match encr {
            "3DES_CBC" => "3DES".to_owned(),
            "CHACHA20_POLY1305" | "NULL" => encr.to_owned(),
            _ => match sa.str("encr-keysize") {
                Some(bits) => format!("{encr}_{bits}"),
                None => encr.to_owned(),
            },
        };
        parts.push(name);
    }
    for key in ["integ-alg", "prf-alg", "dh-group"] {
        if let Some(v) = sa.str(key) {
            parts.push(v.to_owned());
        }
    }
    if sa.str("esn") == Some("1") {
        parts.push("ESN".to_owned());
    }
    parts.join("/")
}

/// Parses `swanctl --list-sas --raw` (one `list-sa event {…}` line per IKE
/// SA) into [`SaAlgorithms`].
pub fn parse_sa_algorithms(text: &str) -> Vec<SaAlgorithms> {
    text.lines()
        .filter_map(|line| {
            let body = line.trim().strip_prefix("list-sa event ")?;
            let event = parse_vici_raw(body)?;
            let (name, ike) = event.members().first()?;
            let children = ike
                .get("child-sas")
                .map(|c| {
                    c.members()
                        .iter()
                        .map(|(key, child)| {
                            (
                                child.str("name").unwrap_or(key).to_owned(),
                                child.str("state").unwrap_or("").to_owned(),
                                algorithms_of(child),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            Some(SaAlgorithms {
                name: name.clone(),
                state: ike.str("state").unwrap_or("").to_owned(),
                ike: algorithms_of(ike),
                children,
            })
        })
        .collect()
}
