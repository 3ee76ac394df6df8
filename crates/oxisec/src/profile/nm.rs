//! NetworkManager keyfile (`.nmconnection`) for the strongswan plugin
//! (NetworkManager-strongswan, charon-nm).
//!
//! `[vpn]` data items as read by the plugin's service (`nm_service.c`):
//! `address`, `certificate` (path of the CA or gateway certificate),
//! `method` (`eap` for user name and password, `key` for certificate and
//! private key files, also `psk`, `agent`, `smartcard`), `user`,
//! `usercert`, `userkey`, `virtual` (request a virtual IP), `encap`,
//! `ipcomp`; newer plugin versions add `proposal` = `yes` with `ike` and
//! `esp` (strongSwan proposal syntax, several proposals separated by `;`),
//! `remote-ts` (`;`-separated subnets, else 0.0.0.0/0 and ::/0),
//! `server-port` and `remote-identity` / `local-identity`; `method=key`
//! is still read as certificate and key files. The password (or key passphrase) is a secret the
//! NetworkManager agent asks for (`password-flags=2`, "not saved").
//!
//! The plugin reads certificates and keys from files, not PKCS#12, so the
//! CA is written next to the keyfile and the user's certificate and key
//! are referred to where `oxisec pki` keeps them; copy them to the same
//! paths on the client or edit the paths.
use std::fmt::Write as _;
use std::path::Path;

use zeroize::Zeroizing;

use super::{ClientAuth, Output, Profile, ProfileError, algs};

/// The service name NetworkManager knows the strongswan plugin by.
pub const SERVICE_TYPE: &str = "org.freedesktop.NetworkManager.strongswan";

/// Keyfile values cannot span lines; GLib key files escape `\n` etc. but
/// none of our values should carry them, so they are refused.
fn value(v: &str) -> Result<String, ProfileError> {
    if v.contains(['\n', '\r']) {
        return Err(ProfileError::Config(format!(
            "value {v:?} contains a line break"
        )));
    }
    Ok(v.replace('\\', "\\\\"))
}

fn pem(der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

pub(super) fn render(p: &Profile, stem: &str, dir: &Path) -> Result<Output, ProfileError> {
    let mut o = String::new();
    let ca_name = format!("{stem}-ca.crt");
    let _ = writeln!(o, "[connection]");
    let _ = writeln!(o, "id={}", value(&p.name)?);
    let _ = writeln!(o, "uuid={}", p.uuid);
    let _ = writeln!(o, "type=vpn");
    let _ = writeln!(o, "autoconnect=false");
    let _ = writeln!(o);
    let _ = writeln!(o, "[vpn]");
    let _ = writeln!(o, "service-type={SERVICE_TYPE}");
    let _ = writeln!(o, "address={}", value(&p.gateway.address)?);
    if p.creds.ca_der.is_some() {
        let _ = writeln!(
            o,
            "certificate={}",
            value(&dir.join(&ca_name).to_string_lossy())?
        );
    }
    if p.creds.auth == ClientAuth::EapTls {
        return Err(ProfileError::Unsupported(
            "the NetworkManager profile does not do EAP-TLS; use --auth cert with a gateway that checks certificates in IKE".into(),
        ));
    }
    if p.creds.auth.uses_cert() {
        if p.creds.auth.uses_eap() {
            return Err(ProfileError::Unsupported(
                "the NetworkManager strongswan plugin cannot do certificate plus EAP; use --auth eap or --auth cert".into(),
            ));
        }
        let cert = p.creds.cert_pem_path.as_deref().ok_or_else(|| {
            ProfileError::Config(
                "certificate authentication needs the user's certificate file".into(),
            )
        })?;
        let key = p.creds.key_path.as_deref().ok_or_else(|| {
            ProfileError::Config("certificate authentication needs the user's key file".into())
        })?;
        let _ = writeln!(o, "method=key");
        let _ = writeln!(o, "usercert={}", value(&cert.to_string_lossy())?);
        let _ = writeln!(o, "userkey={}", value(&key.to_string_lossy())?);
        let _ = writeln!(o, "local-identity={}", value(&p.creds.local_id)?);
    } else {
        let _ = writeln!(o, "method=eap");
        let _ = writeln!(o, "user={}", value(&p.creds.user)?);
    }
    let _ = writeln!(o, "password-flags=2");
    let _ = writeln!(o, "remote-identity={}", value(&p.gateway_id())?);
    if p.gateway.port != 500 {
        let _ = writeln!(o, "server-port={}", p.gateway.port);
    }
    if !p.gateway.subnets.is_empty() {
        let ts: Vec<String> = p
            .gateway
            .subnet_strings()
            .into_iter()
            .filter(|s| s.contains('/'))
            .collect();
        let _ = writeln!(o, "remote-ts={}", value(&ts.join(";"))?);
    }
    let _ = writeln!(o, "virtual=yes");
    let _ = writeln!(o, "encap=no");
    let _ = writeln!(o, "ipcomp=no");
    let _ = writeln!(o, "proposal=yes");
    // charon-nm splits `ike`, `esp` and `remote-ts` at ";".
    let join = |v: Vec<String>| v.join(";");
    let _ = writeln!(
        o,
        "ike={}",
        join(
            p.gateway
                .ike_proposals
                .iter()
                .map(algs::ike_keywords)
                .collect()
        )
    );
    let _ = writeln!(
        o,
        "esp={}",
        join(
            p.gateway
                .esp_proposals
                .iter()
                .map(algs::esp_keywords)
                .collect()
        )
    );
    let _ = writeln!(o);
    let _ = writeln!(o, "[ipv4]");
    let _ = writeln!(o, "method=auto");
    if !p.gateway.subnets.is_empty() {
        // Split tunnel: only the gateway's subnets go through the VPN.
        let _ = writeln!(o, "never-default=true");
        let mut n = 1;
        for s in p.gateway.subnet_strings() {
            if s.contains('/') && !s.contains(':') {
                let _ = writeln!(o, "route{n}={s}");
                n += 1;
            }
        }
    }
    let _ = writeln!(o);
    let _ = writeln!(o, "[ipv6]");
    let _ = writeln!(o, "method=auto");
    let mut companions = Vec::new();
    if let Some(ca) = &p.creds.ca_der {
        companions.push((
            "-ca.crt".to_owned(),
            Zeroizing::new(pem(ca).into_bytes()),
            false,
        ));
    }
    let mut instructions = format!(
        "Copy the keyfile to /etc/NetworkManager/system-connections/ (mode 0600) and run `nmcli connection reload`; the CA certificate must be at {}",
        dir.join(&ca_name).display()
    );
    if let (Some(c), Some(k)) = (&p.creds.cert_pem_path, &p.creds.key_path) {
        let _ = write!(
            instructions,
            ", the user's certificate at {} and key at {}",
            c.display(),
            k.display()
        );
    }
    instructions.push_str(".\n");
    Ok(Output {
        main: Zeroizing::new(o.into_bytes()),
        companions,
        instructions,
    })
}
