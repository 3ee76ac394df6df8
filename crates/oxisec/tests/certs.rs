//! Certificate authentication against strongSwan 5.9.8 (issue 6, "Interop
//! (namespaces, CI)"), in network namespaces: oxisec on the left, charon on
//! the right, as in `interop.rs`.
//!
//! * [`accepted`]: certificates made by `oxisec pki` (ECDSA P-256, then
//!   RSA-3072) and a whole PKI made by strongSwan's `pki` (RSA-3072 CA,
//!   ECDSA P-384 and RSA-3072 end entities, DN identities; and a chain
//!   through an intermediate CA that each side must send). Each case brings
//!   the tunnel up with oxisec initiating, pings across, takes it down,
//!   and does it again with strongSwan initiating. Both logs must show that
//!   certificates, not a PSK, authenticated the peer.
//! * [`rejected`]: strongSwan presents a certificate oxisec must refuse —
//!   expired, from an unknown CA, revoked by a CRL file, not holding the
//!   claimed identity, or with extendedKeyUsage clientAuth only where the
//!   gateway policy wants serverAuth/ipsecIKE. In both roles the attempt
//!   must end with no SA on either side and the precise reason in oxisec's
//!   log.
//!
//! Speed: one topology and one charon per test; each case rewrites and
//! reloads charon's configuration and credentials (`swanctl --load-all
//! --clear`) and restarts the oxisec daemon (a fraction of a second).
//! Certificates are made once per test (RSA-3072 keys take about a second
//! each). Root only; skips visibly otherwise (fails under
//! `OXISEC_INTEROP_REQUIRED=1`, as `scripts/test.sh` runs it).
//! `OXISEC_CERTS_ONLY=expired` runs only the cases whose name contains
//! that text.
//!
//! Run: `cargo test -p oxisec --test certs -- --test-threads=1 --nocapture`
//! (about 20 s as root; the per-case table and the logged rejection
//! reasons go to stderr).

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::certs::{
    CertCreds, EeSpec, Issued, KeyType, OxisecPki, SwanPki, Validity, log_since, oxisec_cert_toml,
    swanctl_cert_conf, swanctl_creds,
};
use common::matrix::{self, CaseOutcome, Verdict};
use common::oxisec_peer::OxisecPeer;
use common::peer::{Peer, TunnelSpec, tunnel_up};
use common::strongswan::StrongSwan;
use common::{CONN, LEFT_HOST, RIGHT_HOST, Tool, Topology, traffic, wait_until_every};

const TOOLS: &[Tool] = &[Tool::Charon, Tool::Swanctl, Tool::Ping];
const IKE: &str = "aes128gcm16-prfsha256-x25519";
const ESP: &str = "aes128gcm16";
const UP_TIMEOUT: Duration = Duration::from_secs(10);
const DOWN_TIMEOUT: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(25);
/// Log lines of each daemon quoted with a failed case.
const LOG_LINES: usize = 30;

const LEFT_FQDN: &str = "left.example.org";
const RIGHT_FQDN: &str = "right.example.org";

/// Both the root check and the tools, plus strongSwan's `pki` (the
/// certificates of most cases come from it).
fn skip(test: &str) -> bool {
    if common::skip(test, TOOLS) {
        return true;
    }
    if !common::certs::swan_pki_available() {
        let why = "needs strongSwan's pki tool (strongswan-pki; run scripts/test.sh)";
        if std::env::var("OXISEC_INTEROP_REQUIRED").is_ok_and(|v| v == "1") {
            panic!("{test}: {why} (OXISEC_INTEROP_REQUIRED=1 forbids skipping)");
        }
        eprintln!("SKIP: {test} {why}");
        return true;
    }
    false
}

/// The credentials of one case: what oxisec (left) and charon (right)
/// authenticate with and trust, and extra lines for oxisec's connection.
struct Pair {
    oxi: CertCreds,
    swan: CertCreds,
    oxi_extra: String,
}

