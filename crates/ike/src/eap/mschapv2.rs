//! MS-CHAPv2 (RFC 2759) as an EAP method (type 26,
//! draft-kamath-pppext-eap-mschapv2-02), with the MPPE master keys of
//! RFC 3079 as its MSK.
//!
//! MD4, SHA-1 and single DES are what the protocol fixes; they are used for
//! nothing else. MSCHAPv2 on its own is weak (the NT-Response can be cracked
//! offline from a capture), which is why IKEv2 runs it only inside the
//! encrypted IKE SA, after the gateway authenticated itself with a
//! certificate or a pre-shared key, and binds it to the IKE SA with the MSK.
use des::Des;
use des::cipher::{BlockCipherEncrypt, KeyInit};
use md4::Md4;
use sha1::{Digest, Sha1};
use zeroize::Zeroizing;

use super::{EapError, NtHash};
use oxisec_crypto::Secret;

/// OpCodes (draft-kamath §2).
pub const OP_CHALLENGE: u8 = 1;
pub const OP_RESPONSE: u8 = 2;
pub const OP_SUCCESS: u8 = 3;
pub const OP_FAILURE: u8 = 4;
pub const OP_CHANGE_PASSWORD: u8 = 7;

/// Length of the authenticator and peer challenges.
pub const CHALLENGE_LEN: usize = 16;
/// Value-Size of a Response: peer challenge, 8 reserved, NT-Response, flags.
pub const RESPONSE_LEN: usize = 49;
/// Longest Name we accept or send (the EAP identity it names is bounded too).
pub const MAX_NAME: usize = 255;

/// NtPasswordHash (RFC 2759 §8.3): MD4 over the password in UTF-16LE.
pub fn nt_password_hash(password: &str) -> NtHash {
    let unicode: Zeroizing<Vec<u8>> =
        Zeroizing::new(password.encode_utf16().flat_map(u16::to_le_bytes).collect());
    let mut h = Md4::new();
    h.update(&unicode[..]);
    let mut out = [0u8; 16];
    out.copy_from_slice(&h.finalize());
    let hash = NtHash::from_bytes(out);
    zeroize::Zeroize::zeroize(&mut out);
    hash
}

/// HashNtPasswordHash (RFC 2759 §8.4): MD4 of the NT hash.
pub fn hash_nt_password_hash(hash: &NtHash) -> Zeroizing<[u8; 16]> {
    let mut out = Zeroizing::new([0u8; 16]);
    out.copy_from_slice(&Md4::digest(hash.as_bytes()));
    out
}

/// The user name that goes into ChallengeHash: without a "DOMAIN\" prefix
/// (RFC 2759 §8.2).
pub fn strip_domain(name: &[u8]) -> &[u8] {
    match name.iter().position(|&b| b == b'\\') {
        Some(i) => &name[i + 1..],
        None => name,
    }
}

/// ChallengeHash (RFC 2759 §8.2): the first 8 octets of
/// SHA-1(PeerChallenge | AuthenticatorChallenge | UserName).
pub fn challenge_hash(
    peer_challenge: &[u8; 16],
    auth_challenge: &[u8; 16],
    user: &[u8],
) -> [u8; 8] {
    let mut h = Sha1::new();
    h.update(peer_challenge);
    h.update(auth_challenge);
    h.update(strip_domain(user));
    let d = h.finalize();
    let mut out = [0u8; 8];
    out.copy_from_slice(&d[..8]);
    out
}

/// Spreads 7 key octets over 8 DES key octets, 7 bits each (RFC 2759 §8.6
/// DesEncrypt's "MakeKey"). The low (parity) bit is left zero: DES
/// ignores it.
fn des_key(seven: &[u8]) -> [u8; 8] {
    let mut v: u64 = 0;
    for &b in seven.iter().take(7) {
        v = (v << 8) | u64::from(b);
    }
    let mut out = [0u8; 8];
    for (i, o) in out.iter_mut().enumerate() {
        // Bits 55..49, 48..42, ...: seven at a time from the top.
        let shift = 49 - 7 * i as u32;
        *o = (((v >> shift) & 0x7f) as u8) << 1;
    }
    out
}

