//! What each subcommand does; `main` only parses and dispatches.
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use zeroize::Zeroizing;

use crate::cli::{Cli, Command, PkiCommand, SaTarget};
use crate::config;
use crate::control::{self, Request, Response};
use crate::pki::{IssueRequest, Pki, PkiError, Profile};
use crate::status;

/// Extra time the client waits beyond the daemon's own deadline, so that the
/// daemon's "timed out" answer (which says more) arrives first.
const CLIENT_MARGIN: Duration = Duration::from_secs(5);

pub fn dispatch(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Run { config, socket } => run(&config, socket),
        Command::Status { json, socket } => status_cmd(json, &socket_path(socket)),
        Command::Initiate {
            name,
            child,
            timeout,
            socket,
        } => {
            let req = Request::Initiate {
                connection: name,
                child,
                timeout_ms: timeout.as_millis() as u64,
            };
            wait_cmd(&socket_path(socket), &req, timeout)
        }
        Command::Terminate {
            name,
            child,
            timeout,
            socket,
        } => {
            let timeout_ms = timeout.as_millis() as u64;
            let req = match SaTarget::from_args(&name, child.as_deref()) {
                SaTarget::Ike { connection } => Request::Terminate {
                    connection: Some(connection),
                    child: None,
                    timeout_ms,
                },
                SaTarget::Child { connection, child } => Request::Terminate {
                    connection,
                    child: Some(child),
                    timeout_ms,
                },
            };
            wait_cmd(&socket_path(socket), &req, timeout)
        }
        Command::Rekey {
            name,
            child,
            timeout,
            socket,
        } => {
            let req = rekey_request(SaTarget::from_args(&name, child.as_deref()), timeout);
            wait_cmd(&socket_path(socket), &req, timeout)
        }
        Command::CheckConfig { file } => check_config(&file),
        Command::Proposals { legacy } => {
            out(&crate::proposals::render(legacy));
            ExitCode::SUCCESS
        }
        Command::Demo { keep } => crate::demo::run(keep),
        Command::Pki { dir, command } => match pki_cmd(&dir, command) {
            Ok(text) => {
                out(&text);
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("oxisec pki: {e}");
                ExitCode::FAILURE
            }
        },
        Command::User(args) => crate::users::run(args),
        Command::Profile(args) => crate::profile::run(args),
    }
}

/// `oxisec pki …`: does the work, returns what to print.
pub fn pki_cmd(dir: &Path, command: PkiCommand) -> Result<String, PkiError> {
    match command {
        PkiCommand::InitCa {
            cn,
            key_type,
            days,
            crl_url,
        } => {
            let p = Pki::init_ca(dir, &cn, key_type, days, crl_url.as_deref())?;
            Ok(format!(
                "created CA {cn:?} in {}\n  certificate: {} (install it on every peer as trusted CA)\n  key:         {} (keep it secret)\n  CRL:         {}\n",
                dir.display(),
                p.ca_cert_path().display(),
                p.ca_key_path().display(),
                p.crl_path().display()
            ))
        }
        PkiCommand::Issue {
            server,
            client,
            ip,
            dns,
            email,
            ou,
            key_type,
            days,
        } => {
            let p = Pki::open(dir)?;
            let (name, profile) = match (server, client) {
                (Some(n), _) => (n, Profile::Server),
                (None, Some(n)) => (n, Profile::Client),
                (None, None) => return Err(PkiError("--server or --client is required".into())),
            };
            let req = IssueRequest {
                name: name.clone(),
                profile,
                dns,
                ips: ip,
                emails: email,
                ou,
                key_type,
                days,
            };
            let e = p.issue(&req)?;
            let mut text = format!(
                "issued {} certificate {} (serial {}, valid until {})\n  certificate: {}\n  key:         {}\n",
                match profile {
                    Profile::Server => "gateway",
                    Profile::Client => "client",
                },
                e.subject,
                e.serial,
                crate::pki::not_after_text(&e),
                p.cert_path(&name).display(),
                p.key_path(&name).display()
            );
            if profile == Profile::Client {
                text.push_str(&format!(
                    "  for a device: oxisec pki export {name}{}\n",
                    if dir == Path::new(crate::pki::DEFAULT_DIR) {
                        String::new()
                    } else {
                        format!(" --dir {}", dir.display())
                    }
                ));
            }
            Ok(text)
        }
        PkiCommand::Revoke { name } => {
            let p = Pki::open(dir)?;
            let done = p.revoke(&name)?;
            let serials: Vec<&str> = done.iter().map(|e| e.serial.as_str()).collect();
            Ok(format!(
                "revoked {name} (serial {}); new CRL {}: copy it to the gateways (crls = [...]) or publish it at the CRL URL\n",
                serials.join(", "),
                p.crl_path().display()
            ))
        }
        PkiCommand::Crl { days } => {
            let p = Pki::open(dir)?;
            let path = p.write_crl(days)?;
            Ok(format!(
                "wrote {} (next update in {days} days)\n",
                path.display()
            ))
        }
        PkiCommand::Export {
            name,
            passphrase_file,
            legacy,
        } => {
            let p = Pki::open(dir)?;
            let (pass, generated) = match passphrase_file {
                Some(f) => {
                    let raw = Zeroizing::new(
                        std::fs::read_to_string(&f)
                            .map_err(|e| PkiError(format!("cannot read {}: {e}", f.display())))?,
                    );
                    let line = raw.lines().next().unwrap_or("");
                    (Zeroizing::new(line.to_owned()), false)
                }
                None => match std::env::var("OXISEC_PKI_PASSPHRASE") {
                    Ok(v) => (Zeroizing::new(v), false),
                    Err(_) => (crate::pki::random_passphrase(), true),
                },
            };
            if pass.is_empty() {
                return Err(PkiError(
                    "empty passphrase: clients refuse or mishandle unprotected PKCS#12 files"
                        .into(),
                ));
            }
            let path = p.export(&name, &pass, legacy)?;
            let mut text = format!("wrote {}\n", path.display());
            if generated {
                text.push_str(&format!(
                    "passphrase: {} (give it to the user separately from the file)\n",
                    pass.as_str()
                ));
            }
            Ok(text)
        }
        PkiCommand::List => Pki::open(dir)?.list_text(),
    }
}

