//! The algorithm matrix (issue 4, item 2): one handshake and one ping per
//! algorithm, against strongSwan in both initiator roles, and oxisec ↔
//! oxisec for what strongSwan's userspace data plane cannot carry.
//!
//! Speed is the point of this module's shape: the namespaces and charon
//! are set up once per role, and each case only rewrites and reloads
//! charon's configuration (`swanctl --load-all`) and restarts the oxisec
//! daemon (it has no reload; a start takes a fraction of a second). The
//! SAs of a case are removed by stopping oxisec, whose DELETE empties
//! charon as well, before the next case loads.
//!
//! Each case checks, on both sides, that the negotiated algorithms are the
//! expected ones: charon's `swanctl --list-sas --raw` and oxisec's `status
//! --json`, both written in oxisec's notation (`AES_CBC_128/
//! HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/CURVE_25519`; see
//! [`strongswan::SaAlgorithms`](super::strongswan::SaAlgorithms)). A case
//! that fails does not stop the others: the run reports every case, and
//! the test fails at the end naming the failed ones, each with both logs'
//! tails.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::oxisec_peer::OxisecPeer;
use super::peer::{ChildSa, IkeSa, Peer, RekeyKind, tunnel_up};
use super::strongswan::StrongSwan;
use super::traffic;
use super::{CONN, LEFT_HOST, Netns, RIGHT_HOST, Result, Side, Topology, wait_until_every};

const UP_TIMEOUT: Duration = Duration::from_secs(10);
const DOWN_TIMEOUT: Duration = Duration::from_secs(5);
const REKEY_TIMEOUT: Duration = Duration::from_secs(10);
/// Polling step of the waits: each probe is one CLI call, and the things
/// waited for take milliseconds.
const POLL: Duration = Duration::from_millis(25);
/// Log lines of each daemon quoted with a failed case.
const LOG_LINES: usize = 25;

/// One case: both sides configured with the same proposals, which allow
/// exactly one choice, so the expected algorithms are known.
#[derive(Debug, Clone, Copy)]
pub struct AlgCase {
    /// Names the case in reports, e.g. `ike-encr-aes192`.
    pub name: &'static str,
    /// IKE proposal (strongSwan keywords).
    pub ike: &'static str,
    /// ESP proposal.
    pub esp: &'static str,
    /// The IKE SA's algorithms as both sides must report them.
    pub expect_ike: &'static str,
    /// The CHILD_SA's algorithms.
    pub expect_esp: &'static str,
    /// Algorithms (`swanctl --list-algs` names) charon must have loaded for
    /// the case to run at all; without them the case is skipped visibly
    /// (or fails under `OXISEC_INTEROP_REQUIRED=1`).
    pub swan_needs: &'static [&'static str],
    /// Rekey the CHILD_SA with `oxisec rekey NAME --child` and expect these
    /// ESP algorithms afterwards (the PFS group appears with the rekey's
    /// key exchange).
    pub child_rekey_expect: Option<&'static str>,
    /// A known failure, with its reason: the case must fail (and a pass is
    /// reported as a failure, so that a stale mark does not linger).
    pub expected_fail: Option<&'static str>,
}

impl AlgCase {
    /// A case with nothing special: no rekey, no requirement, no known failure.
    pub const fn new(
        name: &'static str,
        (ike, expect_ike): (&'static str, &'static str),
        (esp, expect_esp): (&'static str, &'static str),
    ) -> AlgCase {
        AlgCase {
            name,
            ike,
            esp,
            expect_ike,
            expect_esp,
            swan_needs: &[],
            child_rekey_expect: None,
            expected_fail: None,
        }
    }
}

