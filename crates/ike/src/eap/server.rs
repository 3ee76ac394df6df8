//! The gateway's EAP server: optionally EAP-Identity, then EAP-MSCHAPv2
//! (Challenge → Response → Success or Failure Request → acknowledgement),
//! then EAP-Success or EAP-Failure.
//!
//! No retries: a wrong password or an unknown user ends in a Failure
//! Request (E=691, R=0) and then EAP-Failure, the same way for both, so
//! that the answers do not tell which user names exist. Every round costs
//! the peer a full IKE_SA_INIT, which the DoS limits already meter.
use std::sync::Arc;

use oxisec_crypto::Rng;
use subtle::ConstantTimeEq;

use super::mschapv2::{self, Message};
use super::{Code, EapPacket, EapType, EapUsers, Msk, NtHash};

/// The name we send in the Challenge (the "authenticator name").
const SERVER_NAME: &[u8] = b"oxisec";

pub(crate) struct Server {
    users: Arc<dyn EapUsers>,
    /// Identifier of our outstanding request; the response must echo it.
    identifier: u8,
    /// The EAP identity: the IDi, or what the peer answered to EAP-Identity.
    identity: String,
    state: State,
}

enum State {
    /// EAP-Identity Request outstanding.
    Identity,
    /// MSCHAPv2 Challenge outstanding.
    Challenge { challenge: [u8; 16] },
    /// Success Request outstanding; the peer's acknowledgement completes it.
    SuccessSent { user: String, msk: Msk },
    /// Failure Request outstanding; whatever comes next gets EAP-Failure.
    FailureSent { reason: String },
    /// EAP-Success sent.
    Done { user: String, msk: Msk },
    /// EAP-Failure sent.
    Failed,
}

/// What to answer the peer's EAP response with.
pub(crate) enum Step {
    /// The next EAP Request.
    Continue(Vec<u8>),
    /// EAP-Success: the peer proved the password of `user`.
    Success { packet: Vec<u8>, user: String },
    /// EAP-Failure.
    Failure { packet: Vec<u8>, reason: String },
}

impl Server {
    /// Why the peer is being refused, once the MSCHAPv2 Failure Request is
    /// out (the client then acknowledges it, or gives up on its own).
    pub fn failure_pending(&self) -> Option<&str> {
        match &self.state {
            State::FailureSent { reason } => Some(reason),
            _ => None,
        }
    }

    /// A server for the peer that presented `idi_identity`, and the first
    /// request: EAP-Identity if `ask_identity`, else straight the MSCHAPv2
    /// Challenge with the IDi as EAP identity.
    pub fn start(
        users: Arc<dyn EapUsers>,
        ask_identity: bool,
        idi_identity: String,
        rng: &mut dyn Rng,
    ) -> (Server, Vec<u8>) {
        let mut id = [0u8; 1];
        rng.fill(&mut id);
        let mut s = Server {
            users,
            identifier: id[0],
            identity: idi_identity,
            state: State::Identity,
        };
        let first = if ask_identity {
            packet(Code::REQUEST, s.identifier, EapType::IDENTITY, &[])
        } else {
            s.challenge(rng)
        };
        (s, first)
    }

    /// The EAP identity in use (for logs).
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// The MSK once EAP succeeded.
    pub fn msk(&self) -> Option<&Msk> {
        match &self.state {
            State::Done { msk, .. } => Some(msk),
            _ => None,
        }
    }

    /// The user that authenticated, once EAP succeeded.
    pub fn user(&self) -> Option<&str> {
        match &self.state {
            State::Done { user, .. } => Some(user),
            _ => None,
        }
    }

    /// The groups of the user that authenticated (from the user
    /// database), once EAP succeeded.
    pub fn groups(&self) -> Vec<String> {
        self.user()
            .map(|u| self.users.groups(u))
            .unwrap_or_default()
    }

    /// Sends a new MSCHAPv2 Challenge (a new identifier too).
    fn challenge(&mut self, rng: &mut dyn Rng) -> Vec<u8> {
        let mut challenge = [0u8; 16];
        rng.fill(&mut challenge);
        self.identifier = self.identifier.wrapping_add(1);
        self.state = State::Challenge { challenge };
        let m = Message::Challenge {
            ms_id: self.identifier,
            challenge,
            name: SERVER_NAME,
        };
        packet(Code::REQUEST, self.identifier, EapType::MSCHAPV2, &m.emit())
    }

