//! EAP pass-through on the gateway ([`crate::Auth::EapRelay`]): the engine
//! does not run the EAP method, an outside EAP server does (a RADIUS
//! server, RFC 3579, so that a company's MFA applies). This module keeps
//! the little state the engine needs for that: the EAP identity, the
//! IKE_AUTH request waiting for the server's answer, and the MSK once the
//! server accepted.
//!
//! Both directions are checked here, so that neither a hostile client nor
//! a confused server gets malformed EAP past the engine: what goes out
//! must be an EAP Response, what comes back a Request (to continue), a
//! Success (accept) or a Failure (reject). Anything else fails the
//! authentication.
use oxisec_wire::Payload;

use super::{Code, EapPacket, EapType, Msk, mschapv2};

/// How long the gateway waits for the EAP server's answer to one relayed
/// message before it gives the client up (instead of the 30 s half-open
/// time): a RADIUS server with push MFA answers only once the user
/// approved on the phone, which commonly may take up to a minute.
pub const RELAY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// A bound on the IKE_AUTH round trips of a relayed authentication: the
/// method is the server's choice, and EAP-TLS or PEAP carry a certificate
/// chain in many fragments, far beyond MSCHAPv2's handful of rounds.
pub(crate) const MAX_RELAY_ROUNDS: u32 = 64;

/// Most groups kept from one Accept, and the longest group name: the rest
/// cannot name a configured group anyway.
const MAX_GROUPS: usize = 16;
const MAX_GROUP_LEN: usize = 64;

/// The IKE_AUTH request whose response waits for the EAP server.
pub(crate) struct Pending {
    pub msg_id: u32,
    /// The request as received (fragment 1 if fragmented): the response
    /// cache recognises its retransmissions by it once we answered.
    pub request: Vec<u8>,
    /// Payloads that go before the EAP payload in the response (IDr,
    /// CERT, AUTH when the very first response waits for the server).
    pub prefix: Vec<Payload>,
    /// Identifier of the client's EAP Response, for a made-up Success.
    pub eap_id: u8,
}

enum State {
    /// Our own EAP-Identity Request is outstanding.
    Identity { identifier: u8 },
    /// Talking through the relay.
    Relaying,
    /// The server accepted: the client's MSK-keyed AUTH comes next.
    Accepted { msk: Msk, groups: Vec<String> },
}

pub(crate) struct Relay {
    identity: String,
    state: State,
    pub pending: Option<Pending>,
}

/// The first EAP message of a relayed authentication.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum First {
    /// Our own EAP-Identity Request, for the client.
    Request(Vec<u8>),
    /// A made-up EAP-Identity Response, for the EAP server.
    Relay(Vec<u8>),
}

/// What to do with the client's EAP message.
pub(crate) enum Out {
    /// Relay this Response to the EAP server.
    Relay(Vec<u8>),
    /// Authentication failed here (hostile or out-of-order EAP).
    Fail(String),
}

/// What to do with the server's answer.
pub(crate) enum In {
    /// Send this EAP Request to the client.
    Continue(Vec<u8>),
    /// Send this EAP-Success; the MSK is kept for the final AUTH.
    Success(Vec<u8>),
    /// Send this EAP-Failure with AUTHENTICATION_FAILED and close.
    Failure { packet: Vec<u8>, reason: String },
}

impl Relay {
    /// A relay for the peer that presented `idi_identity`. With
    /// `ask_identity` the first EAP message is our own EAP-Identity
    /// Request; without, the first message is a made-up EAP-Identity
    /// Response carrying the IDi, to be relayed, as an authenticator that
    /// skips the identity round does it.
    pub fn start(
        ask_identity: bool,
        idi_identity: String,
        rng: &mut dyn oxisec_crypto::Rng,
    ) -> (Relay, First) {
        let mut id = [0u8; 1];
        rng.fill(&mut id);
        let identifier = id[0];
        if ask_identity {
            let r = Relay {
                identity: idi_identity,
                state: State::Identity { identifier },
                pending: None,
            };
            let req = EapPacket::new(Code::REQUEST, identifier, EapType::IDENTITY, &[]);
            (r, First::Request(emit(&req)))
        } else {
            let resp = EapPacket::new(
                Code::RESPONSE,
                identifier,
                EapType::IDENTITY,
                idi_identity.as_bytes(),
            );
            let first = First::Relay(emit(&resp));
            let r = Relay {
                identity: idi_identity,
                state: State::Relaying,
                pending: None,
            };
            (r, first)
        }
    }