/// One topology with charon running on the right, reconfigured per case.
struct Bench {
    topo: Topology,
    swan: StrongSwan,
}

impl Bench {
    fn new(test: &str) -> common::Result<Bench> {
        let topo = Topology::new(test)?;
        // Started with the PSK tunnel; every case replaces it.
        let (_, r) = topo.tunnel_specs(IKE, ESP);
        let swan = StrongSwan::start(
            topo.right.clone(),
            topo.dir.sub("right-strongswan")?,
            "strongswan@right".into(),
            &r,
        )?;
        Ok(Bench { topo, swan })
    }

    /// The tunnel as oxisec (left) and charon (right) configure it for
    /// `pair`: the harness's tunnel with the certificates' identities.
    fn specs(&self, pair: &Pair) -> (TunnelSpec, TunnelSpec) {
        let (mut l, mut r) = self.topo.tunnel_specs(IKE, ESP);
        l.local_id = pair.oxi.id.clone();
        l.remote_id = pair.swan.id.clone();
        r.local_id = pair.swan.id.clone();
        r.remote_id = pair.oxi.id.clone();
        (l, r)
    }

    /// Loads `pair` into charon and starts oxisec with it.
    fn load(&self, case: &str, pair: &Pair) -> common::Result<OxisecPeer> {
        let (l, r) = self.specs(pair);
        self.swan.reconfigure_with(
            &swanctl_cert_conf(&r, &pair.swan),
            &swanctl_creds(&pair.swan),
        )?;
        OxisecPeer::start_with_config(
            self.topo.left.clone(),
            self.topo.dir.sub(&format!("{case}-oxisec-left"))?,
            format!("oxisec@left [{case}]"),
            &oxisec_cert_toml(&l, &pair.oxi, &pair.oxi_extra),
        )
    }

    /// Runs `f` with oxisec started for `pair`; afterwards stops oxisec
    /// (its DELETE empties charon) and makes sure charon holds no SA before
    /// the next case. Errors carry both logs' tails.
    fn case(
        &self,
        case: &str,
        pair: &Pair,
        f: impl FnOnce(&OxisecPeer, &StrongSwan) -> common::Result<()>,
    ) -> common::Result<()> {
        let oxi = self.load(case, pair)?;
        let out = f(&oxi, &self.swan).map_err(|e| {
            format!(
                "{e}\n--- {} log (tail) ---\n{}\n--- {} log (tail) ---\n{}",
                Peer::label(&oxi),
                oxi.log_tail(LOG_LINES),
                Peer::label(&self.swan),
                self.swan.log_tail(LOG_LINES)
            )
        });
        drop(oxi);
        let gone = wait_until_every("charon to have no SA left", DOWN_TIMEOUT, POLL, || {
            Ok(self.swan.list_sas()?.is_empty().then_some(()))
        });
        if gone.is_err() {
            let _ = self.swan.terminate(CONN);
        }
        out?;
        gone
    }
}

fn wait_up(peers: [&dyn Peer; 2]) -> common::Result<()> {
    for p in peers {
        wait_until_every(
            &format!("{} to have the tunnel up", p.label()),
            UP_TIMEOUT,
            POLL,
            || Ok(tunnel_up(&p.list_sas()?, CONN).then_some(())),
        )?;
    }
    Ok(())
}

fn wait_empty(peers: [&dyn Peer; 2]) -> common::Result<()> {
    for p in peers {
        wait_until_every(
            &format!("{} to have no SA left", p.label()),
            DOWN_TIMEOUT,
            POLL,
            || Ok(p.list_sas()?.is_empty().then_some(())),
        )?;
    }
    Ok(())
}

