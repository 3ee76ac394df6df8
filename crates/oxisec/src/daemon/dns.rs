//! DNS for a road warrior: the servers and domains the gateway sent with the
//! virtual IP (INTERNAL_IP4/IP6_DNS, INTERNAL_DNS_DOMAIN) are applied while
//! the IKE SA is up and undone when it goes — the part that Linux clients of
//! other IPsec stacks are known to skip.
//!
//! With systemd-resolved the servers go on the TUN link (`resolvectl`):
//! domains become routing domains (`~corp.example`), so only their names
//! go to the company's servers (split DNS); without domains the link takes
//! every query (`~.`). Without resolved, resolv.conf is rewritten with the
//! gateway's servers first; the original is kept beside the state directory
//! and put back on disconnect, at shutdown, or at the next start after a
//! crash.
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use tracing::{info, warn};

use crate::config::DnsBackend;

/// glibc reads at most this many `nameserver` lines (MAXNS).
const MAXNS: usize = 3;

/// What is applied now, so that it can be undone.
#[derive(Debug)]
enum Applied {
    Resolved,
    ResolvConf,
}

/// The DNS state of one daemon.
#[derive(Debug)]
pub struct Dns {
    backend: DnsBackend,
    resolv_conf: PathBuf,
    /// Copy of the original resolv.conf while ours is in place.
    backup: PathBuf,
    tun: String,
    applied: Option<(String, Applied)>,
}

impl Dns {
    /// Also puts back a resolv.conf left behind by a crashed run.
    pub fn new(backend: DnsBackend, resolv_conf: &Path, state_dir: &Path, tun: &str) -> Dns {
        let d = Dns {
            backend,
            resolv_conf: resolv_conf.to_path_buf(),
            backup: state_dir.join("resolv.conf.orig"),
            tun: tun.to_string(),
            applied: None,
        };
        if d.backup.exists() {
            match restore_file(&d.backup, &d.resolv_conf) {
                Ok(()) => info!(
                    "restored {} left behind by an earlier run",
                    d.resolv_conf.display()
                ),
                Err(e) => warn!("cannot restore {}: {e}", d.resolv_conf.display()),
            }
        }
        d
    }

    /// Applies the servers and domains received on connection `conn`.
    pub fn apply(&mut self, conn: &str, servers: &[IpAddr], domains: &[String]) {
        if servers.is_empty() || self.backend == DnsBackend::Off {
            return;
        }
        if let Some((other, _)) = &self.applied {
            if other != conn {
                warn!(
                    "DNS from connection {conn} ignored: connection {other} already set the DNS servers"
                );
            }
            return;
        }
        let use_resolved = match self.backend {
            DnsBackend::Resolved => true,
            DnsBackend::ResolvConf => false,
            _ => resolved_runs(),
        };
        let res = if use_resolved {
            self.resolved(servers, domains).map(|()| Applied::Resolved)
        } else {
            self.write_resolv_conf(conn, servers, domains)
                .map(|()| Applied::ResolvConf)
        };
        match res {
            Ok(a) => {
                info!(
                    "DNS of {conn}: {} via {}{}",
                    list(servers),
                    match a {
                        Applied::Resolved => "systemd-resolved",
                        Applied::ResolvConf => "resolv.conf",
                    },
                    if domains.is_empty() {
                        String::new()
                    } else {
                        format!(" for {}", domains.join(", "))
                    }
                );
                self.applied = Some((conn.to_string(), a));
            }
            Err(e) => warn!("cannot apply the DNS servers of {conn}: {e}"),
        }
    }

    /// Undoes what [`Dns::apply`] did for `conn` (no-op otherwise).
    pub fn release(&mut self, conn: &str) {
        if self.applied.as_ref().is_some_and(|(c, _)| c == conn) {
            self.restore();
        }
    }

    /// Undoes whatever is applied (shutdown).
    pub fn restore(&mut self) {
        let Some((conn, a)) = self.applied.take() else {
            return;
        };
        let res = match a {
            Applied::Resolved => run("resolvectl", &["revert", &self.tun]),
            Applied::ResolvConf => restore_file(&self.backup, &self.resolv_conf),
        };
        match res {
            Ok(()) => info!("DNS of {conn} removed"),
            Err(e) => warn!("cannot remove the DNS servers of {conn}: {e}"),
        }
    }

    fn resolved(&self, servers: &[IpAddr], domains: &[String]) -> io::Result<()> {
        let mut args = vec!["dns".to_string(), self.tun.clone()];
        args.extend(servers.iter().map(IpAddr::to_string));
        run_owned("resolvectl", &args)?;
        let mut args = vec!["domain".to_string(), self.tun.clone()];
        if domains.is_empty() {
            args.push("~.".into());
        } else {
            args.extend(domains.iter().map(|d| format!("~{d}")));
        }
        run_owned("resolvectl", &args)?;
        run(
            "resolvectl",
            &[
                "default-route",
                &self.tun,
                if domains.is_empty() { "yes" } else { "no" },
            ],
        )
    }

