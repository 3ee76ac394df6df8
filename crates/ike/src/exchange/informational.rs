//! INFORMATIONAL (RFC 7296 §1.4): deleting IKE and CHILD SAs in both
//! directions, notifies, and empty liveness requests.
use oxisec_wire::{DeletePayload, ExchangeType, HeaderRepr, NotifyType, Payload, ProtocolId};
use tracing::{debug, info, warn};

use super::{Cx, close, send_request, send_response};
use crate::api::{ChildId, Datagram, DownReason, Event};
use crate::sa::{Active, ChildState, IkeSa, IkeState};

/// Sends Delete(IKE); the SA closes when the answer arrives or the peer
/// stays silent through the retransmission schedule.
pub(crate) fn start_delete_ike(sa: &mut IkeSa, cx: &mut Cx) {
    if sa.rekeyed_to.is_none() {
        info!(connection = %sa.conn.name, peer = %sa.describe_peer(), "deleting IKE SA");
    }
    sa.state = IkeState::Deleting;
    // Stop sending on every CHILD_SA right away; inbound stays until the peer confirms.
    for c in sa.children.iter_mut() {
        c.drop_outbound(&mut cx.out.commands);
        c.state = ChildState::Deleting;
    }
    let d = DeletePayload {
        protocol: ProtocolId::IKE,
        spi_size: 0,
        spis: Vec::new(),
    };
    send_request(
        sa,
        cx,
        ExchangeType::INFORMATIONAL,
        vec![Payload::Delete(d)],
        Active::DeleteIke,
    );
}

/// Sends Delete(ESP, our inbound SPI) for one CHILD_SA; its outbound half
/// leaves the data plane now, the inbound half when the peer answers.
pub(crate) fn start_delete_child(sa: &mut IkeSa, cx: &mut Cx, id: ChildId) {
    if sa
        .children
        .iter()
        .any(|c| c.id == id && c.state != ChildState::Deleting)
    {
        crate::child::hand_over_outbound(&mut sa.children, id, &mut cx.out.commands);
    }
    let Some(c) = sa.child_mut(id) else { return };
    if c.state == ChildState::Deleting {
        return;
    }
    if c.state != ChildState::Rekeyed {
        info!(child = %c.name, spi_in = format_args!("{:08x}", c.spi_in), "deleting CHILD_SA");
    }
    c.state = ChildState::Deleting;
    let spi_in = c.spi_in;
    c.drop_outbound(&mut cx.out.commands);
    let d = DeletePayload {
        protocol: ProtocolId::ESP,
        spi_size: 4,
        spis: vec![spi_in.to_be_bytes().to_vec()],
    };
    send_request(
        sa,
        cx,
        ExchangeType::INFORMATIONAL,
        vec![Payload::Delete(d)],
        Active::DeleteChild(id),
    );
}

/// The peer answered our child delete: the inbound half goes too.
pub(crate) fn child_deleted(sa: &mut IkeSa, cx: &mut Cx, id: ChildId, _answer: &[Payload]) {
    // Whatever the answer says, the SA is gone on our side (§1.4.1: the
    // peer's Delete in the response names its half of the pair).
    if let Some(pos) = sa.children.iter().position(|c| c.id == id) {
        let mut c = sa.children.remove(pos);
        super::retire_child(sa, cx, &mut c);
        let reason = c.down_reason();
        cx.event(Event::ChildDown {
            ike: sa.id,
            child: c.id,
            name: c.name,
            reason,
        });
    }
}

/// Answers an INFORMATIONAL request from the peer.
pub(crate) fn respond(
    sa: &mut IkeSa,
    cx: &mut Cx,
    dgram: &Datagram,
    hdr: &HeaderRepr,
    payloads: Vec<Payload>,
) -> Option<super::Spawn> {
    let mut answer = Vec::new();
    let mut delete_ike = false;
    for p in &payloads {
        match p {
            Payload::Delete(d) if d.protocol == ProtocolId::IKE => delete_ike = true,
            Payload::Delete(d) if d.protocol == ProtocolId::ESP || d.protocol == ProtocolId::AH => {
                let mut ours = Vec::new();
                for spi in &d.spis {
                    let Ok(b) = <[u8; 4]>::try_from(spi.as_slice()) else {
                        continue;
                    };
                    let spi_out = u32::from_be_bytes(b);
                    if let Some(spi_in) = delete_child_by_peer(sa, cx, spi_out) {
                        ours.push(spi_in.to_be_bytes().to_vec());
                    } else {
                        debug!(
                            spi = format_args!("{spi_out:08x}"),
                            "peer deletes a CHILD_SA we do not have"
                        );
                    }
                }
                if !ours.is_empty() {
                    answer.push(Payload::Delete(DeletePayload {
                        protocol: d.protocol,
                        spi_size: 4,
                        spis: ours,
                    }));
                }
            }
            Payload::Notify(n) if n.ty == NotifyType::AUTHENTICATION_FAILED => {
                warn!(connection = %sa.conn.name, peer = %sa.remote, "peer rejected our authentication (AUTHENTICATION_FAILED)");
                cx.event(Event::AuthFailed {
                    connection: Some(sa.conn.name.clone()),
                    remote: sa.remote,
                    reason: "peer rejected our authentication (AUTHENTICATION_FAILED)".into(),
                });
                delete_ike = true;
            }
            Payload::Notify(n) if n.ty == NotifyType::INVALID_SPI => {
                let spi = <[u8; 4]>::try_from(n.data.as_slice())
                    .map(u32::from_be_bytes)
                    .unwrap_or(0);
                info!(peer = %sa.remote, spi = format_args!("{spi:08x}"), "peer reports ESP on an SPI it does not know (INVALID_SPI)");
            }
            Payload::Notify(n) => debug!(notify = %n.ty, "notify in INFORMATIONAL request"),
            _ => {}
        }
    }
    if delete_ike {
        let reply = Vec::new();
        send_response(
            sa,
            cx,
            ExchangeType::INFORMATIONAL,
            hdr.message_id,
            &dgram.data,
            reply,
        );
        // Crossing IKE rekeys where the peer never saw ours (§2.8.2): the
        // peer's rekey won, and it deletes this SA; the CHILD_SAs go on under
        // the SA the peer created.
        if let Some(col) = sa.ike_collision.take() {
            info!(connection = %sa.conn.name, "the peer's IKE rekey won; moving the CHILD_SAs to its IKE SA");
            let carry = crate::sa::Carry::take_from(sa);
            sa.rekeyed_to = Some(col.created);
            cx.event(Event::IkeRekeyed {
                old: sa.id,
                new: col.created,
                connection: sa.conn.name.clone(),
            });
            close(sa, cx, DownReason::Rekeyed);
            return Some(super::Spawn {
                adopt: Some((col.created, carry)),
                ..Default::default()
            });
        }
        // The redundant SA of crossing rekeys, deleted by the peer whose
        // exchange lost (it saw both nonce pairs first): ours stands.
        if let Some(origin) = sa.crossing_of.take() {
            debug!(connection = %sa.conn.name, "peer deleted its redundant IKE SA from crossing rekeys");
            sa.rekeyed_to = Some(origin);
            close(sa, cx, DownReason::Rekeyed);
            return Some(super::Spawn {
                crossing_lost: Some((origin, sa.id)),
                ..Default::default()
            });
        }
        if sa.rekeyed_to.is_none() {
            info!(connection = %sa.conn.name, peer = %sa.describe_peer(), "peer deleted the IKE SA");
        }
        close(sa, cx, DownReason::Deleted);
        return None;
    }
    send_response(
        sa,
        cx,
        ExchangeType::INFORMATIONAL,
        hdr.message_id,
        &dgram.data,
        answer,
    );
    None
}