/// The control request for `oxisec rekey`.
pub fn rekey_request(target: SaTarget, timeout: Duration) -> Request {
    let timeout_ms = timeout.as_millis() as u64;
    match target {
        SaTarget::Ike { connection } => Request::Rekey {
            connection: Some(connection),
            child: None,
            timeout_ms,
        },
        SaTarget::Child { connection, child } => Request::Rekey {
            connection,
            child: Some(child),
            timeout_ms,
        },
    }
}

/// `--socket`, else the default path. (The client does not read the
/// daemon's config file: it may not be allowed to, and need not.)
fn socket_path(socket: Option<PathBuf>) -> PathBuf {
    socket.unwrap_or_else(|| PathBuf::from(config::DEFAULT_SOCKET))
}

/// Logging to stderr; `RUST_LOG` overrides the configured level.
pub fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

fn run(config_path: &Path, socket: Option<PathBuf>) -> ExitCode {
    let loaded = match config::load(config_path) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("oxisec: {e}");
            return ExitCode::FAILURE;
        }
    };
    init_logging(&loaded.daemon.log_level);
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    tracing::info!(
        "oxisec {} starting with {} ({} connection(s))",
        env!("CARGO_PKG_VERSION"),
        config_path.display(),
        loaded.ike.connections.len()
    );
    match crate::daemon::run(loaded, socket) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn check_config(file: &Path) -> ExitCode {
    match config::load(file) {
        Ok(l) => {
            for w in &l.warnings {
                eprintln!("warning: {w}");
            }
            out(&config::summary(&l));
            out(&format!("{}: OK\n", file.display()));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn status_cmd(json: bool, socket: &Path) -> ExitCode {
    match control::request(socket, &Request::Status, Duration::from_secs(10), |_| {}) {
        Ok(Response::Status(report)) => {
            if json {
                match serde_json::to_string_pretty(&report) {
                    Ok(s) => out(&format!("{s}\n")),
                    Err(e) => {
                        eprintln!("oxisec: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            } else {
                out(&status::render(&report));
            }
            ExitCode::SUCCESS
        }
        Ok(Response::Error { message }) => {
            eprintln!("oxisec: {message}");
            ExitCode::FAILURE
        }
        Ok(other) => {
            eprintln!("oxisec: unexpected answer from the daemon: {other:?}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("oxisec: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `initiate` / `terminate`: prints progress as it comes, then the outcome.
fn wait_cmd(socket: &Path, req: &Request, timeout: Duration) -> ExitCode {
    let res = control::request(socket, req, timeout + CLIENT_MARGIN, |m| {
        out(&format!("{m}\n"))
    });
    match res {
        Ok(Response::Ok { message }) => {
            out(&format!("{message}\n"));
            ExitCode::SUCCESS
        }
        Ok(Response::Error { message }) => {
            eprintln!("failed: {message}");
            ExitCode::FAILURE
        }
        Ok(other) => {
            eprintln!("oxisec: unexpected answer from the daemon: {other:?}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("oxisec: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Writes to stdout; a closed pipe (`oxisec status | head`) is not an error.
fn out(s: &str) {
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(s.as_bytes()).and_then(|()| o.flush());
}
