//! Turning a negotiated CHILD_SA into keys and data-plane commands (§2.17).
use oxisec_crypto::Secret;
use oxisec_crypto::esp_cipher::EspSuite;
use oxisec_crypto::kdf;

use std::time::{Duration, Instant};

use crate::api::{ChildId, EspSaParams, SaCommand, SaLimits};
use crate::config::{ChildConfig, ChildLifetime, ChildMode, DEFAULT_REPLAY_WINDOW};
use crate::exchange::Cx;
use crate::proposal::Selected;
use crate::sa::{ChildSa, ChildState, IkeSa, SaKeys};
use crate::ts::TsRange;

/// Everything negotiated about one CHILD_SA.
pub(crate) struct Negotiated<'a> {
    /// Whether we initiated the exchange that created it (decides the KEYMAT split).
    pub initiator: bool,
    /// g^ir of a CREATE_CHILD_SA with PFS.
    pub g_ir: Option<&'a [u8]>,
    /// Shared secrets of the IKE_FOLLOWUP_KE exchanges (RFC 9370), in order.
    pub additional: &'a [Secret],
    pub ni: &'a [u8],
    pub nr: &'a [u8],
    /// Responder of a rekey: keep the outbound half back until the old SA is deleted.
    pub defer_outbound: bool,
    pub id: ChildId,
    pub name: String,
    pub selected: Selected,
    pub spi_in: u32,
    pub spi_out: u32,
    pub local_ts: Vec<TsRange>,
    pub remote_ts: Vec<TsRange>,
    /// Tunnel or transport, as settled by [`initiator_mode`] / [`responder_mode`].
    pub mode: ChildMode,
}

/// Every selector names one address on each side: the only case transport
/// mode is for (RFC 4303 §3.1.1, host to host). Ports and protocol may be
/// narrowed.
pub(crate) fn host_to_host(local: &[TsRange], remote: &[TsRange]) -> bool {
    let single = |ts: &[TsRange]| !ts.is_empty() && ts.iter().all(|t| t.start == t.end);
    single(local) && single(remote)
}

/// Initiator: whether to send USE_TRANSPORT_MODE for this child (RFC 7296
/// §1.3.1; also in a rekey of a transport-mode child, §1.3.3). Only for
/// host-to-host selectors: a subnet cannot be carried in transport mode,
/// so we fall back to tunnel at once instead of asking.
pub(crate) fn request_transport(
    cfg: Option<&ChildConfig>,
    local: &[TsRange],
    remote: &[TsRange],
) -> bool {
    cfg.is_some_and(|c| c.mode == ChildMode::Transport) && host_to_host(local, remote)
}

/// Initiator: the mode the responder's answer settles. `accepted`: the
/// response carries USE_TRANSPORT_MODE. A refused transport request falls
/// back to tunnel mode (as strongSwan does, logged) unless the child
/// requires transport: then `Err` and the caller deletes the child.
pub(crate) fn initiator_mode(
    cfg: Option<&ChildConfig>,
    requested: bool,
    accepted: bool,
) -> Result<ChildMode, String> {
    let Some(cfg) = cfg else {
        return Ok(ChildMode::Tunnel);
    };
    match (cfg.mode, requested, accepted) {
        (ChildMode::Transport, true, true) => Ok(ChildMode::Transport),
        (ChildMode::Transport, requested, _) => {
            let why = if requested {
                "the peer did not accept transport mode"
            } else {
                "the selectors are not host-to-host"
            };
            if cfg.mode_required {
                Err(format!("{why} and mode = \"transport\" is required"))
            } else {
                tracing::info!(child = %cfg.name, "{why}: using tunnel mode instead");
                Ok(ChildMode::Tunnel)
            }
        }
        // A USE_TRANSPORT_MODE we did not ask for means nothing (§1.3.1:
        // the responder may only accept what was proposed).
        (ChildMode::Tunnel, _, _) => Ok(ChildMode::Tunnel),
    }
}

