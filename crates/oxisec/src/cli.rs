//! The command line: one binary that is both the daemon (`oxisec run`) and
//! its control client (`status`, `initiate`, `terminate`, `rekey`).
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

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
