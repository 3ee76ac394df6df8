//! EAP through a RADIUS server in the configuration file: the gateway
//! relays its clients' EAP to the server (RFC 3579), so that the
//! company's user directory and MFA decide.
//!
//! ```toml
//! [daemon]
//! radius_servers = ["192.0.2.9:1812", "192.0.2.10"]   # tried in order; port 1812 by default
//! radius_secret_file = "radius.secret"                # mode 0600
//! radius_nas_identifier = "vpn-gw-1"                  # optional, default "oxisec"
//! radius_timeout = "25s"         # wait per server (push MFA needs time); default 20s
//!
//! [connections.rw]
//! local_auth = "cert"            # the gateway proves itself first
//! remote_auth = "eap-radius"     # clients: any EAP method the server runs
//! ```
//!
//! The gateway always asks the client for its EAP identity (EAP-Identity)
//! and sends that as RADIUS User-Name: native clients (Windows) use their
//! IP address as IKE identity, which names no user.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use oxisec_crypto::Secret;
use oxisec_ike::{Auth, EapRelay};
use toml::Spanned;

use super::{ConfigError, Cx, RawConnection};
use crate::radius::ClientConfig;

/// The `remote_auth` keyword.
pub(super) const KEYWORD: &str = "eap-radius";
/// Longest shared secret accepted (RFC 2865 puts no limit; a file of
/// kilobytes is a mistake).
const MAX_SECRET: usize = 128;
/// Shorter shared secrets draw a warning: they can be guessed offline
/// from one captured Access-Request.
const SECRET_WARN_LEN: usize = 16;

/// The `[daemon]` keys, as read by serde (fields of `RawDaemon`).
pub(super) struct RawRadius<'a> {
    pub servers: Option<&'a Spanned<Vec<Spanned<String>>>>,
    pub secret_file: Option<&'a Spanned<PathBuf>>,
    pub nas_identifier: Option<&'a Spanned<String>>,
    pub timeout: Option<&'a Spanned<super::RawDuration>>,
}

/// Retransmission interval of an Access-Request (RFC 5080 §2.2.1 suggests
/// a few seconds; a server that is busy with a push MFA deduplicates).
const RETRANSMIT: Duration = Duration::from_secs(3);
/// Default wait for one server's answer: room for a push MFA approval.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

/// `remote_auth = "eap-radius"`: the peer's credential, or `None` for any
/// other method. Certificate keys for the peer are refused (the RADIUS
/// server decides, not a CA).
pub(super) fn remote_auth(
    cx: &Cx<'_>,
    base: &str,
    raw: &RawConnection,
) -> Result<Option<Auth>, ConfigError> {
    let Some(v) = raw.remote_auth.as_ref() else {
        return Ok(None);
    };
    if v.get_ref() != KEYWORD {
        return Ok(None);
    }
    for (key, span) in [
        ("ca_certs", raw.ca_certs.as_ref().map(Spanned::span)),
        ("crls", raw.crls.as_ref().map(Spanned::span)),
        ("revocation", raw.revocation.as_ref().map(Spanned::span)),
        ("remote_eku", raw.remote_eku.as_ref().map(Spanned::span)),
    ] {
        if let Some(span) = span {
            return Err(cx.err(
                Some(span),
                format!("{base}.{key}"),
                "the peer authenticates with EAP through the RADIUS server (remote_auth = \"eap-radius\"); remove this key",
            ));
        }
    }
    Ok(Some(Auth::EapRelay(EapRelay { ask_identity: true })))
}