/// One ping left to right (the reply crosses the other way), retried once
/// loudly if the first is lost.
fn ping(topo: &Topology) -> common::Result<()> {
    if traffic::ping_all(&topo.left, LEFT_HOST, RIGHT_HOST, 1).is_ok() {
        return Ok(());
    }
    eprintln!("first ping unanswered, trying again");
    traffic::ping_all(&topo.left, LEFT_HOST, RIGHT_HOST, 2)
}

/// The line of `text` holding every one of `needles`, if any.
fn line_with<'a>(text: &'a str, needles: &[&str]) -> Option<&'a str> {
    text.lines().find(|l| needles.iter().all(|n| l.contains(n)))
}

/// Both sides authenticated the other with certificates since the log
/// marks: oxisec validated charon's chain, and charon verified oxisec's
/// signature (RFC 7427 or classic, never a PSK).
fn check_cert_auth(
    oxi: &OxisecPeer,
    swan: &StrongSwan,
    marks: (usize, usize),
    pair: &Pair,
) -> common::Result<()> {
    let oxi_log = oxi.log();
    if line_with(log_since(&oxi_log, marks.0), &["peer certificate valid"]).is_none() {
        return Err("oxisec's log has no \"peer certificate valid\" for this handshake".into());
    }
    let swan_log = swan.log();
    let who = format!("authentication of '{}' with", pair.oxi.id);
    match line_with(log_since(&swan_log, marks.1), &[&who, "successful"]) {
        Some(l) if !l.contains("pre-shared key") => Ok(()),
        Some(l) => Err(format!("charon authenticated oxisec with a PSK: {l}").into()),
        None => Err(format!("charon's log has no \"{who} … successful\"").into()),
    }
}

fn marks(oxi: &OxisecPeer, swan: &StrongSwan) -> (usize, usize) {
    (oxi.log().len(), swan.log().len())
}

/// A positive case: up with oxisec initiating, ping, down; up with charon
/// initiating, ping.
fn both_ways(
    bench: &Bench,
    oxi: &OxisecPeer,
    swan: &StrongSwan,
    pair: &Pair,
) -> common::Result<()> {
    let m = marks(oxi, swan);
    oxi.initiate(CONN)?;
    wait_up([oxi, swan])?;
    check_cert_auth(oxi, swan, m, pair).map_err(|e| format!("oxisec initiating: {e}"))?;
    ping(&bench.topo).map_err(|e| format!("oxisec initiating: {e}"))?;
    oxi.terminate(CONN)?;
    wait_empty([oxi, swan])?;

    let m = marks(oxi, swan);
    swan.initiate(CONN)?;
    wait_up([oxi, swan])?;
    check_cert_auth(oxi, swan, m, pair).map_err(|e| format!("strongSwan initiating: {e}"))?;
    ping(&bench.topo).map_err(|e| format!("strongSwan initiating: {e}").into())
}

/// A negative case in both roles: the handshake fails, no SA is left on
/// either side, and oxisec logged an authentication failure with all of
/// `needles` on one line.
fn refused_both_ways(oxi: &OxisecPeer, swan: &StrongSwan, needles: &[&str]) -> common::Result<()> {
    for (role, initiator) in [
        ("strongSwan initiating", swan as &dyn Peer),
        ("oxisec initiating", oxi as &dyn Peer),
    ] {
        let mark = oxi.log().len();
        if initiator.initiate(CONN).is_ok() {
            return Err(format!("{role}: the tunnel came up").into());
        }
        wait_empty([oxi, swan]).map_err(|e| format!("{role}: {e}"))?;
        let log = oxi.log();
        let mut all = vec!["authentication failed"];
        all.extend_from_slice(needles);
        match line_with(log_since(&log, mark), &all) {
            Some(line) => eprintln!("  {role}: {}", line.trim()),
            None => {
                return Err(format!("{role}: oxisec's log has no line with all of {all:?}").into());
            }
        }
    }
    Ok(())
}

/// `OXISEC_CERTS_ONLY=text` runs only the cases whose name contains it.
fn selected(name: &str) -> bool {
    let only = std::env::var("OXISEC_CERTS_ONLY").unwrap_or_default();
    name.contains(only.as_str())
}

