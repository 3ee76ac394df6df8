//! IKE SA rekeying through CREATE_CHILD_SA (RFC 7296 §2.18), with the
//! collisions of §2.8.2: a new IKE SA inherits the old one's peer, identity,
//! virtual IPs and CHILD_SAs; crossing rekeys are settled by the nonce
//! comparison of §2.8.2 and the redundant SA is deleted.
use super::*;

/// The new IKE SA that inherits the old one's peer, addresses and identity.
fn successor(
    sa: &IkeSa,
    cx: &mut Cx,
    role: Role,
    spi_i: u64,
    spi_r: u64,
    keys: SaKeys,
    selected: Selected,
) -> IkeSa {
    let mut n = IkeSa::new(
        cx.alloc.ike_id(),
        role,
        sa.conn.clone(),
        spi_i,
        spi_r,
        sa.local,
        sa.remote,
        cx.now,
    );
    n.state = IkeState::Established;
    n.keys = Some(keys);
    n.selected = Some(selected);
    n.peer_id = sa.peer_id.clone();
    n.eap_identity = sa.eap_identity.clone();
    n.peer_groups = sa.peer_groups.clone();
    n.nat_local = sa.nat_local;
    n.nat_remote = sa.nat_remote;
    n.fragmentation = sa.fragmentation;
    n.established = Some(cx.now);
    // Virtual IPs belong to the peer, not to one IKE SA: the new SA holds
    // them too (the old one lets go of its hold when it closes).
    n.own_vips = sa.own_vips.clone();
    n.peer_vips = sa.peer_vips.clone();
    for (pool, address) in &n.peer_vips {
        cx.alloc.pools.moved(pool, *address, sa.id, n.id);
    }
    crate::exchange::lifecycle::on_established(&mut n, cx);
    // A rekey renews keys, not the authentication: the reauthentication
    // keeps its schedule, and with it the hard limit behind it.
    n.reauth_at = sa.reauth_at;
    if let (Some(r), Some(e)) = (n.reauth_at, n.expire_at) {
        n.expire_at = Some(e.min(r + sa.conn.ike_lifetime.over_time));
    }
    n.reauth_by = sa.reauth_by;
    n
}

/// Our IKE proposals for a rekey: the configured ones, additional key
/// exchanges included (they run in IKE_FOLLOWUP_KE, RFC 9370 §2.2.4).
fn rekey_proposals(sa: &IkeSa) -> Vec<IkeProposal> {
    sa.conn.ike_proposals.clone()
}

fn ike_proposals_with_spi(sa: &IkeSa, spi: u64) -> Vec<oxisec_wire::Proposal> {
    rekey_proposals(sa)
        .iter()
        .enumerate()
        .map(|(i, p)| p.to_wire(i as u8 + 1, spi.to_be_bytes().to_vec()))
        .collect()
}

/// Starts rekeying the IKE SA with its current key exchange method.
pub(crate) fn start_rekey_ike(sa: &mut IkeSa, cx: &mut Cx) {
    if sa.followup.is_some() {
        debug!(connection = %sa.conn.name, "IKE rekey waits for the peer's additional key exchanges");
        sa.delayed.push((cx.now + FOLLOWUP_WAIT, Task::RekeyIke));
        return;
    }
    let group = sa.selected.as_ref().and_then(|s| s.ke).map(|a| a.id);
    let Some(group) = group else { return };
    send_ike_rekey(sa, cx, group, Vec::new());
}

