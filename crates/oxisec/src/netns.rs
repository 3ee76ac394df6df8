//! Linux network namespaces for `oxisec demo` and the interop tests.
//!
//! Everything here drives the `ip` tool (iproute2) instead of calling
//! `setns(2)` directly: the commands are what an operator would type, every
//! failure carries the exact command line and its stderr, and no `unsafe` is
//! needed. The price is a process per step, which does not matter at the
//! scale of a test topology (a few dozen commands).
//!
//! The central type is [`Netns`], a guard that owns one namespace:
//!
//! * it gets a unique name `<prefix>-<tag>-<pid>-<n>`, so concurrent test
//!   processes (several developers share one machine) never collide;
//! * dropping it kills every process still running inside (`ip netns pids`,
//!   SIGTERM, then SIGKILL) and deletes the namespace — also while a test
//!   panics, because `Drop` runs during unwinding;
//! * the first [`Netns::create`] of a process sweeps namespaces with the same
//!   prefix that were left behind by an earlier run that crashed or was
//!   killed (their creator pid no longer exists), see [`cleanup_stale`].
//!
//! Every command runs with a timeout ([`run`]), so a wedged tool fails the
//! caller instead of hanging it.
//!
//! All of this needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN); callers check
//! [`is_root`] first and skip with a visible reason when it is false.

use std::collections::HashSet;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::net::IpAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

/// Prefix of the namespaces created by [`Netns::create`].
pub const DEFAULT_PREFIX: &str = "oxs";

/// Time limit for the short administrative commands (`ip`, `sysctl`, `kill`).
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// How long [`Netns`] waits for processes to exit after SIGTERM before it
/// sends SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(3);

/// Linux limits interface names to 15 bytes (IFNAMSIZ - 1).
const IFNAME_MAX: usize = 15;

/// Why a namespace operation failed. Each variant names the command line, so
/// a test log says exactly what to retry by hand.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    /// The program could not be started at all (not installed, no permission).
    #[error("could not start `{command}`: {source}")]
    Spawn {
        command: String,
        #[source]
        source: io::Error,
    },
    /// The program ran and exited unsuccessfully.
    #[error("`{command}` failed ({status}): {stderr}")]
    Failed {
        command: String,
        status: ExitStatus,
        stdout: String,
        stderr: String,
    },
    /// The program did not exit within its time limit and was killed.
    #[error(
        "`{command}` did not finish within {timeout:?} and was killed; stderr so far: {stderr}"
    )]
    Timeout {
        command: String,
        timeout: Duration,
        stderr: String,
    },
    /// A name or argument was rejected before any command ran.
    #[error("invalid argument {value:?}: {reason}")]
    Invalid { value: String, reason: &'static str },
    /// Waiting for a process failed at the OS level.
    #[error("waiting for `{command}` failed: {source}")]
    Wait {
        command: String,
        #[source]
        source: io::Error,
    },
}

/// Whether this process runs with effective uid 0.
///
/// Read from `/proc/self/status` so that no `unsafe` FFI call is needed.
/// Root is necessary, not sufficient (a container may lack CAP_SYS_ADMIN);
/// the first failing `ip netns add` then reports the real reason.
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| effective_uid(&s))
        == Some(0)
}

/// Parses the effective uid (second field of the `Uid:` line) from the text
/// of `/proc/<pid>/status`.
fn effective_uid(status: &str) -> Option<u32> {
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// Renders a command line for error messages, quoting arguments that contain
/// whitespace or shell metacharacters so it can be pasted into a shell.
pub fn describe(cmd: &Command) -> String {
    let mut out = quote(&cmd.get_program().to_string_lossy());
    for arg in cmd.get_args() {
        out.push(' ');
        out.push_str(&quote(&arg.to_string_lossy()));
    }
    out
}

fn quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@%+".contains(c));
    if plain {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Runs `cmd` to completion within `timeout` and returns its output whatever
/// the exit status. Stdin is closed; stdout and stderr are captured.
///
/// On timeout the process is killed (SIGKILL) and [`NetnsError::Timeout`]
/// returned. Output is collected by reader threads so that a chatty process
/// cannot block on a full pipe; if a grandchild keeps a pipe open after the
/// process exited, whatever arrived within one second is returned.
pub fn run_output(cmd: &mut Command, timeout: Duration) -> Result<Output, NetnsError> {
    let command = describe(cmd);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| NetnsError::Spawn {
            command: command.clone(),
            source,
        })?;
    let stdout = Collector::start(child.stdout.take());
    let stderr = Collector::start(child.stderr.take());
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                // Kill errors only mean it exited in between; wait reaps it.
                let _ = child.kill();
                let _ = child.wait();
                return Err(NetnsError::Timeout {
                    command,
                    timeout,
                    stderr: lossy(&stderr.finish(Duration::from_millis(200))),
                });
            }
            Ok(None) => {
                thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            Err(source) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(NetnsError::Wait { command, source });
            }
        }
    };
    Ok(Output {
        status,
        stdout: stdout.finish(Duration::from_secs(1)),
        stderr: stderr.finish(Duration::from_secs(1)),
    })
}

