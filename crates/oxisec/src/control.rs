//! The control socket: a Unix stream socket speaking JSON lines.
//!
//! One connection carries one request line from the client; the daemon
//! answers with zero or more `progress` lines and one final line (`ok`,
//! `error` or `status`), then closes. Lines are bounded so that a confused
//! or hostile local client cannot make the daemon allocate without limit.
//!
//! Access control is layered: the directory is 0700, the socket 0600, and
//! every connection's peer credentials (SO_PEERCRED) must name root or the
//! daemon's own user — the socket can tear down every tunnel.
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::status::StatusReport;

/// Longest request line the daemon reads.
pub const MAX_REQUEST: usize = 64 * 1024;
/// Longest response line the client reads (a status of many SAs is large).
pub const MAX_RESPONSE: usize = 16 * 1024 * 1024;

/// A client's request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    Status,
    /// Bring up `connection` (and `child`, or its children) and report when
    /// the CHILD_SA is installed or the attempt failed.
    Initiate {
        connection: String,
        #[serde(default)]
        child: Option<String>,
        /// How long the daemon waits for the outcome before answering
        /// `error` (the attempt itself continues).
        timeout_ms: u64,
    },
    /// Delete the connection's IKE SAs, or only the named CHILD_SAs. With
    /// only `child` set, the child is looked up in every connection.
    Terminate {
        #[serde(default)]
        connection: Option<String>,
        #[serde(default)]
        child: Option<String>,
        timeout_ms: u64,
    },
    /// Rekey the connection's IKE SAs, or only the named CHILD_SAs (with
    /// only `child` set, looked up in every connection), and report when
    /// the new SAs have taken over.
    Rekey {
        #[serde(default)]
        connection: Option<String>,
        #[serde(default)]
        child: Option<String>,
        timeout_ms: u64,
    },
}

/// One line of the daemon's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Response {
    /// Something happened on the way (IKE SA up, …); more lines follow.
    Progress { message: String },
    /// Final: success.
    Ok { message: String },
    /// Final: failure.
    Error { message: String },
    /// Final: the answer to [`Request::Status`].
    Status(StatusReport),
}

impl Response {
    pub fn is_final(&self) -> bool {
        !matches!(self, Response::Progress { .. })
    }
    pub fn ok(message: impl Into<String>) -> Response {
        Response::Ok {
            message: message.into(),
        }
    }
    pub fn error(message: impl Into<String>) -> Response {
        Response::Error {
            message: message.into(),
        }
    }
    pub fn progress(message: impl Into<String>) -> Response {
        Response::Progress {
            message: message.into(),
        }
    }
}

/// Serializes one message as a JSON line (with the trailing newline).
pub fn encode<T: Serialize>(msg: &T) -> String {
    // Serialization of these plain types cannot fail; keep a line anyway.
    let mut s = serde_json::to_string(msg)
        .unwrap_or_else(|e| format!("{{\"type\":\"error\",\"message\":\"encode: {e}\"}}"));
    s.push('\n');
    s
}

pub fn decode_request(line: &str) -> Result<Request, String> {
    serde_json::from_str(line.trim_end()).map_err(|e| format!("malformed request: {e}"))
}

pub fn decode_response(line: &str) -> Result<Response, String> {
    serde_json::from_str(line.trim_end()).map_err(|e| format!("malformed response: {e}"))
}

/// Errors of the client side, worded for the operator.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to {path}: {reason}")]
    Connect { path: PathBuf, reason: String },
    #[error("no answer from the daemon within {0:?}")]
    Timeout(Duration),
    #[error("the daemon closed the connection without an answer")]
    Closed,
    #[error("control socket: {0}")]
    Io(#[from] io::Error),
    #[error("{0}")]
    Protocol(String),
}

