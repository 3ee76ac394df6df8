//! Each format checked with a parser of its own kind: plist with the plist
//! crate, sswan with serde_json, the NetworkManager keyfile as INI, the
//! oxisec profile with the daemon's configuration loader.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::*;

const PKI_DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../pki/tests/data");
/// The passphrase of the pki crate's PKCS#12 fixtures.
const P12_PASS: &str = "oxisec test";

const GATEWAY_TOML: &str = r#"
[pools.staff]
addrs = "10.3.0.0/24"

[connections.rw]
local_addrs = ["192.0.2.1"]
local_id = "vpn.example.com"
psk = "a long random secret, really long"
ike_proposals = ["aes256gcm16-prfsha384-ecp384", "aes256-sha256-modp2048"]
pools = ["staff"]
dns = ["198.51.100.53"]

[connections.rw.children.net]
local_ts = ["198.51.100.0/24", "203.0.113.0/24"]
remote_ts = ["dynamic"]
esp_proposals = ["aes256gcm16-ecp384", "aes256-sha256-modp2048"]

[connections.site]
remote_addrs = ["192.0.2.9"]
local_id = "vpn.example.com"
psk = "another long random secret, long"

[connections.site.children.s]
local_ts = ["10.1.0.0/16"]
remote_ts = ["10.2.0.0/16"]
"#;

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("oxisec-profile-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(PKI_DATA).join(name)).unwrap()
}

fn loaded() -> crate::config::Loaded {
    struct NoDns;
    impl crate::config::Resolver for NoDns {
        fn resolve(&self, h: &str) -> Result<Vec<IpAddr>, String> {
            Err(format!("no DNS in tests ({h})"))
        }
    }
    crate::config::parse(GATEWAY_TOML, Path::new("/etc/oxisec/oxisec.toml"), &NoDns).unwrap()
}

/// The `rw` gateway, authenticating with a certificate (the loader on
/// this branch only knows PSKs; the profile only needs to know which).
fn cert_gateway() -> Gateway {
    let l = loaded();
    let mut g = Gateway::from_connection(
        &l.ike.pools,
        pick_connection(&l.ike.connections, None).unwrap(),
        None,
    )
    .unwrap();
    g.auth = GatewayAuth::Cert;
    g
}

fn ca_der() -> Vec<u8> {
    oxisec_pki::Certificate::from_pem_or_der(&fixture("sw-ca.pem"))
        .unwrap()
        .remove(0)
        .der()
        .to_vec()
}

fn creds(auth: ClientAuth) -> UserCreds {
    let cert = auth.uses_cert();
    UserCreds {
        user: "alice".into(),
        auth,
        local_id: if cert {
            "moon.strongswan.org".into()
        } else {
            "alice".into()
        },
        ca_der: Some(ca_der()),
        p12: cert.then(|| Zeroizing::new(fixture("sw-moon.aes.p12"))),
        p12_passphrase: cert.then(|| Zeroizing::new(P12_PASS.to_owned())),
        key_algorithm: cert.then(|| "RSA-3072".to_owned()),
        cert_pem_path: cert.then(|| PathBuf::from("/etc/oxisec/pki/certs/alice.crt")),
        key_path: cert.then(|| PathBuf::from("/etc/oxisec/pki/private/alice.key")),
    }
}

fn profile(auth: ClientAuth) -> Profile {
    Profile::new(None, cert_gateway(), creds(auth))
}

fn text(o: &Output) -> String {
    String::from_utf8(o.main.to_vec()).unwrap()
}

#[test]
fn gateway_from_config() {
    let l = loaded();
    // Two connections, one without remote_addrs: that one is for clients.
    let c = pick_connection(&l.ike.connections, None).unwrap();
    assert_eq!(c.name, "rw");
    assert!(
        pick_connection(&l.ike.connections, Some("nope"))
            .unwrap_err()
            .to_string()
            .contains("rw, site")
    );
    let g = Gateway::from_connection(&l.ike.pools, c, None).unwrap();
    assert_eq!(g.address, "192.0.2.1");
    assert_eq!(g.id.to_string(), "vpn.example.com");
    assert_eq!(g.subnet_strings(), ["198.51.100.0/24", "203.0.113.0/24"]);
    assert_eq!(g.ike_proposals.len(), 2);
    assert_eq!(g.esp_proposals.len(), 2);
    assert!(matches!(g.auth, GatewayAuth::Psk(_)));
    assert_eq!(g.virtual_ips, ["0.0.0.0".parse::<IpAddr>().unwrap()]);
    assert_eq!(g.dns, ["198.51.100.53".parse::<IpAddr>().unwrap()]);
    assert_eq!(
        Gateway::from_connection(&l.ike.pools, c, Some("vpn.example.com"))
            .unwrap()
            .address,
        "vpn.example.com"
    );
    // A connection listening on any address needs --address.
    let mut any = c.clone();
    any.local_addrs.clear();
    assert!(
        Gateway::from_connection(&l.ike.pools, &any, None)
            .unwrap_err()
            .to_string()
            .contains("--address")
    );
    // 0.0.0.0/0 on the gateway's side is a full tunnel.
    let mut full = c.clone();
    let mut ch = full.children[0].clone();
    ch.local_ts = vec![TsRange::any(true)];
    full.children = vec![ch];
    assert!(
        Gateway::from_connection(&l.ike.pools, &full, None)
            .unwrap()
            .subnets
            .is_empty()
    );
}

#[test]
fn stable_uuids() {
    let a = stable_uuid(&["192.0.2.1", "rw", "alice"]);
    assert_eq!(a, stable_uuid(&["192.0.2.1", "rw", "alice"]));
    assert_ne!(a, stable_uuid(&["192.0.2.1", "rw", "bob"]));
    // Parts are separated: ("ab","c") differs from ("a","bc").
    assert_ne!(stable_uuid(&["ab", "c"]), stable_uuid(&["a", "bc"]));
    assert_eq!(a.len(), 36);
    let groups: Vec<&str> = a.split('-').collect();
    assert_eq!(
        groups.iter().map(|g| g.len()).collect::<Vec<_>>(),
        [8, 4, 4, 4, 12]
    );
    assert!(groups[2].starts_with('8'), "version 8: {a}");
    assert!(
        matches!(&groups[3][..1], "8" | "9" | "a" | "b"),
        "variant: {a}"
    );
}