fn des_encrypt(clear: &[u8; 8], seven: &[u8]) -> [u8; 8] {
    let key = Zeroizing::new(des_key(seven));
    let cipher = Des::new(&(*key).into());
    let mut block = (*clear).into();
    cipher.encrypt_block(&mut block);
    block.into()
}

/// ChallengeResponse (RFC 2759 §8.5): the NT hash, zero-padded to 21
/// octets, as three DES keys that each encrypt the 8-octet challenge.
pub fn challenge_response(challenge: &[u8; 8], hash: &NtHash) -> [u8; 24] {
    let mut z = Zeroizing::new([0u8; 21]);
    z[..16].copy_from_slice(hash.as_bytes());
    let mut out = [0u8; 24];
    for (i, chunk) in out.chunks_exact_mut(8).enumerate() {
        chunk.copy_from_slice(&des_encrypt(challenge, &z[7 * i..7 * i + 7]));
    }
    out
}

/// GenerateNTResponse (RFC 2759 §8.1).
pub fn generate_nt_response(
    auth_challenge: &[u8; 16],
    peer_challenge: &[u8; 16],
    user: &[u8],
    hash: &NtHash,
) -> [u8; 24] {
    let c = challenge_hash(peer_challenge, auth_challenge, user);
    challenge_response(&c, hash)
}

const AUTH_MAGIC1: &[u8] = b"Magic server to client signing constant";
const AUTH_MAGIC2: &[u8] = b"Pad to make it do more than one iteration";

/// GenerateAuthenticatorResponse (RFC 2759 §8.7), as the 20 octets that
/// the "S=" string spells in hex.
pub fn authenticator_response(
    hash: &NtHash,
    nt_response: &[u8; 24],
    peer_challenge: &[u8; 16],
    auth_challenge: &[u8; 16],
    user: &[u8],
) -> [u8; 20] {
    let hh = hash_nt_password_hash(hash);
    let mut h = Sha1::new();
    h.update(&hh[..]);
    h.update(nt_response);
    h.update(AUTH_MAGIC1);
    let digest = h.finalize();
    let c = challenge_hash(peer_challenge, auth_challenge, user);
    let mut h = Sha1::new();
    h.update(digest);
    h.update(c);
    h.update(AUTH_MAGIC2);
    let mut out = [0u8; 20];
    out.copy_from_slice(&h.finalize());
    out
}

/// "S=" and 40 upper-case hex digits (RFC 2759 §8.7).
pub fn authenticator_string(resp: &[u8; 20]) -> String {
    let mut s = String::with_capacity(42);
    s.push_str("S=");
    for b in resp {
        s.push_str(&format!("{b:02X}"));
    }
    s
}

const MPPE_MAGIC1: &[u8] = b"This is the MPPE Master Key";
/// "On the client side, this is the send key; on the server side, it is
/// the receive key." (RFC 3079 §3.4)
const MPPE_MAGIC2: &[u8] =
    b"On the client side, this is the send key; on the server side, it is the receive key.";
/// "... the receive key; ... the send key."
const MPPE_MAGIC3: &[u8] =
    b"On the client side, this is the receive key; on the server side, it is the send key.";
const SHS_PAD1: [u8; 40] = [0; 40];
const SHS_PAD2: [u8; 40] = [0xf2; 40];

/// GetMasterKey (RFC 3079 §3.4).
pub fn master_key(hash_hash: &[u8; 16], nt_response: &[u8; 24]) -> Zeroizing<[u8; 16]> {
    let mut h = Sha1::new();
    h.update(hash_hash);
    h.update(nt_response);
    h.update(MPPE_MAGIC1);
    let mut out = Zeroizing::new([0u8; 16]);
    out.copy_from_slice(&h.finalize()[..16]);
    out
}

/// GetAsymmetricStartKey (RFC 3079 §3.4) for a 128-bit session key:
/// `client_send` picks Magic2 (the client's send key, the server's receive
/// key), otherwise Magic3.
pub fn asymmetric_start_key(master: &[u8; 16], client_send: bool) -> Zeroizing<[u8; 16]> {
    let magic = if client_send {
        MPPE_MAGIC2
    } else {
        MPPE_MAGIC3
    };
    let mut h = Sha1::new();
    h.update(master);
    h.update(SHS_PAD1);
    h.update(magic);
    h.update(SHS_PAD2);
    let mut out = Zeroizing::new([0u8; 16]);
    out.copy_from_slice(&h.finalize()[..16]);
    out
}