fn send_ike_rekey(sa: &mut IkeSa, cx: &mut Cx, group: TransformId, tried_groups: Vec<TransformId>) {
    let share = match ke::generate(group, cx.rng) {
        Ok(s) => s,
        Err(e) => {
            warn!(error = %e, "cannot create a key share for the IKE rekey");
            return;
        }
    };
    let spi = cx.ike_spi();
    let ni = cx.random(NONCE_LEN);
    info!(connection = %sa.conn.name, peer = %sa.describe_peer(), "rekeying IKE SA");
    let payloads = vec![
        Payload::Sa(SaPayload {
            proposals: ike_proposals_with_spi(sa, spi),
        }),
        Payload::Nonce(ni.clone()),
        Payload::Ke(KePayload {
            group,
            data: share.public_key().to_vec(),
        }),
    ];
    let ex = IkeRekeyExchange {
        spi,
        ni,
        ke: share,
        tried_groups,
        followup: None,
    };
    send_request(
        sa,
        cx,
        ExchangeType::CREATE_CHILD_SA,
        payloads,
        Active::RekeyIke(Box::new(ex)),
    );
}

/// Responder: the peer's new IKE SA, to create at once or after the
/// additional key exchanges.
#[derive(Debug)]
pub(crate) struct IkePlan {
    selected: Selected,
    ni: Vec<u8>,
    nr: Vec<u8>,
    peer_spi: u64,
    spi: u64,
}

#[allow(clippy::too_many_arguments)]
pub(super) fn respond_ike_rekey(
    sa: &mut IkeSa,
    cx: &mut Cx,
    hdr: &HeaderRepr,
    dgram: &Datagram,
    sa_p: &SaPayload,
    ni: &[u8],
    ke_p: Option<&KePayload>,
) -> Option<Spawn> {
    let reply = |sa: &mut IkeSa, cx: &mut Cx, out: Vec<Payload>| {
        send_response(
            sa,
            cx,
            ExchangeType::CREATE_CHILD_SA,
            hdr.message_id,
            &dgram.data,
            out,
        );
    };
    // Half-done CHILD_SA work first (§2.25.2).
    // A CHILD_SA half created, rekeyed or deleted would be stranded between
    // the two IKE SAs: finish that first (strongSwan does the same).
    let child_busy = matches!(
        sa.active,
        Some(Active::CreateChild(_) | Active::DeleteChild(_))
    ) || sa
        .children
        .iter()
        .any(|c| matches!(c.state, ChildState::Rekeying | ChildState::Deleting))
        || sa
            .followup
            .as_ref()
            .is_some_and(|f| matches!(f.plan, Plan::Child(_)));
    if child_busy {
        reply(sa, cx, vec![notify(NotifyType::TEMPORARY_FAILURE)]);
        return None;
    }
    let ours_with_addke = rekey_proposals(sa).iter().any(|p| p.0.has_addke());
    if let Some(Active::RekeyIke(ours)) = &sa.active
        && (ours_with_addke || followup::offers_addke(sa_p))
    {
        if followup::we_proceed(&ours.ni, ni) {
            debug!(connection = %sa.conn.name, "crossing IKE rekeys with additional key exchanges: ours proceeds, the peer's is refused");
            reply(sa, cx, vec![notify(NotifyType::TEMPORARY_FAILURE)]);
            return None;
        }
        debug!(connection = %sa.conn.name, "crossing IKE rekeys with additional key exchanges: the peer's proceeds");
    }
    let Some(ke_p) = ke_p else {
        reply(sa, cx, vec![notify(NotifyType::INVALID_SYNTAX)]);
        return None;
    };
    let Some(selected) = proposal::select_ike(&rekey_proposals(sa), &sa_p.proposals, ke_p.group)
    else {
        reply(sa, cx, vec![notify(NotifyType::NO_PROPOSAL_CHOSEN)]);
        return None;
    };
    let group = selected.ke.map(|a| a.id).unwrap_or_default();
    if group != ke_p.group {
        let data = group.0.to_be_bytes().to_vec();
        reply(
            sa,
            cx,
            vec![Payload::Notify(NotifyPayload::new(
                NotifyType::INVALID_KE_PAYLOAD,
                data,
            ))],
        );
        return None;
    }
    let peer_spi = <[u8; 8]>::try_from(selected.spi.as_slice())
        .map(u64::from_be_bytes)
        .unwrap_or(0);
    if peer_spi == 0 {
        reply(sa, cx, vec![notify(NotifyType::INVALID_SYNTAX)]);
        return None;
    }
    let Ok((our_ke, g_ir)) = ke::respond(group, &ke_p.data, cx.rng) else {
        reply(sa, cx, vec![notify(NotifyType::INVALID_SYNTAX)]);
        return None;
    };
    let spi = cx.ike_spi();
    let nr = cx.random(NONCE_LEN);
    let mut out = vec![
        Payload::Sa(SaPayload {
            proposals: vec![selected.to_wire(ProtocolId::IKE, spi.to_be_bytes().to_vec())],
        }),
        Payload::Nonce(nr.clone()),
        Payload::Ke(KePayload {
            group,
            data: our_ke,
        }),
    ];
    let remaining = selected.pending_addke();
    let plan = IkePlan {
        selected,
        ni: ni.to_vec(),
        nr,
        peer_spi,
        spi,
    };
    if !remaining.is_empty() {
        out.push(followup::expect(
            sa,
            cx,
            Some(g_ir),
            remaining,
            Plan::Ike(plan),
        ));
        reply(sa, cx, out);
        return None;
    }
    match finish_ike_responder(sa, cx, plan, Some(g_ir), &[]) {
        Ok(spawn) => {
            reply(sa, cx, out);
            Some(spawn)
        }
        Err(n) => {
            reply(sa, cx, vec![notify(n)]);
            None
        }
    }
}