#[test]
fn psk_gateway_only_for_oxisec() {
    let l = loaded();
    let g = Gateway::from_connection(
        &l.ike.pools,
        pick_connection(&l.ike.connections, None).unwrap(),
        None,
    )
    .unwrap();
    let p = Profile::new(None, g, creds(ClientAuth::Eap));
    for f in [
        Format::Mobileconfig,
        Format::Sswan,
        Format::Windows,
        Format::Networkmanager,
    ] {
        let e = render(&p, f, "x", Path::new("/tmp")).unwrap_err();
        assert!(e.to_string().contains("pre-shared key"), "{f:?}: {e}");
    }
}

fn plist_dict(v: &plist::Value) -> &plist::Dictionary {
    v.as_dictionary().expect("a dictionary")
}

fn payloads(v: &plist::Value) -> Vec<&plist::Dictionary> {
    plist_dict(v)["PayloadContent"]
        .as_array()
        .unwrap()
        .iter()
        .map(plist_dict)
        .collect()
}

fn by_type<'a>(ps: &[&'a plist::Dictionary], t: &str) -> Option<&'a plist::Dictionary> {
    ps.iter()
        .copied()
        .find(|d| d["PayloadType"].as_string() == Some(t))
}

#[test]
fn mobileconfig_eap() {
    let p = profile(ClientAuth::Eap);
    let out = render(&p, Format::Mobileconfig, "x", Path::new("/tmp")).unwrap();
    let v: plist::Value = plist::from_bytes(&out.main).unwrap();
    let top = plist_dict(&v);
    assert_eq!(top["PayloadType"].as_string(), Some("Configuration"));
    assert_eq!(top["PayloadUUID"].as_string(), Some(p.uuid.as_str()));
    let ps = payloads(&v);
    let root = by_type(&ps, "com.apple.security.root").unwrap();
    assert_eq!(root["PayloadContent"].as_data(), Some(ca_der().as_slice()));
    assert!(by_type(&ps, "com.apple.security.pkcs12").is_none());
    let vpn = by_type(&ps, "com.apple.vpn.managed").unwrap();
    assert_eq!(vpn["VPNType"].as_string(), Some("IKEv2"));
    let ike = plist_dict(&vpn["IKEv2"]);
    assert_eq!(ike["RemoteAddress"].as_string(), Some("192.0.2.1"));
    assert_eq!(ike["RemoteIdentifier"].as_string(), Some("vpn.example.com"));
    assert_eq!(ike["LocalIdentifier"].as_string(), Some("alice"));
    assert_eq!(ike["AuthenticationMethod"].as_string(), Some("None"));
    assert_eq!(ike["ExtendedAuthEnabled"].as_signed_integer(), Some(1));
    assert_eq!(ike["AuthName"].as_string(), Some("alice"));
    assert!(!ike.contains_key("AuthPassword"));
    // The gateway's first IKE proposal: aes256gcm16-prfsha384-ecp384.
    let sa = plist_dict(&ike["IKESecurityAssociationParameters"]);
    assert_eq!(sa["EncryptionAlgorithm"].as_string(), Some("AES-256-GCM"));
    assert_eq!(sa["IntegrityAlgorithm"].as_string(), Some("SHA2-384"));
    assert_eq!(sa["DiffieHellmanGroup"].as_signed_integer(), Some(20));
    // ESP aes256gcm16-ecp384: PFS with group 20 on rekeys.
    let csa = plist_dict(&ike["ChildSecurityAssociationParameters"]);
    assert_eq!(csa["EncryptionAlgorithm"].as_string(), Some("AES-256-GCM"));
    assert_eq!(csa["DiffieHellmanGroup"].as_signed_integer(), Some(20));
    assert_eq!(ike["EnablePFS"].as_signed_integer(), Some(1));
}

#[test]
fn mobileconfig_cert_embeds_pkcs12_without_password() {
    let p = profile(ClientAuth::Cert);
    let out = render(&p, Format::Mobileconfig, "x", Path::new("/tmp")).unwrap();
    let v: plist::Value = plist::from_bytes(&out.main).unwrap();
    let ps = payloads(&v);
    let p12 = by_type(&ps, "com.apple.security.pkcs12").unwrap();
    assert_eq!(
        p12["PayloadContent"].as_data(),
        Some(fixture("sw-moon.aes.p12").as_slice())
    );
    assert!(!p12.contains_key("Password"));
    let ike = plist_dict(&by_type(&ps, "com.apple.vpn.managed").unwrap()["IKEv2"]);
    assert_eq!(ike["AuthenticationMethod"].as_string(), Some("Certificate"));
    assert_eq!(
        ike["PayloadCertificateUUID"].as_string(),
        p12["PayloadUUID"].as_string()
    );
    assert_eq!(ike["CertificateType"].as_string(), Some("RSA"));
    assert_eq!(
        ike["LocalIdentifier"].as_string(),
        Some("moon.strongswan.org")
    );
    assert_eq!(ike["ExtendedAuthEnabled"].as_signed_integer(), Some(0));
    // All payload UUIDs differ.
    let mut uuids: Vec<&str> = ps
        .iter()
        .map(|d| d["PayloadUUID"].as_string().unwrap())
        .collect();
    uuids.push(p.uuid.as_str());
    uuids.sort();
    uuids.dedup();
    assert_eq!(uuids.len(), ps.len() + 1);
    // cert-eap: both.
    let out = render(
        &profile(ClientAuth::CertEap),
        Format::Mobileconfig,
        "x",
        Path::new("/tmp"),
    )
    .unwrap();
    let v: plist::Value = plist::from_bytes(&out.main).unwrap();
    let ps = payloads(&v);
    let ike = plist_dict(&by_type(&ps, "com.apple.vpn.managed").unwrap()["IKEv2"]);
    assert_eq!(ike["AuthenticationMethod"].as_string(), Some("Certificate"));
    assert_eq!(ike["ExtendedAuthEnabled"].as_signed_integer(), Some(1));
}

