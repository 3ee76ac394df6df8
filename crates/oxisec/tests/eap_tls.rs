//! EAP-TLS users against strongSwan, in network namespaces (needs root): a
//! road warrior logs in with its certificate inside EAP (RFC 5216), the
//! gateway proves itself with its IKE certificate — also the TLS server
//! certificate — all made with `oxisec pki`.
//!
//! ```text
//!   ns "left": road warrior                      ns "right": gateway
//!   veth-l 192.0.2.1/24 <------ veth ------> veth-r 192.0.2.2/24
//!   virtual IP from 198.51.100.128/25            lo 203.0.113.1/24 (company)
//! ```
//!
//! * strongSwan as the road warrior (`auth = eap-tls`, a certificate from
//!   `oxisec pki issue --client`), oxisec as the gateway with `remote_auth =
//!   "eap-tls"`: the client gets an address from the pool and the DNS
//!   attribute, and reaches the company network, with TLS 1.2 (strongSwan's
//!   default). strongSwan 5.9.8 with `charon.tls.version_max = 1.3` crashes
//!   (SIGSEGV in libtls) on RFC 9190's protected success indication, so the
//!   test shows the workaround instead: `eap_tls_max_version = "1.2"` on
//!   the gateway, and such a client logs in with TLS 1.2.
//! * A user certificate from another CA gets no SA on either side, and
//!   oxisec's log says why.
//! * oxisec as the road warrior (`local_auth = "eap-tls"`), strongSwan as
//!   the EAP-TLS gateway: an address from strongSwan's pool, the company
//!   network reachable. strongSwan 5.9.8 set to TLS 1.3 as server omits
//!   RFC 9190's protected success indication, which oxisec requires; with
//!   `eap_tls_max_version = "1.2"` on the client it works.
mod common;

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use common::certs::OxisecPki;
use common::oxisec_peer::OxisecPeer;
use common::peer::Peer;
use common::strongswan::StrongSwan;
use common::{LEFT_OUTER, RIGHT_HOST, RIGHT_OUTER, Result, Tool, Topology, Tuning, wait_until};

const POOL: &str = "198.51.100.128/25";
const COMPANY: &str = "203.0.113.0/24";
const DNS: &str = "203.0.113.53";
const GATEWAY_ID: &str = "vpn.example.org";
const USER: &str = "alice@example.org";
/// A user whose certificate comes from a CA the gateway does not trust.
const STRANGER: &str = "mallory@example.org";
const UP: Duration = Duration::from_secs(20);
/// strongSwan's charon plugins for EAP-TLS (its libtls does the TLS).
const EAP_TLS_PLUGINS: &str = "eap-tls";

fn topology(test: &str) -> Result<Topology> {
    let topo = Topology::new(test)?;
    // The road warrior has no subnet of its own, only its virtual IP.
    topo.left.ip(&[
        "addr",
        "del",
        &format!("{}/24", common::LEFT_HOST),
        "dev",
        "lo",
    ])?;
    Ok(topo)
}

fn ping(ns: &common::Netns, to: IpAddr) -> Result<()> {
    ns.exec(
        "ping",
        &["-c", "2", "-i", "0.2", "-W", "2", &to.to_string()],
    )
    .map(drop)
    .map_err(|e| format!("ping {to}: {e}").into())
}

fn in_pool(a: IpAddr) -> bool {
    match a {
        IpAddr::V4(v) => {
            let o = v.octets();
            o[..3] == [198, 51, 100] && o[3] >= 128
        }
        IpAddr::V6(_) => false,
    }
}

/// oxisec gateway: its certificate for IKE and TLS, EAP-TLS for its users.
fn oxisec_gateway(dir: &Path, pki: &OxisecPki) -> String {
    let gw = pki.issued(GATEWAY_ID);
    format!(
        r#"[daemon]
state_dir = "{state}"
[pools.staff]
addrs = "{POOL}"
[connections.rw]
local_addrs = ["{RIGHT_OUTER}"]
local_id = "{GATEWAY_ID}"
local_cert = "{cert}"
local_key = "{key}"
remote_auth = "eap-tls"
ca_certs = ["{ca}"]
ike_proposals = ["aes128gcm16-prfsha256-x25519"]
pools = ["staff"]
dns = ["{DNS}"]
[connections.rw.children.rw]
local_ts = ["{COMPANY}"]
remote_ts = ["dynamic"]
esp_proposals = ["aes128gcm16"]
"#,
        state = dir.join("state").display(),
        cert = gw.cert.display(),
        key = gw.key.display(),
        ca = pki.ca_cert().display(),
    )
}

