//! Several road warriors at once against one oxisec gateway, in network
//! namespaces (needs root): each client in its own namespace on a bridge in
//! the gateway's, each with its own address from a pool, each reaching the
//! company host behind the gateway.
//!
//! ```text
//!   ns "rw0" .. "rw5": one client each         ns "gw": oxisec gateway
//!   veth0 192.0.2.10+i/24 <---- veth ----> vcI -+- br0 192.0.2.2/24
//!                                                 lo 203.0.113.1/24 (company)
//! ```
//!
//! * rw0, rw1: strongSwan with a plain certificate (`auth = pubkey`, made by
//!   `oxisec pki issue --client`), no EAP: an address from the `certs` pool
//!   and the DNS attribute.
//! * rw2, rw3: strongSwan with EAP-MSCHAPv2 as alice (group `staff`) and
//!   bob (group `contractors`): each from their group's pool
//!   (`[connections.rw-eap.groups.NAME]`).
//! * rw4: oxisec as the road warrior, EAP user erin in no group: the
//!   connection's own pool.
//! * rw5: strongSwan with a certificate whose subject has `OU=staff` (made
//!   by `oxisec pki issue --client … --ou staff`): the `staff` pool through
//!   `[connections.rw-cert.groups.staff]`.
//!
//! All six connect at the same time (one thread each); the addresses are
//! distinct, each is where its group says, each client pings the company
//! host from its address through the tunnel, and `oxisec status` on the
//! gateway names each client's user and groups.
mod common;

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::certs::OxisecPki;
use common::oxisec_peer::{OxisecPeer, oxisec_bin};
use common::peer::Peer;
use common::strongswan::{EAP_PLUGINS, StrongSwan};
use common::{Netns, RIGHT_HOST, Result, TestDir, Tool, Tuning, wait_until};

const GATEWAY: &str = "192.0.2.2";
const GATEWAY_ID: &str = "vpn.example.org";
const COMPANY: &str = "203.0.113.0/24";
const DNS: &str = "203.0.113.53";
/// One pool per kind of client; the ranges are what the test checks.
const CERT_POOL: (&str, &str) = ("certs", "198.51.100.16/28");
const STAFF_POOL: (&str, &str) = ("staff", "198.51.100.32/28");
const GUEST_POOL: (&str, &str) = ("guests", "198.51.100.48/28");
const DEFAULT_POOL: (&str, &str) = ("everyone", "198.51.100.64/28");
const CERT_USERS: [&str; 2] = ["carol@example.org", "dave@example.org"];
/// The certificate client whose subject's OU names its group.
const OU_USER: &str = "frank@example.org";
const OU_GROUP: &str = "staff";
/// (user, password, group in the users file).
const EAP_USERS: [(&str, &str, Option<&str>); 3] = [
    ("alice", "alice's long password", Some("staff")),
    ("bob", "bob's long password", Some("contractors")),
    ("erin", "erin's long password", None),
];
const UP: Duration = Duration::from_secs(30);

/// The gateway's namespace with the bridge, and one namespace per client.
struct Net {
    gw: Arc<Netns>,
    clients: Vec<Arc<Netns>>,
}

impl Net {
    fn new(n: usize) -> Result<Net> {
        let gw = Arc::new(Netns::create("gw")?);
        gw.ip(&["link", "add", "br0", "type", "bridge"])?;
        gw.link_up("br0")?;
        gw.add_address("br0", GATEWAY.parse()?, 24)?;
        gw.add_lo_address(RIGHT_HOST, 24)?;
        let mut clients = Vec::new();
        for i in 0..n {
            let ns = Arc::new(Netns::create(&format!("rw{i}"))?);
            let port = format!("vc{i}");
            common::netns::veth_pair(&ns, "veth0", &gw, &port)?;
            gw.ip(&["link", "set", &port, "master", "br0"])?;
            ns.add_address("veth0", client_addr(i), 24)?;
            clients.push(ns);
        }
        Ok(Net { gw, clients })
    }
}

fn client_addr(i: usize) -> IpAddr {
    format!("192.0.2.{}", 10 + i).parse().expect("an address")
}

/// Whether `a` lies in the pool written as `net/28`.
fn in_pool(a: IpAddr, pool: (&str, &str)) -> bool {
    let (net, _) = pool.1.split_once('/').expect("a subnet");
    let (IpAddr::V4(a), Ok(IpAddr::V4(n))) = (a, net.parse::<IpAddr>()) else {
        return false;
    };
    u32::from(a) & !0xf == u32::from(n)
}

fn ping(ns: &Netns, to: IpAddr) -> Result<()> {
    ns.exec(
        "ping",
        &["-c", "2", "-i", "0.2", "-W", "2", &to.to_string()],
    )
    .map(drop)
    .map_err(|e| format!("ping {to} from {}: {e}", ns.name()).into())
}