    /// The EAP identity (RADIUS User-Name, the pool lease's key).
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// The MSK once the server accepted.
    pub fn msk(&self) -> Option<&Msk> {
        match &self.state {
            State::Accepted { msk, .. } => Some(msk),
            _ => None,
        }
    }

    /// The user's groups as the server named them, once it accepted.
    pub fn groups(&self) -> &[String] {
        match &self.state {
            State::Accepted { groups, .. } => groups,
            _ => &[],
        }
    }

    /// Checks the client's EAP message before it is relayed.
    pub fn client_message(&mut self, data: &[u8]) -> Out {
        let p = match EapPacket::parse(data) {
            Ok(p) => p,
            Err(e) => return Out::Fail(format!("invalid EAP message from the client: {e}")),
        };
        if p.code != Code::RESPONSE {
            return Out::Fail(format!(
                "client sent EAP code {} instead of a Response",
                p.code.0
            ));
        }
        // Only the octets up to the Length field travel on.
        let exact = data.get(..data.len().min(4 + 1 + p.type_data.len()));
        let exact = exact.unwrap_or(data).to_vec();
        match &self.state {
            State::Identity { identifier } => {
                if p.identifier != *identifier || p.ty != Some(EapType::IDENTITY) {
                    return Out::Fail("expected the EAP-Identity response".into());
                }
                let Some(identity) = std::str::from_utf8(p.type_data)
                    .ok()
                    .filter(|s| !s.is_empty() && s.len() <= mschapv2::MAX_NAME)
                    .filter(|s| !s.chars().any(char::is_control))
                else {
                    return Out::Fail(format!(
                        "unusable EAP identity \"{}\"",
                        super::printable(p.type_data)
                    ));
                };
                self.identity = identity.to_string();
                self.state = State::Relaying;
                Out::Relay(exact)
            }
            State::Relaying => Out::Relay(exact),
            State::Accepted { .. } => Out::Fail("EAP message after EAP-Success".into()),
        }
    }

    /// Checks the server's answer to the relayed message.
    pub fn server_answer(&mut self, answer: crate::EapRelayAnswer, eap_id: u8) -> In {
        use crate::EapRelayAnswer as A;
        let who = super::printable(self.identity.as_bytes());
        match answer {
            A::Continue(packet) => match EapPacket::parse(&packet) {
                Ok(p) if p.code == Code::REQUEST => {
                    let len = 4 + 1 + p.type_data.len();
                    In::Continue(packet.get(..len).unwrap_or(&packet).to_vec())
                }
                Ok(p) => self.failure(
                    eap_id,
                    format!(
                        "{who}: the EAP server continued with EAP code {} instead of a Request",
                        p.code.0
                    ),
                ),
                Err(e) => self.failure(
                    eap_id,
                    format!("{who}: invalid EAP message from the EAP server: {e}"),
                ),
            },
            A::Accept {
                packet,
                msk,
                mut groups,
            } => {
                if msk.len() < 16 {
                    return self.failure(
                        eap_id,
                        format!(
                            "{who}: the EAP server accepted without a usable MSK ({} octets); the final AUTH needs one",
                            msk.len()
                        ),
                    );
                }
                let success = match packet.as_deref().map(EapPacket::parse) {
                    None => EapPacket::result(true, eap_id),
                    Some(Ok(p)) if p.code == Code::SUCCESS => EapPacket::result(true, p.identifier),
                    Some(_) => {
                        return self.failure(
                            eap_id,
                            format!("{who}: the EAP server accepted with an EAP message that is not EAP-Success"),
                        );
                    }
                };
                // The server's word, but bounded: a name is compared with
                // the configured groups and logged, nothing more.
                groups.retain(|g| !g.is_empty() && g.len() <= MAX_GROUP_LEN);
                groups.truncate(MAX_GROUPS);
                self.state = State::Accepted { msk, groups };
                In::Success(success)
            }
            A::Reject { packet, reason } => {
                let id = packet
                    .as_deref()
                    .and_then(|b| EapPacket::parse(b).ok())
                    .map_or(eap_id, |p| p.identifier);
                self.failure(id, format!("{who}: {reason}"))
            }
        }
    }

    fn failure(&mut self, eap_id: u8, reason: String) -> In {
        In::Failure {
            packet: EapPacket::result(false, eap_id),
            reason,
        }
    }
}