/// One strongSwan road-warrior connection per user certificate.
fn strongswan_client() -> String {
    let conn = |name: &str, id: &str| {
        format!(
            r#"    rw-{name} {{
        version = 2
        local_addrs = {LEFT_OUTER}
        remote_addrs = {RIGHT_OUTER}
        encap = yes
        proposals = aes128gcm16-prfsha256-x25519
        vips = 0.0.0.0
        local {{
            auth = eap-tls
            certs = {id}.crt
            id = {id}
        }}
        remote {{
            auth = pubkey
            id = {GATEWAY_ID}
        }}
        children {{
            rw-{name} {{
                local_ts = dynamic
                remote_ts = {COMPANY}
                esp_proposals = aes128gcm16
                start_action = none
            }}
        }}
    }}
"#
        )
    };
    format!(
        "connections {{\n{}{}}}\n",
        conn("user", USER),
        conn("stranger", STRANGER)
    )
}

/// Puts `file` into swanctl's credential directory `sub` of a strongSwan
/// instance about to start in `dir` (loaded with the configuration).
fn swanctl_cred(dir: &Path, sub: &str, file: &Path) -> Result<()> {
    let d = dir.join("swanctl").join(sub);
    std::fs::create_dir_all(&d)?;
    std::fs::copy(file, d.join(file.file_name().ok_or("no file name")?))?;
    Ok(())
}

/// The virtual IP the oxisec gateway assigned: its child's remote selector.
fn assigned_vip(gw: &OxisecPeer) -> Result<Option<IpAddr>> {
    let r = gw.status()?;
    let ts = r
        .ike_sas
        .iter()
        .flat_map(|s| &s.children)
        .filter(|c| c.state == "INSTALLED")
        .flat_map(|c| &c.remote_ts)
        .next()
        .cloned();
    Ok(ts.and_then(|t| t.split('/').next().and_then(|a| a.parse().ok())))
}

/// Logs in as [`USER`], checks address, DNS attribute and the company
/// network, and logs out again.
fn log_in(client: &StrongSwan, gw: &OxisecPeer, topo: &Topology) -> Result<()> {
    let before = client.log().len();
    client.initiate("rw-user")?;
    let vip = wait_until("the virtual IP on the gateway", UP, || assigned_vip(gw))?;
    if !in_pool(vip) {
        return Err(format!("{vip} is not from the pool {POOL}").into());
    }
    ping(&topo.left, RIGHT_HOST)?;
    let sas = client.swanctl(&["--list-sas"])?;
    if !sas.contains(&vip.to_string()) {
        return Err(format!("strongSwan does not list {vip}: {sas}").into());
    }
    let log = client.log();
    let since = log.get(before..).unwrap_or("");
    if !since.contains("processing INTERNAL_IP4_DNS attribute") {
        return Err("strongSwan did not receive the DNS server".into());
    }
    if !since.contains("EAP method EAP_TLS succeeded, MSK established") {
        return Err(format!("strongSwan does not say EAP-TLS succeeded:\n{since}").into());
    }
    let glog = gw.log();
    if !glog.contains(&format!("authenticated with EAP as {USER}")) {
        return Err(format!("oxisec did not log the EAP-TLS user {USER}").into());
    }
    let status = gw.status()?;
    let pool = status.pools.first().ok_or("no pool in oxisec status")?;
    if (pool.name.as_str(), pool.online) != ("staff", 1) {
        return Err(format!("pool usage: {pool:?}").into());
    }
    client.terminate("rw-user")?;
    wait_until("the gateway to drop the client", UP, || {
        Ok(gw.list_sas()?.is_empty().then_some(()))
    })?;
    Ok(())
}