fn private_file(path: &Path, content: &str) -> Result<()> {
    std::fs::write(path, content)?;
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    Ok(())
}

/// `oxisec user --file FILE add NAME --password-file … [--group G]`.
fn add_user(users: &Path, name: &str, password: &str, group: Option<&str>) -> Result<()> {
    let pw = users.with_file_name(format!("{name}.new-password"));
    private_file(&pw, &format!("{password}\n"))?;
    let mut cmd = std::process::Command::new(oxisec_bin());
    cmd.arg("user")
        .arg("--file")
        .arg(users)
        .args(["add", name, "--password-file"])
        .arg(&pw);
    if let Some(g) = group {
        cmd.args(["--group", g]);
    }
    common::netns::run(&mut cmd, Duration::from_secs(30))?;
    std::fs::remove_file(&pw)?;
    Ok(())
}

/// Puts `file` into swanctl's credential directory `sub` under `dir`.
fn swanctl_cred(dir: &Path, sub: &str, file: &Path) -> Result<()> {
    let d = dir.join("swanctl").join(sub);
    std::fs::create_dir_all(&d)?;
    std::fs::copy(file, d.join(file.file_name().ok_or("no file name")?))?;
    Ok(())
}

/// The gateway: certificate clients on `rw-cert`, EAP users on `rw-eap`
/// with a pool per group and a default pool for the rest.
fn gateway_toml(dir: &Path, pki: &OxisecPki) -> String {
    let gw = pki.issued(GATEWAY_ID);
    let pool = |(name, addrs): (&str, &str)| format!("[pools.{name}]\naddrs = \"{addrs}\"\n");
    let conn = |name: &str, remote_auth: &str, pools: &str| {
        format!(
            r#"[connections.{name}]
local_addrs = ["{GATEWAY}"]
local_id = "{GATEWAY_ID}"
local_cert = "{cert}"
local_key = "{key}"
remote_auth = "{remote_auth}"
{ca}
ike_proposals = ["aes128gcm16-prfsha256-x25519"]
pools = ["{pools}"]
dns = ["{DNS}"]
[connections.{name}.children.{name}]
local_ts = ["{COMPANY}"]
remote_ts = ["dynamic"]
esp_proposals = ["aes128gcm16"]
"#,
            cert = gw.cert.display(),
            key = gw.key.display(),
            ca = if remote_auth == "cert" {
                format!("ca_certs = [\"{}\"]", pki.ca_cert().display())
            } else {
                String::new()
            },
        )
    };
    format!(
        r#"[daemon]
state_dir = "{state}"
users_file = "{users}"
{}{}{}{}{}{}[connections.rw-eap.groups.staff]
pools = ["{}"]
[connections.rw-cert.groups.staff]
pools = ["{STAFF}"]
[connections.rw-eap.groups.contractors]
pools = ["{}"]
subnets = ["{COMPANY}"]
"#,
        pool(CERT_POOL),
        pool(STAFF_POOL),
        pool(GUEST_POOL),
        pool(DEFAULT_POOL),
        conn("rw-cert", "cert", CERT_POOL.0),
        conn("rw-eap", "eap-mschapv2", DEFAULT_POOL.0),
        STAFF_POOL.0,
        GUEST_POOL.0,
        state = dir.join("state").display(),
        users = dir.join("users.toml").display(),
        STAFF = STAFF_POOL.0,
    )
}

/// One strongSwan road warrior at `addr`: `auth` is `pubkey` (with the
/// certificate file `cert`) or `eap-mschapv2` (as `id`).
fn strongswan_client(addr: IpAddr, id: &str, auth: &str, secret: Option<&str>) -> String {
    let local = match auth {
        "pubkey" => format!("auth = pubkey\n            certs = {id}.crt\n            id = {id}"),
        _ => format!("auth = eap-mschapv2\n            id = {id}\n            eap_id = {id}"),
    };
    let secrets = secret
        .map(|s| format!("secrets {{\n    eap-user {{\n        id = {id}\n        secret = \"{s}\"\n    }}\n}}\n"))
        .unwrap_or_default();
    format!(
        r#"connections {{
    rw {{
        version = 2
        local_addrs = {addr}
        remote_addrs = {GATEWAY}
        encap = yes
        proposals = aes128gcm16-prfsha256-x25519
        vips = 0.0.0.0
        local {{
            {local}
        }}
        remote {{
            auth = pubkey
            id = {GATEWAY_ID}
        }}
        children {{
            rw {{
                local_ts = dynamic
                remote_ts = {COMPANY}
                esp_proposals = aes128gcm16
                start_action = none
            }}
        }}
    }}
}}
{secrets}"#
    )
}