/// Removes the CHILD_SA whose outbound SPI the peer deletes; returns our
/// inbound SPI for the answer, or `None` if we have no such SA or are
/// deleting it ourselves (§2.25.1: then the answer carries no Delete).
/// When the deleted SA was rekeyed, its successor's outbound half goes into
/// the data plane first: from now on we send on the new SA.
fn delete_child_by_peer(sa: &mut IkeSa, cx: &mut Cx, spi_out: u32) -> Option<u32> {
    let pos = sa.children.iter().position(|c| c.spi_out == spi_out)?;
    let mut c = sa.children.remove(pos);
    // The SA that replaces it, from a rekey the peer started (successor), or
    // from the peer's side of crossing rekeys whose outcome we do not know
    // yet (collision): it is the one the peer uses from now on.
    // The peer deletes the SA it made from crossing rekeys because its
    // exchange lost (it saw both nonce pairs first): ours stands, and the
    // collision is over before our own answer arrives.
    for o in sa.children.iter_mut() {
        if o.collision.as_ref().is_some_and(|col| col.created == c.id) {
            o.collision = None;
            c.redundant = true;
        }
    }
    let next = c.successor.or(c.collision.as_ref().map(|col| col.created));
    if c.collision.is_some()
        && let Some(crate::sa::Active::CreateChild(ex)) = sa.active.as_mut()
        && ex.rekeys == Some(c.id)
    {
        ex.superseded = true;
    }
    if let Some(next) = next.and_then(|id| sa.child_mut(id)) {
        crate::child::install_deferred_outbound(next, &mut cx.out.commands);
    }
    let ours_too = c.state == ChildState::Deleting;
    if c.state == ChildState::Rekeyed {
        debug!(child = %c.name, spi_out = format_args!("{spi_out:08x}"), "peer deleted the rekeyed CHILD_SA");
    } else {
        info!(child = %c.name, spi_out = format_args!("{spi_out:08x}"), "peer deleted CHILD_SA");
    }
    super::retire_child(sa, cx, &mut c);
    let reason = c.down_reason();
    cx.event(Event::ChildDown {
        ike: sa.id,
        child: c.id,
        name: c.name.clone(),
        reason,
    });
    (!ours_too).then_some(c.spi_in)
}

/// How often at most we tell one peer about ESP for SPIs we do not have.
const INVALID_SPI_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Tells the peer it sends ESP on an SA we do not have (RFC 7296 §1.5,
/// INVALID_SPI), at most once a second per IKE SA and only when no other
/// request is outstanding: a flood of bogus ESP must not turn into a flood of
/// IKE messages.
pub(crate) fn send_invalid_spi(sa: &mut IkeSa, cx: &mut Cx, spi: u32) {
    let recent = sa
        .last_invalid_spi
        .is_some_and(|t| cx.now < t + INVALID_SPI_INTERVAL);
    if recent || !sa.requests.is_free() {
        cx.stats.invalid_spi_suppressed += 1;
        return;
    }
    sa.last_invalid_spi = Some(cx.now);
    debug!(peer = %sa.remote, spi = format_args!("{spi:08x}"), "ESP for an unknown SPI: sending INVALID_SPI");
    let n = oxisec_wire::NotifyPayload {
        protocol: ProtocolId::ESP,
        spi: Vec::new(),
        ty: NotifyType::INVALID_SPI,
        data: spi.to_be_bytes().to_vec(),
    };
    send_request(
        sa,
        cx,
        ExchangeType::INFORMATIONAL,
        vec![Payload::Notify(n)],
        Active::Inform,
    );
}