#[test]
fn sswan_fields() {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let p = profile(ClientAuth::Eap);
    let out = render(&p, Format::Sswan, "x", Path::new("/tmp")).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.main).unwrap();
    assert_eq!(v["uuid"], p.uuid.as_str());
    assert_eq!(v["name"], "oxisec 192.0.2.1");
    assert_eq!(v["type"], "ikev2-eap");
    assert_eq!(v["remote"]["addr"], "192.0.2.1");
    assert_eq!(v["remote"]["id"], "vpn.example.com");
    assert!(
        v["remote"].get("port").is_none(),
        "500 is the app's default"
    );
    assert_eq!(
        b64.decode(v["remote"]["cert"].as_str().unwrap()).unwrap(),
        ca_der()
    );
    assert_eq!(v["local"]["eap_id"], "alice");
    assert!(v["local"].get("p12").is_none());
    assert_eq!(v["ike-proposal"], "aes256gcm16-prfsha384-ecp384");
    // The proposals must parse as strongSwan proposals again.
    IkeProposal::parse(v["ike-proposal"].as_str().unwrap()).unwrap();
    EspProposal::parse(v["esp-proposal"].as_str().unwrap()).unwrap();
    assert_eq!(
        v["split-tunneling"]["subnets"],
        serde_json::json!(["198.51.100.0/24", "203.0.113.0/24"])
    );
    assert!(!String::from_utf8_lossy(&out.main).contains("password"));

    let p = profile(ClientAuth::Cert);
    let out = render(&p, Format::Sswan, "x", Path::new("/tmp")).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.main).unwrap();
    assert_eq!(v["type"], "ikev2-cert");
    assert_eq!(v["local"]["id"], "moon.strongswan.org");
    assert!(v["local"].get("eap_id").is_none());
    assert_eq!(
        b64.decode(v["local"]["p12"].as_str().unwrap()).unwrap(),
        fixture("sw-moon.aes.p12")
    );
    let text = String::from_utf8_lossy(&out.main);
    assert!(!text.contains(P12_PASS), "the passphrase stays out");

    let v = sswan::to_json(&profile(ClientAuth::CertEap), true);
    assert_eq!(v["type"], "ikev2-cert-eap");
    assert_eq!(v["local"]["eap_id"], "alice");
    assert!(v["local"]["p12"].is_string());
}

/// The value of `-Param` on the line of `cmdlet`.
fn ps_param<'a>(script: &'a str, cmdlet: &str, param: &str) -> Option<&'a str> {
    let line = script.lines().find(|l| l.starts_with(cmdlet))?;
    let mut words = line.split_whitespace();
    words.find(|w| *w == format!("-{param}"))?;
    words.next()
}

#[test]
fn windows_script() {
    let p = profile(ClientAuth::Eap);
    let s = text(&render(&p, Format::Windows, "x", Path::new("/tmp")).unwrap());
    assert!(s.contains(
        "Import-Certificate -FilePath $CaFile -CertStoreLocation Cert:\\LocalMachine\\Root"
    ));
    assert_eq!(
        ps_param(&s, "Add-VpnConnection", "TunnelType"),
        Some("Ikev2")
    );
    assert_eq!(
        ps_param(&s, "Add-VpnConnection", "AuthenticationMethod"),
        Some("Eap")
    );
    assert!(
        s.lines()
            .any(|l| l.starts_with("Add-VpnConnection") && l.contains("-SplitTunneling"))
    );
    let set = "Set-VpnConnectionIPsecConfiguration";
    // IKE aes256gcm16-prfsha384-ecp384, ESP aes256gcm16-ecp384.
    assert_eq!(ps_param(&s, set, "EncryptionMethod"), Some("GCMAES256"));
    assert_eq!(ps_param(&s, set, "IntegrityCheckMethod"), Some("SHA384"));
    assert_eq!(ps_param(&s, set, "DHGroup"), Some("ECP384"));
    assert_eq!(
        ps_param(&s, set, "CipherTransformConstants"),
        Some("GCMAES256")
    );
    assert_eq!(
        ps_param(&s, set, "AuthenticationTransformConstants"),
        Some("GCMAES256")
    );
    assert_eq!(ps_param(&s, set, "PfsGroup"), Some("ECP384"));
    assert_eq!(
        ps_param(&s, "Add-VpnConnectionRoute", "DestinationPrefix"),
        Some("'198.51.100.0/24'")
    );
    assert_eq!(s.matches("Add-VpnConnectionRoute").count(), 2);
    assert!(s.contains("$Server = '192.0.2.1'"));
    assert!(!s.contains("Import-PfxCertificate"));
    // The embedded CA decodes to the CA.
    let b64 = s
        .lines()
        .find(|l| l.contains("$CaFile, [Convert]::FromBase64String('"))
        .and_then(|l| l.split('\'').nth(1))
        .unwrap();
    use base64::Engine as _;
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap(),
        ca_der()
    );

    let s = text(
        &render(
            &profile(ClientAuth::Cert),
            Format::Windows,
            "x",
            Path::new("/tmp"),
        )
        .unwrap(),
    );
    assert_eq!(
        ps_param(&s, "Add-VpnConnection", "AuthenticationMethod"),
        Some("MachineCertificate")
    );
    assert!(s.contains("Import-PfxCertificate -FilePath $P12File -CertStoreLocation Cert:\\LocalMachine\\My -Password $P12Pass"));
    assert!(s.contains("Read-Host -AsSecureString"));
    assert!(!s.contains(P12_PASS));

    assert!(
        render(
            &profile(ClientAuth::CertEap),
            Format::Windows,
            "x",
            Path::new("/tmp")
        )
        .is_err()
    );
    // A gateway Windows cannot talk to: refused, naming the proposals.
    let mut p = profile(ClientAuth::Eap);
    p.gateway.ike_proposals =
        vec![IkeProposal::parse("chacha20poly1305-prfsha256-x25519").unwrap()];
    let e = render(&p, Format::Windows, "x", Path::new("/tmp"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("Windows") && e.contains("chacha20poly1305-prfsha256-curve25519"),
        "{e}"
    );
    // Quotes in names cannot break out of the string.
    let mut p = profile(ClientAuth::Eap);
    p.name = "it's \"VPN\"; rm".into();
    let s = text(&render(&p, Format::Windows, "x", Path::new("/tmp")).unwrap());
    assert!(s.contains("$Name = 'it''s \"VPN\"; rm'"), "{s}");
}

