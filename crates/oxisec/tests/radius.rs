//! The RADIUS client against a real FreeRADIUS (needs root and the Debian
//! package `freeradius`), in network namespaces:
//!
//! ```text
//!   ns "left": oxisec's RADIUS client (the NAS)     ns "right": freeradius -X
//!   veth-l 192.0.2.1/24 <-------- veth --------> veth-r 192.0.2.2/24 :1812
//! ```
//!
//! The test plays the EAP-MSCHAPv2 peer itself (with oxisec-ike's public
//! MSCHAPv2 functions) and carries each EAP message to FreeRADIUS with
//! `oxisec::radius::exchange`, exactly as the gateway relays a client's:
//! Access-Request with EAP-Message and Message-Authenticator, State echoed,
//! Access-Challenge / Access-Accept / Access-Reject verified. On success
//! the MSK decrypted from MS-MPPE-Recv-Key/Send-Key must be the one the
//! peer derives (RFC 3079), or the final IKE AUTH payloads would not match.
//! A wrong password ends in Access-Reject and no MSK.
//!
//! Then the whole authentication: two oxisec IKE engines configured from
//! TOML as the daemon configures them, the gateway with remote_auth =
//! "eap-radius" relaying to FreeRADIUS, up with the EAP user (and down
//! with a wrong password).
//!
//! And the daemon as that gateway (its sockets, its RADIUS tasks), with an
//! oxisec engine as client over real UDP from the left namespace.
//!
//! And a real road warrior: strongSwan (eap-mschapv2) logs in to the
//! daemon as eap-radius gateway (its certificate from `oxisec pki`),
//! FreeRADIUS checks the password, the client gets a virtual IP from an
//! oxisec pool and pings the company network; a wrong password leaves no
//! SA on either side and oxisec's log says that RADIUS rejected it.
mod common;

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

use common::{LEFT_OUTER, RIGHT_OUTER, Result, Topology, netsys::in_netns, wait_until};
use oxisec::radius::{self, Answer, ClientConfig, RequestAttrs, Verdict};
use oxisec_crypto::Secret;
use oxisec_ike::NtHash;
use oxisec_ike::eap::mschapv2::{self, Message};
use oxisec_ike::eap::{Code, EapPacket, EapType};

const FREERADIUS: &str = "/usr/sbin/freeradius";
const SYSTEM_CONF: &str = "/etc/freeradius/3.0";
const SECRET: &str = "a RADIUS secret for the test, long";
const USER: &str = "alice";
const PASSWORD: &str = "wonderland";
/// alice's group: FreeRADIUS sends it as the Class attribute of its
/// Access-Accept, and the gateway takes her address from its pool.
const USER_GROUP: &str = "staff";
/// A second FreeRADIUS user, for a client that knows the wrong password
/// (strongSwan keys its EAP secrets by identity, so alice cannot have two).
const BAD_USER: &str = "bob";
const BAD_USER_PASSWORD: &str = "bob's real password";

/// Skips (or, with OXISEC_INTEROP_REQUIRED=1, fails) without root or
/// FreeRADIUS.
fn skip(test: &str) -> bool {
    skip_without(test, &[])
}

/// [`skip`], also without the external `tools`.
fn skip_without(test: &str, tools: &[common::Tool]) -> bool {
    if common::skip(test, tools) {
        return true;
    }
    if Path::new(FREERADIUS).exists() && Path::new(SYSTEM_CONF).exists() {
        return false;
    }
    let why = "needs the freeradius package (run scripts/test.sh to install it)";
    if std::env::var("OXISEC_INTEROP_REQUIRED").is_ok_and(|v| v == "1") {
        panic!("{test}: {why} (OXISEC_INTEROP_REQUIRED=1 forbids skipping)");
    }
    eprintln!("SKIP: {test} {why}");
    true
}

/// FreeRADIUS in the foreground, killed on drop.
struct FreeRadius {
    child: Child,
    log: PathBuf,
}

