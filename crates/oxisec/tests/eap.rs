//! EAP-MSCHAPv2 users against strongSwan, in network namespaces (needs
//! root): a road warrior logs in with a user name and password, the gateway
//! proves itself with a certificate from `oxisec pki`.
//!
//! ```text
//!   ns "left": road warrior                      ns "right": gateway
//!   veth-l 192.0.2.1/24 <------ veth ------> veth-r 192.0.2.2/24
//!   virtual IP from 198.51.100.128/25            lo 203.0.113.1/24 (company)
//! ```
//!
//! * strongSwan as the road warrior (`auth = eap-mschapv2`), oxisec as the
//!   gateway with `remote_auth = "eap-mschapv2"` and a users file made by
//!   `oxisec user add`: the client gets an address from the pool and
//!   reaches the company network. A user with the wrong password gets no
//!   SA on either side, and oxisec's log says why.
//!   With `eap_ask_identity = true` a client whose IKE identity is its IP
//!   address (as Windows sends) logs in by the name it gives in the
//!   EAP-Identity round.
//! * oxisec as the road warrior (`local_auth = "eap"`), strongSwan as the
//!   gateway asking for the EAP identity first (`eap_id = %any`) and
//!   checking the password from its swanctl secrets; a wrong password
//!   leaves nothing up and oxisec logs that the gateway refused it.
//!
//! strongSwan needs its eap-identity and eap-mschapv2 plugins for these
//! tests only ([`EAP_PLUGINS`]); MD4 and DES come from its openssl plugin.
mod common;

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use common::certs::OxisecPki;
use common::oxisec_peer::{OxisecPeer, oxisec_bin};
use common::peer::Peer;
use common::strongswan::{EAP_PLUGINS, StrongSwan};
use common::{
    LEFT_HOST, LEFT_OUTER, RIGHT_HOST, RIGHT_OUTER, Result, Tool, Topology, Tuning, wait_until,
};

const POOL: &str = "198.51.100.128/25";
const COMPANY: &str = "203.0.113.0/24";
const GATEWAY_ID: &str = "vpn.example.org";
const USER: &str = "alice";
const PASSWORD: &str = "correct horse battery";
/// A second user whose client knows a different password than the gateway.
const BAD_USER: &str = "bob";
const BAD_PASSWORD_ON_GATEWAY: &str = "bob's real password";
const BAD_PASSWORD_ON_CLIENT: &str = "bob guessed wrong";
const UP: Duration = Duration::from_secs(20);