/// A named case run on the shared bench.
type Case<'a> = (
    &'static str,
    Box<dyn FnOnce(&Bench) -> common::Result<()> + 'a>,
);

/// Runs named cases on one bench, reports the table and fails naming the
/// failed ones.
fn run_cases(test: &str, title: &str, cases: Vec<Case<'_>>) {
    let _serial = common::serial();
    if skip(test) {
        return;
    }
    let started = Instant::now();
    let bench = Bench::new(test).unwrap_or_else(|e| panic!("{test}: {e}"));
    let mut outcomes = Vec::new();
    for (name, f) in cases {
        if !selected(name) {
            continue;
        }
        let t = Instant::now();
        let verdict = match f(&bench) {
            Ok(()) => Verdict::Pass,
            Err(e) => Verdict::Fail(e.to_string()),
        };
        outcomes.push(CaseOutcome {
            name,
            verdict,
            took: t.elapsed(),
        });
    }
    if outcomes.iter().any(|o| !o.verdict.ok()) {
        bench.topo.dir.keep();
    }
    if let Err(e) = matrix::report(title, &outcomes, started.elapsed()) {
        panic!("{e}");
    }
}

/// An oxisec PKI: CA and one gateway certificate per side, FQDN identities.
fn oxisec_pki_pair(dir: &Path, key_type: &str) -> common::Result<Pair> {
    let pki = OxisecPki::init_ca(dir, "oxisec interop CA", key_type)?;
    let left = pki.issue_server(LEFT_FQDN, key_type)?;
    let right = pki.issue_server(RIGHT_FQDN, key_type)?;
    let ca = vec![pki.ca_cert()];
    Ok(Pair {
        oxi: CertCreds {
            own: left,
            id: LEFT_FQDN.into(),
            ca_certs: ca.clone(),
            crls: Vec::new(),
        },
        swan: CertCreds {
            own: right,
            id: RIGHT_FQDN.into(),
            ca_certs: ca,
            crls: Vec::new(),
        },
        oxi_extra: String::new(),
    })
}

/// A whole PKI made by strongSwan's `pki`: an RSA-3072 root, oxisec with
/// ECDSA P-384 and charon with RSA-3072, DN identities.
fn swan_pki_pair(dir: &Path) -> common::Result<Pair> {
    let pki = SwanPki::new(dir)?;
    let ca = pki.ca(
        "ca",
        "C=CH, O=strongSwan pki, CN=Interop Root CA",
        KeyType::Rsa(3072),
    )?;
    let left_dn = "C=CH, O=Example, CN=left.example.org";
    let right_dn = "C=CH, O=Example, CN=right.example.org";
    let left = pki.issue(
        &ca,
        &EeSpec {
            name: "left",
            dn: left_dn,
            sans: &[LEFT_FQDN],
            key: KeyType::EcdsaP384,
            flags: &["serverAuth"],
            validity: Validity::Days(365),
        },
    )?;
    let right = pki.issue(
        &ca,
        &EeSpec {
            name: "right",
            dn: right_dn,
            sans: &[RIGHT_FQDN],
            key: KeyType::Rsa(3072),
            flags: &["serverAuth"],
            validity: Validity::Days(365),
        },
    )?;
    Ok(Pair {
        oxi: CertCreds {
            own: left,
            id: left_dn.into(),
            ca_certs: vec![ca.cert.clone()],
            crls: Vec::new(),
        },
        swan: CertCreds {
            own: right,
            id: right_dn.into(),
            ca_certs: vec![ca.cert],
            crls: Vec::new(),
        },
        oxi_extra: String::new(),
    })
}