#[test]
fn strongswan_eap_tls_user_logs_in_to_oxisec_gateway() {
    let _serial = common::serial();
    let test = "strongswan_eap_tls_user_logs_in_to_oxisec_gateway";
    if common::skip(test, &[Tool::Charon, Tool::Swanctl, Tool::Ping]) {
        return;
    }
    let topo = topology(test).unwrap();
    let run = || -> Result<()> {
        let gw_dir = topo.dir.sub("right")?;
        let pki = OxisecPki::init_ca(&gw_dir.join("pki"), "EAP-TLS Test CA", "ecdsa")?;
        pki.issue_server(GATEWAY_ID, "ecdsa")?;
        let user = pki.issue_client(USER, "ecdsa")?;
        let foreign = OxisecPki::init_ca(&gw_dir.join("foreign"), "Foreign CA", "ecdsa")?;
        let stranger = foreign.issue_client(STRANGER, "ecdsa")?;
        let gw = OxisecPeer::start_with_config(
            topo.right.clone(),
            gw_dir.clone(),
            "oxisec@right".into(),
            &oxisec_gateway(&gw_dir, &pki),
        )?;
        let client_dir = topo.dir.sub("left")?;
        swanctl_cred(&client_dir, "x509ca", &pki.ca_cert())?;
        // The stranger's own CA, so that strongSwan has the chain of the
        // certificate it presents.
        std::fs::copy(
            foreign.ca_cert(),
            client_dir.join("swanctl/x509ca/foreign-ca.crt"),
        )?;
        for issued in [&user, &stranger] {
            swanctl_cred(&client_dir, "x509", &issued.cert)?;
            swanctl_cred(&client_dir, "private", &issued.key)?;
        }
        let client = StrongSwan::start_with_plugins(
            topo.left.clone(),
            client_dir.clone(),
            "strongswan@left".into(),
            &Tuning::default(),
            &strongswan_client(),
            EAP_TLS_PLUGINS,
        )?;

        // TLS 1.2, strongSwan's default.
        log_in(&client, &gw, &topo)?;
        let glog = gw.log();
        if !glog.contains("peer authenticates with EAP-TLS") {
            return Err("oxisec did not log the EAP method".into());
        }

        // A certificate from another CA: refused, no SA, the reason logged.
        let before = gw.log().len();
        if client.initiate("rw-stranger").is_ok() {
            return Err("strongSwan connected with a foreign certificate".into());
        }
        let sas = client.swanctl(&["--list-sas"])?;
        if sas.contains("rw-") {
            return Err(format!("strongSwan kept an SA after the failure: {sas}").into());
        }
        wait_until("the gateway to forget the failed attempt", UP, || {
            Ok(gw.list_sas()?.is_empty().then_some(()))
        })?;
        let log = gw.log();
        let since = log.get(before..).unwrap_or("");
        let refused = since.lines().any(|l| {
            l.contains(STRANGER) && l.contains("client certificate refused") && l.contains("CA")
        });
        if !refused {
            return Err(format!("oxisec did not log why {STRANGER} was refused:\n{since}").into());
        }

        // strongSwan allowed to offer TLS 1.3: 5.9.8 crashes on RFC 9190's
        // protected success indication, so such clients need a gateway
        // that stops at TLS 1.2 — which then works.
        drop(gw);
        let toml = oxisec_gateway(&gw_dir, &pki).replace(
            "remote_auth = \"eap-tls\"\n",
            "remote_auth = \"eap-tls\"\neap_tls_max_version = \"1.2\"\n",
        );
        let gw = OxisecPeer::start_with_config(
            topo.right.clone(),
            gw_dir.clone(),
            "oxisec@right".into(),
            &toml,
        )?;
        let conf = client_dir.join("strongswan.conf");
        let mut text = std::fs::read_to_string(&conf)?;
        text.push_str("charon {\n    tls {\n        version_max = 1.3\n    }\n}\n");
        std::fs::write(&conf, text)?;
        client.swanctl(&["--reload-settings"])?;
        let before = client.log().len();
        log_in(&client, &gw, &topo)?;
        let log = client.log();
        if !log
            .get(before..)
            .unwrap_or("")
            .contains("negotiated TLS 1.2")
        {
            return Err("strongSwan did not negotiate TLS 1.2".into());
        }
        Ok(())
    };
    if let Err(e) = run() {
        topo.dir.keep();
        panic!("{e}");
    }
}

/// strongSwan gateway: certificate from `oxisec pki` for IKE and TLS,
/// EAP-TLS users from the same CA, addresses and a DNS server from a pool.
fn strongswan_gateway() -> String {
    format!(
        r#"connections {{
    rw {{
        version = 2
        local_addrs = {RIGHT_OUTER}
        remote_addrs = %any
        encap = yes
        proposals = aes128gcm16-prfsha256-x25519
        pools = staff
        send_cert = always
        local {{
            auth = pubkey
            certs = {GATEWAY_ID}.crt
            id = {GATEWAY_ID}
        }}
        remote {{
            auth = eap-tls
        }}
        children {{
            rw {{
                local_ts = {COMPANY}
                esp_proposals = aes128gcm16
            }}
        }}
    }}
}}
pools {{
    staff {{
        addrs = {POOL}
        dns = {DNS}
    }}
}}
"#
    )
}