fn topology(test: &str) -> Result<Topology> {
    let topo = Topology::new(test)?;
    // The road warrior has no subnet of its own, only its virtual IP.
    topo.left
        .ip(&["addr", "del", &format!("{LEFT_HOST}/24"), "dev", "lo"])?;
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

/// A private file holding `content` (passwords for `oxisec user` and the
/// client's `eap_password_file`).
fn private_file(path: &Path, content: &str) -> Result<()> {
    std::fs::write(path, content)?;
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    Ok(())
}

/// `oxisec user --file FILE add NAME --password-file …`, as an operator would.
fn add_user(users: &Path, name: &str, password: &str) -> Result<()> {
    let pw = users.with_file_name(format!("{name}.new-password"));
    private_file(&pw, &format!("{password}\n"))?;
    let mut cmd = std::process::Command::new(oxisec_bin());
    cmd.arg("user")
        .arg("--file")
        .arg(users)
        .args(["add", name, "--password-file"])
        .arg(&pw);
    common::netns::run(&mut cmd, Duration::from_secs(30))?;
    std::fs::remove_file(&pw)?;
    Ok(())
}

/// The gateway's CA and certificate, made with `oxisec pki` in `dir/pki`.
fn gateway_pki(dir: &Path) -> Result<OxisecPki> {
    let pki = OxisecPki::init_ca(&dir.join("pki"), "EAP Test CA", "ecdsa")?;
    pki.issue_server(GATEWAY_ID, "ecdsa")?;
    Ok(pki)
}

/// oxisec gateway: certificate for itself, EAP-MSCHAPv2 for its users.
fn oxisec_gateway(dir: &Path, pki: &OxisecPki, ask_identity: bool) -> String {
    let gw = pki.issued(GATEWAY_ID);
    format!(
        r#"[daemon]
state_dir = "{state}"
users_file = "{users}"
[pools.staff]
addrs = "{POOL}"
[connections.rw]
local_addrs = ["{RIGHT_OUTER}"]
local_id = "{GATEWAY_ID}"
local_cert = "{cert}"
local_key = "{key}"
remote_auth = "eap-mschapv2"
eap_ask_identity = {ask_identity}
ike_proposals = ["aes128gcm16-prfsha256-x25519"]
pools = ["staff"]
[connections.rw.children.rw]
local_ts = ["{COMPANY}"]
remote_ts = ["dynamic"]
esp_proposals = ["aes128gcm16"]
"#,
        state = dir.join("state").display(),
        users = dir.join("users.toml").display(),
        cert = gw.cert.display(),
        key = gw.key.display(),
    )
}

/// One strongSwan road-warrior connection per user (their IKE identity is
/// their user name, as strongSwan's `eap_id` defaults to it), and `rw-win`
/// for alice as Windows does it: its IP address as IKE identity, the user
/// name only in the EAP-Identity round.
fn strongswan_client() -> String {
    let conn = |name: &str, id: &str, eap_id: &str| {
        format!(
            r#"    rw-{name} {{
        version = 2
        local_addrs = {LEFT_OUTER}
        remote_addrs = {RIGHT_OUTER}
        encap = yes
        proposals = aes128gcm16-prfsha256-x25519
        vips = 0.0.0.0
        local {{
            auth = eap-mschapv2
            id = {id}
            eap_id = {eap_id}
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
        r#"connections {{
{}{}{}}}
secrets {{
    eap-{USER} {{
        id = {USER}
        secret = "{PASSWORD}"
    }}
    eap-{BAD_USER} {{
        id = {BAD_USER}
        secret = "{BAD_PASSWORD_ON_CLIENT}"
    }}
}}
"#,
        conn(USER, USER, USER),
        conn(BAD_USER, BAD_USER, BAD_USER),
        conn("win", &LEFT_OUTER.to_string(), USER),
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

#[test]
fn strongswan_eap_user_logs_in_to_oxisec_gateway() {
    let _serial = common::serial();
    let test = "strongswan_eap_user_logs_in_to_oxisec_gateway";
    if common::skip(test, &[Tool::Charon, Tool::Swanctl, Tool::Ping]) {
        return;
    }
    let topo = topology(test).unwrap();
    let run = || -> Result<()> {
        let gw_dir = topo.dir.sub("right")?;
        let pki = gateway_pki(&gw_dir)?;
        let users = gw_dir.join("users.toml");
        add_user(&users, USER, PASSWORD)?;
        add_user(&users, BAD_USER, BAD_PASSWORD_ON_GATEWAY)?;
        let mut gw = OxisecPeer::start_with_config(
            topo.right.clone(),
            gw_dir.clone(),
            "oxisec@right".into(),
            &oxisec_gateway(&gw_dir, &pki, false),
        )?;
        let client_dir = topo.dir.sub("left")?;
        swanctl_cred(&client_dir, "x509ca", &pki.ca_cert())?;
        let client = StrongSwan::start_with_plugins(
            topo.left.clone(),
            client_dir,
            "strongswan@left".into(),
            &Tuning::default(),
            &strongswan_client(),
            EAP_PLUGINS,
        )?;

        // The right password: an address from the pool, the company network.
        client.initiate(&format!("rw-{USER}"))?;
        let vip = wait_until("the virtual IP on the gateway", UP, || assigned_vip(&gw))?;
        if !in_pool(vip) {
            return Err(format!("{vip} is not from the pool {POOL}").into());
        }
        ping(&topo.left, RIGHT_HOST)?;
        let log = gw.log();
        if !log.contains(USER) || !log.contains("EAP") {
            return Err("oxisec's log does not name the EAP user".into());
        }
        let sas = client.swanctl(&["--list-sas"])?;
        if !sas.contains(&vip.to_string()) {
            return Err(format!("strongSwan does not list {vip}: {sas}").into());
        }
        client.terminate(&format!("rw-{USER}"))?;
        wait_until("the gateway to drop the client", UP, || {
            Ok(gw.list_sas()?.is_empty().then_some(()))
        })?;

        // The wrong password: refused, no SA anywhere, the reason logged.
        let before = gw.log().len();
        if client.initiate(&format!("rw-{BAD_USER}")).is_ok() {
            return Err("strongSwan connected with a wrong password".into());
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
            l.contains(&format!("EAP-MSCHAPv2 failed for \"{BAD_USER}\""))
                && l.contains("wrong password")
        });
        if !refused {
            return Err(format!("oxisec did not log why {BAD_USER} was refused:\n{since}").into());
        }

        // Windows' way: the IKE identity is an address, the user name comes
        // in the EAP-Identity round the gateway asks for.
        drop(gw);
        gw = OxisecPeer::start_with_config(
            topo.right.clone(),
            gw_dir.clone(),
            "oxisec@right".into(),
            &oxisec_gateway(&gw_dir, &pki, true),
        )?;
        client.initiate("rw-win")?;
        let vip = wait_until("the virtual IP on the gateway", UP, || assigned_vip(&gw))?;
        if !in_pool(vip) {
            return Err(format!("{vip} is not from the pool {POOL}").into());
        }
        ping(&topo.left, RIGHT_HOST)?;
        if !gw
            .log()
            .contains(&format!("authenticated with EAP as {USER}"))
        {
            return Err(format!("oxisec did not log the EAP user {USER} of rw-win").into());
        }
        client.terminate("rw-win")?;
        Ok(())
    };
    if let Err(e) = run() {
        topo.dir.keep();
        panic!("{e}");
    }
}

/// strongSwan gateway: certificate from `oxisec pki`, EAP-MSCHAPv2 users
/// from its secrets, EAP-Identity asked first.
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
            auth = eap-mschapv2
            eap_id = %any
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
    }}
}}
secrets {{
    eap-{USER} {{
        id = {USER}
        secret = "{PASSWORD}"
    }}
}}
"#
    )
}