/// A strict INI reader: `[section]`, `key=value`, `#` comments; duplicate
/// sections or keys and stray lines are errors (GLib's key file rules).
fn parse_ini(text: &str) -> Result<BTreeMap<String, BTreeMap<String, String>>, String> {
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut cur: Option<String> = None;
    for (i, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        if let Some(name) = l.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            if out.insert(name.to_owned(), BTreeMap::new()).is_some() {
                return Err(format!("line {}: duplicate section {name}", i + 1));
            }
            cur = Some(name.to_owned());
            continue;
        }
        let (k, v) = l.split_once('=').ok_or(format!("line {}: no '='", i + 1))?;
        let sec = cur
            .as_ref()
            .ok_or(format!("line {}: key outside a section", i + 1))?;
        let m = out.get_mut(sec).unwrap();
        if m.insert(k.trim().to_owned(), v.trim().to_owned()).is_some() {
            return Err(format!("line {}: duplicate key {k}", i + 1));
        }
    }
    Ok(out)
}

#[test]
fn networkmanager_keyfile() {
    let p = profile(ClientAuth::Eap);
    let out = render(
        &p,
        Format::Networkmanager,
        "alice-rw",
        Path::new("/home/op/profiles"),
    )
    .unwrap();
    let ini = parse_ini(&text(&out)).unwrap();
    assert_eq!(ini["connection"]["type"], "vpn");
    assert_eq!(ini["connection"]["uuid"], p.uuid);
    assert_eq!(ini["connection"]["id"], "oxisec 192.0.2.1");
    let vpn = &ini["vpn"];
    assert_eq!(
        vpn["service-type"],
        "org.freedesktop.NetworkManager.strongswan"
    );
    assert_eq!(vpn["address"], "192.0.2.1");
    assert_eq!(vpn["method"], "eap");
    assert_eq!(vpn["user"], "alice");
    assert_eq!(vpn["certificate"], "/home/op/profiles/alice-rw-ca.crt");
    assert_eq!(vpn["remote-identity"], "vpn.example.com");
    assert_eq!(vpn["virtual"], "yes");
    assert_eq!(vpn["proposal"], "yes");
    // The PRF the gateway derived from sha256 is spelled out.
    assert_eq!(
        vpn["ike"],
        "aes256gcm16-prfsha384-ecp384;aes256-sha256-prfsha256-modp2048"
    );
    assert_eq!(vpn["esp"], "aes256gcm16-ecp384;aes256-sha256-modp2048");
    assert_eq!(vpn["remote-ts"], "198.51.100.0/24;203.0.113.0/24");
    assert!(!vpn.contains_key("server-port"));
    assert!(!vpn.contains_key("password"));
    assert_eq!(ini["ipv4"]["method"], "auto");
    assert_eq!(ini["ipv4"]["never-default"], "true");
    assert_eq!(ini["ipv4"]["route1"], "198.51.100.0/24");
    assert_eq!(ini["ipv4"]["route2"], "203.0.113.0/24");
    // The CA goes next to it, as PEM.
    assert_eq!(out.companions.len(), 1);
    assert_eq!(out.companions[0].0, "-ca.crt");
    let pem = oxisec_pki::Certificate::from_pem_or_der(&out.companions[0].1).unwrap();
    assert_eq!(pem[0].der(), ca_der().as_slice());

    let out = render(
        &profile(ClientAuth::Cert),
        Format::Networkmanager,
        "a",
        Path::new("/x"),
    )
    .unwrap();
    let ini = parse_ini(&text(&out)).unwrap();
    assert_eq!(ini["vpn"]["method"], "key");
    assert_eq!(ini["vpn"]["usercert"], "/etc/oxisec/pki/certs/alice.crt");
    assert_eq!(ini["vpn"]["userkey"], "/etc/oxisec/pki/private/alice.key");
    assert_eq!(ini["vpn"]["local-identity"], "moon.strongswan.org");
    assert!(!ini["vpn"].contains_key("user"));
    assert!(
        render(
            &profile(ClientAuth::CertEap),
            Format::Networkmanager,
            "a",
            Path::new("/x")
        )
        .is_err()
    );
}

/// Writes an [`Output`] as `run_inner` does.
fn write_out(dir: &Path, stem: &str, ext: &str, out: &Output) -> PathBuf {
    let main = dir.join(format!("{stem}.{ext}"));
    write_private_atomic(&main, &out.main).unwrap();
    for (suffix, data, private) in &out.companions {
        let mode = if *private { 0o600 } else { 0o644 };
        write_atomic(&dir.join(format!("{stem}{suffix}")), data, mode).unwrap();
    }
    main
}