fn emit(p: &EapPacket<'_>) -> Vec<u8> {
    // Identities are bounded (IDi payloads by the message size, EAP ones by
    // MAX_NAME), far below 65535 octets.
    p.emit()
        .unwrap_or_else(|_| EapPacket::result(false, p.identifier))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EapRelayAnswer;
    use oxisec_crypto::Secret;

    struct Fixed(u8);
    impl oxisec_crypto::Rng for Fixed {
        fn fill(&mut self, dest: &mut [u8]) {
            dest.fill(self.0);
        }
    }

    #[test]
    fn without_identity_round_relays_a_made_up_identity_response() {
        let (r, first) = Relay::start(false, "alice".into(), &mut Fixed(7));
        assert_eq!(
            first,
            First::Relay(vec![2, 7, 0, 10, 1, b'a', b'l', b'i', b'c', b'e'])
        );
        assert_eq!(r.identity(), "alice");
    }

    #[test]
    fn identity_round_takes_the_eap_identity() {
        let (mut r, first) = Relay::start(true, "idi".into(), &mut Fixed(3));
        assert_eq!(first, First::Request(vec![1, 3, 0, 5, 1]));
        // Padding after the Length field is not relayed.
        let Out::Relay(m) = r.client_message(&[2, 3, 0, 8, 1, b'b', b'o', b'b', 0xee]) else {
            panic!()
        };
        assert_eq!(m, [2, 3, 0, 8, 1, b'b', b'o', b'b']);
        assert_eq!(r.identity(), "bob");
    }

    #[test]
    fn rejects_hostile_client_messages() {
        for bad in [
            &[][..],
            &[1, 3, 0, 5, 1][..],             // a Request
            &[2, 4, 0, 5, 1][..],             // wrong identifier
            &[2, 3, 0, 6, 26, 0][..],         // not Identity
            &[2, 3, 0, 6, 1, 0][..],          // control character identity
            &[2, 3, 0xff, 0xff, 1, b'x'][..], // Length beyond the buffer
        ] {
            let (mut r, _) = Relay::start(true, "idi".into(), &mut Fixed(3));
            assert!(matches!(r.client_message(bad), Out::Fail(_)), "{bad:?}");
        }
    }

    #[test]
    fn server_answers_are_checked() {
        let (mut r, _) = Relay::start(false, "alice".into(), &mut Fixed(1));
        // A Success as "continue" is refused.
        assert!(matches!(
            r.server_answer(EapRelayAnswer::Continue(vec![3, 1, 0, 4]), 1),
            In::Failure { .. }
        ));
        assert!(matches!(
            r.server_answer(EapRelayAnswer::Continue(vec![1, 2, 0, 6, 26, 1]), 1),
            In::Continue(p) if p == [1, 2, 0, 6, 26, 1]
        ));
        // Accept without a usable MSK.
        let short = EapRelayAnswer::Accept {
            packet: None,
            msk: Secret::from_slice(&[]),
            groups: vec!["staff".into()],
        };
        assert!(matches!(r.server_answer(short, 2), In::Failure { .. }));
        assert!(r.msk().is_none());
        let bad = EapRelayAnswer::Accept {
            packet: Some(vec![4, 2, 0, 4]),
            msk: Secret::from_slice(&[9; 64]),
            groups: Vec::new(),
        };
        assert!(matches!(r.server_answer(bad, 2), In::Failure { .. }));
        assert!(r.groups().is_empty(), "no groups before an accept");
        let ok = EapRelayAnswer::Accept {
            packet: None,
            msk: Secret::from_slice(&[9; 64]),
            groups: ["staff".to_string(), String::new(), "x".repeat(65)]
                .into_iter()
                .chain((0..40).map(|i| format!("g{i}")))
                .collect(),
        };
        assert!(matches!(r.server_answer(ok, 2), In::Success(p) if p == [3, 2, 0, 4]));
        assert_eq!(r.msk().map(|m| m.len()), Some(64));
        // Empty and overlong names dropped, at most MAX_GROUPS kept.
        assert_eq!(r.groups().len(), MAX_GROUPS);
        assert_eq!(r.groups()[..2], ["staff".to_string(), "g0".to_string()]);
        assert!(matches!(r.client_message(&[2, 3, 0, 5, 1]), Out::Fail(_)));
    }

    #[test]
    fn reject_uses_the_servers_identifier() {
        let (mut r, _) = Relay::start(false, "alice".into(), &mut Fixed(1));
        let rej = EapRelayAnswer::Reject {
            packet: Some(vec![4, 9, 0, 4]),
            reason: "Access-Reject".into(),
        };
        let In::Failure { packet, reason } = r.server_answer(rej, 2) else {
            panic!()
        };
        assert_eq!(packet, [4, 9, 0, 4]);
        assert_eq!(reason, "alice: Access-Reject");
    }
}
