//! Time-driven life of an established IKE SA: rekeying and expiry of the IKE
//! SA and its CHILD_SAs, the liveness check (RFC 7296 §2.4) and NAT
//! keepalives (RFC 3948 §2.3). Everything here only queues tasks or sends
//! keepalives; the exchanges themselves live in their own modules.
use tracing::{debug, info, warn};

use super::{Cx, send_request};
use crate::api::Transmit;
use crate::child::jitter;
use crate::sa::{Active, ChildState, IkeSa, IkeState, Task};

/// Arms the IKE SA's lifetime and keepalive timers once it is established
/// (by IKE_AUTH or as the successor of a rekey).
pub(crate) fn on_established(sa: &mut IkeSa, cx: &mut Cx) {
    let l = sa.conn.ike_lifetime;
    let now = cx.now;
    sa.rekey_at = (!l.rekey_time.is_zero())
        .then(|| now + l.rekey_time.saturating_sub(jitter(cx.rng, l.rand_time)));
    sa.reauth_at = (!l.reauth_time.is_zero() && !sa.conn.remote_addrs.is_empty())
        .then(|| now + l.reauth_time.saturating_sub(jitter(cx.rng, l.rand_time)));
    sa.expire_at = l
        .replace_time()
        .filter(|_| !l.over_time.is_zero())
        .map(|t| now + t + l.over_time);
    sa.last_heard = now;
    arm_keepalive(sa, cx);
}

/// NAT keepalives are sent by the side behind the NAT, on the UDP
/// encapsulation port.
pub(crate) fn arm_keepalive(sa: &mut IkeSa, cx: &mut Cx) {
    let interval = cx.config.nat_keepalive.0;
    sa.keepalive_at =
        (sa.nat_local && !interval.is_zero() && sa.local.port() != 500).then(|| cx.now + interval);
}

fn queue_front(sa: &mut IkeSa, task: Task) {
    if !sa.tasks.contains(&task) {
        sa.tasks.push_front(task);
    }
}

fn queue_back(sa: &mut IkeSa, task: Task) {
    if !sa.tasks.contains(&task) {
        sa.tasks.push_back(task);
    }
}

/// Acts on every timer of an established SA that is due at `cx.now`.
pub(crate) fn on_timeout(sa: &mut IkeSa, cx: &mut Cx) {
    let now = cx.now;
    super::expire_lingering(sa, cx, false);
    super::ike_followup_ke::expire(sa, cx);
    if sa.keepalive_at.is_some_and(|t| t <= now) {
        cx.out
            .transmits
            .push_back(Transmit::nat_keepalive(sa.local, sa.remote));
        arm_keepalive(sa, cx);
    }
    if sa.state != IkeState::Established || sa.rekeyed_to.is_some() {
        return;
    }
    if sa.expire_at.is_some_and(|t| t <= now) {
        warn!(connection = %sa.conn.name, peer = %sa.describe_peer(), "IKE SA lifetime expired before it could be rekeyed; deleting it");
        sa.expire_at = None;
        sa.rekey_at = None;
        queue_front(sa, Task::DeleteIke);
    }
    if sa.rekey_at.is_some_and(|t| t <= now) {
        sa.rekey_at = None;
        queue_back(sa, Task::RekeyIke);
    }
    if sa.reauth_by.is_none() && sa.reauth_at.is_some_and(|t| t <= now) {
        info!(connection = %sa.conn.name, peer = %sa.describe_peer(), "reauthentication time reached");
        sa.reauth_at = None;
        sa.reauth_due = true;
    }
    let expiring: Vec<_> = sa
        .children
        .iter()
        .filter(|c| c.state != ChildState::Deleting && c.expire_at.is_some_and(|t| t <= now))
        .map(|c| c.id)
        .collect();
    for id in expiring {
        crate::child::hand_over_outbound(&mut sa.children, id, &mut cx.out.commands);
    }
    let mut tasks = Vec::new();
    for c in sa
        .children
        .iter_mut()
        .filter(|c| c.state != ChildState::Deleting)
    {
        if c.expire_at.is_some_and(|t| t <= now) {
            warn!(child = %c.name, spi_in = format_args!("{:08x}", c.spi_in), "CHILD_SA hard lifetime reached; deleting it");
            c.expire_at = None;
            c.rekey_at = None;
            // Its keys must not be used any more, whatever the peer says and
            // whenever the delete exchange gets its turn.
            c.drop_outbound(&mut cx.out.commands);
            c.drop_inbound(&mut cx.out.commands);
            tasks.push((true, Task::DeleteChild(c.id)));
        } else if c.rekey_at.is_some_and(|t| t <= now) {
            c.rekey_at = None;
            if c.state == ChildState::Installed {
                debug!(child = %c.name, "CHILD_SA rekey time reached");
                tasks.push((false, Task::RekeyChild(c.id)));
            }
        }
    }
    for (urgent, t) in tasks {
        if urgent {
            queue_front(sa, t)
        } else {
            queue_back(sa, t)
        }
    }
    if sa.requests.is_free() && sa.tasks.is_empty() && sa.dpd_due().is_some_and(|t| t <= now) {
        debug!(connection = %sa.conn.name, peer = %sa.remote, "nothing heard from the peer for a while: liveness check");
        // Start the next quiet period now, so a lost check is retransmitted
        // rather than re-sent.
        sa.last_heard = now;
        send_request(
            sa,
            cx,
            oxisec_wire::ExchangeType::INFORMATIONAL,
            Vec::new(),
            Active::Inform,
        );
    }
}

/// A data-plane volume limit was crossed for the CHILD_SA with this SPI.
pub(crate) fn child_expired(
    sa: &mut IkeSa,
    cx: &mut Cx,
    spi: u32,
    inbound: bool,
    hard: bool,
) -> bool {
    let matches = |c: &crate::sa::ChildSa| {
        if inbound {
            c.spi_in == spi
        } else {
            c.spi_out == spi
        }
    };
    if hard
        && let Some(id) = sa
            .children
            .iter()
            .find(|c| matches(c) && c.state != ChildState::Deleting)
            .map(|c| c.id)
    {
        crate::child::hand_over_outbound(&mut sa.children, id, &mut cx.out.commands);
    }
    let Some(c) = sa.children.iter_mut().find(|c| matches(c)) else {
        return false;
    };
    if hard {
        if c.state != ChildState::Deleting {
            warn!(child = %c.name, spi = format_args!("{spi:08x}"), "CHILD_SA hard volume limit reached; deleting it");
            c.drop_outbound(&mut cx.out.commands);
            c.drop_inbound(&mut cx.out.commands);
            let id = c.id;
            queue_front(sa, Task::DeleteChild(id));
        }
    } else if c.state == ChildState::Installed {
        info!(child = %c.name, spi = format_args!("{spi:08x}"), "CHILD_SA soft volume limit reached; rekeying");
        c.rekey_at = None;
        let id = c.id;
        queue_back(sa, Task::RekeyChild(id));
    }
    true
}
