//! oxisec's own daemon as a test peer.
//!
//! NOT YET EXERCISED. The daemon is being written in parallel; this is
//! written against the interface it is going to have:
//!
//! * `oxisec run --config FILE --socket PATH` — foreground daemon, TOML
//!   configuration, a TUN device for the userspace data plane, ESP in UDP 4500;
//! * `oxisec status --json --socket PATH` — SAs as JSON;
//! * `oxisec initiate NAME --socket PATH`, `oxisec terminate NAME --socket PATH`.
//!
//! When the daemon lands, check (and adjust here, nowhere else):
//! 1. the TOML schema in [`oxisec_toml`] (written to mirror `swanctl.conf`
//!    and `oxisec_ike::config::Connection`);
//! 2. the JSON shape parsed by [`parse_status_json`];
//! 3. whether the daemon installs the route to the remote subnet via its TUN
//!    itself (strongSwan does, table 220) — if not, add it in [`OxisecPeer::start`];
//! 4. then remove the `#[ignore]` from the oxisec tests in `tests/interop.rs`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::Duration;

use super::peer::{ChildSa, IkeSa, Peer, StartAction, TunnelSpec};
use super::{Netns, Result, netns, tail, wait_until};

/// The binary under test: the one cargo built for this test run
/// (`cargo test --release` gives the release build), or `OXISEC_BIN`.
pub fn oxisec_bin() -> PathBuf {
    std::env::var_os("OXISEC_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_oxisec")))
}

const START_TIMEOUT: Duration = Duration::from_secs(15);
const CLI_TIMEOUT: Duration = Duration::from_secs(30);

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
        let config = dir.join("oxisec.toml");
        std::fs::write(&config, oxisec_toml(spec))?;
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

    fn log_path(&self) -> PathBuf {
        self.dir.join("oxisec.log")
    }

    /// Runs `oxisec args… --socket <ours>` inside the namespace.
    fn cli(&self, args: &[&str]) -> Result<String> {
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
        wait_until("oxisec's control socket", START_TIMEOUT, || {
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
        let exited = wait_until("oxisec to exit", Duration::from_secs(5), || {
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

    fn list_sas(&self) -> Result<Vec<IkeSa>> {
        parse_status_json(&self.cli(&["status", "--json"])?)
    }

    fn log_tail(&self, lines: usize) -> String {
        tail(&self.log_path(), lines)
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

/// The daemon configuration for one tunnel. ASSUMED SCHEMA (see the module
/// documentation): one `[connections.<name>]` table per connection with
/// swanctl's key names, children under `[connections.<name>.children.<name>]`.
pub fn oxisec_toml(spec: &TunnelSpec) -> String {
    let start_action = match spec.start_action {
        StartAction::None => "none",
        StartAction::Start => "start",
    };
    let name = toml_str(&spec.name);
    format!(
        "# Generated by the oxisec interop harness.\n\
         [connections.{name}]\n\
         local_addrs = [{la}]\n\
         remote_addrs = [{ra}]\n\
         local_id = {lid}\n\
         remote_id = {rid}\n\
         psk = {psk}\n\
         proposals = [{ike}]\n\
         encap = true\n\
         \n\
         [connections.{name}.children.{name}]\n\
         local_ts = [{lts}]\n\
         remote_ts = [{rts}]\n\
         esp_proposals = [{esp}]\n\
         start_action = {sa}\n",
        la = toml_str(&spec.local_addr.to_string()),
        ra = toml_str(&spec.remote_addr.to_string()),
        lid = toml_str(&spec.local_id),
        rid = toml_str(&spec.remote_id),
        psk = toml_str(&spec.psk),
        ike = toml_str(&spec.ike_proposal),
        lts = toml_str(&spec.local_ts),
        rts = toml_str(&spec.remote_ts),
        esp = toml_str(&spec.esp_proposal),
        sa = toml_str(start_action),
    )
}

/// Parses `oxisec status --json`. ASSUMED SHAPE, tolerant on purpose: either
/// a top-level array of IKE SAs or an object with an `ike_sas` array; each
/// IKE SA has `connection` (or `name`), `state` and `children` (or
/// `child_sas`), each child `name` and `state`. States are compared
/// upper-case, as strongSwan prints them.
pub fn parse_status_json(text: &str) -> Result<Vec<IkeSa>> {
    use serde_json::Value;
    let v: Value = serde_json::from_str(text)
        .map_err(|e| format!("oxisec status --json: not JSON ({e}): {text}"))?;
    let list = match &v {
        Value::Array(a) => a,
        Value::Object(o) => match o.get("ike_sas") {
            Some(Value::Array(a)) => a,
            _ => return Err(format!("oxisec status --json: no `ike_sas` array: {text}").into()),
        },
        _ => return Err(format!("oxisec status --json: unexpected JSON: {text}").into()),
    };
    let field = |o: &Value, keys: &[&str]| -> String {
        keys.iter()
            .find_map(|k| o.get(*k).and_then(Value::as_str))
            .unwrap_or("")
            .to_owned()
    };
    Ok(list
        .iter()
        .map(|ike| IkeSa {
            name: field(ike, &["connection", "name"]),
            state: field(ike, &["state"]).to_ascii_uppercase(),
            children: ["children", "child_sas"]
                .iter()
                .find_map(|k| ike.get(*k).and_then(Value::as_array))
                .map(|cs| {
                    cs.iter()
                        .map(|c| ChildSa {
                            name: field(c, &["name"]),
                            state: field(c, &["state"]).to_ascii_uppercase(),
                        })
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect())
}
