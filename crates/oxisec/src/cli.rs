//! The command line: one binary that is both the daemon (`oxisec run`) and
//! its control client (`status`, `initiate`, `terminate`, `rekey`).
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::pki::KeyType;

/// oxisec: a memory-safe IPsec VPN (IKEv2 + ESP).
#[derive(Debug, Parser, PartialEq)]
#[command(name = "oxisec", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand, PartialEq)]
pub enum Command {
    /// Run the daemon in the foreground.
    Run {
        /// The TOML configuration file.
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        /// Control socket path (overrides `daemon.socket` in the config).
        #[arg(long, value_name = "PATH")]
        socket: Option<PathBuf>,
    },
    /// Show IKE and CHILD SAs of the running daemon.
    Status {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[arg(long, value_name = "PATH")]
        socket: Option<PathBuf>,
    },
    /// Bring up a connection and wait until its CHILD_SA is installed or the attempt failed.
    Initiate {
        /// The connection name from the config.
        name: String,
        /// The child to bring up (default: the connection's children).
        #[arg(long, value_name = "CHILD")]
        child: Option<String>,
        /// How long to wait for the outcome.
        #[arg(long, value_name = "SECONDS", default_value = "30", value_parser = parse_secs)]
        timeout: Duration,
        #[arg(long, value_name = "PATH")]
        socket: Option<PathBuf>,
    },
    /// Delete a connection's IKE SA (with its children), or one child.
    ///
    /// `oxisec terminate site-b` deletes the IKE SA; `oxisec terminate site-b --child lan`
    /// only the CHILD_SA `lan`; `oxisec terminate lan --child` treats NAME as the child.
    Terminate {
        /// Connection name (or child name with a bare `--child`).
        name: String,
        /// Delete only this CHILD_SA (bare `--child`: NAME is the child).
        #[arg(long, value_name = "CHILD", num_args = 0..=1, default_missing_value = "")]
        child: Option<String>,
        /// How long to wait for the peer to confirm the delete.
        #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = parse_secs)]
        timeout: Duration,
        #[arg(long, value_name = "PATH")]
        socket: Option<PathBuf>,
    },
    /// Rekey a connection's IKE SA, or one CHILD_SA, now; wait until the new SA has taken over.
    ///
    /// `oxisec rekey site-b` rekeys the IKE SA (its CHILD_SAs move over unchanged);
    /// `oxisec rekey site-b --child lan` the CHILD_SA `lan` (new keys and SPIs);
    /// `oxisec rekey lan --child` treats NAME as the child. An IKE rekey is done
    /// when the new IKE SA is in place, a CHILD_SA rekey when the old CHILD_SA
    /// is deleted.
    Rekey {
        /// Connection name (or child name with a bare `--child`).
        name: String,
        /// Rekey only this CHILD_SA (bare `--child`: NAME is the child).
        #[arg(long, value_name = "CHILD", num_args = 0..=1, default_missing_value = "")]
        child: Option<String>,
        /// How long to wait for the rekey to complete.
        #[arg(long, value_name = "SECONDS", default_value = "30", value_parser = parse_secs)]
        timeout: Duration,
        #[arg(long, value_name = "PATH")]
        socket: Option<PathBuf>,
    },
    /// Validate a configuration file and print a summary.
    CheckConfig {
        /// The TOML configuration file.
        file: PathBuf,
    },
    /// List the algorithm keywords for ike_proposals / esp_proposals and how RFC 8247/8221 rank them.
    Proposals {
        /// Only the keywords that draw a "legacy" warning.
        #[arg(long)]
        legacy: bool,
    },
    /// Two network namespaces, two oxisec daemons, a tunnel and a ping across (needs root).
    Demo {
        /// Keep the namespaces after the ping until Ctrl-C.
        #[arg(long)]
        keep: bool,
    },
    /// A certificate authority for this VPN: CA, gateway and client certificates, CRL, PKCS#12.
    ///
    /// `oxisec pki init-ca --cn "Example CA"`, then
    /// `oxisec pki issue --server vpn.example.com --ip 192.0.2.1` for the gateway and
    /// `oxisec pki issue --client alice@example.com` + `oxisec pki export alice@example.com`
    /// for each user.
    Pki {
        /// The CA directory (ca.crt, ca.key, certs/, private/, crl.pem, exports/, index.json).
        #[arg(long, value_name = "DIR", global = true, default_value = crate::pki::DEFAULT_DIR)]
        dir: PathBuf,
        #[command(subcommand)]
        command: PkiCommand,
    },
    /// Manage EAP-MSCHAPv2 users (add, passwd, remove, list); stores NT hashes only.
    User(crate::users::UserArgs),
    /// Write a ready-to-import client profile for a user (Apple, Android, Windows, NetworkManager, oxisec).
    Profile(crate::profile::ProfileArgs),
}

