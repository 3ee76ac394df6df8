//! EAP inside IKEv2 (RFC 7296 §2.16): the EAP packet codec (RFC 3748 §4),
//! EAP-MSCHAPv2 (RFC 2759 algorithms in draft-kamath-pppext-eap-mschapv2
//! framing, RFC 3079 keys), and the server (gateway) and peer (client)
//! state machines that `exchange::ike_auth` drives.
//!
//! The IKE payload codec (`oxisec_wire`) carries an EAP payload as opaque
//! bytes; the EAP packet inside is parsed here, where its state lives. Every
//! parser bounds its input by the real buffer length, never by a length
//! field alone, and fails with [`EapError`] instead of panicking.
use std::collections::HashMap;
use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

pub(crate) mod client;
pub mod mschapv2;
pub(crate) mod relay;
pub use relay::RELAY_TIMEOUT;
pub(crate) mod server;
pub mod tls;

/// EAP Code field (RFC 3748 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Code(pub u8);

impl Code {
    pub const REQUEST: Code = Code(1);
    pub const RESPONSE: Code = Code(2);
    pub const SUCCESS: Code = Code(3);
    pub const FAILURE: Code = Code(4);
}

/// EAP Type field (RFC 3748 §5, IANA "Method Types"). An open newtype, so
/// that a type we do not implement can still be named in a log or a Nak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EapType(pub u8);

impl EapType {
    pub const IDENTITY: EapType = EapType(1);
    pub const NOTIFICATION: EapType = EapType(2);
    /// Legacy Nak: "I do not do that type, here is what I would do".
    pub const NAK: EapType = EapType(3);
    pub const TLS: EapType = EapType(13);
    pub const MSCHAPV2: EapType = EapType(26);
}

impl fmt::Display for EapType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            EapType::IDENTITY => f.write_str("Identity"),
            EapType::NOTIFICATION => f.write_str("Notification"),
            EapType::NAK => f.write_str("Nak"),
            EapType::TLS => f.write_str("TLS"),
            EapType::MSCHAPV2 => f.write_str("MSCHAPv2"),
            EapType(t) => write!(f, "type {t}"),
        }
    }
}

/// Why an EAP packet was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EapError {
    #[error("EAP packet shorter than its header or its Length field")]
    Truncated,
    #[error("EAP Length field {0} is below the header size")]
    BadLength(u16),
    #[error("EAP code {0} is not Request, Response, Success or Failure")]
    UnknownCode(u8),
    #[error("EAP Request/Response without a Type")]
    MissingType,
    #[error("EAP Success/Failure with data after the header")]
    UnexpectedData,
    #[error("EAP packet would exceed 65535 octets")]
    TooLong,
    #[error("malformed EAP-MSCHAPv2 {0}")]
    MsChapV2(&'static str),
}

/// One EAP packet (RFC 3748 §4), borrowing its type data from the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EapPacket<'a> {
    pub code: Code,
    pub identifier: u8,
    /// `Some` for Request and Response, `None` for Success and Failure.
    pub ty: Option<EapType>,
    /// The octets after the Type field, up to the Length field.
    pub type_data: &'a [u8],
}

/// Fixed header: Code, Identifier, Length.
const HEADER: usize = 4;