/// Sends one request and returns the final response, handing each progress
/// message to `on_progress` as it arrives. `timeout` bounds the wait for
/// each line.
pub fn request(
    socket: &Path,
    req: &Request,
    timeout: Duration,
    mut on_progress: impl FnMut(&str),
) -> Result<Response, ClientError> {
    let stream = StdUnixStream::connect(socket).map_err(|e| ClientError::Connect {
        path: socket.to_path_buf(),
        reason: match e.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => {
                "no daemon listening (is `oxisec run` running? use --socket for another path)"
                    .to_string()
            }
            io::ErrorKind::PermissionDenied => {
                "permission denied (the control socket is for root and the daemon's user)"
                    .to_string()
            }
            _ => e.to_string(),
        },
    })?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    (&stream).write_all(encode(req).as_bytes())?;
    let mut reader = BufReader::new(&stream).take(MAX_RESPONSE as u64);
    loop {
        let mut line = String::new();
        let n = reader.read_line(&mut line).map_err(|e| match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => ClientError::Timeout(timeout),
            _ => ClientError::Io(e),
        })?;
        if n == 0 {
            return Err(ClientError::Closed);
        }
        let resp = decode_response(&line).map_err(ClientError::Protocol)?;
        match resp {
            Response::Progress { message } => on_progress(&message),
            r => return Ok(r),
        }
        reader.set_limit(MAX_RESPONSE as u64);
    }
}

/// Creates the socket's directory (0700) when missing and binds the socket
/// with mode 0600. A stale socket file from a crashed daemon is replaced; a
/// live one (another daemon answers) or a non-socket file is an error.
pub fn bind(path: &Path) -> io::Result<tokio::net::UnixListener> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if StdUnixStream::connect(path).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("another daemon is listening on {}", path.display()),
                ));
            }
            std::fs::remove_file(path)?;
        }
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} exists and is not a socket", path.display()),
            ));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    // Bind with a umask that leaves no group/other bits, so the socket is
    // never reachable by others, not even between bind and chmod.
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
    let res = tokio::net::UnixListener::bind(path);
    nix::sys::stat::umask(old);
    let listener = res?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Whether a peer with `uid` may use the socket: root, or the daemon's own user.