/// Like [`run_output`], but a non-zero exit status is an error
/// ([`NetnsError::Failed`] with the captured stderr).
pub fn run(cmd: &mut Command, timeout: Duration) -> Result<Output, NetnsError> {
    let output = run_output(cmd, timeout)?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(NetnsError::Failed {
            command: describe(cmd),
            status: output.status,
            stdout: lossy(&output.stdout),
            stderr: lossy(&output.stderr).trim_end().to_owned(),
        })
    }
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Reads one pipe on its own thread into a shared buffer, so that the bytes
/// read so far stay available even if the pipe never reaches end of file.
struct Collector {
    buf: Arc<Mutex<Vec<u8>>>,
    done: mpsc::Receiver<()>,
}

impl Collector {
    fn start<R: Read + Send + 'static>(pipe: Option<R>) -> Collector {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let (tx, done) = mpsc::channel();
        if let Some(mut pipe) = pipe {
            let shared = Arc::clone(&buf);
            thread::spawn(move || {
                let mut chunk = [0u8; 8192];
                loop {
                    match pipe.read(&mut chunk) {
                        Ok(0) => break,
                        Ok(n) => lock(&shared).extend_from_slice(&chunk[..n]),
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(_) => break,
                    }
                }
                let _ = tx.send(());
            });
        }
        Collector { buf, done }
    }

    /// Waits up to `wait` for end of file and returns what was read.
    fn finish(self, wait: Duration) -> Vec<u8> {
        let _ = self.done.recv_timeout(wait);
        std::mem::take(&mut *lock(&self.buf))
    }
}

/// Locks a mutex, ignoring poisoning: the data (bytes, a name set) stays
/// valid even if another thread panicked while holding the lock.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A network namespace owned by this process; deleted on drop together with
/// every process still running inside it.
#[derive(Debug)]
pub struct Netns {
    name: String,
    /// Set once [`Netns::delete`] ran, so that `Drop` does not repeat it.
    deleted: bool,
}

/// Per-process counter that makes namespace names unique within one pid.
static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Prefixes already swept for stale namespaces by this process.
static SWEPT: Mutex<Option<HashSet<String>>> = Mutex::new(None);

impl Netns {
    /// Creates a namespace named `oxs-<tag>-<pid>-<n>` with `lo` up.
    ///
    /// `tag` says what the namespace is for ("left", "right"); it is limited
    /// to ASCII letters, digits and `_` so that the name stays parseable.
    pub fn create(tag: &str) -> Result<Netns, NetnsError> {
        Netns::create_with_prefix(DEFAULT_PREFIX, tag)
    }

    /// Like [`Netns::create`] with a caller-chosen prefix (e.g. `oxisec demo`
    /// uses its own, so that a demo and a test run never sweep each other).
    pub fn create_with_prefix(prefix: &str, tag: &str) -> Result<Netns, NetnsError> {
        check_word(prefix, "prefix")?;
        check_word(tag, "tag")?;
        sweep_once(prefix);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("{prefix}-{tag}-{}-{n}", std::process::id());
        run(
            Command::new("ip").args(["netns", "add", &name]),
            COMMAND_TIMEOUT,
        )?;
        // From here on the guard owns the namespace: an error below drops it.
        let ns = Netns {
            name,
            deleted: false,
        };
        ns.link_up("lo")?;
        Ok(ns)
    }

