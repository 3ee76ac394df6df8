//! The client's EAP peer: answers EAP-Identity and Notification requests,
//! Naks every method but MSCHAPv2, and runs EAP-MSCHAPv2 — checking the
//! gateway's authenticator response ("S=") before it acknowledges success,
//! so that an EAP-Success from a gateway that does not know the password
//! is refused (mutual authentication).
use oxisec_crypto::Rng;
use subtle::ConstantTimeEq;

use super::mschapv2::{self, Message};
use super::{Code, EapPacket, EapType, Msk, NtHash};

pub(crate) struct Client {
    identity: String,
    hash: NtHash,
    state: State,
}

enum State {
    /// Waiting for the Challenge (after Identity or Notifications).
    Idle,
    /// Our Response is out; the Success Request must carry this proof.
    Responded { expected: [u8; 20], msk: Msk },
    /// The gateway proved the password: EAP-Success may come.
    Verified { msk: Msk },
    /// The gateway refused us (Failure Request acknowledged).
    Refused { reason: String },
}

pub(crate) enum Step {
    /// Send this EAP Response.
    Reply(Vec<u8>),
    /// EAP-Success after a verified MSCHAPv2 exchange: the MSK is ready.
    Success,
    /// Authentication failed (the reason is for the log).
    Failure(String),
}

impl Client {
    /// A peer with this EAP identity and password (UTF-8 octets).
    pub fn new(identity: &str, password: &[u8]) -> Result<Client, String> {
        let pw = std::str::from_utf8(password)
            .map_err(|_| "the EAP password is not valid UTF-8".to_string())?;
        if identity.is_empty() || identity.len() > mschapv2::MAX_NAME {
            return Err("the EAP identity must have 1 to 255 octets".into());
        }
        Ok(Client {
            identity: identity.to_string(),
            hash: NtHash::from_password(pw),
            state: State::Idle,
        })
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// The MSK once the gateway's proof verified.
    pub fn msk(&self) -> Option<&Msk> {
        match &self.state {
            State::Verified { msk } => Some(msk),
            _ => None,
        }
    }

    /// Processes a gateway's EAP message (the whole EAP payload body).
    pub fn process(&mut self, data: &[u8], rng: &mut dyn Rng) -> Step {
        let p = match EapPacket::parse(data) {
            Ok(p) => p,
            Err(e) => return Step::Failure(format!("invalid EAP message from the gateway: {e}")),
        };
        match p.code {
            Code::SUCCESS => {
                return match &self.state {
                    State::Verified { .. } => Step::Success,
                    _ => Step::Failure(
                        "EAP-Success before the gateway proved it knows our password".into(),
                    ),
                };
            }
            Code::FAILURE => {
                return Step::Failure(match &self.state {
                    State::Refused { reason } => reason.clone(),
                    _ => "the gateway sent EAP-Failure".into(),
                });
            }
            Code::REQUEST => {}
            other => {
                return Step::Failure(format!("the gateway sent EAP code {}", other.0));
            }
        }
        let reply = |ty: EapType, d: &[u8]| {
            EapPacket::new(Code::RESPONSE, p.identifier, ty, d)
                .emit()
                .map(Step::Reply)
                .unwrap_or_else(|e| Step::Failure(e.to_string()))
        };
        match p.ty.unwrap_or(EapType::NAK) {
            EapType::IDENTITY => reply(EapType::IDENTITY, self.identity.as_bytes()),
            // RFC 3748 §5.2: a Notification is acknowledged with an empty one.
            EapType::NOTIFICATION => reply(EapType::NOTIFICATION, &[]),
            EapType::MSCHAPV2 => match self.mschapv2(p.type_data, rng) {
                Ok(m) => reply(EapType::MSCHAPV2, &m),
                Err(why) => Step::Failure(why),
            },
            // Legacy Nak (RFC 3748 §5.3.1): we only do MSCHAPv2.
            _ => reply(EapType::NAK, &[EapType::MSCHAPV2.0]),
        }
    }

    fn mschapv2(&mut self, d: &[u8], rng: &mut dyn Rng) -> Result<Vec<u8>, String> {
        let m = Message::parse(true, d).map_err(|e| e.to_string())?;
        match (m, &self.state) {
            (
                Message::Challenge {
                    ms_id, challenge, ..
                },
                State::Idle,
            ) => {
                let mut peer_challenge = [0u8; 16];
                rng.fill(&mut peer_challenge);
                let name = self.identity.as_bytes();
                let nt_response =
                    mschapv2::generate_nt_response(&challenge, &peer_challenge, name, &self.hash);
                let expected = mschapv2::authenticator_response(
                    &self.hash,
                    &nt_response,
                    &peer_challenge,
                    &challenge,
                    name,
                );
                self.state = State::Responded {
                    expected,
                    msk: mschapv2::msk(&self.hash, &nt_response),
                };
                Ok(Message::Response {
                    ms_id,
                    peer_challenge,
                    nt_response,
                    name,
                }
                .emit())
            }
            (Message::SuccessRequest { message, .. }, State::Responded { expected, msk }) => {
                let proof = mschapv2::parse_success_message(message)
                    .ok_or("the gateway's EAP-MSCHAPv2 Success has no authenticator response")?;
                if !bool::from(proof.ct_eq(expected)) {
                    return Err(
                        "the gateway's MSCHAPv2 authenticator response does not verify: it does not know our password"
                            .into(),
                    );
                }
                self.state = State::Verified { msk: msk.clone() };
                Ok(Message::SuccessResponse.emit())
            }
            (Message::FailureRequest { message, .. }, State::Responded { .. }) => {
                let code = mschapv2::failure_code(message)
                    .map(|c| format!(" (error {c})"))
                    .unwrap_or_default();
                self.state = State::Refused {
                    reason: format!("the gateway refused our EAP-MSCHAPv2 password{code}"),
                };
                Ok(Message::FailureResponse.emit())
            }
            _ => Err("unexpected EAP-MSCHAPv2 message from the gateway".into()),
        }
    }
}