/// `oxisec pki …`
#[derive(Debug, Subcommand, PartialEq)]
pub enum PkiCommand {
    /// Create the CA (key, self-signed certificate, empty CRL); never replaces an existing one.
    InitCa {
        /// The CA's common name, e.g. "Example VPN CA".
        #[arg(long, value_name = "NAME")]
        cn: String,
        /// Key algorithm.
        #[arg(long = "type", value_enum, default_value_t)]
        key_type: KeyType,
        /// Validity in days.
        #[arg(long, default_value_t = crate::pki::CA_DAYS)]
        days: u32,
        /// http:// URL where crl.pem will be published; written into every issued
        /// certificate as its CRL distribution point.
        #[arg(long, value_name = "URL")]
        crl_url: Option<String>,
    },
    /// Issue a gateway (--server) or user (--client) certificate with a new key.
    #[command(group(clap::ArgGroup::new("who").required(true).args(["server", "client"])))]
    Issue {
        /// A gateway: its host name (or IP address) as clients dial it; serverAuth +
        /// IKE intermediate EKUs, DNS SAN.
        #[arg(long, value_name = "NAME")]
        server: Option<String>,
        /// A user: user@domain (email SAN) or a device's host name; clientAuth EKU.
        #[arg(long, value_name = "NAME")]
        client: Option<String>,
        /// Further IP address SANs (repeatable).
        #[arg(long, value_name = "ADDR")]
        ip: Vec<IpAddr>,
        /// Further DNS name SANs (repeatable).
        #[arg(long, value_name = "NAME")]
        dns: Vec<String>,
        /// Further email SANs (repeatable).
        #[arg(long, value_name = "ADDR")]
        email: Vec<String>,
        /// The user's group (--client only): the subject gets OU=GROUP, and a gateway
        /// connection with remote_auth = "cert" gives the user
        /// [connections.X.groups.GROUP]'s pool, DNS and subnets.
        #[arg(long, value_name = "GROUP", conflicts_with = "server")]
        ou: Option<String>,
        /// Key algorithm.
        #[arg(long = "type", value_enum, default_value_t)]
        key_type: KeyType,
        /// Validity in days (Apple devices accept at most 825).
        #[arg(long, default_value_t = crate::pki::CERT_DAYS)]
        days: u32,
    },
    /// Revoke NAME's certificate and write a new crl.pem.
    Revoke { name: String },
    /// Write a fresh crl.pem (run it before the previous one's next update, e.g. weekly from cron).
    Crl {
        /// Days until the CRL's next update.
        #[arg(long, default_value_t = crate::pki::CRL_DAYS)]
        days: u32,
    },
    /// Write exports/NAME.p12 (key, certificate, CA) for a client device.
    Export {
        name: String,
        /// Read the passphrase from this file (first line); else from
        /// $OXISEC_PKI_PASSPHRASE; else a random one is made and printed.
        #[arg(long, value_name = "FILE")]
        passphrase_file: Option<PathBuf>,
        /// 3DES and an SHA-1 MAC instead of AES-256 and SHA-256, for old
        /// macOS/iOS and Windows versions.
        #[arg(long)]
        legacy: bool,
    },
    /// List issued certificates with serial, expiry and status.
    List,
}