/// What happened to one case.
#[derive(Debug)]
pub enum Verdict {
    Pass,
    /// Failed, as marked: the reason from the case.
    ExpectedFail(&'static str),
    /// Failed: why, with log tails.
    Fail(String),
    /// Passed although marked as failing.
    UnexpectedPass(&'static str),
    /// Not run: what is missing.
    Skipped(String),
}

/// One case's result.
#[derive(Debug)]
pub struct CaseOutcome {
    pub name: &'static str,
    pub verdict: Verdict,
    pub took: Duration,
}

/// Who plays which part in a matrix run. The initiator is always on the
/// left (`LEFT_HOST` pings `RIGHT_HOST`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pairing {
    /// oxisec (left) initiates to strongSwan (right).
    OxisecInitiates,
    /// strongSwan (left) initiates to oxisec (right).
    StrongSwanInitiates,
    /// oxisec on both sides (both restarted per case).
    OxisecOnly,
}

impl Pairing {
    pub fn describe(self) -> &'static str {
        match self {
            Pairing::OxisecInitiates => "oxisec initiates to strongSwan",
            Pairing::StrongSwanInitiates => "strongSwan initiates to oxisec",
            Pairing::OxisecOnly => "oxisec initiates to oxisec",
        }
    }
}

/// The negotiated algorithms (IKE, ESP) of the single SA pair a peer holds.
pub trait AlgView {
    fn label(&self) -> String;
    fn algorithms(&self) -> Result<(String, String)>;
}

impl AlgView for OxisecPeer {
    fn label(&self) -> String {
        Peer::label(self)
    }

    fn algorithms(&self) -> Result<(String, String)> {
        let st = self.status()?;
        match &st.ike_sas[..] {
            [ike] => {
                let installed: Vec<_> = installed(&ike.children, |c| &c.state).collect();
                match &installed[..] {
                    [child] => Ok((ike.algorithms.clone(), child.algorithms.clone())),
                    c => Err(format!("{} installed CHILD_SAs in oxisec's status", c.len()).into()),
                }
            }
            s => Err(format!("{} IKE SAs in oxisec's status", s.len()).into()),
        }
    }
}

impl AlgView for StrongSwan {
    fn label(&self) -> String {
        Peer::label(self)
    }

    fn algorithms(&self) -> Result<(String, String)> {
        let sas = self.sa_algorithms()?;
        match &sas[..] {
            [ike] => {
                let installed: Vec<_> = installed(&ike.children, |c| &c.1).collect();
                match &installed[..] {
                    [(_, _, child)] => Ok((ike.ike.clone(), child.clone())),
                    c => Err(format!("{} installed CHILD_SAs in charon's listing", c.len()).into()),
                }
            }
            s => Err(format!("{} IKE SAs in charon's listing", s.len()).into()),
        }
    }
}

/// The INSTALLED children: after a rekey the old CHILD_SA stays listed
/// for a few seconds (oxisec keeps its inbound SA for packets in flight, as
/// REKEYED), and only the new one counts.
fn installed<'a, C>(
    children: &'a [C],
    state: impl Fn(&C) -> &String + 'a,
) -> impl Iterator<Item = &'a C> + 'a {
    children
        .iter()
        .filter(move |c| state(c).eq_ignore_ascii_case("INSTALLED"))
}