impl Drop for FreeRadius {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Debian's configuration, copied and narrowed to what the test needs:
/// one client (the left namespace) with our secret and Message-Authenticator
/// required, two users, EAP with MSCHAPv2 only (no TLS certificates needed),
/// no privilege drop (the copy belongs to root).
fn configure(dir: &Path, nas: std::net::IpAddr) -> Result<()> {
    let conf = dir.join("raddb");
    let out = std::process::Command::new("cp")
        .args(["-rL", SYSTEM_CONF])
        .arg(&conf)
        .output()?;
    if !out.status.success() {
        return Err(format!("cp: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    std::fs::write(
        conf.join("clients.conf"),
        format!(
            "client nas {{\n\tipaddr = {nas}\n\tsecret = \"{SECRET}\"\n\trequire_message_authenticator = yes\n}}\n"
        ),
    )?;
    std::fs::write(
        conf.join("mods-enabled/eap"),
        "eap {\n\tdefault_eap_type = mschapv2\n\ttimer_expire = 60\n\tignore_unknown_eap_types = no\n\tmax_sessions = 64\n\tmschapv2 {\n\t}\n}\n",
    )?;
    let _ = std::fs::remove_file(conf.join("sites-enabled/inner-tunnel"));
    let users = conf.join("mods-config/files/authorize");
    let rest = std::fs::read_to_string(&users)?;
    std::fs::write(
        &users,
        format!(
            "{USER} Cleartext-Password := \"{PASSWORD}\"\n\
             \tClass := \"{USER_GROUP}\"\n\
             {BAD_USER} Cleartext-Password := \"{BAD_USER_PASSWORD}\"\n{rest}"
        ),
    )?;
    let main = conf.join("radiusd.conf");
    let text = std::fs::read_to_string(&main)?
        .replace("\tuser = freerad", "\t#user = freerad")
        .replace("\tgroup = freerad", "\t#group = freerad");
    std::fs::write(&main, text)?;
    Ok(())
}

fn start(topo: &Topology) -> Result<FreeRadius> {
    start_for(topo, LEFT_OUTER)
}

/// FreeRADIUS in the right namespace, answering the NAS at `nas`.
fn start_for(topo: &Topology, nas: std::net::IpAddr) -> Result<FreeRadius> {
    let dir = topo.dir.sub("freeradius")?;
    configure(&dir, nas)?;
    let log = dir.join("freeradius.log");
    let conf = dir.join("raddb");
    let conf = conf.to_str().ok_or("path")?;
    let child = topo
        .right
        .spawn(FREERADIUS, &["-X", "-f", "-d", conf], Some(&log))?;
    let mut fr = FreeRadius { child, log };
    wait_until("FreeRADIUS to start", Duration::from_secs(20), || {
        if let Some(status) = fr.child.try_wait()? {
            return Err(format!("freeradius exited ({status})").into());
        }
        let text = std::fs::read_to_string(&fr.log).unwrap_or_default();
        Ok(text.contains("Ready to process requests").then_some(()))
    })?;
    Ok(fr)
}

fn client() -> ClientConfig {
    let server = format!("{RIGHT_OUTER}:1812").parse().expect("address");
    let mut c = ClientConfig::new(vec![server], Secret::from_slice(SECRET.as_bytes()));
    c.nas_identifier = "oxisec-test".into();
    c
}

/// One relayed message: the answer, with the State for the next one.
async fn relay(cfg: &ClientConfig, eap: &[u8], state: &mut Option<Vec<u8>>) -> Result<Answer> {
    let attrs = RequestAttrs {
        user_name: USER,
        eap,
        state: state.as_deref(),
        nas_ip: Some(LEFT_OUTER),
        nas_identifier: &cfg.nas_identifier,
        called: &format!("{LEFT_OUTER}[4500]"),
        calling: "198.51.100.7[4500]",
    };
    let a = radius::exchange(cfg, &attrs).await?;
    *state = a.state.clone();
    Ok(a)
}

fn response(identifier: u8, ty: EapType, data: &[u8]) -> Vec<u8> {
    EapPacket::new(Code::RESPONSE, identifier, ty, data)
        .emit()
        .expect("small")
}

/// What the EAP-MSCHAPv2 conversation ended in: the MSK on success (and
/// the peer's own MSK to compare), or the Reject.
enum Outcome {
    Accepted {
        radius_msk: Secret,
        peer_msk: Secret,
        /// Class / Filter-Id of the Access-Accept.
        groups: Vec<String>,
    },
    Rejected(Answer),
}

async fn mschapv2_conversation(password: &str) -> Result<Outcome> {
    let cfg = client();
    let mut state = None;
    // EAP-Identity response (the gateway asked for it itself).
    let a = relay(
        &cfg,
        &response(0, EapType::IDENTITY, USER.as_bytes()),
        &mut state,
    )
    .await?;
    if a.verdict != Verdict::Challenge {
        return Err(format!("identity: {:?}", a.verdict).into());
    }
    let req = a.eap.ok_or("challenge without EAP")?;
    let p = EapPacket::parse(&req).map_err(|e| e.to_string())?;
    let Ok(Message::Challenge {
        ms_id, challenge, ..
    }) = Message::parse(true, p.type_data)
    else {
        return Err(format!("not an MSCHAPv2 Challenge: {req:02x?}").into());
    };
    if state.is_none() {
        return Err("FreeRADIUS sent no State with its challenge".into());
    }
    let hash = NtHash::from_password(password);
    let peer_challenge = [0x21; 16];
    let nt_response =
        mschapv2::generate_nt_response(&challenge, &peer_challenge, USER.as_bytes(), &hash);
    let m = Message::Response {
        ms_id,
        peer_challenge,
        nt_response,
        name: USER.as_bytes(),
    };
    let a = relay(
        &cfg,
        &response(p.identifier, EapType::MSCHAPV2, &m.emit()),
        &mut state,
    )
    .await?;
    let a = match a.verdict {
        Verdict::Reject => return Ok(Outcome::Rejected(a)),
        Verdict::Accept => return Err("Access-Accept before the Success acknowledgement".into()),
        Verdict::Challenge => a,
    };
    let req = a.eap.clone().ok_or("challenge without EAP")?;
    let p = EapPacket::parse(&req).map_err(|e| e.to_string())?;
    match Message::parse(true, p.type_data) {
        Ok(Message::SuccessRequest { message, .. }) => {
            let want = mschapv2::authenticator_response(
                &hash,
                &nt_response,
                &peer_challenge,
                &challenge,
                USER.as_bytes(),
            );
            if mschapv2::parse_success_message(message) != Some(want) {
                return Err("FreeRADIUS' authenticator response does not verify".into());
            }
            let ack = response(
                p.identifier,
                EapType::MSCHAPV2,
                &Message::SuccessResponse.emit(),
            );
            let a = relay(&cfg, &ack, &mut state).await?;
            if a.verdict != Verdict::Accept {
                return Err(format!("after the acknowledgement: {:?}", a.verdict).into());
            }
            match a.eap.as_deref().map(EapPacket::parse) {
                Some(Ok(p)) if p.code == Code::SUCCESS => {}
                other => return Err(format!("Access-Accept without EAP-Success: {other:?}").into()),
            }
            let radius_msk = a.msk.ok_or("Access-Accept without MS-MPPE keys")?;
            Ok(Outcome::Accepted {
                radius_msk,
                peer_msk: mschapv2::msk(&hash, &nt_response),
                groups: a.groups,
            })
        }
        Ok(Message::FailureRequest { .. }) => {
            let ack = response(
                p.identifier,
                EapType::MSCHAPV2,
                &Message::FailureResponse.emit(),
            );
            let a = relay(&cfg, &ack, &mut state).await?;
            if a.verdict != Verdict::Reject {
                return Err(format!("after the failure: {:?}", a.verdict).into());
            }
            Ok(Outcome::Rejected(a))
        }
        other => Err(format!("unexpected MSCHAPv2 message {other:?}").into()),
    }
}

fn run_in_left<T: Send>(
    topo: &Topology,
    f: impl std::future::Future<Output = Result<T>> + Send,
) -> Result<T> {
    in_netns(&topo.left, || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(f)
    })
}

#[test]
fn freeradius_eap_mschapv2_accept_carries_the_msk() {
    let _serial = common::serial();
    let test = "freeradius_eap_mschapv2_accept_carries_the_msk";
    if skip(test) {
        return;
    }
    let topo = Topology::new(test).unwrap();
    let fr = start(&topo).unwrap();
    let r = run_in_left(&topo, mschapv2_conversation(PASSWORD));
    let log = std::fs::read_to_string(&fr.log).unwrap_or_default();
    match r {
        Ok(Outcome::Accepted {
            radius_msk,
            peer_msk,
            groups,
        }) => {
            assert_eq!(groups, [USER_GROUP], "the Class of alice's Access-Accept");
            // FreeRADIUS sends the MPPE keys of RFC 3079 (16 octets each
            // for MSCHAPv2); our MSCHAPv2 MSK is those 32 octets padded
            // with zeros to 64, which keys HMAC-based PRFs identically.
            let (r, p) = (radius_msk.as_bytes(), peer_msk.as_bytes());
            assert!(r.len() >= 32, "MSK of {} octets", r.len());
            assert_eq!(r, &p[..r.len()], "MSK from RADIUS differs from the peer's");
            assert!(p[r.len()..].iter().all(|&b| b == 0));
        }
        Ok(Outcome::Rejected(a)) => {
            topo.dir.keep();
            panic!("rejected: {a:?}\n{log}");
        }
        Err(e) => {
            topo.dir.keep();
            panic!("{e}\n{log}");
        }
    }
}

#[test]
fn freeradius_rejects_a_wrong_password() {
    let _serial = common::serial();
    let test = "freeradius_rejects_a_wrong_password";
    if skip(test) {
        return;
    }
    let topo = Topology::new(test).unwrap();
    let fr = start(&topo).unwrap();
    let r = run_in_left(&topo, mschapv2_conversation("rabbit"));
    match r {
        Ok(Outcome::Rejected(a)) => {
            assert!(a.msk.is_none());
            assert!(
                a.eap
                    .as_deref()
                    .and_then(|b| EapPacket::parse(b).ok())
                    .is_some_and(|p| p.code == Code::FAILURE),
                "Access-Reject without EAP-Failure: {a:?}"
            );
        }
        Ok(Outcome::Accepted { .. }) => panic!("a wrong password was accepted"),
        Err(e) => {
            topo.dir.keep();
            let log = std::fs::read_to_string(&fr.log).unwrap_or_default();
            panic!("{e}\n{log}");
        }
    }
}

#[test]
fn a_wrong_shared_secret_gets_no_believed_answer() {
    let _serial = common::serial();
    let test = "a_wrong_shared_secret_gets_no_believed_answer";
    if skip(test) {
        return;
    }
    let topo = Topology::new(test).unwrap();
    let _fr = start(&topo).unwrap();
    let r = run_in_left(&topo, async {
        let mut cfg = client();
        cfg.secret = Secret::from_slice(b"not the shared secret");
        cfg.timeout = Duration::from_millis(500);
        cfg.tries = 2;
        let mut state = None;
        let eap = response(0, EapType::IDENTITY, USER.as_bytes());
        Ok(relay(&cfg, &eap, &mut state)
            .await
            .err()
            .map(|e| e.to_string()))
    })
    .unwrap();
    // FreeRADIUS drops a request whose Message-Authenticator does not
    // verify; either way nothing is believed.
    let e = r.expect("an answer was believed despite the wrong secret");
    assert!(e.contains("no RADIUS server answered"), "{e}");
}

// ---------------------------------------------------------------------------
// Two IKE engines (oxisec's, configured from TOML as the daemon does) with
// the gateway relaying EAP to the same FreeRADIUS: the whole path of
// remote_auth = "eap-radius" except the daemon's sockets — the final AUTH
// payloads keyed with FreeRADIUS' MSK on one side and the client's own on
// the other, a virtual IP leased to the EAP user.
// ---------------------------------------------------------------------------

use oxisec_ike::{Auth, Command, Config, Datagram, EapRelayAnswer, Engine, Event};

const GATEWAY_ID: &str = "vpn.example.org";
const PSK: &str = "the gateway's pre-shared key, long enough";

struct NoResolver;
impl oxisec::config::Resolver for NoResolver {
    fn resolve(&self, host: &str) -> std::result::Result<Vec<std::net::IpAddr>, String> {
        Err(format!("no resolver in this test ({host})"))
    }
}

fn gateway_config(dir: &Path) -> Result<oxisec::config::Loaded> {
    let secret = dir.join("radius.secret");
    std::fs::write(&secret, SECRET)?;
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    let toml = format!(
        r#"[daemon]
radius_servers = ["{RIGHT_OUTER}:1812"]
radius_secret_file = "radius.secret"
[pools.staff]
addrs = "198.51.100.128/25"
[connections.rw]
local_addrs = ["{RIGHT_OUTER}"]
local_id = "{GATEWAY_ID}"
psk = "{PSK}"
remote_auth = "eap-radius"
pools = ["staff"]
[connections.rw.children.rw]
local_ts = ["203.0.113.0/24"]
remote_ts = ["dynamic"]
"#
    );
    Ok(oxisec::config::parse(
        &toml,
        &dir.join("gw.toml"),
        &NoResolver,
    )?)
}

/// The client: a PSK configuration whose own side becomes EAP-MSCHAPv2
/// (the daemon keys for that are another branch's).
fn client_config(dir: &Path, password: &str) -> Result<Config> {
    let toml = format!(
        r#"[connections.rw]
local_addrs = ["{LEFT_OUTER}"]
remote_addrs = ["{RIGHT_OUTER}"]
local_id = "{USER}@example.org"
remote_id = "{GATEWAY_ID}"
psk = "{PSK}"
vips = ["0.0.0.0"]
[connections.rw.children.rw]
local_ts = ["dynamic"]
remote_ts = ["203.0.113.0/24"]
"#
    );
    let mut cfg = oxisec::config::parse(&toml, &dir.join("client.toml"), &NoResolver)?.ike;
    let mut conn = (*cfg.connections[0]).clone();
    conn.local_auth = Auth::EapClient {
        identity: USER.into(),
        password: Secret::from_slice(password.as_bytes()),
    };
    cfg.connections[0] = std::sync::Arc::new(conn);
    Ok(cfg)
}

struct Ends {
    client_up: bool,
    gateway_up: bool,
    eap_user: Option<String>,
    failures: Vec<String>,
}

/// Runs the handshake to its end; RADIUS exchanges go out from the
/// calling thread (in the left namespace).
async fn handshake(gw_cfg: &oxisec::config::Loaded, client_cfg: Config) -> Result<Ends> {
    let radius = gw_cfg.radius.clone().ok_or("no RADIUS config")?;
    let now = std::time::Instant::now();
    let mut gw = Engine::new(gw_cfg.ike.clone(), Box::new(oxisec_crypto::SystemRng));
    let mut cl = Engine::new(client_cfg, Box::new(oxisec_crypto::SystemRng));
    cl.handle_command(
        now,
        Command::Initiate {
            connection: "rw".into(),
            child: None,
        },
    );
    let mut ends = Ends {
        client_up: false,
        gateway_up: false,
        eap_user: None,
        failures: Vec::new(),
    };
    let mut state = None;
    for _ in 0..100 {
        let mut moved = false;
        while let Some(t) = cl.poll_transmit() {
            moved = true;
            gw.handle_datagram(
                now,
                Datagram {
                    local: t.remote,
                    remote: t.local,
                    data: t.data,
                },
            );
        }
        while let Some(t) = gw.poll_transmit() {
            moved = true;
            cl.handle_datagram(
                now,
                Datagram {
                    local: t.remote,
                    remote: t.local,
                    data: t.data,
                },
            );
        }
        while cl.poll_sa_command().is_some() || gw.poll_sa_command().is_some() {}
        while let Some(e) = cl.poll_event() {
            match e {
                Event::IkeUp { .. } => ends.client_up = true,
                Event::AuthFailed { reason, .. } => ends.failures.push(format!("client: {reason}")),
                _ => {}
            }
        }
        while let Some(e) = gw.poll_event() {
            match e {
                Event::IkeUp { .. } => ends.gateway_up = true,
                Event::EapAuthenticated { identity, .. } => ends.eap_user = Some(identity),
                Event::AuthFailed { reason, .. } => {
                    ends.failures.push(format!("gateway: {reason}"))
                }
                Event::EapRelay {
                    ike,
                    identity,
                    packet,
                    local,
                    remote,
                    ..
                } => {
                    moved = true;
                    let called = format!("{}[{}]", local.ip(), local.port());
                    let calling = format!("{}[{}]", remote.ip(), remote.port());
                    let attrs = RequestAttrs {
                        user_name: &identity,
                        eap: &packet,
                        state: state.as_deref(),
                        nas_ip: Some(local.ip()),
                        nas_identifier: &radius.nas_identifier,
                        called: &called,
                        calling: &calling,
                    };
                    let a = radius::exchange(&radius, &attrs).await?;
                    state = a.state.clone();
                    let answer = match a.verdict {
                        Verdict::Challenge => EapRelayAnswer::Continue(a.eap.ok_or("no EAP")?),
                        Verdict::Accept => EapRelayAnswer::Accept {
                            packet: a.eap,
                            msk: a.msk.ok_or("no MSK")?,
                            groups: a.groups,
                        },
                        Verdict::Reject => EapRelayAnswer::Reject {
                            packet: a.eap,
                            reason: "Access-Reject".into(),
                        },
                    };
                    gw.eap_relay_answer(now, ike, answer);
                }
                _ => {}
            }
        }
        if !moved {
            break;
        }
    }
    Ok(ends)
}

#[test]
fn ike_engines_authenticate_through_freeradius() {
    let _serial = common::serial();
    let test = "ike_engines_authenticate_through_freeradius";
    if skip(test) {
        return;
    }
    let topo = Topology::new(test).unwrap();
    let fr = start(&topo).unwrap();
    let dir = topo.dir.sub("engines").unwrap();
    let gw = gateway_config(&dir).unwrap();
    let good = client_config(&dir, PASSWORD).unwrap();
    let bad = client_config(&dir, "rabbit").unwrap();
    let r = run_in_left(&topo, async {
        Ok((handshake(&gw, good).await?, handshake(&gw, bad).await?))
    });
    let log = std::fs::read_to_string(&fr.log).unwrap_or_default();
    let (ok, refused) = match r {
        Ok(x) => x,
        Err(e) => {
            topo.dir.keep();
            panic!("{e}\n{log}");
        }
    };
    assert!(ok.client_up && ok.gateway_up, "not up: {:?}", ok.failures);
    assert_eq!(ok.eap_user.as_deref(), Some(USER));
    assert!(!refused.client_up && !refused.gateway_up);
    assert!(
        refused
            .failures
            .iter()
            .any(|f| f.contains("gateway: alice: Access-Reject")),
        "{:?}",
        refused.failures
    );
}

// ---------------------------------------------------------------------------
// The daemon as gateway: the same, through oxisec's sockets and its RADIUS
// tasks. The client is an oxisec engine driven by the test over a real UDP
// socket in the left namespace.
// ---------------------------------------------------------------------------

use common::oxisec_peer::OxisecPeer;

/// Drives a client engine over UDP 500 until its IKE SA is up or it
/// failed; returns (up, failure reasons).
fn drive_client(cfg: Config, limit: Duration) -> Result<(bool, Vec<String>)> {
    use std::time::Instant;
    // UDP 500, and 4500 where IKE carries the non-ESP marker (RFC 3948).
    let s500 = std::net::UdpSocket::bind((LEFT_OUTER, 500))?;
    let s4500 = std::net::UdpSocket::bind((LEFT_OUTER, 4500))?;
    for s in [&s500, &s4500] {
        s.set_read_timeout(Some(Duration::from_millis(25)))?;
    }
    let mut e = Engine::new(cfg, Box::new(oxisec_crypto::SystemRng));
    e.handle_command(
        Instant::now(),
        Command::Initiate {
            connection: "rw".into(),
            child: None,
        },
    );
    let end = Instant::now() + limit;
    let mut buf = vec![0u8; 65536];
    let mut failures = Vec::new();
    while Instant::now() < end {
        while let Some(t) = e.poll_transmit() {
            let sock = if t.local.port() == 500 { &s500 } else { &s4500 };
            let mut data = if t.non_esp_marker {
                vec![0; 4]
            } else {
                Vec::new()
            };
            data.extend_from_slice(&t.data);
            sock.send_to(&data, t.remote)?;
        }
        while e.poll_sa_command().is_some() {}
        while let Some(ev) = e.poll_event() {
            match ev {
                Event::IkeUp { .. } => return Ok((true, failures)),
                Event::AuthFailed { reason, .. } => failures.push(reason),
                Event::IkeDown { .. } => return Ok((false, failures)),
                _ => {}
            }
        }
        for (sock, marker) in [(&s500, false), (&s4500, true)] {
            if let Ok((n, from)) = sock.recv_from(&mut buf) {
                let data = &buf[..n];
                let data = match marker {
                    // Only IKE (behind the marker) goes to the engine.
                    true if data.starts_with(&[0; 4]) => &data[4..],
                    true => continue,
                    false => data,
                };
                e.handle_datagram(
                    Instant::now(),
                    Datagram {
                        local: sock.local_addr()?,
                        remote: from,
                        data: data.to_vec(),
                    },
                );
            }
        }
        if e.poll_timeout().is_some_and(|t| t <= Instant::now()) {
            e.handle_timeout(Instant::now());
        }
    }
    Ok((false, failures))
}

#[test]
fn daemon_gateway_relays_eap_to_freeradius() {
    let _serial = common::serial();
    let test = "daemon_gateway_relays_eap_to_freeradius";
    if skip(test) {
        return;
    }
    let topo = Topology::new(test).unwrap();
    let fr = start_for(&topo, RIGHT_OUTER).unwrap();
    let run = || -> Result<()> {
        let gw_dir = topo.dir.sub("right")?;
        let secret = gw_dir.join("radius.secret");
        std::fs::write(&secret, SECRET)?;
        std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
        let toml = format!(
            r#"[daemon]
state_dir = "{state}"
radius_servers = ["{RIGHT_OUTER}:1812"]
radius_secret_file = "radius.secret"
[pools.staff]
addrs = "198.51.100.128/25"
[connections.rw]
local_addrs = ["{RIGHT_OUTER}"]
local_id = "{GATEWAY_ID}"
psk = "{PSK}"
remote_auth = "eap-radius"
pools = ["staff"]
[connections.rw.children.rw]
local_ts = ["203.0.113.0/24"]
remote_ts = ["dynamic"]
"#,
            state = gw_dir.join("state").display()
        );
        let gw = OxisecPeer::start_with_config(
            topo.right.clone(),
            gw_dir.clone(),
            "oxisec@right".into(),
            &toml,
        )?;
        let dir = topo.dir.sub("left")?;
        let good = client_config(&dir, PASSWORD)?;
        let bad = client_config(&dir, "rabbit")?;
        let (up, why) = in_netns(&topo.left, || drive_client(good, Duration::from_secs(20)))?;
        if !up {
            return Err(format!("client not up: {why:?}").into());
        }
        let status = gw.status()?;
        let sa = status.ike_sas.first().ok_or("no IKE SA on the gateway")?;
        if sa.state != "ESTABLISHED" {
            return Err(format!("gateway SA {}", sa.state).into());
        }
        let (up, why) = in_netns(&topo.left, || drive_client(bad, Duration::from_secs(20)))?;
        if up {
            return Err("a wrong password got an IKE SA".into());
        }
        if !why
            .iter()
            .any(|w| w.contains("AUTHENTICATION_FAILED") || w.contains("EAP"))
        {
            return Err(format!("client failure reasons: {why:?}").into());
        }
        Ok(())
    };
    if let Err(e) = run() {
        topo.dir.keep();
        let log = std::fs::read_to_string(&fr.log).unwrap_or_default();
        panic!("{e}\n--- freeradius ---\n{log}");
    }
}

// ---------------------------------------------------------------------------
// A real road warrior: strongSwan with eap-mschapv2 against the daemon as
// eap-radius gateway. The gateway proves itself with a certificate from
// `oxisec pki`; FreeRADIUS (in the gateway's namespace, the daemon is its
// NAS) checks the user; the address comes from the daemon's own pool.
//
//   ns "left": charon, virtual IP from the pool   ns "right": oxisec run,
//   veth-l 192.0.2.1/24 <------ veth ------> veth-r 192.0.2.2/24, freeradius
//                                                lo 203.0.113.1/24 (company)
// ---------------------------------------------------------------------------

use common::certs::OxisecPki;
use common::peer::Peer;
use common::strongswan::{EAP_PLUGINS, StrongSwan};
use common::{LEFT_HOST, RIGHT_HOST, Tool, Tuning};

const POOL: &str = "198.51.100.128/25";
/// The pool of RADIUS group [`USER_GROUP`] (the Class FreeRADIUS sends).
const GROUP_POOL: &str = "198.51.100.64/26";
const COMPANY: &str = "203.0.113.0/24";
/// What strongSwan's bob believes his password is.
const BAD_PASSWORD_ON_CLIENT: &str = "bob guessed wrong";

/// The daemon's configuration: a certificate for itself, every user
/// checked by FreeRADIUS, addresses from `staff`.
fn radius_gateway_toml(dir: &Path, pki: &OxisecPki) -> String {
    let gw = pki.issued(GATEWAY_ID);
    format!(
        r#"[daemon]
state_dir = "{state}"
radius_servers = ["{RIGHT_OUTER}:1812"]
radius_secret_file = "radius.secret"
[pools.staff]
addrs = "{POOL}"
[pools.radius-staff]
addrs = "{GROUP_POOL}"
[connections.rw]
local_addrs = ["{RIGHT_OUTER}"]
local_id = "{GATEWAY_ID}"
local_cert = "{cert}"
local_key = "{key}"
remote_auth = "eap-radius"
ike_proposals = ["aes128gcm16-prfsha256-x25519"]
pools = ["staff"]
[connections.rw.groups.{USER_GROUP}]
pools = ["radius-staff"]
[connections.rw.children.rw]
local_ts = ["{COMPANY}"]
remote_ts = ["dynamic"]
esp_proposals = ["aes128gcm16"]
"#,
        state = dir.join("state").display(),
        cert = gw.cert.display(),
        key = gw.key.display(),
    )
}

/// strongSwan's swanctl.conf: `rw-alice` with the password FreeRADIUS
/// knows, `rw-bob` with a wrong one; the IKE identity is the user name
/// (the gateway relays it as the EAP identity).
fn radius_road_warrior() -> String {
    let conn = |user: &str| {
        format!(
            r#"    rw-{user} {{
        version = 2
        local_addrs = {LEFT_OUTER}
        remote_addrs = {RIGHT_OUTER}
        encap = yes
        proposals = aes128gcm16-prfsha256-x25519
        vips = 0.0.0.0
        local {{
            auth = eap-mschapv2
            id = {user}
            eap_id = {user}
        }}
        remote {{
            auth = pubkey
            id = {GATEWAY_ID}
        }}
        children {{
            rw-{user} {{
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
{}{}}}
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
        conn(USER),
        conn(BAD_USER),
    )
}

/// The virtual IP strongSwan got, as the gateway's installed child shows
/// it (its remote selector), if one is up.
fn leased_vip(gw: &OxisecPeer) -> Result<Option<std::net::IpAddr>> {
    let r = gw.status()?;
    Ok(r.ike_sas
        .iter()
        .flat_map(|s| &s.children)
        .filter(|c| c.state == "INSTALLED")
        .flat_map(|c| &c.remote_ts)
        .find_map(|t| t.split('/').next().and_then(|a| a.parse().ok())))
}

fn in_group_pool(a: std::net::IpAddr) -> bool {
    matches!(a, std::net::IpAddr::V4(v) if v.octets()[..3] == [198, 51, 100] && (64..128).contains(&v.octets()[3]))
}

#[test]
fn strongswan_road_warrior_through_daemon_and_freeradius() {
    let _serial = common::serial();
    let test = "strongswan_road_warrior_through_daemon_and_freeradius";
    if skip_without(test, &[Tool::Charon, Tool::Swanctl, Tool::Ping]) {
        return;
    }
    let topo = Topology::new(test).unwrap();
    // A road warrior has no subnet of its own, only its virtual IP.
    topo.left
        .ip(&["addr", "del", &format!("{LEFT_HOST}/24"), "dev", "lo"])
        .unwrap();
    // The daemon is FreeRADIUS' NAS from the same namespace.
    let fr = start_for(&topo, RIGHT_OUTER).unwrap();
    let up = Duration::from_secs(10);
    let run = || -> Result<()> {
        let gw_dir = topo.dir.sub("right")?;
        let pki = OxisecPki::init_ca(&gw_dir.join("pki"), "RADIUS Test CA", "ecdsa")?;
        pki.issue_server(GATEWAY_ID, "ecdsa")?;
        let secret = gw_dir.join("radius.secret");
        std::fs::write(&secret, SECRET)?;
        std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
        let gw = OxisecPeer::start_with_config(
            topo.right.clone(),
            gw_dir.clone(),
            "oxisec@right".into(),
            &radius_gateway_toml(&gw_dir, &pki),
        )?;
        let client_dir = topo.dir.sub("left")?;
        let ca_dir = client_dir.join("swanctl").join("x509ca");
        std::fs::create_dir_all(&ca_dir)?;
        std::fs::copy(pki.ca_cert(), ca_dir.join("oxisec-ca.crt"))?;
        let client = StrongSwan::start_with_plugins(
            topo.left.clone(),
            client_dir,
            "strongswan@left".into(),
            &Tuning::default(),
            &radius_road_warrior(),
            EAP_PLUGINS,
        )?;

        // FreeRADIUS accepts alice with Class "staff": an address from
        // that group's pool, the company network reachable from it.
        client.initiate(&format!("rw-{USER}"))?;
        let vip = wait_until("the virtual IP on the gateway", up, || leased_vip(&gw))?;
        if !in_group_pool(vip) {
            return Err(format!(
                "{vip} is not from group {USER_GROUP}'s pool {GROUP_POOL} (default pool {POOL})"
            )
            .into());
        }
        common::traffic::ping_all(&topo.left, vip, RIGHT_HOST, 3)?;
        if !gw
            .log()
            .contains(&format!("authenticated with EAP as {USER}"))
        {
            return Err(format!("oxisec did not log the EAP user {USER}").into());
        }
        let sas = client.swanctl(&["--list-sas"])?;
        if !sas.contains(&vip.to_string()) {
            return Err(format!("strongSwan does not list {vip}: {sas}").into());
        }
        client.terminate(&format!("rw-{USER}"))?;
        wait_until("the gateway to drop alice", up, || {
            Ok(gw.list_sas()?.is_empty().then_some(()))
        })?;

        // FreeRADIUS rejects bob's password: nothing up on either side,
        // and oxisec's log says why.
        let before = gw.log().len();
        if client.initiate(&format!("rw-{BAD_USER}")).is_ok() {
            return Err("strongSwan connected with a wrong password".into());
        }
        let sas = client.swanctl(&["--list-sas"])?;
        if sas.contains("rw-") {
            return Err(format!("strongSwan kept an SA after the reject: {sas}").into());
        }
        wait_until("the gateway to forget bob's attempt", up, || {
            Ok(gw.list_sas()?.is_empty().then_some(()))
        })?;
        let log = gw.log();
        let since = common::certs::log_since(&log, before);
        let refused = since.lines().any(|l| {
            l.contains("authentication failed")
                && l.contains(BAD_USER)
                && l.contains("RADIUS Access-Reject")
        });
        if !refused {
            return Err(format!("oxisec did not log why {BAD_USER} was refused:\n{since}").into());
        }
        Ok(())
    };
    if let Err(e) = run() {
        topo.dir.keep();
        panic!(
            "{e}\n--- freeradius (last 80 lines) ---\n{}",
            common::tail(&fr.log, 80)
        );
    }
}