/// The RADIUS client settings from `[daemon]`; `None` without servers.
pub(super) fn client(
    cx: &Cx<'_>,
    raw: RawRadius<'_>,
    warnings: &mut Vec<ConfigError>,
) -> Result<Option<Arc<ClientConfig>>, ConfigError> {
    let Some(list) = raw.servers else {
        if let Some(f) = raw.secret_file {
            return Err(cx.err(
                Some(f.span()),
                "daemon.radius_secret_file",
                "set radius_servers too (or remove this key)",
            ));
        }
        return Ok(None);
    };
    let mut servers = Vec::new();
    for s in list.get_ref() {
        let text = s.get_ref().trim();
        let addr = text.parse::<SocketAddr>().ok().or_else(|| {
            text.parse::<IpAddr>()
                .ok()
                .map(|ip| SocketAddr::new(ip, 1812))
        });
        let Some(addr) = addr else {
            return Err(cx.err(
                Some(s.span()),
                "daemon.radius_servers",
                format!("{text:?} is not an address: use \"192.0.2.9\", \"192.0.2.9:1812\" or \"[2001:db8::9]:1812\""),
            ));
        };
        servers.push(addr);
    }
    if servers.is_empty() {
        return Err(cx.err(
            Some(list.span()),
            "daemon.radius_servers",
            "name at least one RADIUS server",
        ));
    }
    let n = servers.len() as u32;
    let total = match raw.timeout {
        None => DEFAULT_TIMEOUT,
        Some(t) => super::parse_duration(t.get_ref())
            .map_err(|m| cx.err(Some(t.span()), "daemon.radius_timeout", m))?,
    };
    // The engine waits RELAY_TIMEOUT for an answer; every server must get
    // its turn before that.
    let budget = oxisec_ike::eap::RELAY_TIMEOUT - Duration::from_secs(5);
    if total < Duration::from_secs(1) || total * n > budget {
        let span = raw.timeout.map(Spanned::span).unwrap_or(list.span());
        return Err(cx.err(
            Some(span),
            "daemon.radius_timeout",
            format!(
                "{n} server(s) × {}s must stay within {}s (the gateway's wait for an answer), and at least 1s each",
                total.as_secs(),
                budget.as_secs()
            ),
        ));
    }
    let Some(f) = raw.secret_file else {
        return Err(cx.err(
            Some(list.span()),
            "daemon.radius_servers",
            "needs radius_secret_file (the shared secret with the RADIUS servers, mode 0600)",
        ));
    };
    let field = "daemon.radius_secret_file";
    let secret = cx.secret_file(f, field)?;
    if secret.is_empty() || secret.len() > MAX_SECRET {
        return Err(cx.err(
            Some(f.span()),
            field,
            format!(
                "the RADIUS shared secret must be 1 to {MAX_SECRET} bytes, it is {}",
                secret.len()
            ),
        ));
    }
    if secret.len() < SECRET_WARN_LEN {
        warnings.push(cx.err(
            Some(f.span()),
            field,
            format!(
                "the RADIUS shared secret is only {} bytes long; use at least {SECRET_WARN_LEN} random characters",
                secret.len()
            ),
        ));
    }
    let mut cfg = ClientConfig::new(servers, Secret::from_slice(&secret));
    cfg.timeout = RETRANSMIT.min(total);
    cfg.tries = total.as_millis().div_ceil(cfg.timeout.as_millis()).max(1) as u32;
    if let Some(n) = raw.nas_identifier {
        let name = n.get_ref().trim();
        if name.is_empty() || name.len() > 253 || name.chars().any(char::is_control) {
            return Err(cx.err(
                Some(n.span()),
                "daemon.radius_nas_identifier",
                "1 to 253 printable characters",
            ));
        }
        cfg.nas_identifier = name.to_string();
    }
    Ok(Some(Arc::new(cfg)))
}

