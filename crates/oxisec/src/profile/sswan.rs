//! strongSwan VPN client for Android: the `.sswan` JSON profile.
//!
//! Keys as read by the app's profile import (strongSwan's Android
//! frontend, `VpnProfileImportActivity.parseProfile`, documented at
//! docs.strongswan.org "Android VPN client profiles"): `uuid`, `name`,
//! `type` (`ikev2-eap`, `ikev2-cert`, `ikev2-cert-eap`, `ikev2-eap-tls`:
//! the app's VpnType names), `remote.addr`,
//! `remote.port`, `remote.id`, `remote.cert` (base64 of the CA or server
//! certificate), `local.eap_id`, `local.id`, `local.p12` (base64 PKCS#12;
//! the app asks for its passphrase), `ike-proposal` / `esp-proposal` in
//! strongSwan's proposal syntax (one proposal each, validated by the app),
//! and `split-tunneling.subnets`. Importing a profile with a known UUID
//! updates the existing one.
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use super::{ClientAuth, Output, Profile, ProfileError, algs};

/// The profile as JSON; without the PKCS#12 when `with_p12` is false (for
/// QR codes: the app then asks to pick an installed certificate).
pub(super) fn to_json(p: &Profile, with_p12: bool) -> Value {
    let kind = match p.creds.auth {
        ClientAuth::Eap => "ikev2-eap",
        ClientAuth::Cert => "ikev2-cert",
        ClientAuth::CertEap => "ikev2-cert-eap",
        ClientAuth::EapTls => "ikev2-eap-tls",
    };
    let mut remote = json!({
        "addr": p.gateway.address,
        "id": p.gateway_id(),
    });
    if p.gateway.port != 500 {
        remote["port"] = json!(p.gateway.port);
    }
    if let Some(ca) = &p.creds.ca_der {
        remote["cert"] = json!(STANDARD.encode(ca));
    }
    let mut local = json!({});
    if p.creds.auth.uses_eap() {
        local["eap_id"] = json!(p.creds.user);
    }
    if p.creds.auth.uses_cert() {
        local["id"] = json!(p.creds.local_id);
        if with_p12 && let Some(p12) = &p.creds.p12 {
            local["p12"] = json!(STANDARD.encode(p12.as_slice()));
        }
    }
    let mut v = json!({
        "uuid": p.uuid,
        "name": p.name,
        "type": kind,
        "remote": remote,
        "local": local,
    });
    // The app takes one proposal per SA; the gateway's first is its
    // preference. Without one the app sends its own defaults.
    if let Some(ike) = p.gateway.ike_proposals.first() {
        v["ike-proposal"] = json!(algs::ike_keywords(ike));
    }
    if let Some(esp) = p.gateway.esp_proposals.first() {
        v["esp-proposal"] = json!(algs::esp_keywords(esp));
    }
    if !p.gateway.subnets.is_empty() {
        v["split-tunneling"] = json!({ "subnets": p.gateway.subnet_strings() });
    }
    v
}

pub(super) fn render(p: &Profile, with_p12: bool) -> Result<Output, ProfileError> {
    let v = to_json(p, with_p12);
    let text = serde_json::to_vec_pretty(&v)
        .map_err(|e| ProfileError::Config(format!("cannot write JSON: {e}")))?;
    let mut main = Zeroizing::new(text);
    main.push(b'\n');
    Ok(Output {
        main,
        companions: Vec::new(),
        instructions:
            "Open the file with the strongSwan VPN Client on Android (Import VPN profile).\n".into(),
    })
}