    /// The namespace's name as `ip netns` knows it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A command that runs `program` inside this namespace
    /// (`ip netns exec <name> <program>`); add arguments, environment and
    /// stdio as usual. `ip netns exec` execs the program, so the child's pid
    /// is the program's own pid and signals reach it directly.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, program]);
        cmd
    }

    /// Runs `program args…` inside the namespace with [`COMMAND_TIMEOUT`];
    /// a non-zero exit status is an error.
    pub fn exec(&self, program: &str, args: &[&str]) -> Result<Output, NetnsError> {
        self.exec_timeout(program, args, COMMAND_TIMEOUT)
    }

    /// Like [`Netns::exec`] with an explicit time limit.
    pub fn exec_timeout(
        &self,
        program: &str,
        args: &[&str],
        timeout: Duration,
    ) -> Result<Output, NetnsError> {
        run(self.command(program).args(args), timeout)
    }

    /// Starts `program args…` inside the namespace in the background, stdin
    /// closed, stdout and stderr appended to `log` (or discarded when `None`).
    ///
    /// The caller owns the [`Child`]; whatever still runs when the namespace
    /// is dropped is killed then.
    pub fn spawn(
        &self,
        program: &str,
        args: &[&str],
        log: Option<&Path>,
    ) -> Result<Child, NetnsError> {
        let mut cmd = self.command(program);
        cmd.args(args).stdin(Stdio::null());
        match log {
            Some(path) => {
                let open = |p: &Path| -> io::Result<File> {
                    OpenOptions::new().create(true).append(true).open(p)
                };
                let out = open(path).map_err(|source| NetnsError::Spawn {
                    command: format!("open {}", path.display()),
                    source,
                })?;
                let err = out.try_clone().map_err(|source| NetnsError::Spawn {
                    command: format!("dup {}", path.display()),
                    source,
                })?;
                cmd.stdout(out).stderr(err);
            }
            None => {
                cmd.stdout(Stdio::null()).stderr(Stdio::null());
            }
        }
        cmd.spawn().map_err(|source| NetnsError::Spawn {
            command: describe(&cmd),
            source,
        })
    }

    /// Runs `ip -n <name> args…` and returns its stdout.
    pub fn ip(&self, args: &[&str]) -> Result<String, NetnsError> {
        let out = run(
            Command::new("ip").args(["-n", &self.name]).args(args),
            COMMAND_TIMEOUT,
        )?;
        Ok(lossy(&out.stdout))
    }

    /// Sets an interface up.
    pub fn link_up(&self, ifname: &str) -> Result<(), NetnsError> {
        check_ifname(ifname)?;
        self.ip(&["link", "set", ifname, "up"]).map(drop)
    }

    /// Sets an interface's MTU.
    pub fn set_mtu(&self, ifname: &str, mtu: u32) -> Result<(), NetnsError> {
        check_ifname(ifname)?;
        self.ip(&["link", "set", ifname, "mtu", &mtu.to_string()])
            .map(drop)
    }

    /// Adds `addr/prefix_len` to an interface. IPv6 addresses are added with
    /// `nodad`: duplicate address detection would leave them "tentative"
    /// (unbindable) for a second or two, and a private namespace has no
    /// duplicates to detect.
    pub fn add_address(
        &self,
        ifname: &str,
        addr: IpAddr,
        prefix_len: u8,
    ) -> Result<(), NetnsError> {
        check_ifname(ifname)?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix_len > max {
            return Err(NetnsError::Invalid {
                value: format!("{addr}/{prefix_len}"),
                reason: "prefix length longer than the address",
            });
        }
        let cidr = format!("{addr}/{prefix_len}");
        let mut args = vec!["addr", "add", &cidr, "dev", ifname];
        if addr.is_ipv6() {
            args.push("nodad");
        }
        self.ip(&args).map(drop)
    }

    /// Adds an address to `lo`. This kernel has no `dummy` module, so hosts
    /// "behind" a gateway are addresses on the namespace's loopback.
    pub fn add_lo_address(&self, addr: IpAddr, prefix_len: u8) -> Result<(), NetnsError> {
        self.add_address("lo", addr, prefix_len)
    }

    /// Adds a route `dest/prefix_len via gateway`.
    pub fn add_route_via(
        &self,
        dest: IpAddr,
        prefix_len: u8,
        gateway: IpAddr,
    ) -> Result<(), NetnsError> {
        let cidr = format!("{dest}/{prefix_len}");
        let gw = gateway.to_string();
        self.ip(&["route", "add", &cidr, "via", &gw]).map(drop)
    }

    /// Turns on IPv4 and IPv6 forwarding inside the namespace (each namespace
    /// has its own sysctls; the host is not touched).
    pub fn enable_forwarding(&self) -> Result<(), NetnsError> {
        self.exec(
            "sysctl",
            &[
                "-q",
                "-w",
                "net.ipv4.ip_forward=1",
                "net.ipv6.conf.all.forwarding=1",
            ],
        )
        .map(drop)
    }

    /// Pids of the processes whose network namespace is this one.
    pub fn pids(&self) -> Result<Vec<u32>, NetnsError> {
        pids_of(&self.name)
    }

    /// Kills every process inside (SIGTERM, then SIGKILL after a grace
    /// period) and deletes the namespace. Called by `Drop`; call it directly
    /// to see the error.
    pub fn delete(mut self) -> Result<(), NetnsError> {
        self.deleted = true;
        destroy(&self.name)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if self.deleted {
            return;
        }
        self.deleted = true;
        if let Err(e) = destroy(&self.name) {
            eprintln!("netns {}: cleanup failed: {e}", self.name);
        }
    }
}