    fn fail(&mut self, reason: String) -> Step {
        self.state = State::Failed;
        Step::Failure {
            packet: EapPacket::result(false, self.identifier),
            reason,
        }
    }

    /// Processes the peer's EAP message (the whole EAP payload body).
    pub fn process(&mut self, data: &[u8], rng: &mut dyn Rng) -> Step {
        let p = match EapPacket::parse(data) {
            Ok(p) => p,
            Err(e) => return self.fail(format!("invalid EAP message: {e}")),
        };
        if p.code != Code::RESPONSE {
            return self.fail(format!(
                "peer sent EAP code {} instead of a Response",
                p.code.0
            ));
        }
        if p.identifier != self.identifier {
            return self.fail(format!(
                "EAP Response with identifier {}, expected {}",
                p.identifier, self.identifier
            ));
        }
        let ty = p.ty.unwrap_or(EapType::NAK);
        if ty == EapType::NAK {
            return self
                .fail("peer refused the EAP method (Nak); only EAP-MSCHAPv2 is offered".into());
        }
        match std::mem::replace(&mut self.state, State::Failed) {
            State::Identity => {
                if ty != EapType::IDENTITY {
                    return self.fail(format!("expected an EAP-Identity response, got {ty}"));
                }
                let Some(identity) = std::str::from_utf8(p.type_data)
                    .ok()
                    .filter(|s| !s.is_empty() && s.len() <= mschapv2::MAX_NAME)
                    .filter(|s| !s.chars().any(char::is_control))
                else {
                    return self.fail(format!(
                        "unusable EAP identity \"{}\"",
                        super::printable(p.type_data)
                    ));
                };
                self.identity = identity.to_string();
                Step::Continue(self.challenge(rng))
            }
            State::Challenge { challenge } => {
                if ty != EapType::MSCHAPV2 {
                    return self.fail(format!("expected an EAP-MSCHAPv2 response, got {ty}"));
                }
                let (peer_challenge, nt_response, name) =
                    match mschapv2::Message::parse(false, p.type_data) {
                        Ok(Message::Response {
                            ms_id,
                            peer_challenge,
                            nt_response,
                            name,
                        }) if ms_id == self.identifier => (peer_challenge, nt_response, name),
                        Ok(_) => return self.fail("unexpected EAP-MSCHAPv2 message".into()),
                        Err(e) => return self.fail(e.to_string()),
                    };
                self.check_response(&challenge, &peer_challenge, &nt_response, name, rng)
            }
            State::SuccessSent { user, msk } => {
                if ty != EapType::MSCHAPV2
                    || Message::parse(false, p.type_data) != Ok(Message::SuccessResponse)
                {
                    return self.fail(format!("{user}: no EAP-MSCHAPv2 Success acknowledgement"));
                }
                let packet = EapPacket::result(true, self.identifier);
                self.state = State::Done {
                    user: user.clone(),
                    msk,
                };
                Step::Success { packet, user }
            }
            State::FailureSent { reason } => self.fail(reason),
            State::Done { .. } | State::Failed => {
                self.fail("EAP message after EAP completed".into())
            }
        }
    }

    /// Verifies an MSCHAPv2 Response against the user database.
    fn check_response(
        &mut self,
        challenge: &[u8; 16],
        peer_challenge: &[u8; 16],
        nt_response: &[u8; 24],
        name: &[u8],
        rng: &mut dyn Rng,
    ) -> Step {
        let shown = super::printable(name);
        let found: Option<(String, NtHash)> = std::str::from_utf8(name)
            .ok()
            .filter(|s| !s.chars().any(char::is_control))
            .and_then(|s| {
                let lookup = |n: &str| self.users.nt_hash(n).map(|h| (n.to_string(), h));
                lookup(s).or_else(|| {
                    let bare = s.rsplit_once('\\').map(|(_, u)| u)?;
                    (!bare.is_empty()).then(|| lookup(bare)).flatten()
                })
            });
        let verdict = found.and_then(|(user, hash)| {
            let expected = mschapv2::generate_nt_response(challenge, peer_challenge, name, &hash);
            bool::from(expected.ct_eq(nt_response)).then(|| {
                let auth = mschapv2::authenticator_response(
                    &hash,
                    nt_response,
                    peer_challenge,
                    challenge,
                    name,
                );
                (user, auth, mschapv2::msk(&hash, nt_response))
            })
        });
        self.identifier = self.identifier.wrapping_add(1);
        let ms_id = self.identifier.wrapping_sub(1);
        match verdict {
            Some((user, auth, msk)) => {
                let text = format!(
                    "{} M=Welcome to oxisec",
                    mschapv2::authenticator_string(&auth)
                );
                let m = Message::SuccessRequest {
                    ms_id,
                    message: text.as_bytes(),
                };
                self.state = State::SuccessSent { user, msk };
                Step::Continue(packet(
                    Code::REQUEST,
                    self.identifier,
                    EapType::MSCHAPV2,
                    &m.emit(),
                ))
            }
            None => {
                // Same answer for an unknown user and a wrong password.
                let mut fresh = [0u8; 16];
                rng.fill(&mut fresh);
                let hex: String = fresh.iter().map(|b| format!("{b:02X}")).collect();
                let text = format!("E=691 R=0 C={hex} V=3 M=Authentication failed");
                let m = Message::FailureRequest {
                    ms_id,
                    message: text.as_bytes(),
                };
                self.state = State::FailureSent {
                    reason: format!(
                        "EAP-MSCHAPv2 failed for \"{shown}\": unknown user or wrong password"
                    ),
                };
                Step::Continue(packet(
                    Code::REQUEST,
                    self.identifier,
                    EapType::MSCHAPV2,
                    &m.emit(),
                ))
            }
        }
    }
}

