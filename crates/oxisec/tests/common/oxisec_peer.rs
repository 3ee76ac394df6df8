//! oxisec's own daemon as a test peer, driven through its CLI:
//!
//! * `oxisec run --config FILE --socket PATH` — foreground daemon, TOML
//!   configuration, a TUN device for the userspace data plane, ESP in UDP
//!   4500; it installs the route to the remote subnet via its TUN itself;
//! * `oxisec status --json --socket PATH` — SAs as JSON
//!   ([`oxisec::status::StatusReport`], parsed by [`parse_status_json`]);
//! * `oxisec initiate NAME`, `oxisec terminate NAME`, `oxisec rekey NAME
//!   [--child]`, each with `--socket PATH`; each waits for the outcome.
//!
//! The daemon runs with `RUST_LOG=debug` (the engine's debug lines are what
//! explains a failed interop run); its log is `<dir>/oxisec.log`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::Duration;

use super::peer::{ChildSa, IkeSa, Peer, PeerKind, RekeyKind, StartAction, TunnelSpec};
use super::{Netns, Result, netns, tail, wait_until_every};

/// The binary under test: the one cargo built for this test run
/// (`cargo test --release` gives the release build), or `OXISEC_BIN`.
pub fn oxisec_bin() -> PathBuf {
    std::env::var_os("OXISEC_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_oxisec")))
}

const START_TIMEOUT: Duration = Duration::from_secs(15);
const CLI_TIMEOUT: Duration = Duration::from_secs(30);
/// Polling step while the daemon starts or exits.
const POLL: Duration = Duration::from_millis(20);

/// An `oxisec run` process in a namespace, stopped on drop.
pub struct OxisecPeer {
    ns: Arc<Netns>,
    dir: PathBuf,
    label: String,
    child: Option<Child>,
}

impl OxisecPeer {
    pub fn start(
        ns: Arc<Netns>,
        dir: PathBuf,
        label: String,
        spec: &TunnelSpec,
    ) -> Result<OxisecPeer> {
        OxisecPeer::start_with_config(ns, dir, label, &oxisec_toml(spec))
    }

    /// Starts the daemon with a configuration file written by the caller
    /// (remote-access and certificate tests need keys a [`TunnelSpec`] does
    /// not have).
    pub fn start_with_config(
        ns: Arc<Netns>,
        dir: PathBuf,
        label: String,
        toml: &str,
    ) -> Result<OxisecPeer> {
        let config = dir.join("oxisec.toml");
        std::fs::write(&config, toml)?;
        // It holds the PSK inline: the daemon warns about a readable file.
        std::fs::set_permissions(&config, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
        let socket = dir.join("oxisec.sock");
        let log = dir.join("oxisec.log");
        let bin = oxisec_bin();
        let mut cmd = ns.command(&bin.to_string_lossy());
        cmd.arg("run")
            .arg("--config")
            .arg(&config)
            .arg("--socket")
            .arg(&socket)
            .env("RUST_LOG", "debug")
            .env("RUST_BACKTRACE", "1")
            .stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(&log)?)
            .stderr(std::fs::File::options().append(true).open(&log)?);
        let child = cmd
            .spawn()
            .map_err(|e| format!("starting oxisec (`{}`): {e}", netns::describe(&cmd)))?;
        let mut me = OxisecPeer {
            ns,
            dir,
            label,
            child: Some(child),
        };
        me.wait_ready().map_err(|e| me.with_log(e))?;
        Ok(me)
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("oxisec.sock")
    }

    /// The daemon's process id (`ip netns exec` execs, so it is the
    /// spawned child's), while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The daemon's resident set size in KiB (`VmRSS` of
    /// `/proc/<pid>/status`).
    pub fn vm_rss_kib(&self) -> Result<u64> {
        let pid = self.pid().ok_or("oxisec not running")?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        parse_vm_rss_kib(&status).ok_or_else(|| format!("no VmRSS in /proc/{pid}/status").into())
    }

    /// `oxisec status --json`, parsed into the daemon's own report type.
    pub fn status(&self) -> Result<oxisec::status::StatusReport> {
        let text = self.cli(&["status", "--json"])?;
        serde_json::from_str(&text)
            .map_err(|e| format!("oxisec status --json: unexpected JSON ({e}): {text}").into())
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("oxisec.log")
    }