impl<'a> EapPacket<'a> {
    /// Parses one packet. Octets beyond the Length field are padding to be
    /// ignored (RFC 3748 §4.1); a Length beyond the buffer is an error.
    pub fn parse(b: &'a [u8]) -> Result<EapPacket<'a>, EapError> {
        let [code, identifier, l0, l1, ..] = *b else {
            return Err(EapError::Truncated);
        };
        let length = u16::from_be_bytes([l0, l1]);
        if usize::from(length) < HEADER {
            return Err(EapError::BadLength(length));
        }
        let body = b
            .get(HEADER..usize::from(length))
            .ok_or(EapError::Truncated)?;
        let code = Code(code);
        match code {
            Code::REQUEST | Code::RESPONSE => {
                let (&ty, type_data) = body.split_first().ok_or(EapError::MissingType)?;
                Ok(EapPacket {
                    code,
                    identifier,
                    ty: Some(EapType(ty)),
                    type_data,
                })
            }
            Code::SUCCESS | Code::FAILURE => {
                if !body.is_empty() {
                    return Err(EapError::UnexpectedData);
                }
                Ok(EapPacket {
                    code,
                    identifier,
                    ty: None,
                    type_data: &[],
                })
            }
            Code(other) => Err(EapError::UnknownCode(other)),
        }
    }

    /// The packet's octets. A Success/Failure ignores `ty` and `type_data`.
    pub fn emit(&self) -> Result<Vec<u8>, EapError> {
        let with_type = matches!(self.code, Code::REQUEST | Code::RESPONSE);
        let body = if with_type {
            1 + self.type_data.len()
        } else {
            0
        };
        let length = u16::try_from(HEADER + body).map_err(|_| EapError::TooLong)?;
        let mut out = Vec::with_capacity(usize::from(length));
        out.push(self.code.0);
        out.push(self.identifier);
        out.extend_from_slice(&length.to_be_bytes());
        if with_type {
            out.push(self.ty.unwrap_or(EapType::NAK).0);
            out.extend_from_slice(self.type_data);
        }
        Ok(out)
    }

    /// A Request or Response of `ty`.
    pub fn new(code: Code, identifier: u8, ty: EapType, type_data: &'a [u8]) -> EapPacket<'a> {
        EapPacket {
            code,
            identifier,
            ty: Some(ty),
            type_data,
        }
    }

    /// An EAP-Success or EAP-Failure.
    pub fn result(success: bool, identifier: u8) -> Vec<u8> {
        let code = if success {
            Code::SUCCESS
        } else {
            Code::FAILURE
        };
        vec![code.0, identifier, 0, 4]
    }
}

/// The NT hash of a password (MD4 of its UTF-16LE form, RFC 2759 §8.3):
/// what a gateway stores instead of the password. It is a password
/// equivalent for MSCHAPv2, so it is zeroized on drop and never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct NtHash([u8; 16]);

impl NtHash {
    /// NtPasswordHash(password).
    pub fn from_password(password: &str) -> NtHash {
        mschapv2::nt_password_hash(password)
    }

    /// A stored hash (e.g. the 32 hex digits of a users file).
    pub fn from_bytes(bytes: [u8; 16]) -> NtHash {
        NtHash(bytes)
    }

    pub(crate) fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Debug for NtHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NtHash([REDACTED])")
    }
}

/// The gateway's user database, supplied by the caller (a users file, a
/// directory lookup). Called from inside the engine: it must answer
/// promptly and must not block on I/O for long.
pub trait EapUsers: Send + Sync {
    /// The NT hash of `name`'s password; `None` for an unknown user.
    fn nt_hash(&self, name: &str) -> Option<NtHash>;

    /// The groups of `name`, in the database's order: they select the
    /// user's pool, DNS and subnets ([`crate::RemoteAccess::groups`]).
    /// None by default.
    fn groups(&self, _name: &str) -> Vec<String> {
        Vec::new()
    }
}

/// A fixed table of users, e.g. read from a users file at start.
impl EapUsers for HashMap<String, NtHash> {
    fn nt_hash(&self, name: &str) -> Option<NtHash> {
        self.get(name).cloned()
    }
}

/// The Master Session Key an EAP method exported (RFC 3748 §7.10); keys
/// the final AUTH payloads of both sides (RFC 7296 §2.16).
pub(crate) type Msk = oxisec_crypto::Secret;

/// A bound on the EAP round trips of one IKE_AUTH (identity, challenge,
/// success, final AUTH, plus Notifications and a Nak): a peer that keeps
/// talking without finishing is cut off.
pub(crate) const MAX_ROUNDS: u32 = 10;

/// The EAP side of an IKE_AUTH in progress, kept in the SA's handshake
/// state until the final AUTH exchange.
pub(crate) struct EapHandshake {
    pub role: EapRole,
    /// IKE_AUTH round trips so far (bounded by [`MAX_ROUNDS`]).
    pub rounds: u32,
    /// Gateway: the client's identity and its IDi payload body, which its
    /// final AUTH covers.
    pub peer_idi: Option<(crate::identity::Identity, Vec<u8>)>,
    /// Client: the gateway's identity and IDr payload body from the first
    /// response (verified there), which its final AUTH covers.
    pub peer_idr: Option<(crate::identity::Identity, Vec<u8>)>,
    /// Gateway: the CHILD_SA and configuration request of the first
    /// IKE_AUTH request (SA, TSi, TSr, CP), answered with the final AUTH.
    pub held: Vec<oxisec_wire::Payload>,
    /// Gateway: the first request carried INITIAL_CONTACT.
    pub initial_contact: bool,
    /// Client: our MSK-keyed AUTH is out; the next response finishes.
    pub auth_sent: bool,
}

pub(crate) enum EapRole {
    Server(server::Server),
    Client(client::Client),
    /// Gateway relaying to an outside EAP server (RADIUS).
    Relay(relay::Relay),
    /// Gateway running EAP-TLS.
    Tls(Box<tls::Server>),
    /// Client running EAP-TLS.
    TlsClient(Box<tls::Client>),
}

impl fmt::Debug for EapHandshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (role, identity) = match &self.role {
            EapRole::Server(s) => ("server", s.identity()),
            EapRole::Client(c) => ("client", c.identity()),
            EapRole::Relay(r) => ("relay", r.identity()),
            EapRole::Tls(t) => ("tls server", t.identity()),
            EapRole::TlsClient(t) => ("tls client", t.identity()),
        };
        f.debug_struct("EapHandshake")
            .field("role", &role)
            .field("identity", &identity)
            .field("rounds", &self.rounds)
            .field("auth_sent", &self.auth_sent)
            .finish_non_exhaustive()
    }
}