/// A chain through an intermediate CA (strongSwan's `pki`, ECDSA P-384
/// root, P-256 below): each side trusts only the root and must send its
/// intermediate with its own certificate — oxisec from a `local_cert` file
/// holding both, charon from its `x509ca` directory ("sending issuer
/// cert").
fn swan_pki_intermediate_pair(dir: &Path) -> common::Result<Pair> {
    let pki = SwanPki::new(dir)?;
    let root = pki.ca(
        "root",
        "C=CH, O=Example, CN=Interop Root CA",
        KeyType::EcdsaP384,
    )?;
    let sub = pki.intermediate(
        &root,
        "sub",
        "C=CH, O=Example, OU=Gateways, CN=Interop Sub CA",
        KeyType::EcdsaP256,
    )?;
    let ee = |name, dn, san| {
        pki.issue(
            &sub,
            &EeSpec {
                name,
                dn,
                sans: &[san],
                key: KeyType::EcdsaP256,
                flags: &["serverAuth"],
                validity: Validity::Days(365),
            },
        )
    };
    let left = ee("left", "C=CH, O=Example, CN=left.example.org", LEFT_FQDN)?;
    let right = ee("right", "C=CH, O=Example, CN=right.example.org", RIGHT_FQDN)?;
    let left_chain = pki.bundle("left-chain", &[&left.cert, &sub.cert])?;
    Ok(Pair {
        oxi: CertCreds {
            own: Issued {
                cert: left_chain,
                key: left.key,
            },
            id: LEFT_FQDN.into(),
            ca_certs: vec![root.cert.clone()],
            crls: Vec::new(),
        },
        swan: CertCreds {
            own: right,
            id: RIGHT_FQDN.into(),
            // charon sends what it finds between its certificate and a
            // root; the sub CA is no anchor of oxisec's.
            ca_certs: vec![root.cert, sub.cert],
            crls: Vec::new(),
        },
        oxi_extra: String::new(),
    })
}

/// Certificates made by `oxisec pki` (ECDSA P-256, RSA-3072) and by
/// strongSwan's `pki` (also through an intermediate CA), accepted in both
/// initiator roles.
#[test]
fn accepted() {
    let case = |name: &'static str, make: fn(&Path) -> common::Result<Pair>| {
        let f = move |bench: &Bench| -> common::Result<()> {
            let pair = make(&bench.topo.dir.sub(&format!("pki-{name}"))?)?;
            bench.case(name, &pair, |oxi, swan| both_ways(bench, oxi, swan, &pair))
        };
        (
            name,
            Box::new(f) as Box<dyn FnOnce(&Bench) -> common::Result<()>>,
        )
    };
    run_cases(
        "certs_accepted",
        "certificates accepted (oxisec left, strongSwan right, both initiate)",
        vec![
            case("oxisec-pki-ecdsa-p256", |d| oxisec_pki_pair(d, "ecdsa")),
            case("oxisec-pki-rsa3072", |d| oxisec_pki_pair(d, "rsa")),
            case("strongswan-pki", swan_pki_pair),
            case("strongswan-pki-intermediate", swan_pki_intermediate_pair),
        ],
    );
}

/// The certificates of the negative cases, all from strongSwan's `pki`
/// (ECDSA P-256): one good CA and a good oxisec certificate, and one bad
/// certificate for charon per case.
struct Negatives {
    ca: Issued,
    rogue_ca: Issued,
    oxi: Issued,
    expired: Issued,
    rogue: Issued,
    revoked: Issued,
    crl: PathBuf,
    imposter: Issued,
    client_only: Issued,
}

