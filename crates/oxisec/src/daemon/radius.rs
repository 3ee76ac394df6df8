//! The daemon's side of `remote_auth = "eap-radius"`: each
//! [`Event::EapRelay`] of the engine becomes one RADIUS exchange in a task
//! of its own (the engine task never waits on the network), and its
//! outcome comes back through a channel as an [`EapRelayAnswer`] for
//! [`oxisec_ike::Engine::eap_relay_answer`].
//!
//! The RADIUS State of an Access-Challenge is kept per IKE SA and echoed
//! in the next Access-Request of that SA (RFC 2865 §5.24); it is dropped
//! with the conversation's end or the SA.
use std::collections::HashMap;
use std::sync::Arc;

use oxisec_ike::{EapRelayAnswer, Event, IkeId};
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::radius::{self, ClientConfig, RequestAttrs, Verdict};

/// A finished exchange: the SA, the State to echo next (for a challenge),
/// and the answer for the engine.
pub struct Done {
    pub ike: IkeId,
    state: Option<Vec<u8>>,
    pub answer: EapRelayAnswer,
}

/// Most conversations in flight at once; more are refused at once instead
/// of piling up tasks (each holds a socket for up to the whole retry time).
const MAX_IN_FLIGHT: usize = 1024;

pub struct Relay {
    cfg: Option<Arc<ClientConfig>>,
    states: HashMap<IkeId, Vec<u8>>,
    in_flight: usize,
    tx: mpsc::UnboundedSender<Done>,
}

impl Relay {
    /// A relay to the servers of `cfg` (none configured: every relayed
    /// message is rejected, which the config check makes unreachable).
    pub fn new(cfg: Option<Arc<ClientConfig>>) -> (Relay, mpsc::UnboundedReceiver<Done>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let r = Relay {
            cfg,
            states: HashMap::new(),
            in_flight: 0,
            tx,
        };
        (r, rx)
    }

    /// Starts the RADIUS exchange for an [`Event::EapRelay`]; forgets the
    /// State of SAs that went down.
    pub fn on_event(&mut self, ev: &Event) {
        let (ike, local, remote, identity, packet) = match ev {
            Event::EapRelay {
                ike,
                local,
                remote,
                identity,
                packet,
                ..
            } => (*ike, *local, *remote, identity.clone(), packet.clone()),
            Event::IkeDown { ike, .. } => {
                self.states.remove(ike);
                return;
            }
            _ => return,
        };
        let tx = self.tx.clone();
        let refuse = |reason: String| {
            let _ = tx.send(Done {
                ike,
                state: None,
                answer: EapRelayAnswer::Reject {
                    packet: None,
                    reason,
                },
            });
        };
        let Some(cfg) = self.cfg.clone() else {
            refuse("no RADIUS server is configured".into());
            return;
        };
        if self.in_flight >= MAX_IN_FLIGHT {
            refuse(format!(
                "{MAX_IN_FLIGHT} RADIUS exchanges in flight already"
            ));
            return;
        }
        self.in_flight += 1;
        let state = self.states.get(&ike).cloned();
        tokio::spawn(async move {
            let called = format!("{}[{}]", local.ip(), local.port());
            let calling = format!("{}[{}]", remote.ip(), remote.port());
            let attrs = RequestAttrs {
                user_name: &identity,
                eap: &packet,
                state: state.as_deref(),
                nas_ip: Some(local.ip()),
                nas_identifier: &cfg.nas_identifier,
                called: &called,
                calling: &calling,
            };
            let result = radius::exchange(&cfg, &attrs).await;
            let (state, answer) = to_answer(&identity, result);
            let _ = tx.send(Done { ike, state, answer });
        });
    }

    /// The SA no longer waits for an answer (it timed out or went away
    /// while RADIUS was asked): its State goes.
    pub fn forget(&mut self, ike: IkeId) {
        self.states.remove(&ike);
    }

    /// Bookkeeping for a finished exchange; the answer goes to the engine.
    pub fn finished(&mut self, d: Done) -> (IkeId, EapRelayAnswer) {
        self.in_flight = self.in_flight.saturating_sub(1);
        match d.state {
            Some(s) => {
                self.states.insert(d.ike, s);
            }
            None => {
                self.states.remove(&d.ike);
            }
        }
        (d.ike, d.answer)
    }
}