/// Responder: derives the peer's new IKE SA and hands it the CHILD_SAs —
/// unless our own rekey crosses it, which is then decided when ours completes.
pub(crate) fn finish_ike_responder(
    sa: &mut IkeSa,
    cx: &mut Cx,
    plan: IkePlan,
    g_ir: Option<Secret>,
    additional: &[Secret],
) -> Result<Spawn, NotifyType> {
    let IkePlan {
        selected,
        ni,
        nr,
        peer_spi,
        spi,
    } = plan;
    let g_ir = g_ir.ok_or(NotifyType::INVALID_SYNTAX)?;
    let old_keys = sa.keys.as_ref().ok_or(NotifyType::TEMPORARY_FAILURE)?;
    let keys = keys::derive(
        &selected,
        Role::Responder,
        Seed::Rekey {
            old: old_keys,
            g_ir: g_ir.as_bytes(),
            additional,
        },
        Inputs {
            ni: &ni,
            nr: &nr,
            spi_i: peer_spi,
            spi_r: spi,
        },
    )
    .map_err(|e| {
        warn!(error = %e, "cannot derive keys for the rekeyed IKE SA");
        NotifyType::NO_PROPOSAL_CHOSEN
    })?;
    let mut new = successor(sa, cx, Role::Responder, peer_spi, spi, keys, selected);
    if matches!(sa.active, Some(Active::RekeyIke(_))) {
        // Our own IKE rekey crosses the peer's: decided when ours completes.
        sa.ike_collision = Some(Collision {
            created: new.id,
            nonces: [ni, nr],
        });
        new.crossing_of = Some(sa.id);
    } else {
        info!(connection = %sa.conn.name, peer = %sa.describe_peer(), "IKE SA rekeyed by the peer");
        crate::sa::Carry::take_from(sa).put_into(&mut new);
        sa.rekeyed_to = Some(new.id);
        cx.event(Event::IkeRekeyed {
            old: sa.id,
            new: new.id,
            connection: sa.conn.name.clone(),
        });
    }
    Ok(Spawn::ike(new))
}

