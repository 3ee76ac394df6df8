//! Control clients waiting for the outcome of `initiate` / `terminate` /
//! `rekey`.
//!
//! The engine reports outcomes only as [`Event`]s, so a waiting client is a
//! small state machine fed with every event and with the clock. Kept free of
//! I/O (replies go to a [`Reply`] sink) so that the matching rules are unit
//! tested: which event ends which wait, and that events of SAs that existed
//! before the request (an old SA being deleted) do not count.
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use oxisec_ike::{ChildId, DownReason, Event, IkeId};

use crate::control::Response;

/// Where a waiter's answers go. `send` returns false when the client is gone.
pub trait Reply {
    fn send(&self, r: Response) -> bool;
}

impl Reply for tokio::sync::mpsc::UnboundedSender<Response> {
    fn send(&self, r: Response) -> bool {
        tokio::sync::mpsc::UnboundedSender::send(self, r).is_ok()
    }
}

/// What a waiter waits for.
#[derive(Debug, Clone)]
pub enum Goal {
    /// A CHILD_SA of `connection` (the named one, or any) on an IKE SA that
    /// did not exist when the request came.
    Initiate {
        connection: String,
        child: Option<String>,
        /// IKE SAs of the connection that existed before the request.
        old_ikes: HashSet<IkeId>,
        /// The connection has no children: IKE up is success.
        ike_only: bool,
    },
    /// These IKE SAs of `connection` going down.
    TerminateIke {
        connection: String,
        remaining: HashSet<IkeId>,
    },
    /// These CHILD_SAs named `child` going down.
    TerminateChild {
        child: String,
        remaining: HashSet<ChildId>,
    },
    /// These IKE SAs of `connection` replaced by a rekey (whoever started
    /// it: a crossing rekey by the peer that wins counts too). Done when the
    /// engine reports the new SA in place; the old one's DELETE may still be
    /// under way (the engine reports no event for it).
    RekeyIke {
        connection: String,
        remaining: HashSet<IkeId>,
    },
    /// These CHILD_SAs named `child` (with the IKE SA each lives on)
    /// replaced by a rekey. Done when every old one went down as rekeyed,
    /// i.e. its successor carries the traffic and the old one is deleted.
    RekeyChild {
        child: String,
        remaining: HashMap<ChildId, IkeId>,
        /// SPIs (in, out) of the last successor seen, for the answer.
        new_spis: Option<(u32, u32)>,
    },
}

struct Waiter<R> {
    goal: Goal,
    reply: R,
    started: Instant,
    deadline: Instant,
    /// The last authentication failure seen for this connection, to explain
    /// the IKE_SA going down.
    auth_failure: Option<String>,
}

/// All waiting clients.
pub struct Waiters<R> {
    list: Vec<Waiter<R>>,
}

impl<R> Default for Waiters<R> {
    fn default() -> Self {
        Waiters { list: Vec::new() }
    }
}

/// Operator wording of a [`DownReason`].
pub fn reason_text(r: &DownReason) -> String {
    match r {
        DownReason::Deleted => "deleted".to_string(),
        DownReason::Rekeyed => "replaced by a rekey".to_string(),
        DownReason::PeerDead => "the peer did not answer".to_string(),
        DownReason::AuthFailed => "authentication failed".to_string(),
        DownReason::Failed(s) => s.clone(),
    }
}

enum Outcome {
    Continue,
    Done(Response),
}

impl<R: Reply> Waiters<R> {
    pub fn add(&mut self, goal: Goal, reply: R, now: Instant, timeout: Duration) {
        self.list.push(Waiter {
            goal,
            reply,
            started: now,
            deadline: now + timeout,
            auth_failure: None,
        });
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The earliest deadline, for the daemon's timer.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.list.iter().map(|w| w.deadline).min()
    }

    /// Feeds one engine event. `conn_of` maps an IKE SA to its connection
    /// (for events that carry only the IKE id).
    pub fn on_event(&mut self, ev: &Event, conn_of: &dyn Fn(IkeId) -> Option<String>) {
        self.list.retain_mut(|w| match step(w, ev, conn_of) {
            Outcome::Continue => true,
            Outcome::Done(r) => {
                w.reply.send(r);
                false
            }
        });
    }