impl fmt::Display for Netns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// Creates a veth pair with end `a_if` in namespace `a` and end `b_if` in
/// namespace `b`, and sets both ends up. Addresses are added separately
/// ([`Netns::add_address`]). The pair disappears with either namespace.
pub fn veth_pair(a: &Netns, a_if: &str, b: &Netns, b_if: &str) -> Result<(), NetnsError> {
    check_ifname(a_if)?;
    check_ifname(b_if)?;
    run(
        Command::new("ip").args([
            "link", "add", a_if, "netns", &a.name, "type", "veth", "peer", "name", b_if, "netns",
            &b.name,
        ]),
        COMMAND_TIMEOUT,
    )?;
    a.link_up(a_if)?;
    b.link_up(b_if)
}

fn check_word(s: &str, what: &'static str) -> Result<(), NetnsError> {
    if s.is_empty() || s.len() > 32 || !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(NetnsError::Invalid {
            value: s.to_owned(),
            reason: if what == "prefix" {
                "a namespace prefix must be 1-32 ASCII letters, digits or '_'"
            } else {
                "a namespace tag must be 1-32 ASCII letters, digits or '_'"
            },
        });
    }
    Ok(())
}

fn check_ifname(s: &str) -> Result<(), NetnsError> {
    if s.is_empty()
        || s.len() > IFNAME_MAX
        || !s
            .chars()
            .all(|c| c.is_ascii_graphic() && c != '/' && c != ':')
    {
        return Err(NetnsError::Invalid {
            value: s.to_owned(),
            reason: "an interface name is 1-15 printable ASCII characters without '/' or ':'",
        });
    }
    Ok(())
}

fn pids_of(name: &str) -> Result<Vec<u32>, NetnsError> {
    let out = run(
        Command::new("ip").args(["netns", "pids", name]),
        COMMAND_TIMEOUT,
    )?;
    Ok(lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect())
}

fn signal(pids: &[u32], sig: &str) {
    if pids.is_empty() {
        return;
    }
    let mut cmd = Command::new("kill");
    cmd.arg(format!("-{sig}"));
    cmd.args(pids.iter().map(u32::to_string));
    // A pid that exited in the meantime makes kill fail; that is fine.
    let _ = run_output(&mut cmd, COMMAND_TIMEOUT);
}

/// Stops every process in namespace `name` and deletes it.
fn destroy(name: &str) -> Result<(), NetnsError> {
    let pids = pids_of(name)?;
    if !pids.is_empty() {
        signal(&pids, "TERM");
        let deadline = Instant::now() + TERM_GRACE;
        let mut left = pids;
        while !left.is_empty() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(50));
            left = pids_of(name)?;
        }
        if !left.is_empty() {
            signal(&left, "KILL");
            let deadline = Instant::now() + Duration::from_secs(2);
            while !pids_of(name)?.is_empty() && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(50));
            }
        }
    }
    run(
        Command::new("ip").args(["netns", "del", name]),
        COMMAND_TIMEOUT,
    )
    .map(drop)
}