/// Responder: the mode to use for a request with (`requested`) or without
/// USE_TRANSPORT_MODE. Transport only when both sides want it and the
/// narrowed selectors are host-to-host; otherwise tunnel (the initiator
/// sees no USE_TRANSPORT_MODE in the answer and falls back, §1.3.1), or
/// `Err` when our child requires transport.
pub(crate) fn responder_mode(
    cfg: Option<&ChildConfig>,
    requested: bool,
    local: &[TsRange],
    remote: &[TsRange],
) -> Result<ChildMode, String> {
    let Some(cfg) = cfg else {
        return Ok(ChildMode::Tunnel);
    };
    let h2h = host_to_host(local, remote);
    match cfg.mode {
        ChildMode::Transport if requested && h2h => Ok(ChildMode::Transport),
        ChildMode::Transport => {
            let why = if !requested {
                "the peer asked for tunnel mode"
            } else {
                "the selectors are not host-to-host"
            };
            if cfg.mode_required {
                Err(format!("{why} and mode = \"transport\" is required"))
            } else {
                tracing::info!(child = %cfg.name, "{why}: using tunnel mode instead");
                Ok(ChildMode::Tunnel)
            }
        }
        ChildMode::Tunnel => {
            if requested {
                tracing::info!(child = %cfg.name, "the peer asked for transport mode, configured is tunnel: using tunnel mode");
            }
            Ok(ChildMode::Tunnel)
        }
    }
}

/// The child configuration named `name`.
pub(crate) fn config<'a>(
    conn: &'a crate::config::Connection,
    name: &str,
) -> Option<&'a ChildConfig> {
    conn.children.iter().find(|c| c.name == name)
}

pub(crate) fn esp_suite(s: &Selected) -> EspSuite {
    EspSuite {
        encr: s.encr.id,
        encr_key_bits: s.encr.key_bits,
        integ: s.integ.map(|a| a.id),
        esn: s.esn,
    }
}

/// KEYMAT = prf+(SK_d, [g^ir |] Ni | Nr [| SK(1) | ...]): initiator→responder keys first,
/// then responder→initiator. Returns (inbound, outbound) keys for our role
/// in the exchange that created the SA.
fn split_keymat(keys: &SaKeys, suite: &EspSuite, n: &Negotiated) -> (Secret, Secret) {
    let per_dir = suite.keymat_len();
    let additional: Vec<&[u8]> = n.additional.iter().map(Secret::as_bytes).collect();
    let mut keymat = kdf::child_keymat_multi(
        keys.prf,
        keys.sk_d.as_bytes(),
        n.g_ir,
        n.ni,
        n.nr,
        &additional,
        2 * per_dir,
    );
    let initiator = n.initiator;
    let i_to_r = keymat.split_to(per_dir);
    let r_to_i = keymat;
    if initiator {
        (r_to_i, i_to_r)
    } else {
        (i_to_r, r_to_i)
    }
}

/// Installs a CHILD_SA: inbound first, then outbound (the caller sends any
/// response after these commands are queued), and records it on the IKE SA.
pub(crate) fn install(sa: &mut IkeSa, cx: &mut Cx, n: Negotiated) -> Result<(), String> {
    let now = cx.now;
    let cfg = config(&sa.conn, &n.name);
    let lifetime = cfg.map(|c| c.lifetime).unwrap_or_default();
    let replay_window = cfg.map_or(DEFAULT_REPLAY_WINDOW, |c| c.replay_window);
    let limits = limits(&lifetime, n.selected.esn);
    let (rekey_at, expire_at) = timers(&lifetime, now, cx.rng);
    let out = &mut cx.out.commands;
    let suite = esp_suite(&n.selected);
    suite
        .validate()
        .map_err(|e| format!("ESP suite not supported: {e}"))?;
    let keys = sa.keys.as_ref().ok_or("IKE SA has no keys")?;
    let (k_in, k_out) = split_keymat(keys, &suite, &n);
    let udp_encap = sa.udp_encap();
    out.push_back(SaCommand::InstallInbound {
        child: n.id,
        sa: EspSaParams {
            spi: n.spi_in,
            suite,
            keys: k_in,
            limits,
            mode: n.mode,
            replay_window,
        },
        local_ts: n.local_ts.clone(),
        remote_ts: n.remote_ts.clone(),
    });
    let outbound = SaCommand::InstallOutbound {
        child: n.id,
        sa: EspSaParams {
            spi: n.spi_out,
            suite,
            keys: k_out,
            limits,
            mode: n.mode,
            replay_window,
        },
        local_ts: n.local_ts.clone(),
        remote_ts: n.remote_ts.clone(),
        local: sa.local,
        remote: sa.remote,
        udp_encap,
    };
    let deferred_outbound = if n.defer_outbound {
        Some(outbound)
    } else {
        out.push_back(outbound);
        None
    };
    sa.children.push(ChildSa {
        id: n.id,
        name: n.name,
        spi_in: n.spi_in,
        spi_out: n.spi_out,
        selected: n.selected,
        local_ts: n.local_ts,
        remote_ts: n.remote_ts,
        state: ChildState::Installed,
        installed: now,
        outbound_installed: deferred_outbound.is_none(),
        inbound_installed: true,
        deferred_outbound,
        successor: None,
        redundant: false,
        collision: None,
        rekey_at,
        expire_at,
        mode: n.mode,
    });
    Ok(())
}