    /// Answers every waiter whose deadline passed, and forgets waiters
    /// whose client went away.
    pub fn on_tick(&mut self, now: Instant) {
        self.list.retain(|w| {
            if w.deadline > now {
                return true;
            }
            let secs = now.saturating_duration_since(w.started).as_secs_f64();
            let msg = match &w.goal {
                Goal::Initiate { connection, .. } => format!(
                    "no outcome within {secs:.0} s; the attempt for {connection} may continue in the background (see `oxisec status`)"
                ),
                Goal::TerminateIke { connection, .. } => format!(
                    "the peer did not confirm the delete of {connection} within {secs:.0} s; the SA goes away when the retransmissions run out"
                ),
                Goal::TerminateChild { child, .. } => format!(
                    "the peer did not confirm the delete of CHILD_SA {child} within {secs:.0} s"
                ),
                Goal::RekeyIke { connection, .. } => format!(
                    "IKE SA {connection} not rekeyed within {secs:.0} s (the peer may have refused; see the log)"
                ),
                Goal::RekeyChild { child, .. } => format!(
                    "CHILD_SA {child} not rekeyed within {secs:.0} s (the peer may have refused; see the log)"
                ),
            };
            w.reply.send(Response::error(msg));
            false
        });
    }

    /// Answers every waiter with `msg` (daemon shutdown).
    pub fn fail_all(&mut self, msg: &str) {
        for w in self.list.drain(..) {
            w.reply.send(Response::error(msg));
        }
    }
}

fn step<R: Reply>(
    w: &mut Waiter<R>,
    ev: &Event,
    conn_of: &dyn Fn(IkeId) -> Option<String>,
) -> Outcome {
    match &mut w.goal {
        Goal::Initiate {
            connection,
            child,
            old_ikes,
            ike_only,
        } => match ev {
            Event::IkeUp {
                ike,
                connection: c,
                remote,
            } if c == connection && !old_ikes.contains(ike) => {
                if *ike_only {
                    return Outcome::Done(Response::ok(format!(
                        "IKE SA {c} established with {remote} (the connection has no children)"
                    )));
                }
                let _ = w.reply.send(Response::progress(format!(
                    "IKE SA {c} established with {remote}"
                )));
                Outcome::Continue
            }
            Event::ChildUp {
                ike,
                name,
                spi_in,
                spi_out,
                ..
            } if conn_of(*ike).as_deref() == Some(connection.as_str())
                && child.as_ref().is_none_or(|c| c == name)
                && (child.is_some() || !old_ikes.contains(ike)) =>
            {
                Outcome::Done(Response::ok(format!(
                    "CHILD_SA {connection}/{name} established, SPIs {spi_in:08x} (in) {spi_out:08x} (out)"
                )))
            }
            Event::ChildDown {
                ike, name, reason, ..
            } if conn_of(*ike).as_deref() == Some(connection.as_str())
                && child.as_ref().is_none_or(|c| c == name)
                && !old_ikes.contains(ike) =>
            {
                Outcome::Done(Response::error(format!(
                    "CHILD_SA {connection}/{name} failed: {}",
                    reason_text(reason)
                )))
            }
            Event::IkeDown {
                ike,
                connection: c,
                reason,
            } if c == connection && !old_ikes.contains(ike) => {
                let why = match (&w.auth_failure, reason) {
                    (Some(a), DownReason::AuthFailed | DownReason::Failed(_)) => a.clone(),
                    _ => reason_text(reason),
                };
                Outcome::Done(Response::error(format!("IKE SA {c} failed: {why}")))
            }
            Event::AuthFailed {
                connection: Some(c),
                reason,
                remote,
            } if c == connection => {
                let msg = format!("authentication with {remote} failed: {reason}");
                let _ = w.reply.send(Response::progress(msg.clone()));
                w.auth_failure = Some(msg);
                Outcome::Continue
            }
            _ => Outcome::Continue,
        },
        Goal::TerminateIke {
            connection,
            remaining,
        } => match ev {
            Event::IkeDown { ike, reason, .. } if remaining.remove(ike) => {
                let _ = w.reply.send(Response::progress(format!(
                    "IKE SA {connection} #{}: {}",
                    ike.0,
                    reason_text(reason)
                )));
                if remaining.is_empty() {
                    Outcome::Done(Response::ok(format!("IKE SA {connection} terminated")))
                } else {
                    Outcome::Continue
                }
            }
            _ => Outcome::Continue,
        },
        Goal::TerminateChild { child, remaining } => match ev {
            Event::ChildDown { child: id, .. } if remaining.remove(id) => {
                if remaining.is_empty() {
                    Outcome::Done(Response::ok(format!("CHILD_SA {child} terminated")))
                } else {
                    Outcome::Continue
                }
            }
            // The IKE SA carrying it went away: so did the child.
            _ => Outcome::Continue,
        },
        Goal::RekeyIke {
            connection,
            remaining,
        } => match ev {
            Event::IkeRekeyed { old, new, .. } if remaining.remove(old) => {
                let _ = w.reply.send(Response::progress(format!(
                    "IKE SA {connection} #{} replaced by #{}",
                    old.0, new.0
                )));
                if remaining.is_empty() {
                    Outcome::Done(Response::ok(format!("IKE SA {connection} rekeyed")))
                } else {
                    Outcome::Continue
                }
            }
            Event::IkeDown { ike, reason, .. } if remaining.contains(ike) => {
                Outcome::Done(Response::error(format!(
                    "IKE SA {connection} went down before the rekey completed: {}",
                    reason_text(reason)
                )))
            }
            _ => Outcome::Continue,
        },
        Goal::RekeyChild {
            child,
            remaining,
            new_spis,
        } => match ev {
            Event::ChildUp {
                ike,
                name,
                spi_in,
                spi_out,
                ..
            } if name == child && remaining.values().any(|i| i == ike) => {
                *new_spis = Some((*spi_in, *spi_out));
                let _ = w.reply.send(Response::progress(format!(
                    "new CHILD_SA {child}, SPIs {spi_in:08x} (in) {spi_out:08x} (out)"
                )));
                Outcome::Continue
            }
            Event::ChildDown {
                child: id, reason, ..
            } if remaining.contains_key(id) => {
                remaining.remove(id);
                if *reason != DownReason::Rekeyed {
                    return Outcome::Done(Response::error(format!(
                        "CHILD_SA {child} went down before the rekey completed: {}",
                        reason_text(reason)
                    )));
                }
                if !remaining.is_empty() {
                    return Outcome::Continue;
                }
                Outcome::Done(Response::ok(match new_spis {
                    Some((i, o)) => {
                        format!("CHILD_SA {child} rekeyed, SPIs {i:08x} (in) {o:08x} (out)")
                    }
                    None => format!("CHILD_SA {child} rekeyed"),
                }))
            }
            // The IKE SA carrying the old CHILD_SA went down: it took the
            // children with it (their ChildDown comes first, see above).
            _ => Outcome::Continue,
        },
    }
}