/// Handles the answer to our IKE rekey, or to one of its IKE_FOLLOWUP_KE
/// exchanges.
pub(crate) fn ike_rekey_response(
    sa: &mut IkeSa,
    cx: &mut Cx,
    mut ex: IkeRekeyExchange,
    payloads: &[Payload],
) -> Option<Spawn> {
    if let Some(mut f) = ex.followup.take() {
        return match followup::step(cx, &mut f.progress, payloads) {
            Ok(Step::Next(out)) => {
                ex.followup = Some(f);
                let active = Active::RekeyIke(Box::new(ex));
                send_request(sa, cx, ExchangeType::IKE_FOLLOWUP_KE, out, active);
                None
            }
            Ok(Step::Done) => {
                let Followup { agreed, progress } = *f;
                let g_ir = progress.g_ir?;
                finish_ike_initiator(sa, cx, ex.spi, ex.ni, agreed, g_ir, &progress.done)
            }
            Err(fail) => {
                warn!(connection = %sa.conn.name, "IKE rekey failed: {fail}");
                if matches!(fail, Failure::BadKeyExchange(_)) {
                    sa.tasks.push_front(Task::DeleteIke);
                }
                sa.ike_collision
                    .take()
                    .map(|col| adopt_peer_rekey(sa, cx, col.created))
            }
        };
    }
    let IkeRekeyExchange {
        spi,
        ni,
        ke: share,
        mut tried_groups,
        followup: _,
    } = ex;
    if let Some(err) = crate::engine::error_notify(payloads) {
        if let Some(col) = sa.ike_collision.take() {
            // The peer's crossing rekey stands.
            return Some(adopt_peer_rekey(sa, cx, col.created));
        }
        match err {
            NotifyType::INVALID_KE_PAYLOAD => {
                let wanted = find_notify(payloads, err)
                    .and_then(|n| n.data.get(..2))
                    .map(|b| TransformId(u16::from_be_bytes([b[0], b[1]])));
                let offered = |g: &TransformId| {
                    sa.conn
                        .ike_proposals
                        .iter()
                        .any(|p| p.0.ke.iter().any(|a| a.id == *g))
                };
                if let Some(g) = wanted.filter(|g| offered(g) && !tried_groups.contains(g)) {
                    tried_groups.push(share.group());
                    tried_groups.push(g);
                    send_ike_rekey(sa, cx, g, tried_groups);
                    return None;
                }
                warn!(connection = %sa.conn.name, "IKE rekey failed: peer wants a group we do not offer");
            }
            NotifyType::TEMPORARY_FAILURE => {
                let d = retry_delay(cx);
                debug!(?d, "IKE rekey: TEMPORARY_FAILURE; retrying later");
                sa.delayed.push((cx.now + d, Task::RekeyIke));
            }
            other => {
                warn!(connection = %sa.conn.name, notify = %other, "IKE rekey refused by peer")
            }
        }
        return None;
    }
    let p = parts(payloads);
    let ours: Vec<ProposalSpec> = rekey_proposals(sa).into_iter().map(|p| p.0).collect();
    let selected =
        p.sa.and_then(|s| proposal::accept_response(&ours, &s.proposals, ProtocolId::IKE, false));
    let peer_spi = selected
        .as_ref()
        .and_then(|s| <[u8; 8]>::try_from(s.spi.as_slice()).ok())
        .map(u64::from_be_bytes)
        .filter(|s| *s != 0);
    let valid = (|| {
        let selected = selected?;
        let k = p.ke.filter(|k| {
            k.group == share.group() && selected.ke.map(|a| a.id) == Some(share.group())
        })?;
        let nr = p.nonce.filter(|n| valid_nonce(n))?;
        Some((selected, k, nr, peer_spi?))
    })();
    let Some((selected, k, nr, peer_spi)) = valid else {
        warn!(connection = %sa.conn.name, "IKE rekey answer does not match what we offered");
        return sa
            .ike_collision
            .take()
            .map(|col| adopt_peer_rekey(sa, cx, col.created));
    };
    let g_ir = share.shared_secret(&k.data).ok()?;
    let remaining = selected.pending_addke();
    let agreed = IkeAgreed {
        selected,
        nr: nr.to_vec(),
        peer_spi,
    };
    if remaining.is_empty() {
        return finish_ike_initiator(sa, cx, spi, ni, agreed, g_ir, &[]);
    }
    let started = followup::link(payloads)
        .ok_or_else(|| {
            Failure::Refused("IKE rekey answer lacks the ADDITIONAL_KEY_EXCHANGE notify".into())
        })
        .and_then(|link| followup::start(cx, Some(g_ir), remaining, link));
    match started {
        Ok((progress, out)) => {
            debug!(connection = %sa.conn.name, "IKE rekey answered; additional key exchanges follow");
            let ex = IkeRekeyExchange {
                spi,
                ni,
                ke: share,
                tried_groups,
                followup: Some(Box::new(Followup { agreed, progress })),
            };
            send_request(
                sa,
                cx,
                ExchangeType::IKE_FOLLOWUP_KE,
                out,
                Active::RekeyIke(Box::new(ex)),
            );
            None
        }
        Err(fail) => {
            warn!(connection = %sa.conn.name, "IKE rekey failed: {fail}");
            sa.ike_collision
                .take()
                .map(|col| adopt_peer_rekey(sa, cx, col.created))
        }
    }
}