/// Without ESN the 32-bit sequence number must never wrap (RFC 4303
/// §3.3.3): the SA is rekeyed well before (2^24 packets of margin) and dies
/// at the last number.
const SEQ_SOFT_LIMIT: u64 = (1 << 32) - (1 << 24);
const SEQ_HARD_LIMIT: u64 = (1 << 32) - 1;

fn min_nonzero(configured: u64, cap: u64) -> u64 {
    match (configured, cap) {
        (0, c) => c,
        (v, 0) => v,
        (v, c) => v.min(c),
    }
}

/// The data plane's volume limits for a CHILD_SA.
pub(crate) fn limits(l: &ChildLifetime, esn: bool) -> SaLimits {
    let (seq_soft, seq_hard) = if esn {
        (0, 0)
    } else {
        (SEQ_SOFT_LIMIT, SEQ_HARD_LIMIT)
    };
    SaLimits {
        soft_bytes: l.rekey_bytes,
        hard_bytes: l.life_bytes,
        soft_packets: min_nonzero(l.rekey_packets, seq_soft),
        hard_packets: min_nonzero(l.life_packets, seq_hard),
    }
}

/// A random duration in [0, max).
pub(crate) fn jitter(rng: &mut dyn oxisec_crypto::Rng, max: Duration) -> Duration {
    if max.is_zero() {
        return Duration::ZERO;
    }
    let mut b = [0u8; 8];
    rng.fill(&mut b);
    let nanos = max.as_nanos().min(u64::MAX as u128) as u64;
    Duration::from_nanos(u64::from_be_bytes(b) % nanos)
}

/// When a new CHILD_SA is rekeyed and when it expires (zero times disable).
fn timers(
    l: &ChildLifetime,
    now: Instant,
    rng: &mut dyn oxisec_crypto::Rng,
) -> (Option<Instant>, Option<Instant>) {
    let rekey = (!l.rekey_time.is_zero())
        .then(|| now + l.rekey_time.saturating_sub(jitter(rng, l.rand_time)));
    let expire = (!l.life_time.is_zero()).then(|| now + l.life_time);
    (rekey, expire)
}

/// Puts a deferred outbound half into the data plane.
pub(crate) fn install_deferred_outbound(
    c: &mut ChildSa,
    out: &mut std::collections::VecDeque<SaCommand>,
) {
    if let Some(cmd) = c.deferred_outbound.take() {
        out.push_back(cmd);
        c.outbound_installed = true;
    }
}

/// The rekeyed SA `old` is about to lose its outbound half other than by
/// the peer's Delete (its hard lifetime or volume limit, our own delete):
/// the SA that replaces it — whose outbound half a rekey responder holds
/// back until that Delete — goes into the data plane first. Otherwise the
/// child would be left without any outbound SA, and a driver that routes the
/// child's traffic by its outbound SAs (the daemon's tunnel routes) would
/// let it leave in clear.
pub(crate) fn hand_over_outbound(
    children: &mut [ChildSa],
    old: ChildId,
    out: &mut std::collections::VecDeque<SaCommand>,
) {
    let Some(o) = children.iter().find(|c| c.id == old) else {
        return;
    };
    if !o.outbound_installed {
        return;
    }
    let Some(next) = o.successor.or(o.collision.as_ref().map(|c| c.created)) else {
        return;
    };
    if let Some(n) = children.iter_mut().find(|c| c.id == next) {
        install_deferred_outbound(n, out);
    }
}

/// The peer's 4-byte SPI from a selected proposal.
pub(crate) fn peer_spi(s: &Selected) -> Option<u32> {
    let b: [u8; 4] = s.spi.as_slice().try_into().ok()?;
    let spi = u32::from_be_bytes(b);
    (spi != 0).then_some(spi)
}

/// A child configuration that fits a peer's request.
#[derive(Debug)]
pub(crate) struct Choice {
    pub name: String,
    pub selected: Selected,
    pub spi_out: u32,
    pub local_ts: Vec<TsRange>,
    pub remote_ts: Vec<TsRange>,
}

/// What "dynamic" selectors (an empty `local_ts`/`remote_ts` in a child's
/// configuration) stand for on one IKE SA: a virtual IP where one was
/// assigned, else the address the IKE SA runs on.
#[derive(Debug, Clone)]
pub(crate) struct Dynamic {
    pub local: Vec<TsRange>,
    pub remote: Vec<TsRange>,
}

fn host(a: std::net::IpAddr) -> TsRange {
    let bits = if a.is_ipv4() { 32 } else { 128 };
    TsRange::subnet(a, bits).expect("a host prefix is valid")
}