impl Negatives {
    fn make(dir: &Path) -> common::Result<Negatives> {
        let pki = SwanPki::new(dir)?;
        let p256 = KeyType::EcdsaP256;
        let ca = pki.ca("ca", "C=CH, O=Example, CN=Interop CA", p256)?;
        let rogue_ca = pki.ca("rogue-ca", "C=CH, O=Rogue, CN=Rogue CA", p256)?;
        let ee = |ca: &Issued, name, dn, sans, flags, validity| {
            pki.issue(
                ca,
                &EeSpec {
                    name,
                    dn,
                    sans,
                    key: p256,
                    flags,
                    validity,
                },
            )
        };
        let good = Validity::Days(365);
        let server: &[&str] = &["serverAuth"];
        let right_dn = "C=CH, O=Example, CN=right.example.org";
        let oxi = ee(
            &ca,
            "left",
            "C=CH, O=Example, CN=left.example.org",
            &[LEFT_FQDN],
            server,
            good,
        )?;
        let expired = ee(
            &ca,
            "right-expired",
            right_dn,
            &[RIGHT_FQDN],
            server,
            Validity::Between("01.01.20 00:00:00", "01.01.21 00:00:00"),
        )?;
        let rogue = ee(
            &rogue_ca,
            "right-rogue",
            right_dn,
            &[RIGHT_FQDN],
            server,
            good,
        )?;
        let revoked = ee(&ca, "right-revoked", right_dn, &[RIGHT_FQDN], server, good)?;
        let crl = pki.crl(&ca, "ca", &[&revoked.cert])?;
        // Neither subject nor subjectAltName is right.example.org (and
        // the CN is no FQDN identity anyway).
        let imposter = ee(
            &ca,
            "right-imposter",
            "C=CH, O=Example, CN=imposter.example.org",
            &["imposter.example.org"],
            server,
            good,
        )?;
        let client_only = ee(
            &ca,
            "right-client",
            right_dn,
            &[RIGHT_FQDN],
            &["clientAuth"],
            good,
        )?;
        Ok(Negatives {
            ca,
            rogue_ca,
            oxi,
            expired,
            rogue,
            revoked,
            crl,
            imposter,
            client_only,
        })
    }

    /// oxisec with its good certificate, trusting the good CA; charon with
    /// `swan_cert` claiming right.example.org, trusting the good CA (it
    /// accepts oxisec: only oxisec's verdict is tested).
    fn pair(&self, swan_cert: &Issued) -> Pair {
        Pair {
            oxi: CertCreds {
                own: self.oxi.clone(),
                id: LEFT_FQDN.into(),
                ca_certs: vec![self.ca.cert.clone()],
                crls: Vec::new(),
            },
            swan: CertCreds {
                own: swan_cert.clone(),
                id: RIGHT_FQDN.into(),
                ca_certs: vec![self.ca.cert.clone()],
                crls: Vec::new(),
            },
            oxi_extra: String::new(),
        }
    }
}

/// Certificates oxisec must refuse, in both roles, each with its reason in
/// oxisec's log and no SA left on either side.
#[test]
fn rejected() {
    // Made lazily on the bench (its directory), once for all cases.
    let certs: std::cell::OnceCell<Negatives> = std::cell::OnceCell::new();
    let certs = &certs;
    let get = move |bench: &Bench| -> common::Result<&Negatives> {
        if let Some(n) = certs.get() {
            return Ok(n);
        }
        let n = Negatives::make(&bench.topo.dir.sub("pki")?)?;
        Ok(certs.get_or_init(|| n))
    };
    type Case<'a> = (
        &'static str,
        Box<dyn FnOnce(&Bench) -> common::Result<()> + 'a>,
    );
    let case = |name: &'static str,
                pick: fn(&Negatives) -> Pair,
                needles: &'static [&'static str]|
     -> Case<'_> {
        let f = move |bench: &Bench| -> common::Result<()> {
            let pair = pick(get(bench)?);
            bench.case(name, &pair, |oxi, swan| {
                refused_both_ways(oxi, swan, needles)
            })
        };
        (name, Box::new(f))
    };
    run_cases(
        "certs_rejected",
        "certificates rejected by oxisec (strongSwan right presents a bad one)",
        vec![
            case(
                "expired",
                |n| n.pair(&n.expired),
                &["certificate expired on", "CN=right.example.org"],
            ),
            case(
                "unknown-ca",
                |n| {
                    let mut p = n.pair(&n.rogue);
                    // charon knows the rogue CA too; oxisec does not.
                    p.swan.ca_certs.push(n.rogue_ca.cert.clone());
                    p
                },
                &["issuer not trusted (unknown CA)", "Rogue CA"],
            ),
            case(
                "revoked-crl-file",
                |n| {
                    let mut p = n.pair(&n.revoked);
                    p.oxi.crls.push(n.crl.clone());
                    p
                },
                &["certificate revoked (serial"],
            ),
            case(
                "identity-not-in-cert",
                |n| n.pair(&n.imposter),
                &[
                    "FQDN right.example.org is not in the certificate",
                    "imposter.example.org",
                ],
            ),
            case(
                "eku-client-only",
                |n| n.pair(&n.client_only),
                &["wrong key usage", "clientAuth"],
            ),
        ],
    );
}