    /// Runs `oxisec args… --socket <ours>` inside the namespace.
    pub fn cli(&self, args: &[&str]) -> Result<String> {
        let bin = oxisec_bin();
        let mut cmd = self.ns.command(&bin.to_string_lossy());
        cmd.args(args).arg("--socket").arg(self.socket());
        let out = netns::run(&mut cmd, CLI_TIMEOUT)?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn wait_ready(&mut self) -> Result<()> {
        let socket = self.socket();
        let bin = oxisec_bin();
        let ns = self.ns.clone();
        let child = self.child.as_mut().ok_or("oxisec not running")?;
        // Fine-grained: the daemon is up within tens of milliseconds, and
        // the algorithm matrix starts one per case.
        wait_until_every("oxisec's control socket", START_TIMEOUT, POLL, || {
            if let Some(status) = child.try_wait()? {
                return Err(format!("oxisec exited during start-up: {status}").into());
            }
            if !socket.exists() {
                return Ok(None);
            }
            let mut cmd = ns.command(&bin.to_string_lossy());
            cmd.args(["status", "--json", "--socket"]).arg(&socket);
            Ok(netns::run(&mut cmd, Duration::from_secs(5)).ok().map(drop))
        })
    }

    fn with_log(&self, e: super::Error) -> super::Error {
        format!(
            "{}: {e}\n--- {} (last 60 lines) ---\n{}",
            self.label,
            self.log_path().display(),
            tail(&self.log_path(), 60)
        )
        .into()
    }

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
        let exited = wait_until_every("oxisec to exit", Duration::from_secs(5), POLL, || {
            Ok(child.try_wait()?.map(|_| ()))
        });
        if exited.is_err() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Peer for OxisecPeer {
    fn label(&self) -> String {
        self.label.clone()
    }

    fn initiate(&self, name: &str) -> Result<()> {
        self.cli(&["initiate", name])
            .map(drop)
            .map_err(|e| self.with_log(e))
    }

    fn terminate(&self, name: &str) -> Result<()> {
        self.cli(&["terminate", name])
            .map(drop)
            .map_err(|e| self.with_log(e))
    }

    fn rekey(&self, name: &str, kind: RekeyKind) -> Result<()> {
        let mut args = vec!["rekey", name];
        if kind == RekeyKind::Child {
            args.push("--child");
        }
        self.cli(&args).map(drop).map_err(|e| self.with_log(e))
    }

    fn list_sas(&self) -> Result<Vec<IkeSa>> {
        parse_status_json(&self.cli(&["status", "--json"])?)
    }

    fn log_tail(&self, lines: usize) -> String {
        tail(&self.log_path(), lines)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn kind(&self) -> PeerKind {
        PeerKind::Oxisec
    }

    fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for OxisecPeer {
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

/// TOML string literal (basic string with escapes).
fn toml_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The daemon configuration for one tunnel: one `[connections.<name>]`
/// table with swanctl's key names, the child under
/// `[connections.<name>.children.<name>]` (see `oxisec.example.toml`).
/// `encap = true`: ESP in UDP 4500 even without NAT, as strongSwan's
/// kernel-libipsec needs (`encap = yes`), so that oxisec ↔ oxisec and
/// oxisec ↔ strongSwan runs compare; raw ESP tests replace it.
pub fn oxisec_toml(spec: &TunnelSpec) -> String {
    let start_action = match spec.start_action {
        StartAction::None => "none",
        StartAction::Start => "start",
    };
    let name = toml_str(&spec.name);
    let mut daemon = String::new();
    let t = &spec.tuning;
    if let Some(r) = t.retransmit {
        daemon += &format!(
            "retransmit_timeout = {:?}\n\
             retransmit_base = {:?}\n\
             retransmit_tries = {}\n",
            r.timeout_secs, r.base, r.tries
        );
    }
    if let Some(k) = t.keepalive_secs {
        daemon += &format!("nat_keepalive = \"{k}s\"\n");
    }
    if let Some(d) = t.dos {
        daemon += &format!(
            "cookie_threshold = {}\n\
             block_threshold = {}\n\
             half_open_limit = {}\n",
            d.cookie_threshold, d.block_threshold, d.half_open_limit
        );
    }
    if !daemon.is_empty() {
        daemon = format!("[daemon]\n{daemon}\n");
    }
    let remote_addrs = if spec.remote_any {
        String::new()
    } else {
        toml_str(&spec.remote_addr.to_string())
    };
    let dpd = match spec.dpd {
        Some(d) => format!(
            "dpd_delay = {}\ndpd_action = {}\n",
            toml_str(&format!("{}s", d.delay_secs)),
            toml_str(d.action.as_str())
        ),
        None => String::new(),
    };
    // Several proposals are comma-separated, as in swanctl.conf.
    let list = |p: &str| {
        p.split(',')
            .map(|x| toml_str(x.trim()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "# Generated by the oxisec interop harness.\n\
         {daemon}\
         [connections.{name}]\n\
         local_addrs = [{la}]\n\
         remote_addrs = [{remote_addrs}]\n\
         local_id = {lid}\n\
         remote_id = {rid}\n\
         psk = {psk}\n\
         proposals = [{ike}]\n\
         encap = true\n\
         {dpd}\
         \n\
         [connections.{name}.children.{name}]\n\
         local_ts = [{lts}]\n\
         remote_ts = [{rts}]\n\
         esp_proposals = [{esp}]\n\
         start_action = {sa}\n",
        la = toml_str(&spec.local_addr.to_string()),
        lid = toml_str(&spec.local_id),
        rid = toml_str(&spec.remote_id),
        psk = toml_str(&spec.psk),
        ike = list(&spec.ike_proposal),
        lts = toml_str(&spec.local_ts),
        rts = toml_str(&spec.remote_ts),
        esp = list(&spec.esp_proposal),
        sa = toml_str(start_action),
    )
}

/// The `VmRSS:` value (kB) of a `/proc/<pid>/status` text.
pub fn parse_vm_rss_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Parses `oxisec status --json` into the daemon's own
/// [`StatusReport`](oxisec::status::StatusReport) type, so that a change of
/// its shape breaks this at compile time or loudly here, never silently.
/// States are upper-case already (the engine prints strongSwan's words).
pub fn parse_status_json(text: &str) -> Result<Vec<IkeSa>> {
    let report: oxisec::status::StatusReport = serde_json::from_str(text)
        .map_err(|e| format!("oxisec status --json: unexpected JSON ({e}): {text}"))?;
    Ok(report
        .ike_sas
        .into_iter()
        .map(|ike| IkeSa {
            name: ike.connection,
            state: ike.state.to_ascii_uppercase(),
            spi_i: ike.spi_i.to_ascii_lowercase(),
            spi_r: ike.spi_r.to_ascii_lowercase(),
            children: ike
                .children
                .into_iter()
                .map(|c| ChildSa {
                    name: c.name,
                    state: c.state.to_ascii_uppercase(),
                    spi_in: c.spi_in.to_ascii_lowercase(),
                    spi_out: c.spi_out.to_ascii_lowercase(),
                })
                .collect(),
        })
        .collect())
}
