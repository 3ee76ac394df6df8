//! Apple configuration profile (`.mobileconfig`) for the built-in IKEv2
//! client of macOS and iOS.
//!
//! Structure per Apple's Device Management reference (developer.apple.com,
//! "VPN" and "VPN.IKEv2"): a top-level `Configuration` payload whose
//! `PayloadContent` holds a `com.apple.security.root` payload with the CA
//! (DER in `PayloadContent`), for certificate authentication a
//! `com.apple.security.pkcs12` payload with the bundle, and a
//! `com.apple.vpn.managed` payload with `VPNType` = `IKEv2` and the `IKEv2`
//! dictionary: `RemoteAddress`, `RemoteIdentifier`, `LocalIdentifier`,
//! `AuthenticationMethod` (`None` or `Certificate`: how the client proves
//! itself in IKE; the server is always checked by certificate),
//! `ExtendedAuthEnabled` (EAP), `AuthName`, `PayloadCertificateUUID` (the
//! pkcs12 payload), `IKESecurityAssociationParameters` and
//! `ChildSecurityAssociationParameters` (`EncryptionAlgorithm`,
//! `IntegrityAlgorithm`, `DiffieHellmanGroup`, `LifeTimeInMinutes`) and
//! `EnablePFS`. The pkcs12 payload carries no `Password`: the device asks
//! for the passphrase when the profile is installed.
use plist::{Dictionary, Value};
use zeroize::Zeroizing;

use super::{Output, Profile, ProfileError, algs};

fn s(v: &str) -> Value {
    Value::String(v.to_owned())
}

fn int(v: i64) -> Value {
    Value::Integer(v.into())
}

fn payload(kind: &str, id: &str, uuid: String, name: &str) -> Dictionary {
    let mut d = Dictionary::new();
    d.insert("PayloadType".into(), s(kind));
    d.insert("PayloadVersion".into(), int(1));
    d.insert("PayloadIdentifier".into(), s(id));
    d.insert("PayloadUUID".into(), Value::String(uuid));
    d.insert("PayloadDisplayName".into(), s(name));
    d
}

/// Apple's `CertificateType` for the user's key.
fn certificate_type(alg: &str) -> Option<&'static str> {
    match alg {
        a if a.starts_with("RSA") => Some("RSA"),
        "ECDSA P-256" => Some("ECDSA256"),
        "ECDSA P-384" => Some("ECDSA384"),
        "ECDSA P-521" => Some("ECDSA521"),
        "Ed25519" => Some("Ed25519"),
        _ => None,
    }
}

/// A reverse-DNS identifier prefix from the gateway address.
fn ident_base(p: &Profile) -> String {
    let host: String = p
        .gateway
        .address
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!(
        "net.oxisec.vpn.{host}.{}",
        p.creds
            .user
            .replace(|c: char| !c.is_ascii_alphanumeric(), "-")
    )
}