/// What the engine gets for a RADIUS outcome, and the State to keep.
fn to_answer(
    user: &str,
    r: Result<radius::Answer, radius::RadiusError>,
) -> (Option<Vec<u8>>, EapRelayAnswer) {
    let reject = |reason: String| EapRelayAnswer::Reject {
        packet: None,
        reason,
    };
    let a = match r {
        Ok(a) => a,
        Err(e) => {
            warn!(user = %user, "RADIUS: {e}");
            return (None, reject(e.to_string()));
        }
    };
    let said = a
        .reply_message
        .as_deref()
        .map(|m| format!(" (\"{m}\")"))
        .unwrap_or_default();
    match a.verdict {
        Verdict::Challenge => match a.eap {
            // A challenge without State is legal; nothing to echo then.
            Some(eap) => (a.state, EapRelayAnswer::Continue(eap)),
            None => (
                None,
                reject("RADIUS Access-Challenge without EAP-Message".into()),
            ),
        },
        Verdict::Accept => match a.msk {
            Some(msk) => {
                if a.groups.is_empty() {
                    info!(user = %user, "RADIUS Access-Accept{said}");
                } else {
                    info!(user = %user, groups = ?a.groups, "RADIUS Access-Accept{said}");
                }
                (
                    None,
                    EapRelayAnswer::Accept {
                        packet: a.eap,
                        msk,
                        groups: a.groups,
                    },
                )
            }
            None => (
                None,
                reject(format!(
                    "RADIUS Access-Accept without MS-MPPE keys{said}: the EAP method exported no MSK"
                )),
            ),
        },
        Verdict::Reject => (
            None,
            EapRelayAnswer::Reject {
                packet: a.eap,
                reason: format!("RADIUS Access-Reject{said}"),
            },
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxisec_crypto::Secret;
    use std::net::SocketAddr;
    use std::time::Duration;

    const SECRET: &[u8] = b"a shared secret for tests";

    /// A RADIUS server on 127.0.0.1 that answers each request with the
    /// packet `answer` builds from (request id, request authenticator,
    /// request); `None` drops the request.
    async fn server(
        mut answer: impl FnMut(u8, [u8; 16], &[u8]) -> Option<Vec<u8>> + Send + 'static,
    ) -> SocketAddr {
        let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = sock.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((n, from)) = sock.recv_from(&mut buf).await else {
                    return;
                };
                let req = &buf[..n];
                let mut ra = [0u8; 16];
                ra.copy_from_slice(&req[4..20]);
                if let Some(p) = answer(req[1], ra, req) {
                    let _ = sock.send_to(&p, from).await;
                }
            }
        });
        addr
    }

    fn cfg(servers: Vec<SocketAddr>) -> Arc<ClientConfig> {
        let mut c = ClientConfig::new(servers, Secret::from_slice(SECRET));
        c.timeout = Duration::from_millis(200);
        c.tries = 2;
        Arc::new(c)
    }

    fn relay_event(ike: u64, packet: &[u8]) -> Event {
        Event::EapRelay {
            ike: IkeId(ike),
            connection: "rw".into(),
            local: "127.0.0.1:4500".parse().unwrap(),
            remote: "127.0.0.2:4500".parse().unwrap(),
            identity: "alice".into(),
            packet: packet.to_vec(),
        }
    }

    #[tokio::test]
    async fn challenge_state_echo_then_accept_with_msk() {
        let msk: Vec<u8> = (0..64).collect();
        let m2 = msk.clone();
        let mut round = 0;
        let addr = server(move |id, ra, req| {
            round += 1;
            let attrs = radius_attrs(req);
            assert!(
                attrs
                    .iter()
                    .any(|(t, v)| *t == radius::attr::USER_NAME && v == b"alice")
            );
            if round == 1 {
                assert!(!attrs.iter().any(|(t, _)| *t == radius::attr::STATE));
                Some(radius::encode_answer(
                    radius::code::ACCESS_CHALLENGE,
                    id,
                    &ra,
                    SECRET,
                    &[
                        (radius::attr::EAP_MESSAGE, vec![1, 2, 0, 6, 26, 1]),
                        (radius::attr::STATE, b"s1".to_vec()),
                    ],
                ))
            } else {
                assert!(attrs.contains(&(radius::attr::STATE, b"s1".to_vec())));
                let mut a = vec![(radius::attr::EAP_MESSAGE, vec![3, 2, 0, 4])];
                a.extend(radius::mppe_attrs(&m2, &ra, SECRET));
                Some(radius::encode_answer(
                    radius::code::ACCESS_ACCEPT,
                    id,
                    &ra,
                    SECRET,
                    &a,
                ))
            }
        })
        .await;
        let (mut relay, mut rx) = Relay::new(Some(cfg(vec![addr])));
        relay.on_event(&relay_event(
            1,
            &[2, 1, 0, 10, 1, b'a', b'l', b'i', b'c', b'e'],
        ));
        let (ike, a) = relay.finished(rx.recv().await.unwrap());
        assert_eq!(ike, IkeId(1));
        assert!(matches!(a, EapRelayAnswer::Continue(p) if p == [1, 2, 0, 6, 26, 1]));
        relay.on_event(&relay_event(1, &[2, 2, 0, 6, 26, 1]));
        let (_, a) = relay.finished(rx.recv().await.unwrap());
        let EapRelayAnswer::Accept {
            packet, msk: got, ..
        } = a
        else {
            panic!("{a:?}")
        };
        assert_eq!(packet.unwrap(), [3, 2, 0, 4]);
        assert_eq!(got.as_bytes(), &msk[..]);
        assert!(relay.states.is_empty());
    }

    #[tokio::test]
    async fn forged_answers_are_ignored_and_a_dead_server_fails_over() {
        // The first server is silent; the second answers first with a
        // forgery (wrong secret), then with the real Access-Reject.
        let dead = server(|_, _, _| None).await;
        let mut sent = 0;
        let live = server(move |id, ra, _| {
            sent += 1;
            let secret: &[u8] = if sent == 1 { b"not the secret" } else { SECRET };
            Some(radius::encode_answer(
                radius::code::ACCESS_REJECT,
                id,
                &ra,
                secret,
                &[(radius::attr::REPLY_MESSAGE, b"denied".to_vec())],
            ))
        })
        .await;
        let (mut relay, mut rx) = Relay::new(Some(cfg(vec![dead, live])));
        relay.on_event(&relay_event(2, &[2, 1, 0, 5, 1]));
        let (_, a) = relay.finished(rx.recv().await.unwrap());
        match a {
            EapRelayAnswer::Reject { reason, .. } => {
                assert_eq!(reason, "RADIUS Access-Reject (\"denied\")")
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn no_answer_at_all_is_a_reject() {
        let dead = server(|_, _, _| None).await;
        let (mut relay, mut rx) = Relay::new(Some(cfg(vec![dead])));
        relay.on_event(&relay_event(3, &[2, 1, 0, 5, 1]));
        let (_, a) = relay.finished(rx.recv().await.unwrap());
        assert!(
            matches!(&a, EapRelayAnswer::Reject { reason, .. } if reason.contains("no RADIUS server answered")),
            "{a:?}"
        );
    }

    #[test]
    fn accept_without_keys_is_refused() {
        let a = radius::Answer {
            verdict: Verdict::Accept,
            eap: None,
            state: None,
            msk: None,
            reply_message: None,
            groups: vec!["staff".into()],
        };
        let (_, ans) = to_answer("alice", Ok(a));
        assert!(matches!(ans, EapRelayAnswer::Reject { reason, .. } if reason.contains("MS-MPPE")));
    }

    fn radius_attrs(p: &[u8]) -> Vec<(u8, Vec<u8>)> {
        let mut v = Vec::new();
        let mut b = &p[20..];
        while let [t, l, ..] = *b {
            let l = usize::from(l);
            v.push((t, b[2..l].to_vec()));
            b = &b[l..];
        }
        v
    }
}