/// A connection relays EAP, but there is no RADIUS server to relay to.
pub(super) fn check_servers(
    cx: &Cx<'_>,
    name: &str,
    rc: &Spanned<RawConnection>,
    radius: Option<&Arc<ClientConfig>>,
) -> Result<(), ConfigError> {
    let uses = rc
        .get_ref()
        .remote_auth
        .as_ref()
        .filter(|v| v.get_ref() == KEYWORD);
    match (uses, radius) {
        (Some(v), None) => Err(cx.err(
            Some(v.span()),
            format!("connections.{name}.remote_auth"),
            "needs radius_servers and radius_secret_file in [daemon]",
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use crate::config::{Loaded, Resolver, parse};

    struct NoResolver;
    impl Resolver for NoResolver {
        fn resolve(&self, host: &str) -> Result<Vec<std::net::IpAddr>, String> {
            Err(format!("cannot resolve {host:?}"))
        }
    }

    fn parse_str_in(
        text: &str,
        dir: &std::path::Path,
    ) -> Result<Loaded, crate::config::ConfigError> {
        parse(text, &dir.join("gw.toml"), &NoResolver)
    }

    fn setup(mode: u32, secret: &str) -> tempdir::Dir {
        let d = tempdir::Dir::new();
        let f = d.0.join("radius.secret");
        std::fs::write(&f, secret).unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(mode)).unwrap();
        d
    }

    mod tempdir {
        pub struct Dir(pub std::path::PathBuf);
        impl Dir {
            pub fn new() -> Dir {
                use std::sync::atomic::{AtomicU32, Ordering};
                static N: AtomicU32 = AtomicU32::new(0);
                let p = std::env::temp_dir().join(format!(
                    "oxisec-radius-cfg-{}-{}",
                    std::process::id(),
                    N.fetch_add(1, Ordering::Relaxed)
                ));
                std::fs::create_dir_all(&p).unwrap();
                Dir(p)
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    const GW: &str = r#"
[connections.rw]
local_id = "@gw.example.com"
psk = "a long random gateway secret, really"
remote_auth = "eap-radius"
[connections.rw.children.net]
local_ts = ["10.1.0.0/16"]
remote_ts = ["dynamic"]
"#;

    #[test]
    fn accepts_servers_secret_and_eap_radius() {
        let d = setup(0o600, "a shared secret of some length\n");
        let text = format!(
            "[daemon]\nradius_servers = [\"192.0.2.9:1812\", \"192.0.2.10\", \"[2001:db8::9]:1645\"]\nradius_timeout = \"15s\"\nradius_secret_file = \"radius.secret\"\nradius_nas_identifier = \"gw-1\"\n{GW}"
        );
        let l = parse_str_in(&text, &d.0).unwrap();
        let r = l.radius.as_ref().unwrap();
        assert_eq!(
            r.servers,
            [
                "192.0.2.9:1812".parse().unwrap(),
                "192.0.2.10:1812".parse().unwrap(),
                "[2001:db8::9]:1645".parse().unwrap()
            ]
        );
        assert_eq!(r.secret.as_bytes(), b"a shared secret of some length");
        assert_eq!(r.nas_identifier, "gw-1");
        // 15 s per server in 3 s steps.
        assert_eq!((r.timeout.as_secs(), r.tries), (3, 5));
        assert!(!format!("{r:?}").contains("shared secret"));
        assert!(matches!(
            &l.ike.connections[0].remote_auth,
            oxisec_ike::Auth::EapRelay(e) if e.ask_identity
        ));
        assert!(matches!(
            &l.ike.connections[0].local_auth,
            oxisec_ike::Auth::Psk(_)
        ));
    }

    #[test]
    fn rejects_what_cannot_work() {
        let d = setup(0o644, "a shared secret of some length");
        let with = |daemon: &str, conn: &str| {
            parse_str_in(&format!("[daemon]\n{daemon}\n{conn}"), &d.0)
                .unwrap_err()
                .to_string()
        };
        let e = with("", GW);
        assert!(
            e.contains("needs radius_servers and radius_secret_file"),
            "{e}"
        );
        let e = with(
            "radius_servers = [\"192.0.2.9\"]\nradius_secret_file = \"radius.secret\"",
            GW,
        );
        assert!(e.contains("accessible by group/others"), "{e}");
        let e = with("radius_servers = [\"192.0.2.9\"]", GW);
        assert!(e.contains("needs radius_secret_file"), "{e}");
        let e = with("radius_servers = [\"radius.example\"]", GW);
        assert!(e.contains("is not an address"), "{e}");
        let e = with(
            "radius_servers = [\"192.0.2.9\", \"192.0.2.10\", \"192.0.2.11\"]\nradius_timeout = \"20s\"",
            GW,
        );
        assert!(e.contains("must stay within 55s"), "{e}");
        let e = with("radius_servers = []", GW);
        assert!(e.contains("at least one"), "{e}");
        let conn = GW.replace(
            "remote_auth = \"eap-radius\"",
            "remote_auth = \"eap-radius\"\nca_certs = [\"ca.crt\"]",
        );
        let e = with("", &conn);
        assert!(e.contains("remove this key"), "{e}");
    }
}