/// oxisec road warrior with `local_auth = "eap-tls"`.
fn oxisec_client(dir: &Path, pki: &OxisecPki) -> String {
    let me = pki.issued(USER);
    format!(
        r#"[daemon]
state_dir = "{state}"
dns = "off"
[connections.rw]
local_addrs = ["{LEFT_OUTER}"]
remote_addrs = ["{RIGHT_OUTER}"]
local_id = "{USER}"
remote_id = "{GATEWAY_ID}"
local_auth = "eap-tls"
local_cert = "{cert}"
local_key = "{key}"
remote_auth = "cert"
ca_certs = ["{ca}"]
ike_proposals = ["aes128gcm16-prfsha256-x25519"]
vips = ["0.0.0.0"]
[connections.rw.children.rw]
local_ts = ["dynamic"]
remote_ts = ["{COMPANY}"]
esp_proposals = ["aes128gcm16"]
"#,
        state = dir.join("state").display(),
        cert = me.cert.display(),
        key = me.key.display(),
        ca = pki.ca_cert().display(),
    )
}

fn tun_vip(ns: &common::Netns) -> Result<Option<IpAddr>> {
    let text = ns.ip(&["-4", "addr", "show", "dev", "oxisec0"])?;
    Ok(text
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .and_then(|a| a.split('/').next())
        .and_then(|a| a.parse::<IpAddr>().ok()))
}

#[test]
fn oxisec_eap_tls_client_logs_in_to_strongswan_gateway() {
    let _serial = common::serial();
    let test = "oxisec_eap_tls_client_logs_in_to_strongswan_gateway";
    if common::skip(test, &[Tool::Charon, Tool::Swanctl, Tool::Ping]) {
        return;
    }
    let topo = topology(test).unwrap();
    let run = || -> Result<()> {
        let pki_dir = topo.dir.sub("pki")?;
        let pki = OxisecPki::init_ca(&pki_dir.join("ca"), "EAP-TLS Test CA", "ecdsa")?;
        let gw_cert = pki.issue_server(GATEWAY_ID, "ecdsa")?;
        pki.issue_client(USER, "ecdsa")?;
        let gw_dir = topo.dir.sub("right")?;
        swanctl_cred(&gw_dir, "x509ca", &pki.ca_cert())?;
        swanctl_cred(&gw_dir, "x509", &gw_cert.cert)?;
        swanctl_cred(&gw_dir, "private", &gw_cert.key)?;
        let gw = StrongSwan::start_with_plugins(
            topo.right.clone(),
            gw_dir,
            "strongswan@right".into(),
            &Tuning::default(),
            &strongswan_gateway(),
            EAP_TLS_PLUGINS,
        )?;
        let dir = topo.dir.sub("left")?;
        let client = OxisecPeer::start_with_config(
            topo.left.clone(),
            dir.clone(),
            "oxisec@left".into(),
            &oxisec_client(&dir, &pki),
        )?;
        client.initiate("rw")?;
        let vip = wait_until("the virtual IP on oxisec0", UP, || tun_vip(&topo.left))?;
        if !in_pool(vip) {
            return Err(format!("{vip} is not from strongSwan's pool {POOL}").into());
        }
        ping(&topo.left, RIGHT_HOST)?;
        let log = gw.log();
        if !log.contains("EAP method EAP_TLS succeeded, MSK established") {
            return Err("strongSwan did not log a successful EAP-TLS login".into());
        }
        if !client.log().contains("EAP-TLS succeeded") {
            return Err("oxisec did not log its EAP-TLS login".into());
        }
        client.terminate("rw")?;
        wait_until("strongSwan to drop the client", UP, || {
            Ok((!gw.swanctl(&["--list-sas"])?.contains("rw")).then_some(()))
        })?;

        // strongSwan 5.9.8 as a TLS 1.3 EAP-TLS server sends no RFC 9190
        // protected success indication, which oxisec insists on; a client
        // with eap_tls_max_version = "1.2" logs in all the same.
        let conf = topo.dir.sub("right")?.join("strongswan.conf");
        let mut text = std::fs::read_to_string(&conf)?;
        text.push_str("charon {\n    tls {\n        version_max = 1.3\n    }\n}\n");
        std::fs::write(&conf, text)?;
        gw.swanctl(&["--reload-settings"])?;
        drop(client);
        let toml = oxisec_client(&dir, &pki).replace(
            "local_auth = \"eap-tls\"\n",
            "local_auth = \"eap-tls\"\neap_tls_max_version = \"1.2\"\n",
        );
        let client = OxisecPeer::start_with_config(
            topo.left.clone(),
            dir.clone(),
            "oxisec@left".into(),
            &toml,
        )?;
        client.initiate("rw")?;
        wait_until("the virtual IP on oxisec0", UP, || tun_vip(&topo.left))?;
        ping(&topo.left, RIGHT_HOST)?;
        client.terminate("rw")?;
        Ok(())
    };
    if let Err(e) = run() {
        topo.dir.keep();
        panic!("{e}");
    }
}