/// Our IKE rekey is complete: derive the new IKE SA, settle a crossing
/// rekey (§2.8.2) and move the CHILD_SAs.
fn finish_ike_initiator(
    sa: &mut IkeSa,
    cx: &mut Cx,
    spi: u64,
    ni: Vec<u8>,
    a: IkeAgreed,
    g_ir: Secret,
    additional: &[Secret],
) -> Option<Spawn> {
    let IkeAgreed {
        selected,
        nr,
        peer_spi,
    } = a;
    let keys = keys::derive(
        &selected,
        Role::Initiator,
        Seed::Rekey {
            old: sa.keys.as_ref()?,
            g_ir: g_ir.as_bytes(),
            additional,
        },
        Inputs {
            ni: &ni,
            nr: &nr,
            spi_i: spi,
            spi_r: peer_spi,
        },
    )
    .ok()?;
    let mut new = successor(sa, cx, Role::Initiator, spi, peer_spi, keys, selected);
    match sa.ike_collision.take() {
        Some(col) if loses(&[ni.clone(), nr.clone()], &col.nonces) => {
            // Our new IKE SA is redundant: we delete it; the peer (winner)
            // deletes the old one, and the children go to the peer's SA.
            info!(connection = %sa.conn.name, "simultaneous IKE rekey lost: deleting our redundant IKE SA");
            new.tasks.push_back(Task::DeleteIke);
            new.rekeyed_to = Some(col.created);
            let winner = col.created;
            sa.rekeyed_to = Some(winner);
            cx.event(Event::IkeRekeyed {
                old: sa.id,
                new: winner,
                connection: sa.conn.name.clone(),
            });
            Some(Spawn::ike(new).then_move(sa.id, winner))
        }
        collision => {
            if collision.is_some() {
                info!(connection = %sa.conn.name, "simultaneous IKE rekey won: the peer deletes its redundant IKE SA");
            } else {
                info!(connection = %sa.conn.name, peer = %sa.describe_peer(), "IKE SA rekeyed");
            }
            crate::sa::Carry::take_from(sa).put_into(&mut new);
            sa.rekeyed_to = Some(new.id);
            sa.tasks.push_back(Task::DeleteIke);
            cx.event(Event::IkeRekeyed {
                old: sa.id,
                new: new.id,
                connection: sa.conn.name.clone(),
            });
            // The peer's redundant SA (ours as responder) goes quietly when
            // the peer deletes it.
            let redundant = collision.map(|c| (c.created, new.id));
            Some(Spawn {
                redundant,
                ..Spawn::ike(new)
            })
        }
    }
}

/// Our rekey failed or lost while the peer's crossing rekey (which we
/// answered) succeeded: the peer's new SA takes the children; the peer
/// deletes this one.
fn adopt_peer_rekey(sa: &mut IkeSa, cx: &mut Cx, winner: IkeId) -> Spawn {
    sa.rekeyed_to = Some(winner);
    cx.event(Event::IkeRekeyed {
        old: sa.id,
        new: winner,
        connection: sa.conn.name.clone(),
    });
    Spawn::moving(sa.id, winner)
}