/// The configuration writers, no root needed.
mod config_text {
    use super::*;

    fn creds() -> CertCreds {
        CertCreds {
            own: Issued {
                cert: "/t/left.crt".into(),
                key: "/t/left.key".into(),
            },
            id: "C=CH, O=Example, CN=left".into(),
            ca_certs: vec!["/t/ca.crt".into(), "/t/ca2.crt".into()],
            crls: vec!["/t/ca.crl".into()],
        }
    }

    fn spec() -> TunnelSpec {
        TunnelSpec {
            name: CONN.into(),
            local_addr: common::LEFT_OUTER,
            remote_addr: common::RIGHT_OUTER,
            local_id: "C=CH, O=Example, CN=left".into(),
            remote_id: RIGHT_FQDN.into(),
            local_ts: common::LEFT_SUBNET.into(),
            remote_ts: common::RIGHT_SUBNET.into(),
            psk: "unused".into(),
            ike_proposal: IKE.into(),
            esp_proposal: ESP.into(),
            start_action: common::StartAction::None,
            remote_any: false,
            dpd: None,
            tuning: Default::default(),
        }
    }

    #[test]
    fn oxisec_toml_has_cert_keys_and_no_psk() {
        let text = oxisec_cert_toml(&spec(), &creds(), "remote_eku = \"gateway\"\n");
        let v: toml::Table = text.parse().expect("valid TOML");
        let c = &v["connections"][CONN];
        assert!(c.get("psk").is_none(), "{text}");
        assert_eq!(c["local_auth"].as_str(), Some("cert"));
        assert_eq!(c["remote_auth"].as_str(), Some("cert"));
        assert_eq!(c["local_cert"].as_str(), Some("/t/left.crt"));
        assert_eq!(c["local_key"].as_str(), Some("/t/left.key"));
        assert_eq!(c["ca_certs"].as_array().map(Vec::len), Some(2));
        assert_eq!(c["crls"][0].as_str(), Some("/t/ca.crl"));
        assert_eq!(c["remote_eku"].as_str(), Some("gateway"));
        assert_eq!(c["local_id"].as_str(), Some("C=CH, O=Example, CN=left"));
        assert_eq!(c["children"][CONN]["esp_proposals"][0].as_str(), Some(ESP));
    }

    #[test]
    fn swanctl_conf_uses_pubkey_and_quotes_dns() {
        let text = swanctl_cert_conf(&spec(), &creds());
        assert!(text.contains("auth = pubkey"), "{text}");
        assert!(!text.contains("psk"), "{text}");
        assert!(text.contains("certs = left.crt\n"), "{text}");
        assert!(
            text.contains("id = \"C=CH, O=Example, CN=left\"\n"),
            "{text}"
        );
        let creds = creds();
        let files = swanctl_creds(&creds);
        let subs: Vec<&str> = files.iter().map(|(s, _)| *s).collect();
        assert_eq!(subs, ["x509", "private", "x509ca", "x509ca", "x509crl"]);
    }
}