fn oxisec_client(dir: &Path, ca: &Path) -> String {
    format!(
        r#"[daemon]
state_dir = "{state}"
dns = "off"
[connections.rw]
local_addrs = ["{LEFT_OUTER}"]
remote_addrs = ["{RIGHT_OUTER}"]
local_id = "{USER}"
remote_id = "{GATEWAY_ID}"
local_auth = "eap"
eap_identity = "{USER}"
eap_password_file = "{pw}"
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
        pw = dir.join("alice.password").display(),
        ca = ca.display(),
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
fn oxisec_eap_client_logs_in_to_strongswan_gateway() {
    let _serial = common::serial();
    let test = "oxisec_eap_client_logs_in_to_strongswan_gateway";
    if common::skip(test, &[Tool::Charon, Tool::Swanctl, Tool::Ping]) {
        return;
    }
    let topo = topology(test).unwrap();
    let run = || -> Result<()> {
        let gw_dir = topo.dir.sub("right")?;
        let pki = gateway_pki(&topo.dir.sub("pki")?)?;
        let issued = pki.issued(GATEWAY_ID);
        swanctl_cred(&gw_dir, "x509", &issued.cert)?;
        swanctl_cred(&gw_dir, "private", &issued.key)?;
        let gw = StrongSwan::start_with_plugins(
            topo.right.clone(),
            gw_dir,
            "strongswan@right".into(),
            &Tuning::default(),
            &strongswan_gateway(),
            EAP_PLUGINS,
        )?;
        let dir = topo.dir.sub("left")?;
        private_file(&dir.join("alice.password"), &format!("{PASSWORD}\n"))?;
        let client = OxisecPeer::start_with_config(
            topo.left.clone(),
            dir.clone(),
            "oxisec@left".into(),
            &oxisec_client(&dir, &pki.ca_cert()),
        )?;
        client.initiate("rw")?;
        let vip = wait_until("the virtual IP on oxisec0", UP, || tun_vip(&topo.left))?;
        if !in_pool(vip) {
            return Err(format!("{vip} is not from strongSwan's pool {POOL}").into());
        }
        ping(&topo.left, RIGHT_HOST)?;
        // strongSwan saw the EAP user, not only the IKE identity.
        let log = gw.log();
        if !log.contains(&format!("EAP-MS-CHAPv2 succeeded: '{USER}'"))
            && !log.contains("authentication of 'alice' with EAP successful")
        {
            return Err("strongSwan did not log a successful EAP-MSCHAPv2 login".into());
        }
        client.terminate("rw")?;
        wait_until("strongSwan to drop the client", UP, || {
            Ok((!gw.swanctl(&["--list-sas"])?.contains("rw")).then_some(()))
        })?;

        // A wrong password: strongSwan refuses it, nothing stays up, and
        // oxisec's log says that the gateway refused the password.
        drop(client);
        private_file(&dir.join("alice.password"), "not alice's password\n")?;
        let client = OxisecPeer::start_with_config(
            topo.left.clone(),
            dir.clone(),
            "oxisec@left".into(),
            &oxisec_client(&dir, &pki.ca_cert()),
        )?;
        let _ = client.initiate("rw");
        wait_until("oxisec to log the refusal", UP, || {
            Ok(client
                .log()
                .lines()
                .any(|l| l.contains("the gateway refused our EAP-MSCHAPv2 password"))
                .then_some(()))
        })?;
        if !client.list_sas()?.is_empty() {
            return Err("oxisec kept an SA after a wrong password".into());
        }
        if tun_vip(&topo.left)?.is_some() {
            return Err("oxisec kept a virtual IP after a wrong password".into());
        }
        let sas = gw.swanctl(&["--list-sas"])?;
        if sas.contains("rw") {
            return Err(format!("strongSwan kept an SA after a wrong password: {sas}").into());
        }
        Ok(())
    };
    if let Err(e) = run() {
        topo.dir.keep();
        panic!("{e}");
    }
}