pub(super) fn render(p: &Profile) -> Result<Output, ProfileError> {
    let ike = algs::apple_ike(&p.gateway.ike_proposals)?;
    let child = algs::apple_child(&p.gateway.esp_proposals, &ike)?;
    let base = ident_base(p);
    let mut content: Vec<Value> = Vec::new();

    if let Some(ca) = &p.creds.ca_der {
        let mut d = payload(
            "com.apple.security.root",
            &format!("{base}.ca"),
            p.sub_uuid("ca"),
            "oxisec VPN CA",
        );
        d.insert("PayloadCertificateFileName".into(), s("ca.cer"));
        d.insert("PayloadContent".into(), Value::Data(ca.clone()));
        content.push(Value::Dictionary(d));
    }
    let p12_uuid = p.sub_uuid("pkcs12");
    if p.creds.auth.uses_cert() {
        let data = p.creds.p12.as_ref().ok_or_else(|| {
            ProfileError::Config("certificate authentication needs the PKCS#12 bundle".into())
        })?;
        let mut d = payload(
            "com.apple.security.pkcs12",
            &format!("{base}.identity"),
            p12_uuid.clone(),
            &format!("{} (VPN)", p.creds.user),
        );
        d.insert(
            "PayloadCertificateFileName".into(),
            s(&format!("{}.p12", p.creds.user)),
        );
        d.insert("PayloadContent".into(), Value::Data(data.to_vec()));
        content.push(Value::Dictionary(d));
    }

    let mut sa = Dictionary::new();
    sa.insert("EncryptionAlgorithm".into(), s(ike.encryption));
    sa.insert("IntegrityAlgorithm".into(), s(ike.integrity));
    sa.insert("DiffieHellmanGroup".into(), int(ike.dh_group.into()));
    sa.insert("LifeTimeInMinutes".into(), int(1440));
    let mut csa = Dictionary::new();
    csa.insert("EncryptionAlgorithm".into(), s(child.encryption));
    csa.insert("IntegrityAlgorithm".into(), s(child.integrity));
    csa.insert(
        "DiffieHellmanGroup".into(),
        int(child.pfs_group.unwrap_or(ike.dh_group).into()),
    );
    csa.insert("LifeTimeInMinutes".into(), int(60));

    let mut ikev2 = Dictionary::new();
    ikev2.insert("RemoteAddress".into(), s(&p.gateway.address));
    ikev2.insert("RemoteIdentifier".into(), s(&p.gateway_id()));
    ikev2.insert("LocalIdentifier".into(), s(&p.creds.local_id));
    if p.creds.auth.uses_cert() {
        ikev2.insert("AuthenticationMethod".into(), s("Certificate"));
        ikev2.insert("PayloadCertificateUUID".into(), Value::String(p12_uuid));
        if let Some(t) = p.creds.key_algorithm.as_deref().and_then(certificate_type) {
            ikev2.insert("CertificateType".into(), s(t));
        }
    } else {
        ikev2.insert("AuthenticationMethod".into(), s("None"));
    }
    // EAP-TLS is EAP with the identity certificate and no user name: the
    // client picks the method the gateway asks for, and
    // AuthenticationMethod only says how it checks the gateway's AUTH.
    ikev2.insert(
        "ExtendedAuthEnabled".into(),
        int(p.creds.auth.extended_auth().into()),
    );
    if p.creds.auth.uses_eap() {
        ikev2.insert("AuthName".into(), s(&p.creds.user));
    }
    ikev2.insert(
        "IKESecurityAssociationParameters".into(),
        Value::Dictionary(sa),
    );
    ikev2.insert(
        "ChildSecurityAssociationParameters".into(),
        Value::Dictionary(csa),
    );
    ikev2.insert("EnablePFS".into(), int(child.pfs_group.is_some().into()));
    ikev2.insert("DeadPeerDetectionRate".into(), s("Medium"));
    ikev2.insert("DisableMOBIKE".into(), int(0));
    ikev2.insert("DisableRedirect".into(), int(0));
    ikev2.insert("EnableCertificateRevocationCheck".into(), int(0));
    ikev2.insert("UseConfigurationAttributeInternalIPSubnet".into(), int(0));

    let mut vpn = payload(
        "com.apple.vpn.managed",
        &format!("{base}.vpn"),
        p.sub_uuid("vpn"),
        &p.name,
    );
    vpn.insert("UserDefinedName".into(), s(&p.name));
    vpn.insert("VPNType".into(), s("IKEv2"));
    vpn.insert("IKEv2".into(), Value::Dictionary(ikev2));
    let mut ipv4 = Dictionary::new();
    // Full tunnel unless the gateway names the subnets behind it.
    ipv4.insert(
        "OverridePrimary".into(),
        int(p.gateway.subnets.is_empty().into()),
    );
    vpn.insert("IPv4".into(), Value::Dictionary(ipv4));
    content.push(Value::Dictionary(vpn));

    let mut top = payload("Configuration", &base, p.uuid.clone(), &p.name);
    top.insert("PayloadContent".into(), Value::Array(content));
    top.insert("PayloadRemovalDisallowed".into(), Value::Boolean(false));
    let mut out = Zeroizing::new(Vec::new());
    Value::Dictionary(top)
        .to_writer_xml(&mut *out)
        .map_err(|e| ProfileError::Config(format!("cannot write the plist: {e}")))?;
    let instructions = format!(
        "Open the file on the Mac or iPhone and install it in Settings (Profile Downloaded).{}\n",
        if p.creds.auth.uses_cert() {
            " It asks for the PKCS#12 passphrase."
        } else {
            " The device asks for the user's password when connecting."
        }
    );
    Ok(Output {
        main: out,
        companions: Vec::new(),
        instructions,
    })
}