pub fn authorized(peer_uid: u32, own_uid: u32) -> bool {
    peer_uid == 0 || peer_uid == own_uid
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_wire_format() {
        assert_eq!(encode(&Request::Status), "{\"cmd\":\"status\"}\n");
        let r = Request::Initiate {
            connection: "site-b".into(),
            child: Some("lan".into()),
            timeout_ms: 30000,
        };
        let line = encode(&r);
        assert_eq!(
            line,
            "{\"cmd\":\"initiate\",\"connection\":\"site-b\",\"child\":\"lan\",\"timeout_ms\":30000}\n"
        );
        assert_eq!(decode_request(&line).unwrap(), r);
        let t =
            decode_request("{\"cmd\":\"terminate\",\"child\":\"lan\",\"timeout_ms\":5}").unwrap();
        assert_eq!(
            t,
            Request::Terminate {
                connection: None,
                child: Some("lan".into()),
                timeout_ms: 5
            }
        );
    }

    #[test]
    fn rekey_wire_format() {
        use crate::cli::SaTarget;
        use crate::commands::rekey_request;
        let ike = rekey_request(
            SaTarget::Ike {
                connection: "site-b".into(),
            },
            Duration::from_secs(30),
        );
        let line = encode(&ike);
        assert_eq!(
            line,
            "{\"cmd\":\"rekey\",\"connection\":\"site-b\",\"child\":null,\"timeout_ms\":30000}\n"
        );
        assert_eq!(decode_request(&line).unwrap(), ike);
        let child = rekey_request(
            SaTarget::Child {
                connection: None,
                child: "lan".into(),
            },
            Duration::from_millis(1500),
        );
        assert_eq!(
            child,
            Request::Rekey {
                connection: None,
                child: Some("lan".into()),
                timeout_ms: 1500
            }
        );
        assert_eq!(decode_request(&encode(&child)).unwrap(), child);
        // Optional fields may be left out by other clients.
        assert_eq!(
            decode_request("{\"cmd\":\"rekey\",\"child\":\"lan\",\"timeout_ms\":5}").unwrap(),
            Request::Rekey {
                connection: None,
                child: Some("lan".into()),
                timeout_ms: 5
            }
        );
        assert!(decode_request("{\"cmd\":\"rekey\",\"connection\":\"x\"}").is_err());
        assert!(decode_request("{\"cmd\":\"rekey\",\"ike\":\"x\",\"timeout_ms\":5}").is_err());
    }

    #[test]
    fn rejects_malformed_requests() {
        for bad in [
            "",
            "{}",
            "{\"cmd\":\"reboot\"}",
            "{\"cmd\":\"initiate\"}",
            "[1,2]",
            "\u{0}",
        ] {
            assert!(decode_request(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn response_wire_format() {
        let p = Response::progress("IKE SA site-b established with 192.0.2.2");
        assert_eq!(
            encode(&p),
            "{\"type\":\"progress\",\"message\":\"IKE SA site-b established with 192.0.2.2\"}\n"
        );
        assert!(!p.is_final());
        let e = Response::error("no such connection");
        assert!(e.is_final());
        assert_eq!(decode_response(&encode(&e)).unwrap(), e);
        let s = Response::Status(StatusReport {
            version: "0.1.0".into(),
            pid: 1,
            uptime_secs: 2,
            dataplane: "none".into(),
            drops: Default::default(),
            connections: vec![],
            ike_sas: vec![],
            pools: vec![],
            ike_counters: Default::default(),
        });
        let line = encode(&s);
        assert!(
            line.starts_with("{\"type\":\"status\",\"version\":\"0.1.0\""),
            "{line}"
        );
        assert_eq!(decode_response(&line).unwrap(), s);
    }

    #[test]
    fn only_root_and_own_user() {
        assert!(authorized(0, 1000));
        assert!(authorized(1000, 1000));
        assert!(!authorized(1001, 1000));
    }

    #[tokio::test]
    async fn bind_sets_modes_and_replaces_stale_socket() {
        let dir = std::env::temp_dir().join(format!("oxisec-ctl-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("sub/oxisec.sock");
        let l = bind(&path).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        // A live socket is not stolen.
        assert!(bind(&path).is_err());
        drop(l);
        // A stale one is.
        let l = bind(&path).unwrap();
        drop(l);
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, b"x").unwrap();
        assert!(bind(&path).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn client_reads_progress_then_final() {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
        let dir = std::env::temp_dir().join(format!("oxisec-ctl2-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("s.sock");
        let l = bind(&path).unwrap();
        let server = tokio::spawn(async move {
            let (s, _) = l.accept().await.unwrap();
            let (r, mut w) = s.into_split();
            let mut line = String::new();
            tokio::io::BufReader::new(r)
                .read_line(&mut line)
                .await
                .unwrap();
            assert_eq!(decode_request(&line).unwrap(), Request::Status);
            w.write_all(encode(&Response::progress("one")).as_bytes())
                .await
                .unwrap();
            w.write_all(encode(&Response::ok("done")).as_bytes())
                .await
                .unwrap();
        });
        let p = path.clone();
        let got = tokio::task::spawn_blocking(move || {
            let mut progress = Vec::new();
            let r = request(&p, &Request::Status, Duration::from_secs(5), |m| {
                progress.push(m.to_string())
            })
            .unwrap();
            (progress, r)
        })
        .await
        .unwrap();
        server.await.unwrap();
        assert_eq!(got.0, vec!["one".to_string()]);
        assert_eq!(got.1, Response::ok("done"));
        let e = request(
            &dir.join("nothing.sock"),
            &Request::Status,
            Duration::from_secs(1),
            |_| {},
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("no daemon listening"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