impl Dynamic {
    pub fn of(sa: &IkeSa) -> Dynamic {
        let local = if sa.own_vips.is_empty() {
            vec![host(sa.local.ip())]
        } else {
            sa.own_vips.iter().copied().map(host).collect()
        };
        let remote = if sa.peer_vips.is_empty() {
            vec![host(sa.remote.ip())]
        } else {
            sa.peer_vips.iter().map(|(_, a)| host(*a)).collect()
        };
        Dynamic { local, remote }
    }

    /// Before IKE_AUTH a client that asks for virtual IPs proposes any
    /// address of each family it asks for; the gateway narrows that to the
    /// address it assigns.
    pub fn requesting(sa: &IkeSa, vips: &[std::net::IpAddr]) -> Dynamic {
        let mut d = Dynamic::of(sa);
        if !vips.is_empty() {
            let mut fams: Vec<bool> = vips.iter().map(|v| v.is_ipv4()).collect();
            fams.dedup();
            d.local = fams.into_iter().map(TsRange::any).collect();
        }
        d
    }
}

/// The configured selectors, or what "dynamic" stands for.
pub(crate) fn resolve(configured: &[TsRange], dynamic: &[TsRange]) -> Vec<TsRange> {
    if configured.is_empty() {
        dynamic.to_vec()
    } else {
        configured.to_vec()
    }
}

/// Responder: the child configuration (of `only`, if given) that fits the
/// request's TSi/TSr best and whose proposals match. Selectors are narrowed
/// (§2.9); a configuration whose selectors equal the request wins over one
/// that merely contains it, which wins over one that had to narrow it, so
/// that a peer asking for a specific child's subnets gets that child even if
/// a broader one comes first. Errors carry the notify to answer with.
pub(crate) fn choose(
    conn: &crate::config::Connection,
    only: Option<&str>,
    proposals: &[oxisec_wire::Proposal],
    tsi: &[TsRange],
    tsr: &[TsRange],
    skip_ke: bool,
    dynamic: &Dynamic,
) -> Result<Choice, oxisec_wire::NotifyType> {
    use oxisec_wire::NotifyType;
    let mut failure = NotifyType::TS_UNACCEPTABLE;
    let mut best: Option<(u8, Choice)> = None;
    for cfg in conn
        .children
        .iter()
        .filter(|c| only.is_none_or(|n| n == c.name))
    {
        let cfg_remote = resolve(&cfg.remote_ts, &dynamic.remote);
        let cfg_local = resolve(&cfg.local_ts, &dynamic.local);
        let remote_ts = crate::ts::narrow(tsi, &cfg_remote);
        let local_ts = crate::ts::narrow(tsr, &cfg_local);
        if remote_ts.is_empty() || local_ts.is_empty() {
            continue;
        }
        let ours: Vec<_> = cfg.esp_proposals.iter().map(|p| p.0.clone()).collect();
        let esp = oxisec_wire::ProtocolId::ESP;
        let Some(selected) = crate::proposal::select(&ours, proposals, esp, skip_ke) else {
            failure = NotifyType::NO_PROPOSAL_CHOSEN;
            continue;
        };
        let Some(spi_out) = peer_spi(&selected) else {
            failure = NotifyType::INVALID_SYNTAX;
            continue;
        };
        let unnarrowed = remote_ts == tsi && local_ts == tsr;
        let exact = unnarrowed && cfg_remote == tsi && cfg_local == tsr;
        let score = u8::from(unnarrowed) + u8::from(exact);
        if best.as_ref().is_none_or(|(s, _)| score > *s) {
            let c = Choice {
                name: cfg.name.clone(),
                selected,
                spi_out,
                local_ts,
                remote_ts,
            };
            best = Some((score, c));
        }
    }
    best.map(|(_, c)| c).ok_or(failure)
}

/// One log line for a new CHILD_SA.
pub(crate) fn log_up(
    name: &str,
    spi_in: u32,
    spi_out: u32,
    local_ts: &[TsRange],
    remote_ts: &[TsRange],
    selected: &Selected,
    rekey: bool,
) {
    let fmt = |t: &[TsRange]| {
        t.iter()
            .map(|t| t.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    tracing::info!(child = %name, spi_in = format_args!("{spi_in:08x}"), spi_out = format_args!("{spi_out:08x}"),
        local_ts = %fmt(local_ts), remote_ts = %fmt(remote_ts), algorithms = %selected.describe(),
        "{}", if rekey { "CHILD_SA rekeyed" } else { "CHILD_SA established" });
}