#[test]
fn oxisec_profile_loads_with_the_daemon_loader() {
    // The gateway authenticates with a PSK: the profile carries it in a
    // private file next to the configuration.
    let l = loaded();
    let g = Gateway::from_connection(
        &l.ike.pools,
        pick_connection(&l.ike.connections, None).unwrap(),
        None,
    )
    .unwrap();
    let p = Profile::new(Some("corp"), g, creds(ClientAuth::Eap));
    let d = tmpdir("oxisec-psk");
    let out = render(&p, Format::Oxisec, "alice-rw", &d).unwrap();
    let path = write_out(&d, "alice-rw", "toml", &out);
    let client = crate::config::load(&path).unwrap_or_else(|e| panic!("{e}\n{}", text(&out)));
    assert!(client.warnings.is_empty(), "{:?}", client.warnings);
    let c = &client.ike.connections[0];
    assert_eq!(c.name, "rw");
    assert_eq!(c.remote_addrs, ["192.0.2.1".parse::<IpAddr>().unwrap()]);
    assert_eq!(c.remote_id.as_ref().unwrap().to_string(), "vpn.example.com");
    assert_eq!(c.local_id.to_string(), "alice");
    assert_eq!(c.ike_proposals, p.gateway.ike_proposals);
    assert_eq!(c.children[0].esp_proposals, p.gateway.esp_proposals);
    // The gateway has a pool: ask for an address, our side is "dynamic".
    assert_eq!(
        c.remote_access.request_vips,
        ["0.0.0.0".parse::<IpAddr>().unwrap()]
    );
    assert!(c.children[0].local_ts.is_empty(), "dynamic");
    assert_eq!(
        c.children[0]
            .remote_ts
            .iter()
            .map(|t| t.to_string())
            .collect::<Vec<_>>(),
        ["198.51.100.0/24", "203.0.113.0/24"]
    );
    match (&c.local_auth, &l.ike.connections[0].local_auth) {
        (Auth::Psk(a), Auth::Psk(b)) => assert_eq!(a.as_bytes(), b.as_bytes()),
        _ => panic!("psk expected"),
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(d.join("alice-rw.psk"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn oxisec_profile_cert_keys() {
    let d = tmpdir("oxisec-cert");
    let p = profile(ClientAuth::Cert);
    let out = render(&p, Format::Oxisec, "alice-rw", &d).unwrap();
    let v: toml::Table = toml::from_str(&text(&out)).unwrap();
    let c = v["connections"]["rw"].as_table().unwrap();
    assert_eq!(c["local_auth"].as_str(), Some("cert"));
    assert_eq!(c["remote_auth"].as_str(), Some("cert"));
    assert_eq!(c["local_p12"].as_str(), Some("alice-rw.p12"));
    assert_eq!(
        c["local_p12_passphrase_file"].as_str(),
        Some("alice-rw.p12.pass")
    );
    assert_eq!(
        c["ca_certs"].as_array().unwrap()[0].as_str(),
        Some("alice-rw-ca.crt")
    );
    assert_eq!(c["local_id"].as_str(), Some("moon.strongswan.org"));
    let suffixes: Vec<&str> = out.companions.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(suffixes, [".p12", ".p12.pass", "-ca.crt"]);
    assert!(
        out.companions
            .iter()
            .filter(|c| c.0.starts_with(".p12"))
            .all(|c| c.2),
        "private"
    );
    // Certificate plus EAP is not something oxisec's client does.
    assert!(render(&profile(ClientAuth::CertEap), Format::Oxisec, "a", &d).is_err());
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn oxisec_eap_profile_loads_with_the_daemon_loader() {
    use std::os::unix::fs::PermissionsExt;
    // The gateway proves itself with a certificate, alice with her password.
    let d = tmpdir("oxisec-eap");
    let p = profile(ClientAuth::Eap);
    let out = render(&p, Format::Oxisec, "alice-rw", &d).unwrap();
    let v: toml::Table = toml::from_str(&text(&out)).unwrap();
    let c = v["connections"]["rw"].as_table().unwrap();
    assert_eq!(c["local_auth"].as_str(), Some("eap"));
    assert_eq!(c["eap_identity"].as_str(), Some("alice"));
    assert_eq!(c["eap_password_file"].as_str(), Some("alice-rw.password"));
    assert_eq!(c["remote_auth"].as_str(), Some("cert"));
    assert!(!c.contains_key("psk_file"));
    let suffixes: Vec<&str> = out.companions.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(suffixes, ["-ca.crt"], "the password is not known here");
    assert!(
        out.instructions
            .contains("password on the first line of alice-rw.password"),
        "{}",
        out.instructions
    );
    let path = write_out(&d, "alice-rw", "toml", &out);
    // Until the user writes the password, the loader says which file.
    let e = crate::config::load(&path).unwrap_err().to_string();
    assert!(
        e.contains("connections.rw.eap_password_file: cannot read"),
        "{e}"
    );
    let pw = d.join("alice-rw.password");
    std::fs::write(&pw, "clientPass\n").unwrap();
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
    let client = crate::config::load(&path).unwrap_or_else(|e| panic!("{e}\n{}", text(&out)));
    assert!(client.warnings.is_empty(), "{:?}", client.warnings);
    let c = &client.ike.connections[0];
    match &c.local_auth {
        Auth::EapClient { identity, password } => {
            assert_eq!(identity, "alice");
            assert_eq!(password.as_bytes(), b"clientPass");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(c.remote_auth, Auth::PeerCert(_)));
    assert_eq!(c.local_id.to_string(), "alice");
    assert_eq!(c.remote_id.as_ref().unwrap().to_string(), "vpn.example.com");

    // A PSK gateway that also checks its users' passwords: the client
    // sends EAP and checks the gateway's PSK.
    let l = loaded();
    let mut g = Gateway::from_connection(
        &l.ike.pools,
        pick_connection(&l.ike.connections, None).unwrap(),
        None,
    )
    .unwrap();
    assert!(!g.eap_users, "GATEWAY_TOML's rw is PSK only");
    g.eap_users = true;
    let p = Profile::new(None, g, creds(ClientAuth::Eap));
    let out = render(&p, Format::Oxisec, "alice-rw", &d).unwrap();
    let path = write_out(&d, "alice-rw", "toml", &out);
    let client = crate::config::load(&path).unwrap_or_else(|e| panic!("{e}\n{}", text(&out)));
    let c = &client.ike.connections[0];
    assert!(matches!(c.local_auth, Auth::EapClient { .. }));
    assert!(matches!(c.remote_auth, Auth::Psk(_)));
    std::fs::remove_dir_all(&d).unwrap();
}

/// The certificate profile (local_p12, ca_certs, local_auth/remote_auth)
/// through the daemon's loader.
#[test]
fn oxisec_cert_profile_loads_with_the_daemon_loader() {
    let d = tmpdir("oxisec-cert-load");
    let p = profile(ClientAuth::Cert);
    let out = render(&p, Format::Oxisec, "alice-rw", &d).unwrap();
    let path = write_out(&d, "alice-rw", "toml", &out);
    let client = crate::config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(
        client.ike.connections[0].local_auth,
        Auth::Cert(_)
    ));
    std::fs::remove_dir_all(&d).unwrap();
}

fn write_file(path: &Path, data: &[u8], mode: u32) {
    write_atomic(path, data, mode).unwrap();
}

fn args(d: &Path, format: Format) -> ProfileArgs {
    ProfileArgs {
        user: "alice".into(),
        format,
        config: d.join("oxisec.toml"),
        connection: None,
        address: None,
        auth: None,
        pki_dir: d.join("pki"),
        ca: None,
        p12: None,
        p12_passphrase_file: None,
        local_id: None,
        users_file: d.join("users.toml"),
        name: None,
        output: Some(d.join("out").join("alice.sswan")),
        qr: false,
        group: Vec::new(),
    }
}

#[test]
fn gathers_credentials_from_files() {
    let d = tmpdir("gather");
    write_file(&d.join("oxisec.toml"), GATEWAY_TOML.as_bytes(), 0o600);
    std::fs::create_dir_all(d.join("pki/exports")).unwrap();
    write_file(&d.join("pki/ca.crt"), &fixture("sw-ca.pem"), 0o644);
    let mut a = args(&d, Format::Sswan);
    // EAP: the user must exist and be enabled.
    let e = gather_creds(&a).unwrap_err().to_string();
    assert!(e.contains("users.toml"), "{e}");
    let mut db = UserDb::new();
    db.add("alice", "clientPass", &[]).unwrap();
    db.save(&a.users_file).unwrap();
    let c = gather_creds(&a).unwrap();
    assert_eq!(c.auth, ClientAuth::Eap);
    assert_eq!(c.local_id, "alice");
    assert_eq!(c.ca_der.as_deref(), Some(ca_der().as_slice()));
    // A CA that is not a CA is refused.
    a.ca = Some(Path::new(PKI_DATA).join("sw-moon.pem"));
    let e = gather_creds(&a).unwrap_err().to_string();
    assert!(e.contains("not a CA"), "{e}");
    a.ca = None;
    db.set_disabled("alice", true).unwrap();
    db.save(&a.users_file).unwrap();
    assert!(
        gather_creds(&a)
            .unwrap_err()
            .to_string()
            .contains("disabled")
    );

    // With a bundle under exports/, certificate authentication is the
    // default; the passphrase opens it and names the identity.
    write_file(
        &d.join("pki/exports/alice.p12"),
        &fixture("sw-moon.aes.p12"),
        0o600,
    );
    let c = gather_creds(&a).unwrap();
    assert_eq!(c.auth, ClientAuth::Cert);
    assert_eq!(c.local_id, "alice", "no passphrase: the user name");
    write_file(&d.join("pass"), format!("{P12_PASS}\n").as_bytes(), 0o600);
    a.p12_passphrase_file = Some(d.join("pass"));
    let c = gather_creds(&a).unwrap();
    assert_eq!(c.local_id, "moon.strongswan.org");
    assert_eq!(c.key_algorithm.as_deref(), Some("RSA-3072"));
    assert_eq!(c.cert_pem_path, Some(d.join("pki/certs/alice.crt")));
    assert!(format!("{c:?}").contains("<redacted>"));
    assert!(!format!("{c:?}").contains(P12_PASS));
    write_file(&d.join("pass"), b"wrong\n", 0o600);
    assert!(gather_creds(&a).is_err());
    a.auth = Some(ClientAuth::Eap);
    // Explicit --auth eap needs the (disabled) user again.
    let e = gather_creds(&a).unwrap_err().to_string();
    assert!(e.contains("disabled"), "{e}");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn run_writes_profile_companions_and_qr() {
    let d = tmpdir("run");
    write_file(&d.join("oxisec.toml"), GATEWAY_TOML.as_bytes(), 0o600);
    std::fs::create_dir_all(d.join("out")).unwrap();
    let mut db = UserDb::new();
    db.add("alice", "clientPass", &[]).unwrap();
    let mut a = args(&d, Format::Oxisec);
    db.save(&a.users_file).unwrap();
    a.output = Some(d.join("out/alice-rw.toml"));
    a.qr = true;
    let msg = run_inner(&a).unwrap();
    assert!(msg.contains("alice-rw.png"), "{msg}");
    crate::config::load(&d.join("out/alice-rw.toml")).unwrap();
    let png = std::fs::read(d.join("out/alice-rw.png")).unwrap();
    assert_eq!(&png[..4], b"\x89PNG");
    // --qr with a format not meant for it: refused before anything is written.
    a.format = Format::Windows;
    a.output = Some(d.join("out/win.ps1"));
    assert!(run_inner(&a).unwrap_err().to_string().contains("--qr"));
    assert!(!d.join("out/win.ps1").exists());
    // The gateway uses a PSK: native formats are refused with the reason.
    a.format = Format::Mobileconfig;
    a.qr = false;
    assert!(
        run_inner(&a)
            .unwrap_err()
            .to_string()
            .contains("pre-shared key")
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn qr_sswan_drops_the_bundle_when_too_large() {
    let p = profile(ClientAuth::Cert);
    let data = qr::fit_sswan(&p).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&data).unwrap();
    assert_eq!(v["type"], "ikev2-cert");
    assert!(
        v["local"].get("p12").is_none(),
        "a 3 KB+ bundle does not fit"
    );
    assert!(v["remote"]["cert"].is_string());
    qr::encode(&data).unwrap();
    let p = profile(ClientAuth::Eap);
    assert!(qr::fit_sswan(&p).unwrap().len() <= qr::MAX_QR_BYTES);
}

#[test]
fn cli_parses_profile() {
    use clap::Parser as _;
    let cli = crate::cli::Cli::try_parse_from([
        "oxisec",
        "profile",
        "alice",
        "--format",
        "networkmanager",
        "--connection",
        "rw",
        "--qr",
        "--p12",
        "/tmp/a.p12",
        "--auth",
        "cert-eap",
        "--group",
        "staff",
        "--group",
        "vpn",
    ])
    .unwrap();
    match cli.command {
        crate::cli::Command::Profile(a) => {
            assert_eq!(a.user, "alice");
            assert_eq!(a.format, Format::Networkmanager);
            assert_eq!(a.auth, Some(ClientAuth::CertEap));
            assert_eq!(a.config, Path::new(DEFAULT_CONFIG));
            assert_eq!(a.pki_dir, Path::new(DEFAULT_PKI_DIR));
            assert!(a.qr);
            assert_eq!(a.group, ["staff", "vpn"]);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        crate::cli::Cli::try_parse_from(["oxisec", "profile", "alice", "--format", "pdf"]).is_err()
    );
}

/// A gateway whose connections hand out addresses only to groups: the
/// certificate and EAP-TLS connections take groups from the client
/// certificate's OU, the EAP one from the users file and requires a group.
const GROUPS_TOML: &str = r#"
[daemon]
users_file = "users.toml"

[pools.staff]
addrs = "10.3.0.0/24"
[pools.lab6]
addrs = "2001:db8:6::/64"

[connections.rw-cert]
local_addrs = ["192.0.2.1"]
local_id = "vpn.example.com"
local_cert = "pki/certs/vpn.example.com.crt"
local_key = "pki/private/vpn.example.com.key"
remote_auth = "cert"
ca_certs = ["pki/ca.crt"]
[connections.rw-cert.children.net]
local_ts = ["203.0.113.0/24"]
remote_ts = ["dynamic"]
[connections.rw-cert.groups.staff]
pools = ["staff"]
dns = ["198.51.100.53"]
subnets = ["198.51.100.0/24"]
[connections.rw-cert.groups.lab]
pools = ["lab6"]
subnets = ["2001:db8:1::/48"]

[connections.rw-eap]
local_addrs = ["192.0.2.1"]
local_id = "vpn.example.com"
local_cert = "pki/certs/vpn.example.com.crt"
local_key = "pki/private/vpn.example.com.key"
remote_auth = "eap-mschapv2"
require_group = true
[connections.rw-eap.children.net-eap]
local_ts = ["203.0.113.0/24"]
remote_ts = ["dynamic"]
[connections.rw-eap.groups.staff]
pools = ["staff"]
dns = ["198.51.100.53"]
subnets = ["198.51.100.0/24"]
[connections.rw-eap.groups.lab]
pools = ["lab6"]
subnets = ["2001:db8:1::/48"]

[connections.rw-tls]
local_addrs = ["192.0.2.1"]
local_id = "vpn.example.com"
local_cert = "pki/certs/vpn.example.com.crt"
local_key = "pki/private/vpn.example.com.key"
remote_auth = "eap-tls"
ca_certs = ["pki/ca.crt"]
[connections.rw-tls.children.net-tls]
local_ts = ["203.0.113.0/24"]
remote_ts = ["dynamic"]
[connections.rw-tls.groups.staff]
pools = ["staff"]
subnets = ["198.51.100.0/24"]
"#;

/// `oxisec pki` with a gateway certificate and frank (OU=staff) and gina
/// (no OU) exported with passphrase "pw"; users alice (staff) and bob (no
/// group); GROUPS_TOML as the configuration.
fn groups_fixture(tag: &str) -> PathBuf {
    use crate::pki::{IssueRequest, KeyType, Pki, Profile as Kind};
    let d = tmpdir(tag);
    let pki = Pki::init_ca(&d.join("pki"), "Example CA", KeyType::Ecdsa, 30, None).unwrap();
    pki.issue(&IssueRequest::new("vpn.example.com", Kind::Server))
        .unwrap();
    for (name, ou) in [
        ("frank@example.org", Some("staff")),
        ("gina@example.org", None),
    ] {
        let mut r = IssueRequest::new(name, Kind::Client);
        r.ou = ou.map(str::to_owned);
        pki.issue(&r).unwrap();
        pki.export(name, "pw", false).unwrap();
    }
    write_file(&d.join("pass"), b"pw\n", 0o600);
    let toml = GROUPS_TOML.replace(
        "\"users.toml\"",
        &format!("{:?}", d.join("users.toml").display().to_string()),
    );
    write_file(&d.join("oxisec.toml"), toml.as_bytes(), 0o600);
    let mut db = UserDb::new();
    db.add("alice", "alice's password", &["staff".to_string()])
        .unwrap();
    db.add("bob", "bob's password", &[]).unwrap();
    db.save(&d.join("users.toml")).unwrap();
    std::fs::create_dir_all(d.join("out")).unwrap();
    d
}

fn group_args(d: &Path, user: &str, conn: &str, format: Format) -> ProfileArgs {
    let mut a = args(d, format);
    a.user = user.into();
    a.connection = Some(conn.into());
    a.output = Some(d.join("out").join(format!("{user}.{}", format.extension())));
    a
}

#[test]
fn gateway_for_groups_takes_the_groups_values() {
    let d = groups_fixture("for-groups");
    let l = crate::config::load(&d.join("oxisec.toml")).unwrap();
    let conn = pick_connection(&l.ike.connections, Some("rw-cert")).unwrap();
    // The connection's own values: no pool, so no address to ask for.
    let own = Gateway::from_connection(&l.ike.pools, conn, None).unwrap();
    assert!(own.virtual_ips.is_empty());
    assert_eq!(own.group, None);
    assert_eq!(own.subnet_strings(), ["203.0.113.0/24"]);
    // A staff member: IPv4 from the staff pool, its DNS and subnets. Group
    // names match without regard to case, as on the gateway.
    let g = Gateway::for_groups(&l.ike.pools, conn, None, &["x".into(), "STAFF".into()]).unwrap();
    assert_eq!(g.group.as_deref(), Some("staff"));
    assert_eq!(g.virtual_ips, ["0.0.0.0".parse::<IpAddr>().unwrap()]);
    assert_eq!(g.dns, ["198.51.100.53".parse::<IpAddr>().unwrap()]);
    assert_eq!(g.subnet_strings(), ["198.51.100.0/24"]);
    // The lab: IPv6 only; the connection's DNS (none).
    let g = Gateway::for_groups(&l.ike.pools, conn, None, &["lab".into()]).unwrap();
    assert_eq!(g.virtual_ips, ["::".parse::<IpAddr>().unwrap()]);
    assert!(g.dns.is_empty());
    assert_eq!(g.subnet_strings(), ["2001:db8:1::/48"]);
    // In no listed group: the connection's values, or refused where a
    // group is required.
    let g = Gateway::for_groups(&l.ike.pools, conn, None, &["other".into()]).unwrap();
    assert!(g.virtual_ips.is_empty() && g.group.is_none());
    let eap = pick_connection(&l.ike.connections, Some("rw-eap")).unwrap();
    let e = Gateway::for_groups(&l.ike.pools, eap, None, &["other".into()])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("require_group") && e.contains("lab, staff"),
        "{e}"
    );
    std::fs::remove_dir_all(&d).unwrap();
}

/// Every format that carries the subnets (and the oxisec one the virtual
/// IP families) has the user's group's, found the way the gateway finds
/// the group: users file, certificate OU, or --group.
#[test]
fn profiles_carry_the_users_group() {
    let d = groups_fixture("user-groups");
    let all = [
        Format::Mobileconfig,
        Format::Sswan,
        Format::Windows,
        Format::Networkmanager,
        Format::Oxisec,
    ];
    for format in all {
        // frank's certificate says OU=staff (read from the bundle when its
        // passphrase is given, else from pki/certs/).
        for pass in [true, false] {
            let mut a = group_args(&d, "frank@example.org", "rw-cert", format);
            if pass || format == Format::Oxisec {
                a.p12_passphrase_file = Some(d.join("pass"));
            }
            let p = build(&a).unwrap();
            assert_eq!(p.gateway.group.as_deref(), Some("staff"), "{format:?}");
            assert_eq!(p.gateway.subnet_strings(), ["198.51.100.0/24"]);
        }
        // alice is in staff in the users file.
        let a = group_args(&d, "alice", "rw-eap", format);
        let p = build(&a).unwrap();
        assert_eq!(p.gateway.group.as_deref(), Some("staff"), "{format:?}");
        let msg = run_inner(&a).unwrap();
        assert!(msg.contains("alice is in group staff"), "{msg}");
        let out = std::fs::read(a.output.as_ref().unwrap()).unwrap();
        let text = String::from_utf8_lossy(&out);
        match format {
            // Apple: a split tunnel (the group's subnets) rather than all traffic.
            Format::Mobileconfig => {
                let v: plist::Value = plist::from_bytes(&out).unwrap();
                let ps = payloads(&v);
                let vpn = by_type(&ps, "com.apple.vpn.managed").unwrap();
                let ipv4 = plist_dict(&vpn["IPv4"]);
                assert_eq!(ipv4["OverridePrimary"].as_signed_integer(), Some(0));
            }
            _ => assert!(text.contains("198.51.100.0/24"), "{format:?}: {text}"),
        }
        if format == Format::Oxisec {
            // (The user puts the password next to it.)
            write_file(&d.join("out/alice.password"), b"x\n", 0o600);
            let client = crate::config::load(a.output.as_ref().unwrap()).unwrap();
            let c = &client.ike.connections[0];
            assert_eq!(
                c.remote_access.request_vips,
                ["0.0.0.0".parse::<IpAddr>().unwrap()]
            );
        }

        // bob is in no group, and rw-eap requires one: no profile that
        // could never log in.
        let a = group_args(&d, "bob", "rw-eap", format);
        let e = build(&a).unwrap_err().to_string();
        assert!(e.contains("require_group"), "{e}");
        // --group says it (RADIUS users, or ahead of the users file).
        let mut a = group_args(&d, "bob", "rw-eap", format);
        a.group = vec!["lab".into()];
        let p = build(&a).unwrap();
        assert_eq!(p.gateway.group.as_deref(), Some("lab"));
        assert_eq!(p.gateway.subnet_strings(), ["2001:db8:1::/48"]);
        if format == Format::Oxisec {
            run_inner(&a).unwrap();
            write_file(&d.join("out/bob.password"), b"x\n", 0o600);
            let client = crate::config::load(a.output.as_ref().unwrap()).unwrap();
            let c = &client.ike.connections[0];
            assert_eq!(
                c.remote_access.request_vips,
                ["::".parse::<IpAddr>().unwrap()]
            );
        }
    }
    // An EAP-TLS gateway takes the groups from the user's certificate too.
    let mut a = group_args(&d, "frank@example.org", "rw-tls", Format::Sswan);
    a.p12_passphrase_file = Some(d.join("pass"));
    let p = build(&a).unwrap();
    assert_eq!(p.creds.auth, ClientAuth::EapTls);
    assert_eq!(p.gateway.group.as_deref(), Some("staff"));
    assert_eq!(
        p.gateway.virtual_ips,
        ["0.0.0.0".parse::<IpAddr>().unwrap()]
    );
    // gina's certificate has no OU: the connection's own values (no pool,
    // so the oxisec client asks for no address).
    let mut a = group_args(&d, "gina@example.org", "rw-cert", Format::Oxisec);
    a.p12_passphrase_file = Some(d.join("pass"));
    let p = build(&a).unwrap();
    assert!(p.gateway.group.is_none() && p.gateway.virtual_ips.is_empty());
    assert_eq!(p.gateway.subnet_strings(), ["203.0.113.0/24"]);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn eap_tls_profiles() {
    let p = profile(ClientAuth::EapTls);
    // Apple: the identity certificate, EAP on, no user name.
    let out = render(&p, Format::Mobileconfig, "x", Path::new("/tmp")).unwrap();
    let v: plist::Value = plist::from_bytes(&out.main).unwrap();
    let ps = payloads(&v);
    let p12 = by_type(&ps, "com.apple.security.pkcs12").unwrap();
    let ike = plist_dict(&by_type(&ps, "com.apple.vpn.managed").unwrap()["IKEv2"]);
    assert_eq!(ike["AuthenticationMethod"].as_string(), Some("Certificate"));
    assert_eq!(ike["ExtendedAuthEnabled"].as_signed_integer(), Some(1));
    assert_eq!(
        ike["PayloadCertificateUUID"].as_string(),
        p12["PayloadUUID"].as_string()
    );
    assert!(!ike.contains_key("AuthName"));
    // strongSwan for Android: its EAP-TLS type, with the bundle.
    let v = sswan::to_json(&p, true);
    assert_eq!(v["type"], "ikev2-eap-tls");
    assert_eq!(v["local"]["id"], "moon.strongswan.org");
    assert!(v["local"]["p12"].is_string());
    assert!(v["local"].get("eap_id").is_none());
    // Windows and NetworkManager say they cannot.
    for f in [Format::Windows, Format::Networkmanager] {
        let e = render(&p, f, "x", Path::new("/tmp")).unwrap_err();
        assert!(e.to_string().contains("EAP-TLS"), "{e}");
    }
}

#[test]
fn oxisec_eap_tls_profile_loads_with_the_daemon_loader() {
    let d = tmpdir("oxisec-eap-tls-load");
    let mut g = cert_gateway();
    g.eap_tls = true;
    let p = Profile::new(None, g, creds(ClientAuth::EapTls));
    let out = render(&p, Format::Oxisec, "alice-rw", &d).unwrap();
    assert!(
        text(&out).contains("local_auth = \"eap-tls\""),
        "{}",
        text(&out)
    );
    let path = write_out(&d, "alice-rw", "toml", &out);
    let client = crate::config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let c = &client.ike.connections[0];
    assert!(matches!(c.local_auth, Auth::EapTlsClient(_)));
    assert!(matches!(c.remote_auth, Auth::PeerCert(_)));
    std::fs::remove_dir_all(&d).unwrap();
}