/// One line per event, for the debug log (the engine logs the operator-facing
/// line itself when it emits the event).
pub fn describe(ev: &Event, conn_of: &dyn Fn(IkeId) -> Option<String>) -> String {
    let cname = |ike: &IkeId| conn_of(*ike).unwrap_or_else(|| format!("#{}", ike.0));
    match ev {
        Event::IkeUp {
            connection, remote, ..
        } => format!("IKE SA {connection} established with {}", remote.ip()),
        Event::IkeDown {
            connection, reason, ..
        } => match reason {
            DownReason::Deleted => format!("IKE SA {connection} deleted"),
            r => format!("IKE SA {connection} down: {}", reason_text(r)),
        },
        Event::ChildUp {
            ike,
            name,
            spi_in,
            spi_out,
            ..
        } => format!(
            "CHILD_SA {}/{name} established, SPIs {spi_in:08x} (in) {spi_out:08x} (out)",
            cname(ike)
        ),
        Event::IkeRekeyed { connection, .. } => format!("IKE SA {connection} rekeyed"),
        Event::ChildDown {
            ike, name, reason, ..
        } => match reason {
            DownReason::Deleted => format!("CHILD_SA {}/{name} deleted", cname(ike)),
            DownReason::Rekeyed => format!("CHILD_SA {}/{name} replaced by a rekey", cname(ike)),
            r => format!("CHILD_SA {}/{name} down: {}", cname(ike), reason_text(r)),
        },
        Event::AuthFailed {
            connection,
            remote,
            reason,
        } => match connection {
            Some(c) => format!(
                "authentication failed on {c} with {}: {reason}",
                remote.ip()
            ),
            None => format!("authentication failed with {}: {reason}", remote.ip()),
        },
        Event::EapAuthenticated {
            connection,
            remote,
            identity,
            ..
        } => format!(
            "{connection}: {} authenticated with EAP as {identity}",
            remote.ip()
        ),
        Event::EapRelay {
            connection,
            remote,
            identity,
            packet,
            ..
        } => format!(
            "{connection}: EAP message of {} ({identity}, {} octets) to the RADIUS server",
            remote.ip(),
            packet.len()
        ),
        Event::VirtualIp {
            connection,
            addresses,
            dns,
            ..
        } => format!("{connection}: virtual IPs {addresses:?}, DNS {dns:?}"),
        Event::VirtualIpReleased {
            connection,
            addresses,
            ..
        } => format!("{connection}: virtual IPs {addresses:?} released"),
        Event::LeaseChanged {
            pool,
            identity,
            address,
            online,
        } => format!(
            "pool {pool}: {address} {} {identity}",
            if *online {
                "leased to"
            } else {
                "offline, kept for"
            }
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;

    #[derive(Clone, Default)]
    struct Sink(Rc<RefCell<Vec<Response>>>);
    impl Reply for Sink {
        fn send(&self, r: Response) -> bool {
            self.0.borrow_mut().push(r);
            true
        }
    }
    impl Sink {
        fn take(&self) -> Vec<Response> {
            std::mem::take(&mut self.0.borrow_mut())
        }
    }

    fn conn_of(ike: IkeId) -> Option<String> {
        match ike.0 {
            1 | 2 => Some("site-b".into()),
            _ => Some("other".into()),
        }
    }

    fn initiate(child: Option<&str>, old: &[u64]) -> Goal {
        Goal::Initiate {
            connection: "site-b".into(),
            child: child.map(Into::into),
            old_ikes: old.iter().map(|i| IkeId(*i)).collect(),
            ike_only: false,
        }
    }

    fn child_up(ike: u64, name: &str) -> Event {
        Event::ChildUp {
            ike: IkeId(ike),
            child: ChildId(9),
            name: name.into(),
            spi_in: 0xc0ffee01,
            spi_out: 0x1234,
        }
    }

    #[test]
    fn initiate_succeeds_on_child_up_with_progress() {
        let mut w = Waiters::default();
        let sink = Sink::default();
        let now = Instant::now();
        w.add(
            initiate(Some("lan"), &[]),
            sink.clone(),
            now,
            Duration::from_secs(5),
        );
        w.on_event(
            &Event::IkeUp {
                ike: IkeId(1),
                connection: "site-b".into(),
                remote: "192.0.2.2:500".parse().unwrap(),
            },
            &conn_of,
        );
        w.on_event(&child_up(3, "lan"), &conn_of); // another connection's "lan"
        w.on_event(&child_up(1, "dmz"), &conn_of); // another child
        assert_eq!(w.len(), 1);
        w.on_event(&child_up(1, "lan"), &conn_of);
        assert!(w.is_empty());
        assert_eq!(
            sink.take(),
            vec![
                Response::progress("IKE SA site-b established with 192.0.2.2:500"),
                Response::ok("CHILD_SA site-b/lan established, SPIs c0ffee01 (in) 00001234 (out)")
            ]
        );
    }

    #[test]
    fn initiate_fails_with_the_auth_reason() {
        let mut w = Waiters::default();
        let sink = Sink::default();
        w.add(
            initiate(None, &[]),
            sink.clone(),
            Instant::now(),
            Duration::from_secs(5),
        );
        w.on_event(
            &Event::AuthFailed {
                connection: Some("site-b".into()),
                remote: "192.0.2.2:500".parse().unwrap(),
                reason: "pre-shared key of responder gw-b does not match".into(),
            },
            &conn_of,
        );
        w.on_event(
            &Event::IkeDown {
                ike: IkeId(2),
                connection: "site-b".into(),
                reason: DownReason::AuthFailed,
            },
            &conn_of,
        );
        let got = sink.take();
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[1],
            Response::error(
                "IKE SA site-b failed: authentication with 192.0.2.2:500 failed: pre-shared key of responder gw-b does not match"
            )
        );
    }

    #[test]
    fn initiate_ignores_old_sas_and_fails_on_child_failure() {
        let mut w = Waiters::default();
        let sink = Sink::default();
        w.add(
            initiate(None, &[1]),
            sink.clone(),
            Instant::now(),
            Duration::from_secs(5),
        );
        w.on_event(
            &Event::IkeDown {
                ike: IkeId(1),
                connection: "site-b".into(),
                reason: DownReason::Deleted,
            },
            &conn_of,
        );
        w.on_event(&child_up(1, "lan"), &conn_of);
        assert_eq!(w.len(), 1);
        w.on_event(
            &Event::ChildDown {
                ike: IkeId(2),
                child: ChildId(4),
                name: "lan".into(),
                reason: DownReason::Failed("TS_UNACCEPTABLE".into()),
            },
            &conn_of,
        );
        assert_eq!(
            sink.take(),
            vec![Response::error(
                "CHILD_SA site-b/lan failed: TS_UNACCEPTABLE"
            )]
        );
    }

    #[test]
    fn times_out_and_reports_it() {
        let mut w = Waiters::default();
        let sink = Sink::default();
        let now = Instant::now();
        w.add(
            initiate(None, &[]),
            sink.clone(),
            now,
            Duration::from_secs(5),
        );
        assert_eq!(w.next_deadline(), Some(now + Duration::from_secs(5)));
        w.on_tick(now + Duration::from_secs(4));
        assert_eq!(w.len(), 1);
        w.on_tick(now + Duration::from_secs(5));
        assert!(w.is_empty());
        match &sink.take()[..] {
            [Response::Error { message }] => {
                assert!(message.starts_with("no outcome within 5 s"), "{message}")
            }
            r => panic!("{r:?}"),
        }
    }

    #[test]
    fn terminate_waits_for_every_sa() {
        let mut w = Waiters::default();
        let sink = Sink::default();
        w.add(
            Goal::TerminateIke {
                connection: "site-b".into(),
                remaining: [IkeId(1), IkeId(2)].into(),
            },
            sink.clone(),
            Instant::now(),
            Duration::from_secs(5),
        );
        let down = |i| Event::IkeDown {
            ike: IkeId(i),
            connection: "site-b".into(),
            reason: DownReason::Deleted,
        };
        w.on_event(&down(1), &conn_of);
        assert_eq!(w.len(), 1);
        w.on_event(&down(2), &conn_of);
        assert!(w.is_empty());
        assert_eq!(
            sink.take().last(),
            Some(&Response::ok("IKE SA site-b terminated"))
        );

        w.add(
            Goal::TerminateChild {
                child: "lan".into(),
                remaining: [ChildId(9)].into(),
            },
            sink.clone(),
            Instant::now(),
            Duration::from_secs(5),
        );
        w.on_event(
            &Event::ChildDown {
                ike: IkeId(1),
                child: ChildId(9),
                name: "lan".into(),
                reason: DownReason::Deleted,
            },
            &conn_of,
        );
        assert_eq!(sink.take(), vec![Response::ok("CHILD_SA lan terminated")]);
    }

    #[test]
    fn rekey_ike_done_when_replaced() {
        let mut w = Waiters::default();
        let sink = Sink::default();
        w.add(
            Goal::RekeyIke {
                connection: "site-b".into(),
                remaining: [IkeId(1)].into(),
            },
            sink.clone(),
            Instant::now(),
            Duration::from_secs(5),
        );
        // Another connection's rekey does not count.
        w.on_event(
            &Event::IkeRekeyed {
                old: IkeId(3),
                new: IkeId(4),
                connection: "other".into(),
            },
            &conn_of,
        );
        assert_eq!(w.len(), 1);
        w.on_event(
            &Event::IkeRekeyed {
                old: IkeId(1),
                new: IkeId(2),
                connection: "site-b".into(),
            },
            &conn_of,
        );
        assert!(w.is_empty());
        assert_eq!(
            sink.take(),
            vec![
                Response::progress("IKE SA site-b #1 replaced by #2"),
                Response::ok("IKE SA site-b rekeyed")
            ]
        );
    }

    #[test]
    fn rekey_ike_fails_when_the_sa_dies() {
        let mut w = Waiters::default();
        let sink = Sink::default();
        let now = Instant::now();
        w.add(
            Goal::RekeyIke {
                connection: "site-b".into(),
                remaining: [IkeId(1)].into(),
            },
            sink.clone(),
            now,
            Duration::from_secs(5),
        );
        w.on_event(
            &Event::IkeDown {
                ike: IkeId(1),
                connection: "site-b".into(),
                reason: DownReason::PeerDead,
            },
            &conn_of,
        );
        assert_eq!(
            sink.take(),
            vec![Response::error(
                "IKE SA site-b went down before the rekey completed: the peer did not answer"
            )]
        );
        // A refused rekey has no event: the deadline answers.
        w.add(
            Goal::RekeyIke {
                connection: "site-b".into(),
                remaining: [IkeId(1)].into(),
            },
            sink.clone(),
            now,
            Duration::from_secs(5),
        );
        w.on_tick(now + Duration::from_secs(5));
        match &sink.take()[..] {
            [Response::Error { message }] => {
                assert!(
                    message.starts_with("IKE SA site-b not rekeyed"),
                    "{message}"
                )
            }
            r => panic!("{r:?}"),
        }
    }

    #[test]
    fn rekey_child_done_when_the_old_one_is_deleted() {
        let mut w = Waiters::default();
        let sink = Sink::default();
        w.add(
            Goal::RekeyChild {
                child: "lan".into(),
                remaining: [(ChildId(9), IkeId(1))].into(),
                new_spis: None,
            },
            sink.clone(),
            Instant::now(),
            Duration::from_secs(5),
        );
        // Same name on another IKE SA: not ours.
        w.on_event(&child_up(3, "lan"), &conn_of);
        w.on_event(&child_up(1, "lan"), &conn_of);
        assert_eq!(w.len(), 1);
        w.on_event(
            &Event::ChildDown {
                ike: IkeId(1),
                child: ChildId(9),
                name: "lan".into(),
                reason: DownReason::Rekeyed,
            },
            &conn_of,
        );
        assert!(w.is_empty());
        assert_eq!(
            sink.take(),
            vec![
                Response::progress("new CHILD_SA lan, SPIs c0ffee01 (in) 00001234 (out)"),
                Response::ok("CHILD_SA lan rekeyed, SPIs c0ffee01 (in) 00001234 (out)")
            ]
        );
    }

    #[test]
    fn rekey_child_fails_when_the_old_one_is_deleted_otherwise() {
        let mut w = Waiters::default();
        let sink = Sink::default();
        w.add(
            Goal::RekeyChild {
                child: "lan".into(),
                remaining: [(ChildId(9), IkeId(1))].into(),
                new_spis: None,
            },
            sink.clone(),
            Instant::now(),
            Duration::from_secs(5),
        );
        w.on_event(
            &Event::ChildDown {
                ike: IkeId(1),
                child: ChildId(9),
                name: "lan".into(),
                reason: DownReason::Deleted,
            },
            &conn_of,
        );
        assert_eq!(
            sink.take(),
            vec![Response::error(
                "CHILD_SA lan went down before the rekey completed: deleted"
            )]
        );
    }

    #[test]
    fn describes_events_in_one_line() {
        assert_eq!(
            describe(
                &Event::IkeUp {
                    ike: IkeId(1),
                    connection: "site-b".into(),
                    remote: "192.0.2.2:4500".parse().unwrap()
                },
                &conn_of
            ),
            "IKE SA site-b established with 192.0.2.2"
        );
        assert_eq!(
            describe(&child_up(1, "lan"), &conn_of),
            "CHILD_SA site-b/lan established, SPIs c0ffee01 (in) 00001234 (out)"
        );
        assert_eq!(
            describe(
                &Event::IkeDown {
                    ike: IkeId(1),
                    connection: "site-b".into(),
                    reason: DownReason::PeerDead
                },
                &conn_of
            ),
            "IKE SA site-b down: the peer did not answer"
        );
        assert_eq!(
            describe(
                &Event::AuthFailed {
                    connection: None,
                    remote: "192.0.2.9:500".parse().unwrap(),
                    reason: "no matching connection".into()
                },
                &conn_of
            ),
            "authentication failed with 192.0.2.9: no matching connection"
        );
    }
}