/// The creator pid encoded in a name made by [`Netns::create_with_prefix`],
/// if `name` carries `prefix`.
fn creator_pid(name: &str, prefix: &str) -> Option<u32> {
    let rest = name.strip_prefix(prefix)?.strip_prefix('-')?;
    let mut parts = rest.rsplitn(3, '-');
    let counter = parts.next()?;
    let pid = parts.next()?;
    let tag = parts.next()?;
    if tag.is_empty() || counter.parse::<u32>().is_err() {
        return None;
    }
    pid.parse().ok()
}

/// Deletes namespaces named `<prefix>-…` whose creating process no longer
/// exists, killing whatever still runs in them (a charon from a test run
/// that was SIGKILLed, say). Namespaces of live processes — another test run
/// on the same machine — are left alone. Returns the names deleted.
///
/// A recycled pid can make a stale namespace look alive; it is then swept
/// by a later run.
pub fn cleanup_stale(prefix: &str) -> Result<Vec<String>, NetnsError> {
    check_word(prefix, "prefix")?;
    let out = run(Command::new("ip").args(["netns", "list"]), COMMAND_TIMEOUT)?;
    let mut deleted = Vec::new();
    for line in lossy(&out.stdout).lines() {
        // Lines look like "name" or "name (id: 3)".
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(pid) = creator_pid(name, prefix) else {
            continue;
        };
        if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        destroy(name)?;
        deleted.push(name.to_owned());
    }
    Ok(deleted)
}