/// The 64-octet MSK of EAP-MSCHAPv2 as IKEv2 implementations use it
/// (strongSwan, Windows): the client's send start key (Magic2), the
/// client's receive start key (Magic3), then 32 zero octets. Both sides
/// compute the same value.
pub fn msk(hash: &NtHash, nt_response: &[u8; 24]) -> Secret {
    let hh = hash_nt_password_hash(hash);
    let master = master_key(&hh, nt_response);
    let mut out = vec![0u8; 64];
    out[..16].copy_from_slice(&asymmetric_start_key(&master, true)[..]);
    out[16..32].copy_from_slice(&asymmetric_start_key(&master, false)[..]);
    Secret::new(out)
}

/// One EAP-MSCHAPv2 message (the type data of an EAP packet of type 26).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    /// Server → peer.
    Challenge {
        ms_id: u8,
        challenge: [u8; 16],
        name: &'a [u8],
    },
    /// Peer → server.
    Response {
        ms_id: u8,
        peer_challenge: [u8; 16],
        nt_response: [u8; 24],
        name: &'a [u8],
    },
    /// Server → peer: "S=<auth string> M=<message>".
    SuccessRequest {
        ms_id: u8,
        message: &'a [u8],
    },
    /// Server → peer: "E=eee R=r C=<challenge> V=v M=<message>".
    FailureRequest {
        ms_id: u8,
        message: &'a [u8],
    },
    /// Peer → server acknowledgements: the OpCode alone.
    SuccessResponse,
    FailureResponse,
}

/// OpCode, MS-CHAPv2-ID, MS-Length.
const MS_HEADER: usize = 4;