/// oxisec as an EAP road warrior at `addr`.
fn oxisec_client(dir: &Path, addr: IpAddr, user: &str, ca: &Path) -> String {
    format!(
        r#"[daemon]
state_dir = "{state}"
dns = "off"
[connections.rw]
local_addrs = ["{addr}"]
remote_addrs = ["{GATEWAY}"]
local_id = "{user}"
remote_id = "{GATEWAY_ID}"
local_auth = "eap"
eap_identity = "{user}"
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
        pw = dir.join("password").display(),
        ca = ca.display(),
    )
}

/// The virtual IP strongSwan lists for its SA (`local-vips=[a]`).
fn strongswan_vip(client: &StrongSwan) -> Result<Option<IpAddr>> {
    let raw = client.swanctl(&["--list-sas", "--raw"])?;
    Ok(raw
        .split("local-vips=[")
        .nth(1)
        .and_then(|r| r.split(']').next())
        .and_then(|a| a.split_whitespace().next())
        .and_then(|a| a.parse().ok()))
}

fn tun_vip(ns: &Netns) -> Result<Option<IpAddr>> {
    let text = ns.ip(&["-4", "addr", "show", "dev", "oxisec0"])?;
    Ok(text
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .and_then(|a| a.split('/').next())
        .and_then(|a| a.parse::<IpAddr>().ok()))
}

enum Client {
    Swan(StrongSwan),
    Oxisec(OxisecPeer),
}

impl Client {
    fn peer(&self) -> &dyn Peer {
        match self {
            Client::Swan(s) => s,
            Client::Oxisec(o) => o,
        }
    }

    fn vip(&self, ns: &Netns) -> Result<Option<IpAddr>> {
        match self {
            Client::Swan(s) => strongswan_vip(s),
            Client::Oxisec(_) => tun_vip(ns),
        }
    }
}