impl EapHandshake {
    pub fn new(role: EapRole) -> EapHandshake {
        EapHandshake {
            role,
            rounds: 0,
            peer_idi: None,
            peer_idr: None,
            held: Vec::new(),
            initial_contact: false,
            auth_sent: false,
        }
    }
}

/// Text of an IKE identity used as EAP identity (strongSwan's default when
/// no EAP-Identity exchange is configured): names as they are, key IDs
/// that are text as text, anything else as it prints.
pub(crate) fn identity_text(id: &crate::identity::Identity) -> String {
    use crate::identity::Identity;
    match id {
        Identity::Fqdn(s) | Identity::Email(s) => s.clone(),
        Identity::KeyId(k) => match std::str::from_utf8(k) {
            Ok(s) if !s.is_empty() && !s.chars().any(char::is_control) => s.to_string(),
            _ => id.to_string(),
        },
        other => other.to_string(),
    }
}

/// A byte string from the peer as printable text for logs and events
/// (control characters escaped), at most 255 octets of it.
pub(crate) fn printable(b: &[u8]) -> String {
    let b = &b[..b.len().min(255)];
    String::from_utf8_lossy(b).escape_debug().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_request_and_round_trips() {
        let b = [1, 7, 0, 9, 1, b'a', b'l', b'i', b'x'];
        let p = EapPacket::parse(&b).unwrap();
        assert_eq!(p.code, Code::REQUEST);
        assert_eq!(p.identifier, 7);
        assert_eq!(p.ty, Some(EapType::IDENTITY));
        assert_eq!(p.type_data, b"alix");
        assert_eq!(p.emit().unwrap(), b);
    }

    #[test]
    fn accepts_success_failure_and_ignores_padding() {
        let p = EapPacket::parse(&[3, 9, 0, 4, 0xee, 0xee]).unwrap();
        assert_eq!((p.code, p.identifier, p.ty), (Code::SUCCESS, 9, None));
        assert_eq!(EapPacket::result(true, 9), vec![3, 9, 0, 4]);
        assert_eq!(EapPacket::result(false, 2), vec![4, 2, 0, 4]);
        assert_eq!(
            EapPacket::parse(&EapPacket::result(false, 2)).unwrap().code,
            Code::FAILURE
        );
    }

    #[test]
    fn rejects_hostile_headers() {
        assert_eq!(EapPacket::parse(&[]), Err(EapError::Truncated));
        assert_eq!(EapPacket::parse(&[1, 1, 0]), Err(EapError::Truncated));
        assert_eq!(EapPacket::parse(&[1, 1, 0, 3]), Err(EapError::BadLength(3)));
        assert_eq!(EapPacket::parse(&[1, 1, 0, 0]), Err(EapError::BadLength(0)));
        assert_eq!(
            EapPacket::parse(&[1, 1, 0xff, 0xff, 1]),
            Err(EapError::Truncated)
        );
        assert_eq!(EapPacket::parse(&[1, 1, 0, 4]), Err(EapError::MissingType));
        assert_eq!(
            EapPacket::parse(&[3, 1, 0, 5, 0]),
            Err(EapError::UnexpectedData)
        );
        assert_eq!(
            EapPacket::parse(&[5, 1, 0, 4]),
            Err(EapError::UnknownCode(5))
        );
    }

    #[test]
    fn refuses_to_emit_oversized() {
        let big = vec![0u8; 70_000];
        let p = EapPacket::new(Code::RESPONSE, 1, EapType::IDENTITY, &big);
        assert_eq!(p.emit(), Err(EapError::TooLong));
    }

    #[test]
    fn parse_never_panics_on_short_inputs() {
        // Every buffer of up to 6 octets from a small alphabet.
        let alphabet = [0u8, 1, 2, 3, 4, 5, 6, 0xff];
        let mut buf = Vec::new();
        fn walk(buf: &mut Vec<u8>, alphabet: &[u8], depth: usize) {
            let _ = EapPacket::parse(buf);
            if depth == 0 {
                return;
            }
            for &a in alphabet {
                buf.push(a);
                walk(buf, alphabet, depth - 1);
                buf.pop();
            }
        }
        walk(&mut buf, &alphabet, 6);
    }

    #[test]
    fn nt_hash_is_redacted() {
        let h = NtHash::from_password("clientPass");
        assert_eq!(format!("{h:?}"), "NtHash([REDACTED])");
    }

    #[test]
    fn identity_text_of_ids() {
        use crate::identity::Identity;
        assert_eq!(
            identity_text(&Identity::Email("alice@example.com".into())),
            "alice@example.com"
        );
        assert_eq!(identity_text(&Identity::KeyId(b"bob".to_vec())), "bob");
        assert_eq!(
            identity_text(&Identity::Ipv4("192.0.2.7".parse().unwrap())),
            "192.0.2.7"
        );
    }
}