impl<'a> Message<'a> {
    /// Parses type data from an EAP Request (`request`) or Response. The
    /// MS-Length field is not trusted: the EAP Length already bounds the
    /// data, and peers disagree on MS-Length for Success/Failure.
    pub fn parse(request: bool, d: &'a [u8]) -> Result<Message<'a>, EapError> {
        let bad = EapError::MsChapV2;
        let (&op, _) = d.split_first().ok_or(bad("message: empty"))?;
        match (request, op) {
            (false, OP_SUCCESS) => return Ok(Message::SuccessResponse),
            (false, OP_FAILURE) => return Ok(Message::FailureResponse),
            _ => {}
        }
        let [_, ms_id, _, _, ref body @ ..] = *d else {
            return Err(bad("message: truncated header"));
        };
        match (request, op) {
            (true, OP_CHALLENGE) => {
                let (&size, rest) = body.split_first().ok_or(bad("Challenge: no Value"))?;
                if usize::from(size) != CHALLENGE_LEN {
                    return Err(bad("Challenge: Value-Size is not 16"));
                }
                let value = rest
                    .get(..CHALLENGE_LEN)
                    .ok_or(bad("Challenge: truncated Value"))?;
                let name = &rest[CHALLENGE_LEN..];
                if name.len() > MAX_NAME {
                    return Err(bad("Challenge: Name too long"));
                }
                let mut challenge = [0u8; 16];
                challenge.copy_from_slice(value);
                Ok(Message::Challenge {
                    ms_id,
                    challenge,
                    name,
                })
            }
            (false, OP_RESPONSE) => {
                let (&size, rest) = body.split_first().ok_or(bad("Response: no Value"))?;
                if usize::from(size) != RESPONSE_LEN {
                    return Err(bad("Response: Value-Size is not 49"));
                }
                let value = rest
                    .get(..RESPONSE_LEN)
                    .ok_or(bad("Response: truncated Value"))?;
                let name = &rest[RESPONSE_LEN..];
                if name.is_empty() || name.len() > MAX_NAME {
                    return Err(bad("Response: Name empty or too long"));
                }
                let mut peer_challenge = [0u8; 16];
                peer_challenge.copy_from_slice(&value[..16]);
                let mut nt_response = [0u8; 24];
                nt_response.copy_from_slice(&value[24..48]);
                Ok(Message::Response {
                    ms_id,
                    peer_challenge,
                    nt_response,
                    name,
                })
            }
            (true, OP_SUCCESS) => Ok(Message::SuccessRequest {
                ms_id,
                message: body,
            }),
            (true, OP_FAILURE) => Ok(Message::FailureRequest {
                ms_id,
                message: body,
            }),
            (_, OP_CHANGE_PASSWORD) => Err(bad("Change-Password is not supported")),
            _ => Err(bad("message: unexpected OpCode")),
        }
    }

    /// The type data for this message.
    pub fn emit(&self) -> Vec<u8> {
        let (op, ms_id, body): (u8, u8, Vec<u8>) = match *self {
            Message::SuccessResponse => return vec![OP_SUCCESS],
            Message::FailureResponse => return vec![OP_FAILURE],
            Message::Challenge {
                ms_id,
                challenge,
                name,
            } => {
                let name = &name[..name.len().min(MAX_NAME)];
                let mut b = vec![CHALLENGE_LEN as u8];
                b.extend_from_slice(&challenge);
                b.extend_from_slice(name);
                (OP_CHALLENGE, ms_id, b)
            }
            Message::Response {
                ms_id,
                peer_challenge,
                nt_response,
                name,
            } => {
                let name = &name[..name.len().min(MAX_NAME)];
                let mut b = vec![RESPONSE_LEN as u8];
                b.extend_from_slice(&peer_challenge);
                b.extend_from_slice(&[0u8; 8]);
                b.extend_from_slice(&nt_response);
                b.push(0); // Flags
                b.extend_from_slice(name);
                (OP_RESPONSE, ms_id, b)
            }
            Message::SuccessRequest { ms_id, message } => (OP_SUCCESS, ms_id, message.to_vec()),
            Message::FailureRequest { ms_id, message } => (OP_FAILURE, ms_id, message.to_vec()),
        };
        // MS-Length = EAP Length - 5 = the length of this type data. Our
        // messages are far below 64 KiB (names and messages are bounded).
        let ms_len = u16::try_from(MS_HEADER + body.len()).unwrap_or(u16::MAX);
        let mut out = vec![op, ms_id];
        out.extend_from_slice(&ms_len.to_be_bytes());
        out.extend_from_slice(&body);
        out
    }
}

/// The 20 octets of the "S=" token in a Success Request message, if
/// well formed (40 hex digits, either case).
pub fn parse_success_message(message: &[u8]) -> Option<[u8; 20]> {
    let at = message.windows(2).position(|w| w == b"S=")?;
    let hex = message.get(at + 2..at + 42)?;
    let mut out = [0u8; 20];
    for (o, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        let s = std::str::from_utf8(pair).ok()?;
        *o = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

/// The error code ("E=") of a Failure Request message, if any.
pub fn failure_code(message: &[u8]) -> Option<u32> {
    let text = std::str::from_utf8(message).ok()?;
    let tok = text.split(' ').find_map(|t| t.strip_prefix("E="))?;
    tok.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 2759 §9.2 "Sample Data" (also reused by RFC 3079 §3.5).
    mod rfc2759 {
        pub const USER: &[u8] = b"User";
        pub const PASSWORD: &str = "clientPass";
        pub const AUTH_CHALLENGE: [u8; 16] = [
            0x5B, 0x5D, 0x7C, 0x7D, 0x7B, 0x3F, 0x2F, 0x3E, 0x3C, 0x2C, 0x60, 0x21, 0x32, 0x26,
            0x26, 0x28,
        ];
        pub const PEER_CHALLENGE: [u8; 16] = [
            0x21, 0x40, 0x23, 0x24, 0x25, 0x5E, 0x26, 0x2A, 0x28, 0x29, 0x5F, 0x2B, 0x3A, 0x33,
            0x7C, 0x7E,
        ];
        pub const CHALLENGE: [u8; 8] = [0xD0, 0x2E, 0x43, 0x86, 0xBC, 0xE9, 0x12, 0x26];
        pub const NT_RESPONSE: [u8; 24] = [
            0x82, 0x30, 0x9E, 0xCD, 0x8D, 0x70, 0x8B, 0x5E, 0xA0, 0x8F, 0xAA, 0x39, 0x81, 0xCD,
            0x83, 0x54, 0x42, 0x33, 0x11, 0x4A, 0x3D, 0x85, 0xD6, 0xDF,
        ];
        pub const PASSWORD_HASH: [u8; 16] = [
            0x44, 0xEB, 0xBA, 0x8D, 0x53, 0x12, 0xB8, 0xD6, 0x11, 0x47, 0x44, 0x11, 0xF5, 0x69,
            0x89, 0xAE,
        ];
        pub const PASSWORD_HASH_HASH: [u8; 16] = [
            0x41, 0xC0, 0x0C, 0x58, 0x4B, 0xD2, 0xD9, 0x1C, 0x40, 0x17, 0xA2, 0xA1, 0x2F, 0xA5,
            0x9F, 0x3F,
        ];
        pub const AUTHENTICATOR_RESPONSE: &str = "S=407A5589115FD0D6209F510FE9C04566932CDA56";
    }

    /// RFC 3079 §3.5.3 "Sample Key Derivations" (128-bit key).
    mod rfc3079 {
        pub const MASTER_KEY: [u8; 16] = [
            0xFD, 0xEC, 0xE3, 0x71, 0x7A, 0x8C, 0x83, 0x8C, 0xB3, 0x88, 0xE5, 0x27, 0xAE, 0x3C,
            0xDD, 0x31,
        ];
        pub const SEND_START_KEY_128: [u8; 16] = [
            0x8B, 0x7C, 0xDC, 0x14, 0x9B, 0x99, 0x3A, 0x1B, 0xA1, 0x18, 0xCB, 0x15, 0x3F, 0x56,
            0xDC, 0xCB,
        ];
    }

    use rfc2759 as v;

    #[test]
    fn rfc2759_nt_password_hash() {
        let h = nt_password_hash(v::PASSWORD);
        assert_eq!(h.as_bytes(), &v::PASSWORD_HASH);
        assert_eq!(*hash_nt_password_hash(&h), v::PASSWORD_HASH_HASH);
    }

    #[test]
    fn rfc2759_challenge_hash_and_response() {
        let c = challenge_hash(&v::PEER_CHALLENGE, &v::AUTH_CHALLENGE, v::USER);
        assert_eq!(c, v::CHALLENGE);
        let h = NtHash::from_bytes(v::PASSWORD_HASH);
        assert_eq!(challenge_response(&c, &h), v::NT_RESPONSE);
        assert_eq!(
            generate_nt_response(&v::AUTH_CHALLENGE, &v::PEER_CHALLENGE, v::USER, &h),
            v::NT_RESPONSE
        );
    }

    #[test]
    fn rfc2759_authenticator_response() {
        let h = NtHash::from_bytes(v::PASSWORD_HASH);
        let a = authenticator_response(
            &h,
            &v::NT_RESPONSE,
            &v::PEER_CHALLENGE,
            &v::AUTH_CHALLENGE,
            v::USER,
        );
        assert_eq!(authenticator_string(&a), v::AUTHENTICATOR_RESPONSE);
        let msg = format!("{} M=hello", v::AUTHENTICATOR_RESPONSE);
        assert_eq!(parse_success_message(msg.as_bytes()), Some(a));
        assert_eq!(
            parse_success_message(msg.to_lowercase().replace("s=", "S=").as_bytes()),
            Some(a)
        );
    }

    #[test]
    fn domain_is_not_part_of_the_challenge_hash() {
        let a = challenge_hash(&v::PEER_CHALLENGE, &v::AUTH_CHALLENGE, b"ACME\\User");
        assert_eq!(a, v::CHALLENGE);
    }

    #[test]
    fn rfc3079_master_and_start_keys() {
        let m = master_key(&v::PASSWORD_HASH_HASH, &v::NT_RESPONSE);
        assert_eq!(*m, rfc3079::MASTER_KEY);
        // RFC 3079 §3.5.3 shows the server's send key: Magic3, i.e. the
        // client's receive key.
        assert_eq!(
            *asymmetric_start_key(&m, false),
            rfc3079::SEND_START_KEY_128
        );
        assert_ne!(*asymmetric_start_key(&m, true), rfc3079::SEND_START_KEY_128);
        let msk = msk(&NtHash::from_bytes(v::PASSWORD_HASH), &v::NT_RESPONSE);
        assert_eq!(msk.len(), 64);
        assert_eq!(&msk.as_bytes()[16..32], &rfc3079::SEND_START_KEY_128);
        assert_eq!(&msk.as_bytes()[..16], &asymmetric_start_key(&m, true)[..]);
        assert!(msk.as_bytes()[32..].iter().all(|&b| b == 0));
    }

    #[test]
    fn messages_round_trip() {
        let msgs = [
            Message::Challenge {
                ms_id: 3,
                challenge: v::AUTH_CHALLENGE,
                name: b"oxisec",
            },
            Message::Response {
                ms_id: 3,
                peer_challenge: v::PEER_CHALLENGE,
                nt_response: v::NT_RESPONSE,
                name: b"User",
            },
            Message::SuccessRequest {
                ms_id: 3,
                message: b"S=407A5589115FD0D6209F510FE9C04566932CDA56 M=ok",
            },
            Message::FailureRequest {
                ms_id: 3,
                message: b"E=691 R=0 V=3",
            },
        ];
        for m in msgs {
            let request = !matches!(m, Message::Response { .. });
            let b = m.emit();
            assert_eq!(
                usize::from(u16::from_be_bytes([b[2], b[3]])),
                b.len(),
                "MS-Length"
            );
            assert_eq!(Message::parse(request, &b).unwrap(), m);
        }
        assert_eq!(
            Message::parse(false, &Message::SuccessResponse.emit()).unwrap(),
            Message::SuccessResponse
        );
        assert_eq!(
            Message::parse(false, &Message::FailureResponse.emit()).unwrap(),
            Message::FailureResponse
        );
    }

    #[test]
    fn rejects_malformed_messages() {
        assert!(Message::parse(true, &[]).is_err());
        assert!(Message::parse(true, &[OP_CHALLENGE, 1, 0]).is_err());
        assert!(Message::parse(true, &[OP_CHALLENGE, 1, 0, 5, 15]).is_err());
        let mut short = vec![OP_CHALLENGE, 1, 0, 20, 16];
        short.extend_from_slice(&[0; 15]);
        assert!(Message::parse(true, &short).is_err());
        // A Response needs a Name and the full 49-octet Value.
        let mut r = vec![OP_RESPONSE, 1, 0, 54, 49];
        r.extend_from_slice(&[0; 49]);
        assert!(Message::parse(false, &r).is_err());
        r.push(b'x');
        assert!(Message::parse(false, &r).is_ok());
        r[4] = 48;
        assert!(Message::parse(false, &r).is_err());
        // A peer does not send a Challenge; a server no Response.
        assert!(Message::parse(false, &short).is_err());
        assert!(Message::parse(true, &[OP_CHANGE_PASSWORD, 1, 0, 4]).is_err());
        assert!(Message::parse(true, &[9, 1, 0, 4]).is_err());
        assert_eq!(parse_success_message(b"S=12"), None);
        assert_eq!(parse_success_message(b"M=no"), None);
        assert_eq!(failure_code(b"E=691 R=0 C=00 V=3 M=x"), Some(691));
        assert_eq!(failure_code(b"garbage"), None);
    }

    #[test]
    fn message_parse_never_panics() {
        // Every prefix of well-formed messages, each with every octet flipped.
        let full = Message::Response {
            ms_id: 1,
            peer_challenge: [7; 16],
            nt_response: [9; 24],
            name: b"someone",
        }
        .emit();
        for n in 0..=full.len() {
            for i in 0..n {
                let mut b = full[..n].to_vec();
                b[i] ^= 0xff;
                let _ = Message::parse(false, &b);
                let _ = Message::parse(true, &b);
            }
            let _ = Message::parse(false, &full[..n]);
            let _ = Message::parse(true, &full[..n]);
        }
    }
}