    fn write_resolv_conf(
        &self,
        conn: &str,
        servers: &[IpAddr],
        domains: &[String],
    ) -> io::Result<()> {
        let original = std::fs::read_to_string(&self.resolv_conf).unwrap_or_default();
        if let Some(dir) = self.backup.parent() {
            std::fs::create_dir_all(dir)?;
        }
        // The backup first: a crash between the two writes leaves the
        // original recoverable.
        write_atomic(&self.backup, original.as_bytes())?;
        write_atomic(
            &self.resolv_conf,
            resolv_conf_text(conn, servers, domains, &original).as_bytes(),
        )
    }
}

/// resolv.conf with the gateway's servers first, then the original servers
/// while room remains, the gateway's domains before the original search
/// list, and the original options.
pub fn resolv_conf_text(
    conn: &str,
    servers: &[IpAddr],
    domains: &[String],
    original: &str,
) -> String {
    let mut out = format!(
        "# written by oxisec for connection {conn}; the original comes back on disconnect\n"
    );
    let mut ns: Vec<String> = servers.iter().map(IpAddr::to_string).collect();
    let mut search: Vec<String> = domains.to_vec();
    let mut rest = Vec::new();
    for line in original.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => {
                if let Some(a) = words.next()
                    && !ns.iter().any(|n| n == a)
                {
                    ns.push(a.to_string());
                }
            }
            Some("search" | "domain") => {
                for w in words {
                    if !search.iter().any(|s| s == w) {
                        search.push(w.to_string());
                    }
                }
            }
            Some(w) if !w.starts_with('#') && !w.starts_with(';') => rest.push(line.to_string()),
            _ => {}
        }
    }
    for n in ns.iter().take(MAXNS) {
        out.push_str(&format!("nameserver {n}\n"));
    }
    if !search.is_empty() {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    for l in rest {
        out.push_str(&l);
        out.push('\n');
    }
    out
}

fn list(a: &[IpAddr]) -> String {
    a.iter()
        .map(IpAddr::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn resolved_runs() -> bool {
    Path::new("/run/systemd/resolve/io.systemd.Resolve").exists()
        && Command::new("resolvectl")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
}

fn run(cmd: &str, args: &[&str]) -> io::Result<()> {
    let out = Command::new(cmd).args(args).output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "{cmd} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

fn run_owned(cmd: &str, args: &[String]) -> io::Result<()> {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    run(cmd, &refs)
}

/// Moves the backup back into place.
fn restore_file(backup: &Path, target: &Path) -> io::Result<()> {
    let data = std::fs::read(backup)?;
    write_atomic(target, &data)?;
    std::fs::remove_file(backup)
}

/// Writes through a temporary file in the same directory and renames it, so
/// that readers see the old or the new file, never half of one. A
/// bind-mounted file (resolv.conf inside `ip netns exec`) cannot be replaced
/// by rename; it is then overwritten in place.
pub fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("oxisec-tmp");
    std::fs::write(&tmp, data)?;
    match std::fs::rename(&tmp, path) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc_ebusy()) => {
            let _ = std::fs::remove_file(&tmp);
            std::fs::write(path, data)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

fn libc_ebusy() -> i32 {
    nix::errno::Errno::EBUSY as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_servers_come_first_and_the_original_is_kept() {
        let orig = "# generated\nnameserver 192.0.2.53\nnameserver 192.0.2.54\nsearch home.example\noptions edns0\n";
        let t = resolv_conf_text(
            "rw",
            &["10.1.0.53".parse().unwrap(), "10.1.0.54".parse().unwrap()],
            &["corp.example".into()],
            orig,
        );
        assert_eq!(
            t,
            "# written by oxisec for connection rw; the original comes back on disconnect\n\
             nameserver 10.1.0.53\nnameserver 10.1.0.54\nnameserver 192.0.2.53\n\
             search corp.example home.example\noptions edns0\n"
        );
    }

    #[test]
    fn resolv_conf_is_restored_on_release_and_after_a_crash() {
        let dir = std::env::temp_dir().join(format!("oxisec-dns-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let rc = dir.join("resolv.conf");
        std::fs::write(&rc, "nameserver 192.0.2.53\n").unwrap();
        let state = dir.join("state");
        let mut d = Dns::new(DnsBackend::ResolvConf, &rc, &state, "oxisec0");
        d.apply("rw", &["10.1.0.53".parse().unwrap()], &[]);
        let now = std::fs::read_to_string(&rc).unwrap();
        assert!(
            now.contains("nameserver 10.1.0.53\nnameserver 192.0.2.53"),
            "{now}"
        );
        // Another connection does not take over.
        d.apply("other", &["10.9.0.53".parse().unwrap()], &[]);
        assert!(!std::fs::read_to_string(&rc).unwrap().contains("10.9.0.53"));
        d.release("other");
        assert!(std::fs::read_to_string(&rc).unwrap().contains("10.1.0.53"));
        d.release("rw");
        assert_eq!(
            std::fs::read_to_string(&rc).unwrap(),
            "nameserver 192.0.2.53\n"
        );
        assert!(!state.join("resolv.conf.orig").exists());
        // A crash with ours in place: the next start puts the original back.
        d.apply("rw", &["10.1.0.53".parse().unwrap()], &[]);
        std::mem::forget(d);
        let _d = Dns::new(DnsBackend::ResolvConf, &rc, &state, "oxisec0");
        assert_eq!(
            std::fs::read_to_string(&rc).unwrap(),
            "nameserver 192.0.2.53\n"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