fn parse_secs(s: &str) -> Result<Duration, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !(v.is_finite() && v > 0.0 && v <= 3600.0) {
        return Err(format!(
            "{s}: expected a number of seconds between 0 and 3600"
        ));
    }
    Ok(Duration::from_secs_f64(v))
}

/// What `terminate` (or `rekey`) was asked to act on, after resolving the
/// bare `--child`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaTarget {
    Ike {
        connection: String,
    },
    Child {
        connection: Option<String>,
        child: String,
    },
}

/// The name `terminate` has always used for [`SaTarget`].
pub type TerminateTarget = SaTarget;

impl SaTarget {
    pub fn from_args(name: &str, child: Option<&str>) -> SaTarget {
        match child {
            None => SaTarget::Ike {
                connection: name.to_string(),
            },
            Some("") => SaTarget::Child {
                connection: None,
                child: name.to_string(),
            },
            Some(c) => SaTarget::Child {
                connection: Some(name.to_string()),
                child: c.to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Command {
        Cli::try_parse_from(std::iter::once("oxisec").chain(args.iter().copied()))
            .unwrap()
            .command
    }

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_run() {
        assert_eq!(
            parse(&["run", "--config", "/etc/oxisec.toml"]),
            Command::Run {
                config: "/etc/oxisec.toml".into(),
                socket: None
            }
        );
        assert_eq!(
            parse(&["run", "-c", "a.toml", "--socket", "/tmp/s"]),
            Command::Run {
                config: "a.toml".into(),
                socket: Some("/tmp/s".into())
            }
        );
        assert!(Cli::try_parse_from(["oxisec", "run"]).is_err());
    }

    #[test]
    fn parses_status_initiate_check() {
        assert_eq!(
            parse(&["status", "--json"]),
            Command::Status {
                json: true,
                socket: None
            }
        );
        assert_eq!(
            parse(&["initiate", "site-b", "--child", "lan", "--timeout", "5"]),
            Command::Initiate {
                name: "site-b".into(),
                child: Some("lan".into()),
                timeout: Duration::from_secs(5),
                socket: None
            }
        );
        match parse(&["initiate", "site-b"]) {
            Command::Initiate { timeout, child, .. } => {
                assert_eq!(timeout, Duration::from_secs(30));
                assert_eq!(child, None);
            }
            c => panic!("{c:?}"),
        }
        assert!(Cli::try_parse_from(["oxisec", "initiate", "x", "--timeout", "-1"]).is_err());
        assert_eq!(
            parse(&["check-config", "x.toml"]),
            Command::CheckConfig {
                file: "x.toml".into()
            }
        );
    }

    #[test]
    fn parses_pki() {
        let pki = |args: &[&str]| match parse(args) {
            Command::Pki { dir, command } => (dir, command),
            c => panic!("{c:?}"),
        };
        assert_eq!(
            pki(&["pki", "init-ca", "--cn", "Example CA"]),
            (
                PathBuf::from("/etc/oxisec/pki"),
                PkiCommand::InitCa {
                    cn: "Example CA".into(),
                    key_type: KeyType::Ecdsa,
                    days: 3650,
                    crl_url: None
                }
            )
        );
        assert_eq!(
            pki(&[
                "pki",
                "issue",
                "--server",
                "vpn.example.com",
                "--ip",
                "192.0.2.1",
                "--type",
                "rsa",
                "--dir",
                "/tmp/p"
            ]),
            (
                PathBuf::from("/tmp/p"),
                PkiCommand::Issue {
                    server: Some("vpn.example.com".into()),
                    client: None,
                    ip: vec!["192.0.2.1".parse().unwrap()],
                    dns: vec![],
                    email: vec![],
                    ou: None,
                    key_type: KeyType::Rsa,
                    days: 825
                }
            )
        );
        assert_eq!(
            pki(&[
                "pki",
                "issue",
                "--client",
                "frank@example.org",
                "--ou",
                "staff"
            ])
            .1,
            PkiCommand::Issue {
                server: None,
                client: Some("frank@example.org".into()),
                ip: vec![],
                dns: vec![],
                email: vec![],
                ou: Some("staff".into()),
                key_type: KeyType::Ecdsa,
                days: 825
            }
        );
        assert_eq!(
            pki(&[
                "pki",
                "--dir",
                "/tmp/p",
                "export",
                "a@b.example",
                "--legacy"
            ])
            .1,
            PkiCommand::Export {
                name: "a@b.example".into(),
                passphrase_file: None,
                legacy: true
            }
        );
        let bad = |args: &[&str]| {
            Cli::try_parse_from(std::iter::once("oxisec").chain(args.iter().copied())).is_err()
        };
        assert!(bad(&["pki", "issue"]));
        assert!(bad(&["pki", "issue", "--server", "a", "--client", "b"]));
        // A gateway is in no user group; one OU per certificate.
        assert!(bad(&["pki", "issue", "--server", "a", "--ou", "staff"]));
        assert!(bad(&[
            "pki",
            "issue",
            "--client",
            "a@b.example",
            "--ou",
            "x",
            "--ou",
            "y"
        ]));
        assert!(bad(&["pki", "init-ca"]));
        assert!(bad(&["pki", "init-ca", "--cn", "x", "--type", "dsa"]));
        assert!(bad(&["pki", "issue", "--client", "a", "--ip", "nope"]));
    }

    #[test]
    fn terminate_child_forms() {
        let t = |args: &[&str]| match parse(args) {
            Command::Terminate { name, child, .. } => {
                TerminateTarget::from_args(&name, child.as_deref())
            }
            c => panic!("{c:?}"),
        };
        assert_eq!(
            t(&["terminate", "site-b"]),
            TerminateTarget::Ike {
                connection: "site-b".into()
            }
        );
        assert_eq!(
            t(&["terminate", "site-b", "--child", "lan"]),
            TerminateTarget::Child {
                connection: Some("site-b".into()),
                child: "lan".into()
            }
        );
        assert_eq!(
            t(&["terminate", "lan", "--child"]),
            TerminateTarget::Child {
                connection: None,
                child: "lan".into()
            }
        );
    }

    #[test]
    fn rekey_forms() {
        let t = |args: &[&str]| match parse(args) {
            Command::Rekey {
                name,
                child,
                timeout,
                socket,
            } => (
                SaTarget::from_args(&name, child.as_deref()),
                timeout,
                socket,
            ),
            c => panic!("{c:?}"),
        };
        assert_eq!(
            t(&["rekey", "site-b"]),
            (
                SaTarget::Ike {
                    connection: "site-b".into()
                },
                Duration::from_secs(30),
                None
            )
        );
        assert_eq!(
            t(&["rekey", "site-b", "--child", "lan", "--timeout", "2.5"]).0,
            SaTarget::Child {
                connection: Some("site-b".into()),
                child: "lan".into()
            }
        );
        assert_eq!(
            t(&["rekey", "site-b", "--child", "lan", "--timeout", "2.5"]).1,
            Duration::from_millis(2500)
        );
        assert_eq!(
            t(&["rekey", "lan", "--child", "--socket", "/tmp/s"]),
            (
                SaTarget::Child {
                    connection: None,
                    child: "lan".into()
                },
                Duration::from_secs(30),
                Some("/tmp/s".into())
            )
        );
        assert!(Cli::try_parse_from(["oxisec", "rekey"]).is_err());
        assert!(Cli::try_parse_from(["oxisec", "rekey", "x", "--timeout", "0"]).is_err());
        assert!(Cli::try_parse_from(["oxisec", "rekey", "x", "--ike"]).is_err());
    }
}