#[test]
fn road_warriors_at_once_with_certificates_and_groups() {
    let _serial = common::serial();
    let test = "road_warriors_at_once_with_certificates_and_groups";
    if common::skip(test, &[Tool::Charon, Tool::Swanctl, Tool::Ping]) {
        return;
    }
    let dir = TestDir::new(test).unwrap();
    let net = Net::new(6).unwrap();
    let run = || -> Result<()> {
        let gw_dir = dir.sub("gw")?;
        let pki = OxisecPki::init_ca(&gw_dir.join("pki"), "Road Warrior CA", "ecdsa")?;
        pki.issue_server(GATEWAY_ID, "ecdsa")?;
        let certs = CERT_USERS
            .iter()
            .map(|u| pki.issue_client(u, "ecdsa"))
            .collect::<Result<Vec<_>>>()?;
        let users = gw_dir.join("users.toml");
        for (name, pw, group) in EAP_USERS {
            add_user(&users, name, pw, group)?;
        }
        // The client whose certificate puts it in a group (OU=staff).
        let ou_cert = pki.issue_client_in_group(OU_USER, OU_GROUP, "ecdsa")?;
        let gw = OxisecPeer::start_with_config(
            net.gw.clone(),
            gw_dir.clone(),
            "oxisec@gw".into(),
            &gateway_toml(&gw_dir, &pki),
        )?;

        // Start the six clients.
        let mut clients = Vec::new();
        for (i, ns) in net.clients.iter().enumerate() {
            let cdir = dir.sub(&format!("rw{i}"))?;
            let addr = client_addr(i);
            swanctl_cred(&cdir, "x509ca", &pki.ca_cert())?;
            let c = match i {
                5 => {
                    swanctl_cred(&cdir, "x509", &ou_cert.cert)?;
                    swanctl_cred(&cdir, "private", &ou_cert.key)?;
                    let conf = strongswan_client(addr, OU_USER, "pubkey", None);
                    Client::Swan(StrongSwan::start_with_swanctl(
                        ns.clone(),
                        cdir,
                        format!("strongswan@rw{i}"),
                        &Tuning::default(),
                        &conf,
                    )?)
                }
                0 | 1 => {
                    swanctl_cred(&cdir, "x509", &certs[i].cert)?;
                    swanctl_cred(&cdir, "private", &certs[i].key)?;
                    let conf = strongswan_client(addr, CERT_USERS[i], "pubkey", None);
                    Client::Swan(StrongSwan::start_with_swanctl(
                        ns.clone(),
                        cdir,
                        format!("strongswan@rw{i}"),
                        &Tuning::default(),
                        &conf,
                    )?)
                }
                2 | 3 => {
                    let (user, pw, _) = EAP_USERS[i - 2];
                    let conf = strongswan_client(addr, user, "eap-mschapv2", Some(pw));
                    Client::Swan(StrongSwan::start_with_plugins(
                        ns.clone(),
                        cdir,
                        format!("strongswan@rw{i}"),
                        &Tuning::default(),
                        &conf,
                        EAP_PLUGINS,
                    )?)
                }
                4 => {
                    let (user, pw, _) = EAP_USERS[2];
                    private_file(&cdir.join("password"), &format!("{pw}\n"))?;
                    let toml = oxisec_client(&cdir, addr, user, &pki.ca_cert());
                    Client::Oxisec(OxisecPeer::start_with_config(
                        ns.clone(),
                        cdir,
                        format!("oxisec@rw{i}"),
                        &toml,
                    )?)
                }
                _ => return Err("more clients than kinds".into()),
            };
            clients.push(c);
        }

        // All at once.
        std::thread::scope(|s| -> Result<()> {
            let handles: Vec<_> = clients
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    s.spawn(move || c.peer().initiate("rw").map_err(|e| format!("rw{i}: {e}")))
                })
                .collect();
            for h in handles {
                h.join().map_err(|_| "an initiating thread panicked")??;
            }
            Ok(())
        })?;

        // Each client's address, as the client sees it.
        let mut vips = Vec::new();
        for (i, (c, ns)) in clients.iter().zip(&net.clients).enumerate() {
            let what = format!("rw{i}'s virtual IP");
            vips.push(wait_until(&what, UP, || c.vip(ns))?);
        }
        let mut distinct = vips.clone();
        distinct.sort();
        distinct.dedup();
        if distinct.len() != clients.len() {
            return Err(format!("addresses are not distinct: {vips:?}").into());
        }
        let expected = [
            CERT_POOL,
            CERT_POOL,
            STAFF_POOL,
            GUEST_POOL,
            DEFAULT_POOL,
            STAFF_POOL,
        ];
        for (i, (vip, pool)) in vips.iter().zip(expected).enumerate() {
            if !in_pool(*vip, pool) {
                return Err(
                    format!("rw{i} got {vip}, not from pool {} ({})", pool.0, pool.1).into(),
                );
            }
        }
        // The gateway agrees: six IKE SAs, each with its client's address.
        let status = gw.status()?;
        let mut on_gw: Vec<IpAddr> = status
            .ike_sas
            .iter()
            .flat_map(|s| s.peer_virtual_ips.iter().copied())
            .collect();
        on_gw.sort();
        if on_gw != distinct {
            return Err(format!("gateway lists {on_gw:?}, clients have {distinct:?}").into());
        }
        let online: usize = status.pools.iter().map(|p| p.online).sum();
        if online != clients.len() {
            return Err(format!("pool usage: {:?}", status.pools).into());
        }

        // Every client reaches the company host from its address.
        for ns in &net.clients {
            ping(ns, RIGHT_HOST)?;
        }

        // The certificate clients got the DNS server too.
        for c in &clients[..2] {
            if !c
                .peer()
                .log()
                .contains("processing INTERNAL_IP4_DNS attribute")
            {
                return Err("a certificate client got no DNS server".into());
            }
        }
        // The gateway says which group chose the pool.
        let log = gw.log();
        let grouped = [
            ("alice", "staff"),
            ("bob", "contractors"),
            (OU_USER, OU_GROUP),
        ];
        for (user, group) in grouped {
            let said = log.lines().any(|l| {
                l.contains("assigned virtual IP") && l.contains(user) && l.contains(group)
            });
            if !said {
                return Err(format!("the gateway did not log {user}'s group {group}").into());
            }
        }
        // And `oxisec status` shows each client's EAP user and groups, and
        // which group chose its values.
        let shown = |sa: &oxisec::status::IkeSaInfo| {
            (
                sa.eap_identity.clone(),
                sa.peer_groups.clone(),
                sa.access_group.clone(),
            )
        };
        let mut on_status: Vec<_> = status.ike_sas.iter().map(shown).collect();
        on_status.sort();
        let s = |v: &str| v.to_string();
        let mut expected = vec![
            (None, vec![], None),
            (None, vec![], None),
            (None, vec![s(OU_GROUP)], Some(s(OU_GROUP))),
            (Some(s("alice")), vec![s("staff")], Some(s("staff"))),
            (
                Some(s("bob")),
                vec![s("contractors")],
                Some(s("contractors")),
            ),
            (Some(s("erin")), vec![], None),
        ];
        expected.sort();
        if on_status != expected {
            return Err(format!("status shows {on_status:?}, expected {expected:?}").into());
        }
        let table = oxisec::status::render(&status);
        for line in [
            "    user alice, group staff (access: staff)\n",
            "    group staff (access: staff)\n",
            "    user erin\n",
        ] {
            if !table.contains(line) {
                return Err(format!("status table lacks {line:?}:\n{table}").into());
            }
        }
        Ok(())
    };
    if let Err(e) = run() {
        dir.keep();
        panic!("{e}");
    }
}