/// The single IKE SA's single INSTALLED child of a listing, if that is
/// what it holds.
pub fn installed_child(sas: &[IkeSa]) -> Option<&ChildSa> {
    match sas {
        [ike] if ike.name == CONN && ike.state == "ESTABLISHED" => {
            let mut it = installed(&ike.children, |c| &c.state);
            match (it.next(), it.next()) {
                (Some(c), None) => Some(c),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Both views agree with the expectation, or an error naming which side
/// reports what.
pub fn check_algorithms(
    what: &str,
    expect_ike: &str,
    expect_esp: &str,
    views: [&dyn AlgView; 2],
) -> Result<()> {
    let mut wrong = Vec::new();
    for v in views {
        let (ike, esp) = v.algorithms()?;
        if ike != expect_ike {
            wrong.push(format!(
                "{} reports IKE {ike}, expected {expect_ike}",
                v.label()
            ));
        }
        if esp != expect_esp {
            wrong.push(format!(
                "{} reports ESP {esp}, expected {expect_esp}",
                v.label()
            ));
        }
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(format!("{what}: {}", wrong.join("; ")).into())
    }
}

/// One ping from the left host to the right one (the reply crosses the
/// tunnel the other way). A lost first packet is retried once, loudly.
fn ping_through(topo: &Topology, case: &str) -> Result<()> {
    if traffic::ping_all(&topo.left, LEFT_HOST, RIGHT_HOST, 1).is_ok() {
        return Ok(());
    }
    eprintln!("{case}: first ping unanswered, trying again");
    traffic::ping_all(&topo.left, LEFT_HOST, RIGHT_HOST, 2)
}

/// The steps of one case once both daemons run with its configuration.
fn run_case(
    case: &AlgCase,
    topo: &Topology,
    left: &dyn Peer,
    right: &dyn Peer,
    views: [&dyn AlgView; 2],
    rekeyer: &dyn Peer,
) -> Result<()> {
    left.initiate(CONN)?;
    for peer in [left, right] {
        wait_until_every(
            &format!("{} to have the tunnel up", peer.label()),
            UP_TIMEOUT,
            POLL,
            || Ok(tunnel_up(&peer.list_sas()?, CONN).then_some(())),
        )?;
    }
    check_algorithms(
        "after the handshake",
        case.expect_ike,
        case.expect_esp,
        views,
    )?;
    ping_through(topo, case.name)?;
    if let Some(expect) = case.child_rekey_expect {
        rekey_child(left, right, rekeyer)?;
        check_algorithms("after the CHILD_SA rekey", case.expect_ike, expect, views)?;
        ping_through(topo, case.name)?;
    }
    Ok(())
}

/// Has `rekeyer` rekey the CHILD_SA and waits until both sides have the
/// new one installed (the same SPIs seen from each end); the old one may
/// linger a while as REKEYED.
pub fn rekey_child(left: &dyn Peer, right: &dyn Peer, rekeyer: &dyn Peer) -> Result<()> {
    let before = left.list_sas()?;
    let old_spi = installed_child(&before)
        .ok_or("no single installed CHILD_SA before the rekey")?
        .spi_in
        .clone();
    rekeyer.rekey(CONN, RekeyKind::Child)?;
    wait_until_every(
        "the CHILD_SA rekey: one new installed CHILD_SA on each side",
        REKEY_TIMEOUT,
        POLL,
        || {
            let (l, r) = (left.list_sas()?, right.list_sas()?);
            let settled = match (installed_child(&l), installed_child(&r)) {
                (Some(a), Some(b)) => {
                    a.spi_in != old_spi && a.spi_in == b.spi_out && a.spi_out == b.spi_in
                }
                _ => false,
            };
            Ok(settled.then_some(()))
        },
    )
}

/// Has `rekeyer` rekey the IKE SA and waits until both sides hold the new
/// one alone (new SPIs, the same on both sides) with one installed child.
pub fn rekey_ike(left: &dyn Peer, right: &dyn Peer, rekeyer: &dyn Peer) -> Result<()> {
    let before = left.list_sas()?;
    let old_spi = match &before[..] {
        [ike] => ike.spi_i.clone(),
        _ => return Err("not a single IKE SA before the rekey".into()),
    };
    rekeyer.rekey(CONN, RekeyKind::Ike)?;
    wait_until_every(
        "the IKE SA rekey: one new IKE SA on each side",
        REKEY_TIMEOUT,
        POLL,
        || {
            let (l, r) = (left.list_sas()?, right.list_sas()?);
            let settled = match (&l[..], &r[..]) {
                ([a], [b]) => {
                    a.spi_i != old_spi
                        && (a.spi_i.as_str(), a.spi_r.as_str())
                            == (b.spi_i.as_str(), b.spi_r.as_str())
                        && installed_child(&l).is_some()
                        && installed_child(&r).is_some()
                }
                _ => false,
            };
            Ok(settled.then_some(()))
        },
    )
}

/// Whether a missing prerequisite must fail rather than skip.
fn required() -> bool {
    std::env::var("OXISEC_INTEROP_REQUIRED").is_ok_and(|v| v == "1")
}

/// Runs `cases` with oxisec and strongSwan as `pairing` says (not
/// [`Pairing::OxisecOnly`]). Errors only for what stops the whole run
/// (namespaces, charon's start); case failures are in the outcomes.
pub fn run_with_strongswan(
    test: &str,
    pairing: Pairing,
    cases: &[AlgCase],
) -> Result<Vec<CaseOutcome>> {
    let topo = Topology::new(test)?;
    let (oxi_side, swan_side) = match pairing {
        Pairing::OxisecInitiates => (Side::Left, Side::Right),
        Pairing::StrongSwanInitiates => (Side::Right, Side::Left),
        Pairing::OxisecOnly => {
            return Err("run_with_strongswan: no strongSwan in OxisecOnly".into());
        }
    };
    let pick = |side: Side, l, r| if side == Side::Left { l } else { r };
    let first = cases.first().ok_or("no cases")?;
    let (l, r) = topo.tunnel_specs(first.ike, first.esp);
    let swan = StrongSwan::start(
        topo.ns(swan_side).clone(),
        topo.dir
            .sub(&format!("{}-strongswan", swan_side.as_str()))?,
        format!("strongswan@{}", swan_side.as_str()),
        &pick(swan_side, l, r),
    )?;
    let algs = swan.list_algs()?;
    let mut outcomes = Vec::new();
    for case in cases {
        let started = Instant::now();
        if let Some(missing) = case
            .swan_needs
            .iter()
            .find(|a| !algs.iter().any(|x| x == *a))
        {
            let why = format!(
                "strongSwan has no {missing} (plugin missing; libstrongswan-extra-plugins)"
            );
            outcomes.push(CaseOutcome {
                name: case.name,
                verdict: Verdict::Skipped(why),
                took: started.elapsed(),
            });
            continue;
        }
        let result = (|| -> Result<()> {
            let (l, r) = topo.tunnel_specs(case.ike, case.esp);
            let (oxi_spec, swan_spec) =
                (pick(oxi_side, l.clone(), r.clone()), pick(swan_side, l, r));
            swan.reconfigure(&swan_spec).map_err(|e| swan.explain(e))?;
            let oxi = start_oxisec(&topo, oxi_side, case.name, &oxi_spec)?;
            let (left, right): (&dyn Peer, &dyn Peer) = match oxi_side {
                Side::Left => (&oxi, &swan),
                Side::Right => (&swan, &oxi),
            };
            let out = run_case(case, &topo, left, right, [&oxi, &swan], &oxi).map_err(|e| {
                format!(
                    "{e}\n--- {} log (tail) ---\n{}\n--- {} log (tail) ---\n{}",
                    Peer::label(&oxi),
                    oxi.log_tail(LOG_LINES),
                    Peer::label(&swan),
                    swan.log_tail(LOG_LINES)
                )
            });
            // Stopping oxisec deletes the IKE SA (and with it the child)
            // on both sides; charon must be empty before the next case.
            drop(oxi);
            let gone = wait_until_every("charon to have no SA left", DOWN_TIMEOUT, POLL, || {
                Ok(swan.list_sas()?.is_empty().then_some(()))
            });
            if gone.is_err() {
                let _ = swan.terminate(CONN);
            }
            out?;
            gone.map_err(|e| swan.explain(e))
        })();
        outcomes.push(CaseOutcome {
            name: case.name,
            verdict: verdict(case, result),
            took: started.elapsed(),
        });
    }
    if outcomes.iter().any(|o| !o.verdict.ok()) {
        topo.dir.keep();
    }
    Ok(outcomes)
}

/// Runs `cases` between two oxisec daemons, both restarted per case.
pub fn run_oxisec_pair(test: &str, cases: &[AlgCase]) -> Result<Vec<CaseOutcome>> {
    let topo = Topology::new(test)?;
    let mut outcomes = Vec::new();
    for case in cases {
        let started = Instant::now();
        let result = (|| -> Result<()> {
            let (l, r) = topo.tunnel_specs(case.ike, case.esp);
            let left = start_oxisec(&topo, Side::Left, case.name, &l)?;
            let right = start_oxisec(&topo, Side::Right, case.name, &r)?;
            run_case(case, &topo, &left, &right, [&left, &right], &left).map_err(|e| {
                format!(
                    "{e}\n--- {} log (tail) ---\n{}\n--- {} log (tail) ---\n{}",
                    Peer::label(&left),
                    left.log_tail(LOG_LINES),
                    Peer::label(&right),
                    right.log_tail(LOG_LINES)
                )
                .into()
            })
        })();
        outcomes.push(CaseOutcome {
            name: case.name,
            verdict: verdict(case, result),
            took: started.elapsed(),
        });
    }
    if outcomes.iter().any(|o| !o.verdict.ok()) {
        topo.dir.keep();
    }
    Ok(outcomes)
}

/// An oxisec daemon for one case, its files in `<test dir>/<case>-<side>/`.
fn start_oxisec(
    topo: &Topology,
    side: Side,
    case: &str,
    spec: &super::TunnelSpec,
) -> Result<OxisecPeer> {
    let ns: Arc<Netns> = topo.ns(side).clone();
    OxisecPeer::start(
        ns,
        topo.dir.sub(&format!("{case}-oxisec-{}", side.as_str()))?,
        format!("oxisec@{} [{case}]", side.as_str()),
        spec,
    )
}

fn verdict(case: &AlgCase, result: Result<()>) -> Verdict {
    match (result, case.expected_fail) {
        (Ok(()), None) => Verdict::Pass,
        (Ok(()), Some(why)) => Verdict::UnexpectedPass(why),
        (Err(_), Some(why)) => Verdict::ExpectedFail(why),
        (Err(e), None) => Verdict::Fail(e.to_string()),
    }
}

impl Verdict {
    /// Whether this verdict lets the test pass.
    pub fn ok(&self) -> bool {
        match self {
            Verdict::Pass | Verdict::ExpectedFail(_) => true,
            Verdict::Skipped(_) => !required(),
            Verdict::Fail(_) | Verdict::UnexpectedPass(_) => false,
        }
    }
}

/// Prints the table of a run and returns an error naming every case that
/// failed (with its details), or `Ok` with a one-line summary.
pub fn report(title: &str, outcomes: &[CaseOutcome], took: Duration) -> Result<String> {
    let mut failures = Vec::new();
    let (mut pass, mut xfail, mut skipped) = (0, 0, 0);
    eprintln!("== {title}");
    for o in outcomes {
        let (tag, note) = match &o.verdict {
            Verdict::Pass => {
                pass += 1;
                ("PASS", String::new())
            }
            Verdict::ExpectedFail(why) => {
                xfail += 1;
                ("XFAIL", format!(" ({why})"))
            }
            Verdict::Skipped(why) => {
                skipped += 1;
                ("SKIP", format!(" ({why})"))
            }
            Verdict::Fail(e) => {
                failures.push(format!("{}: {e}", o.name));
                ("FAIL", String::new())
            }
            Verdict::UnexpectedPass(why) => {
                failures.push(format!(
                    "{}: passed, but is marked as an expected failure ({why}): remove the mark",
                    o.name
                ));
                ("XPASS", format!(" ({why})"))
            }
        };
        eprintln!(
            "  {tag:<5} {:<28} {:>5.1} s{note}",
            o.name,
            o.took.as_secs_f64()
        );
    }
    let summary = format!(
        "{title}: {} cases, {pass} passed, {xfail} expected failures, {skipped} skipped, {} failed, in {:.1} s",
        outcomes.len(),
        failures.len(),
        took.as_secs_f64()
    );
    eprintln!("{summary}");
    if skipped > 0 && required() {
        failures.push(format!(
            "{skipped} cases skipped and OXISEC_INTEROP_REQUIRED=1 forbids skipping"
        ));
    }
    if failures.is_empty() {
        Ok(summary)
    } else {
        Err(format!("{summary}\nfailed cases:\n{}", failures.join("\n\n")).into())
    }
}