fn packet(code: Code, id: u8, ty: EapType, data: &[u8]) -> Vec<u8> {
    // Our own messages are small (bounded names and texts): emit cannot fail.
    EapPacket::new(code, id, ty, data)
        .emit()
        .unwrap_or_else(|_| EapPacket::result(false, id))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::super::client::{self, Client};
    use super::*;

    /// Deterministic bytes for tests.
    struct Counter(u8);
    impl Rng for Counter {
        fn fill(&mut self, dest: &mut [u8]) {
            for b in dest {
                self.0 = self.0.wrapping_mul(31).wrapping_add(7);
                *b = self.0;
            }
        }
    }

    fn users() -> Arc<dyn EapUsers> {
        let mut m = HashMap::new();
        m.insert("alice".to_string(), NtHash::from_password("wonderland"));
        m.insert("bob".to_string(), NtHash::from_password("builder"));
        Arc::new(m)
    }

    /// Runs server and client against each other; the server's last step.
    fn run(ask: bool, identity: &str, password: &str) -> (Server, Client, Step, u32) {
        let mut rng = Counter(1);
        let (mut s, mut req) = Server::start(users(), ask, "idi".into(), &mut rng);
        let mut c = Client::new(identity, password.as_bytes()).unwrap();
        for round in 1..10 {
            let resp = match c.process(&req, &mut rng) {
                client::Step::Reply(r) => r,
                other => panic!(
                    "client stopped early: {}",
                    matches!(other, client::Step::Success)
                ),
            };
            match s.process(&resp, &mut rng) {
                Step::Continue(next) => req = next,
                done => return (s, c, done, round),
            }
        }
        panic!("no end");
    }

    #[test]
    fn mschapv2_success_with_identity_round() {
        let (s, mut c, step, rounds) = run(true, "alice", "wonderland");
        let Step::Success { packet, user } = step else {
            panic!("not a success")
        };
        assert_eq!(user, "alice");
        assert_eq!(rounds, 3); // Identity, Challenge, Success acknowledgement.
        assert!(matches!(
            c.process(&packet, &mut Counter(0)),
            client::Step::Success
        ));
        assert_eq!(s.msk(), c.msk());
        assert_eq!(s.msk().unwrap().len(), 64);
        assert_eq!(s.user(), Some("alice"));
    }

    #[test]
    fn mschapv2_success_without_identity_round_and_with_domain() {
        let (_, _, step, rounds) = run(false, "ACME\\bob", "builder");
        let Step::Success { user, .. } = step else {
            panic!("not a success")
        };
        assert_eq!((user.as_str(), rounds), ("bob", 2));
    }

    #[test]
    fn wrong_password_and_unknown_user_fail_alike() {
        for (who, pw) in [("alice", "rabbit"), ("mallory", "x")] {
            let (s, mut c, step, rounds) = run(false, who, pw);
            let Step::Failure { packet, reason } = step else {
                panic!("{who} authenticated")
            };
            assert_eq!(rounds, 2, "{reason}");
            assert!(reason.contains("unknown user or wrong password"));
            assert!(s.msk().is_none());
            assert!(matches!(
                c.process(&packet, &mut Counter(0)),
                client::Step::Failure(_)
            ));
            assert!(c.msk().is_none());
        }
    }

    #[test]
    fn client_refuses_unproven_success() {
        let mut c = Client::new("alice", b"wonderland").unwrap();
        let mut rng = Counter(3);
        assert!(matches!(
            c.process(&EapPacket::result(true, 1), &mut rng),
            client::Step::Failure(_)
        ));
        // A Success Request with a forged authenticator response.
        let (_, req) = Server::start(users(), false, "alice".into(), &mut rng);
        let client::Step::Reply(_) = c.process(&req, &mut rng) else {
            panic!()
        };
        let forged = Message::SuccessRequest {
            ms_id: 1,
            message: b"S=0000000000000000000000000000000000000000 M=hi",
        }
        .emit();
        let p = packet(Code::REQUEST, 9, EapType::MSCHAPV2, &forged);
        assert!(matches!(c.process(&p, &mut rng), client::Step::Failure(_)));
        assert!(c.msk().is_none());
    }

    #[test]
    fn client_naks_other_methods_and_answers_notifications() {
        let mut c = Client::new("alice", b"wonderland").unwrap();
        let mut rng = Counter(3);
        let tls = packet(Code::REQUEST, 5, EapType(13), &[0x20]);
        let client::Step::Reply(r) = c.process(&tls, &mut rng) else {
            panic!()
        };
        assert_eq!(r, vec![2, 5, 0, 6, 3, 26]);
        let note = packet(Code::REQUEST, 6, EapType::NOTIFICATION, b"hello");
        let client::Step::Reply(r) = c.process(&note, &mut rng) else {
            panic!()
        };
        assert_eq!(r, vec![2, 6, 0, 5, 2]);
    }

    #[test]
    fn server_fails_on_hostile_responses() {
        let mut rng = Counter(9);
        let hostile: [&[u8]; 7] = [
            &[],
            &[2, 0, 0, 3],
            &[1, 0, 0, 5, 1],     // a Request, not a Response
            &[2, 0, 0, 6, 3, 26], // Nak
            &[2, 0, 0xff, 0xff, 26],
            &[3, 0, 0, 4],
            &[2, 0, 0, 7, 26, 2, 0],
        ];
        for h in hostile {
            let (mut s, _) = Server::start(users(), false, "alice".into(), &mut rng);
            let mut h = h.to_vec();
            if h.len() > 1 {
                h[1] = s.identifier; // past the identifier check
            }
            assert!(matches!(s.process(&h, &mut rng), Step::Failure { .. }));
            // Once failed, it stays failed.
            assert!(matches!(s.process(&h, &mut rng), Step::Failure { .. }));
        }
        // A wrong identifier.
        let (mut s, req) = Server::start(users(), true, "alice".into(), &mut rng);
        let mut resp = vec![2, req[1].wrapping_add(1), 0, 10, 1];
        resp.extend_from_slice(b"alice");
        assert!(matches!(s.process(&resp, &mut rng), Step::Failure { .. }));
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Whatever a client sends, at whatever point, the server
            /// answers with a step and never panics; it never reports
            /// success for bytes that are not a proper MSCHAPv2 exchange.
            #[test]
            fn server_survives_arbitrary_responses(
                msgs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..80), 1..5),
                ask in any::<bool>(),
                fix_id in any::<bool>(),
            ) {
                let mut rng = Counter(5);
                let (mut s, _) = Server::start(users(), ask, "alice".into(), &mut rng);
                for mut m in msgs {
                    if fix_id && m.len() > 1 {
                        m[1] = s.identifier;
                    }
                    match s.process(&m, &mut rng) {
                        Step::Success { .. } => prop_assert!(false, "success from random bytes"),
                        Step::Failure { .. } => break,
                        Step::Continue(next) => prop_assert!(EapPacket::parse(&next).is_ok()),
                    }
                }
            }

            /// Likewise for the client: no panic, and never an MSK.
            #[test]
            fn client_survives_arbitrary_requests(
                msgs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..80), 1..5),
            ) {
                let mut rng = Counter(5);
                let mut c = Client::new("alice", b"wonderland").unwrap();
                for m in msgs {
                    match c.process(&m, &mut rng) {
                        client::Step::Success => prop_assert!(false, "success from random bytes"),
                        client::Step::Failure(_) => break,
                        client::Step::Reply(r) => prop_assert!(EapPacket::parse(&r).is_ok()),
                    }
                }
                prop_assert!(c.msk().is_none());
            }
        }
    }
}