/// Sweeps `prefix` once per process (on the first namespace created with it).
fn sweep_once(prefix: &str) {
    let mut swept = lock(&SWEPT);
    let set = swept.get_or_insert_with(HashSet::new);
    if set.insert(prefix.to_owned()) {
        match cleanup_stale(prefix) {
            Ok(names) if !names.is_empty() => {
                eprintln!("netns: removed stale namespaces from an earlier run: {names:?}");
            }
            Ok(_) => {}
            Err(e) => eprintln!("netns: sweeping stale {prefix}-* namespaces failed: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effective_uid_is_second_field() {
        let status = "Name:\tx\nUid:\t1000\t0\t0\t0\nGid:\t0\t0\t0\t0\n";
        assert_eq!(effective_uid(status), Some(0));
        assert_eq!(effective_uid("Uid:\t0\t1000\t0\t0\n"), Some(1000));
        assert_eq!(effective_uid("Name: x\n"), None);
        assert_eq!(effective_uid("Uid:\tbogus\n"), None);
    }

    #[test]
    fn describe_quotes_only_when_needed() {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", "oxs-a-1-0", "sh", "-c", "echo it's"]);
        assert_eq!(
            describe(&cmd),
            r"ip netns exec oxs-a-1-0 sh -c 'echo it'\''s'"
        );
        assert_eq!(quote(""), "''");
    }

    #[test]
    fn creator_pid_parses_own_names_only() {
        assert_eq!(creator_pid("oxs-left-1234-0", "oxs"), Some(1234));
        assert_eq!(creator_pid("oxs-left_x-99-17", "oxs"), Some(99));
        assert_eq!(creator_pid("oxs-left-1234-0", "demo"), None);
        assert_eq!(creator_pid("oxsfoo-left-1234-0", "oxs"), None);
        assert_eq!(creator_pid("oxs-1234-0", "oxs"), None);
        assert_eq!(creator_pid("oxs--1234-0", "oxs"), None);
        assert_eq!(creator_pid("oxs-left-abc-0", "oxs"), None);
        assert_eq!(creator_pid("oxs-left-12-x", "oxs"), None);
        assert_eq!(creator_pid("other", "oxs"), None);
    }

    #[test]
    fn names_are_checked_before_any_command_runs() {
        assert!(matches!(
            Netns::create("bad-tag"),
            Err(NetnsError::Invalid { .. })
        ));
        assert!(matches!(
            Netns::create_with_prefix("", "x"),
            Err(NetnsError::Invalid { .. })
        ));
        assert!(check_ifname("veth-left").is_ok());
        assert!(check_ifname("a-name-too-long-x").is_err());
        assert!(check_ifname("a/b").is_err());
        assert!(check_ifname("").is_err());
    }

    #[test]
    fn run_reports_failure_with_command_and_stderr() {
        let err = run(
            Command::new("sh").args(["-c", "echo boom >&2; exit 3"]),
            Duration::from_secs(5),
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("sh -c"), "{text}");
        assert!(text.contains("boom"), "{text}");
        assert!(matches!(err, NetnsError::Failed { .. }));
    }

    #[test]
    fn run_returns_stdout_of_success() {
        let out = run(
            Command::new("sh").args(["-c", "printf hello"]),
            Duration::from_secs(5),
        )
        .unwrap();
        assert_eq!(out.stdout, b"hello");
    }

    #[test]
    fn run_kills_on_timeout() {
        let start = Instant::now();
        let err = run(Command::new("sleep").arg("30"), Duration::from_millis(200)).unwrap_err();
        assert!(matches!(err, NetnsError::Timeout { .. }), "{err}");
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn run_reports_missing_program() {
        let err = run(
            &mut Command::new("/nonexistent/oxisec-no-such-tool"),
            Duration::from_secs(5),
        )
        .unwrap_err();
        assert!(matches!(err, NetnsError::Spawn { .. }), "{err}");
    }

    #[test]
    fn large_output_does_not_block() {
        // 1 MiB is far more than a pipe buffer (64 KiB).
        let out = run(
            Command::new("sh").args(["-c", "head -c 1048576 /dev/zero"]),
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(out.stdout.len(), 1 << 20);
    }

    /// Root only: create a pair of namespaces, connect them, ping, and check
    /// that drop removes the namespace and the processes inside it.
    #[test]
    fn namespace_lifecycle_as_root() {
        if !is_root() {
            eprintln!("SKIP: namespace_lifecycle_as_root needs root (ip netns)");
            return;
        }
        let a = Netns::create("unit_a").unwrap();
        let b = Netns::create("unit_b").unwrap();
        veth_pair(&a, "va", &b, "vb").unwrap();
        a.add_address("va", "192.0.2.11".parse().unwrap(), 24)
            .unwrap();
        b.add_address("vb", "192.0.2.12".parse().unwrap(), 24)
            .unwrap();
        a.add_lo_address("2001:db8::11".parse().unwrap(), 128)
            .unwrap();
        a.enable_forwarding().unwrap();
        a.exec("ping", &["-c", "1", "-W", "2", "192.0.2.12"])
            .unwrap();
        a.exec("ping", &["-c", "1", "-W", "2", "2001:db8::11"])
            .unwrap();

        let mut sleeper = b.spawn("sleep", &["60"], None).unwrap();
        // `ip netns exec` enters the namespace after the fork returns:
        // give it a moment before asking who is inside.
        let deadline = Instant::now() + Duration::from_secs(2);
        while b.pids().unwrap().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(b.pids().unwrap(), vec![sleeper.id()]);
        let b_name = b.name().to_owned();
        drop(b);
        // The sleeper was killed by the guard; reap it.
        let status = sleeper.wait().unwrap();
        assert!(!status.success());
        let list = run(Command::new("ip").args(["netns", "list"]), COMMAND_TIMEOUT).unwrap();
        assert!(!lossy(&list.stdout).contains(&b_name));
        // The veth went with namespace b.
        assert!(a.ip(&["link", "show", "va"]).is_err());
        a.delete().unwrap();
    }

    /// Root only: a namespace whose creator pid is gone is swept.
    #[test]
    fn stale_namespaces_are_swept_as_root() {
        if !is_root() {
            eprintln!("SKIP: stale_namespaces_are_swept_as_root needs root (ip netns)");
            return;
        }
        // A prefix of our own, so that concurrent runs (other developers on
        // the same machine) cannot sweep each other's test namespaces.
        let prefix = format!("oxsunit{}", std::process::id());
        let live = Netns::create_with_prefix(&prefix, "live").unwrap();
        // A pid above the kernel's pid_max (2^22) cannot be alive.
        let name = format!("{prefix}-stale-4194305-0");
        run(
            Command::new("ip").args(["netns", "add", &name]),
            COMMAND_TIMEOUT,
        )
        .unwrap();
        let swept = cleanup_stale(&prefix).unwrap();
        assert_eq!(swept, vec![name.clone()]);
        let list = run(Command::new("ip").args(["netns", "list"]), COMMAND_TIMEOUT).unwrap();
        let list = lossy(&list.stdout);
        assert!(!list.contains(&name));
        assert!(list.contains(live.name()));
    }
}
