//! RADIUS client for EAP pass-through (`remote_auth = "eap-radius"`): the
//! packet codec of RFC 2865 with the EAP attributes of RFC 3579, the
//! MS-MPPE keys of RFC 2548 that carry the MSK, and an async client that
//! retransmits and fails over between servers.
//!
//! The gateway is the NAS. Every Access-Request carries the client's EAP
//! message in EAP-Message attributes (split at 253 octets) and a
//! Message-Authenticator (HMAC-MD5 over the packet, RFC 3579 §3.2); the
//! State of the last Access-Challenge is echoed. An answer is believed only
//! if it matches our request's Identifier, its Response Authenticator
//! verifies and its Message-Authenticator verifies; anything else is
//! dropped as if it never came (a spoofed packet must not end a
//! conversation). Every length is checked against the real buffer, and
//! a packet that is not well-formed fails with a [`RadiusError`], never a
//! panic.
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use md5::{Digest, Md5};
use oxisec_crypto::{Rng, Secret, SystemRng};
use subtle::ConstantTimeEq;

/// Packet codes (RFC 2865 §3).
pub mod code {
    pub const ACCESS_REQUEST: u8 = 1;
    pub const ACCESS_ACCEPT: u8 = 2;
    pub const ACCESS_REJECT: u8 = 3;
    pub const ACCESS_CHALLENGE: u8 = 11;
}

/// Attribute types (RFC 2865 §5, RFC 2869, RFC 3579).
pub mod attr {
    pub const USER_NAME: u8 = 1;
    pub const NAS_IP_ADDRESS: u8 = 4;
    pub const SERVICE_TYPE: u8 = 6;
    pub const FILTER_ID: u8 = 11;
    pub const FRAMED_MTU: u8 = 12;
    pub const REPLY_MESSAGE: u8 = 18;
    pub const STATE: u8 = 24;
    pub const CLASS: u8 = 25;
    pub const VENDOR_SPECIFIC: u8 = 26;
    pub const CALLED_STATION_ID: u8 = 30;
    pub const CALLING_STATION_ID: u8 = 31;
    pub const NAS_IDENTIFIER: u8 = 32;
    pub const NAS_PORT_TYPE: u8 = 61;
    pub const EAP_MESSAGE: u8 = 79;
    pub const MESSAGE_AUTHENTICATOR: u8 = 80;
    pub const NAS_IPV6_ADDRESS: u8 = 95;
}

/// Microsoft's vendor id and its MPPE key attributes (RFC 2548 §2.4).
const VENDOR_MICROSOFT: u32 = 311;
const MS_MPPE_SEND_KEY: u8 = 16;
const MS_MPPE_RECV_KEY: u8 = 17;

/// Fixed header: Code, Identifier, Length, Authenticator.
const HEADER: usize = 20;
/// RFC 2865 §3: the largest packet.
pub const MAX_PACKET: usize = 4096;
/// Octets of one attribute's value.
const MAX_VALUE: usize = 253;
/// Service-Type Framed (2), NAS-Port-Type Virtual (5).
const FRAMED: u32 = 2;
const VIRTUAL: u32 = 5;
/// Framed-MTU we announce, so that the server keeps its EAP packets (e.g.
/// EAP-TLS fragments) small enough for IKE messages.
const FRAMED_MTU: u32 = 1100;

/// Why a RADIUS packet was refused or could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RadiusError {
    #[error("RADIUS packet shorter than its header or its Length field")]
    Truncated,
    #[error("RADIUS Length field {0} out of range")]
    BadLength(u16),
    #[error("RADIUS attribute {0} with length {1}")]
    BadAttribute(u8, u8),
    #[error("unexpected RADIUS code {0}")]
    UnexpectedCode(u8),
    #[error("RADIUS answer with identifier {got}, expected {want}")]
    WrongIdentifier { got: u8, want: u8 },
    #[error("RADIUS Response Authenticator does not verify (wrong shared secret?)")]
    BadResponseAuthenticator,
    #[error("RADIUS answer without Message-Authenticator")]
    MissingMessageAuthenticator,
    #[error("RADIUS Message-Authenticator does not verify")]
    BadMessageAuthenticator,
    #[error("malformed MS-MPPE key attribute")]
    BadMppeKey,
    #[error("Access-Request would exceed 4096 octets")]
    TooLong,
    #[error("{0}")]
    Io(String),
    #[error("no RADIUS server answered ({0})")]
    NoAnswer(String),
}

/// What an Access-Request carries besides the EAP message.
#[derive(Debug, Clone)]
pub struct RequestAttrs<'a> {
    /// User-Name: the EAP identity.
    pub user_name: &'a str,
    /// The client's EAP message.
    pub eap: &'a [u8],
    /// The State of the last Access-Challenge of this conversation.
    pub state: Option<&'a [u8]>,
    /// NAS-IP-Address / NAS-IPv6-Address: the gateway's address the
    /// client talks to.
    pub nas_ip: Option<IpAddr>,
    pub nas_identifier: &'a str,
    /// Called-Station-Id: our IKE endpoint; Calling-Station-Id: the
    /// client's (RFC 3580 style "address[port]").
    pub called: &'a str,
    pub calling: &'a str,
}

fn push_attr(out: &mut Vec<u8>, ty: u8, value: &[u8]) {
    debug_assert!(value.len() <= MAX_VALUE);
    let value = &value[..value.len().min(MAX_VALUE)];
    out.push(ty);
    out.push((value.len() + 2) as u8);
    out.extend_from_slice(value);
}

fn hmac_md5(secret: &[u8], parts: &[&[u8]]) -> [u8; 16] {
    // HMAC accepts keys of any length.
    let mut m = <Hmac<Md5> as KeyInit>::new_from_slice(secret).expect("HMAC takes any key length");
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

fn md5(parts: &[&[u8]]) -> [u8; 16] {
    let mut h = Md5::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// An Access-Request with identifier `id` and Request Authenticator
/// `authenticator` (16 random octets, RFC 2865 §3).
pub fn access_request(
    id: u8,
    authenticator: &[u8; 16],
    secret: &[u8],
    a: &RequestAttrs<'_>,
) -> Result<Vec<u8>, RadiusError> {
    let mut out = Vec::with_capacity(HEADER + a.eap.len() + 128);
    out.extend_from_slice(&[code::ACCESS_REQUEST, id, 0, 0]);
    out.extend_from_slice(authenticator);
    let name = a.user_name.as_bytes();
    push_attr(
        &mut out,
        attr::USER_NAME,
        &name[..name.len().min(MAX_VALUE)],
    );
    match a.nas_ip {
        Some(IpAddr::V4(ip)) => push_attr(&mut out, attr::NAS_IP_ADDRESS, &ip.octets()),
        Some(IpAddr::V6(ip)) => push_attr(&mut out, attr::NAS_IPV6_ADDRESS, &ip.octets()),
        None => {}
    }
    if !a.nas_identifier.is_empty() {
        let n = a.nas_identifier.as_bytes();
        push_attr(&mut out, attr::NAS_IDENTIFIER, &n[..n.len().min(MAX_VALUE)]);
    }
    push_attr(&mut out, attr::SERVICE_TYPE, &FRAMED.to_be_bytes());
    push_attr(&mut out, attr::NAS_PORT_TYPE, &VIRTUAL.to_be_bytes());
    push_attr(&mut out, attr::FRAMED_MTU, &FRAMED_MTU.to_be_bytes());
    for (ty, s) in [
        (attr::CALLED_STATION_ID, a.called),
        (attr::CALLING_STATION_ID, a.calling),
    ] {
        if !s.is_empty() {
            push_attr(&mut out, ty, &s.as_bytes()[..s.len().min(MAX_VALUE)]);
        }
    }
    if a.eap.is_empty() {
        return Err(RadiusError::TooLong);
    }
    for chunk in a.eap.chunks(MAX_VALUE) {
        push_attr(&mut out, attr::EAP_MESSAGE, chunk);
    }
    if let Some(state) = a.state {
        // State is at most one attribute (we only echo what fit in one).
        push_attr(&mut out, attr::STATE, &state[..state.len().min(MAX_VALUE)]);
    }
    let ma_at = out.len() + 2;
    push_attr(&mut out, attr::MESSAGE_AUTHENTICATOR, &[0; 16]);
    if out.len() > MAX_PACKET {
        return Err(RadiusError::TooLong);
    }
    let len = (out.len() as u16).to_be_bytes();
    out[2..4].copy_from_slice(&len);
    // RFC 3579 §3.2: HMAC-MD5 over the whole packet, this field zero.
    let ma = hmac_md5(secret, &[&out]);
    out[ma_at..ma_at + 16].copy_from_slice(&ma);
    Ok(out)
}

/// The kind of answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Challenge,
    Accept,
    Reject,
}

/// A verified answer to our Access-Request.
#[derive(Debug)]
pub struct Answer {
    pub verdict: Verdict,
    /// The EAP-Message attributes, joined.
    pub eap: Option<Vec<u8>>,
    pub state: Option<Vec<u8>>,
    /// MS-MPPE-Recv-Key || MS-MPPE-Send-Key, decrypted: the MSK, as
    /// RFC 5216 §2.3 maps an EAP method's MSK onto the two attributes
    /// (and strongSwan's eap-radius reads it back). Redacted in Debug.
    pub msk: Option<Secret>,
    /// Reply-Message text, printable, for the log.
    pub reply_message: Option<String>,
    /// The user's groups: the text of each Class (RFC 2865 §5.25) and
    /// Filter-Id (§5.11) attribute, in packet order (what strongSwan's
    /// eap-radius `class_group` / `filter_id` read). Values that are not
    /// printable UTF-8 of 1 to 64 characters are skipped (a server may use
    /// Class for opaque accounting state); at most 16.
    pub groups: Vec<String>,
}

/// Most groups taken from one answer, and the longest group name.
const MAX_GROUPS: usize = 16;
const MAX_GROUP_LEN: usize = 64;

/// A Class or Filter-Id value as a group name, if it is one.
fn group_name(value: &[u8]) -> Option<String> {
    // Some servers terminate strings with NUL.
    let text = std::str::from_utf8(value)
        .ok()?
        .trim_end_matches('\0')
        .trim();
    (!text.is_empty() && text.len() <= MAX_GROUP_LEN && !text.chars().any(char::is_control))
        .then(|| text.to_string())
}

/// The attributes of a packet as (type, value) pairs, every length checked.
fn attributes(mut b: &[u8]) -> Result<Vec<(u8, &[u8])>, RadiusError> {
    let mut v = Vec::new();
    while !b.is_empty() {
        let [ty, len, ..] = *b else {
            return Err(RadiusError::Truncated);
        };
        if len < 2 {
            return Err(RadiusError::BadAttribute(ty, len));
        }
        let value = b
            .get(2..usize::from(len))
            .ok_or(RadiusError::BadAttribute(ty, len))?;
        v.push((ty, value));
        b = &b[usize::from(len)..];
    }
    Ok(v)
}

/// Checks and decodes an answer to the request `(id, request_auth)`.
/// Octets after the Length field are padding to be ignored (RFC 2865 §3).
pub fn decode_answer(
    b: &[u8],
    id: u8,
    request_auth: &[u8; 16],
    secret: &[u8],
) -> Result<Answer, RadiusError> {
    let [code, got_id, l0, l1, ..] = *b else {
        return Err(RadiusError::Truncated);
    };
    let length = u16::from_be_bytes([l0, l1]);
    if usize::from(length) < HEADER || usize::from(length) > MAX_PACKET {
        return Err(RadiusError::BadLength(length));
    }
    let pkt = b.get(..usize::from(length)).ok_or(RadiusError::Truncated)?;
    let verdict = match code {
        code::ACCESS_ACCEPT => Verdict::Accept,
        code::ACCESS_REJECT => Verdict::Reject,
        code::ACCESS_CHALLENGE => Verdict::Challenge,
        other => return Err(RadiusError::UnexpectedCode(other)),
    };
    if got_id != id {
        return Err(RadiusError::WrongIdentifier {
            got: got_id,
            want: id,
        });
    }
    let attrs_raw = &pkt[HEADER..];
    // RFC 2865 §3: MD5(Code+ID+Length+RequestAuth+Attributes+Secret).
    let expect = md5(&[&pkt[..4], request_auth, attrs_raw, secret]);
    if !bool::from(expect.ct_eq(&pkt[4..HEADER])) {
        return Err(RadiusError::BadResponseAuthenticator);
    }
    let attrs = attributes(attrs_raw)?;
    // RFC 3579 §3.2: computed with the Request Authenticator in the header
    // and the attribute's value zeroed. Required: we always send EAP.
    let mut ma_at = None;
    let mut off = HEADER;
    for (ty, value) in &attrs {
        if *ty == attr::MESSAGE_AUTHENTICATOR {
            if value.len() != 16 || ma_at.is_some() {
                return Err(RadiusError::BadAttribute(*ty, (value.len() + 2) as u8));
            }
            ma_at = Some(off + 2);
        }
        off += value.len() + 2;
    }
    let ma_at = ma_at.ok_or(RadiusError::MissingMessageAuthenticator)?;
    let mut copy = pkt.to_vec();
    copy[4..HEADER].copy_from_slice(request_auth);
    copy[ma_at..ma_at + 16].fill(0);
    let ma = hmac_md5(secret, &[&copy]);
    if !bool::from(ma.ct_eq(&pkt[ma_at..ma_at + 16])) {
        return Err(RadiusError::BadMessageAuthenticator);
    }
    let mut eap: Option<Vec<u8>> = None;
    let mut state = None;
    let mut reply: Option<String> = None;
    let (mut recv, mut send) = (None, None);
    let mut groups: Vec<String> = Vec::new();
    for (ty, value) in attrs {
        match ty {
            attr::CLASS | attr::FILTER_ID => {
                if let Some(g) = group_name(value)
                    && groups.len() < MAX_GROUPS
                    && !groups.contains(&g)
                {
                    groups.push(g);
                }
            }
            attr::EAP_MESSAGE => eap.get_or_insert_with(Vec::new).extend_from_slice(value),
            attr::STATE => state = Some(value.to_vec()),
            attr::REPLY_MESSAGE => {
                let text = String::from_utf8_lossy(value).escape_debug().to_string();
                match &mut reply {
                    Some(r) => r.push_str(&text),
                    None => reply = Some(text),
                }
            }
            attr::VENDOR_SPECIFIC => {
                let Some((vendor, rest)) = value.split_first_chunk::<4>() else {
                    continue;
                };
                if u32::from_be_bytes(*vendor) != VENDOR_MICROSOFT {
                    continue;
                }
                // One or more vendor sub-attributes: type, length, value.
                for (vt, vv) in attributes(rest)? {
                    match vt {
                        MS_MPPE_RECV_KEY => recv = Some(decrypt_mppe(vv, request_auth, secret)?),
                        MS_MPPE_SEND_KEY => send = Some(decrypt_mppe(vv, request_auth, secret)?),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    let msk = match (recv, send) {
        (Some(r), Some(s)) => {
            let mut m = Vec::with_capacity(r.len() + s.len());
            m.extend_from_slice(r.as_bytes());
            m.extend_from_slice(s.as_bytes());
            Some(Secret::new(m))
        }
        _ => None,
    };
    Ok(Answer {
        verdict,
        eap,
        state,
        msk,
        reply_message: reply,
        groups,
    })
}

/// Decrypts an MS-MPPE-Send/Recv-Key value (RFC 2548 §2.4.2): Salt (2
/// octets, high bit set), then 16-octet blocks c(i) = p(i) xor b(i) with
/// b(1) = MD5(secret + RequestAuthenticator + Salt) and b(i) =
/// MD5(secret + c(i-1)). The plaintext is Key-Length, the key, padding.
pub fn decrypt_mppe(
    v: &[u8],
    request_auth: &[u8; 16],
    secret: &[u8],
) -> Result<Secret, RadiusError> {
    let (salt, c) = v.split_first_chunk::<2>().ok_or(RadiusError::BadMppeKey)?;
    if salt[0] & 0x80 == 0 || c.is_empty() || c.len() % 16 != 0 {
        return Err(RadiusError::BadMppeKey);
    }
    let mut plain = zeroize::Zeroizing::new(Vec::with_capacity(c.len()));
    let mut b = md5(&[secret, request_auth, salt]);
    for block in c.chunks_exact(16) {
        plain.extend(block.iter().zip(b).map(|(x, k)| x ^ k));
        b = md5(&[secret, block]);
    }
    let (&len, rest) = plain.split_first().ok_or(RadiusError::BadMppeKey)?;
    let key = rest
        .get(..usize::from(len))
        .ok_or(RadiusError::BadMppeKey)?;
    if key.is_empty() {
        return Err(RadiusError::BadMppeKey);
    }
    Ok(Secret::from_slice(key))
}

/// Encrypts a key the way [`decrypt_mppe`] undoes it (what a RADIUS
/// server does); for tests and test servers.
pub fn encrypt_mppe(key: &[u8], salt: [u8; 2], request_auth: &[u8; 16], secret: &[u8]) -> Vec<u8> {
    let mut plain = vec![key.len() as u8];
    plain.extend_from_slice(key);
    while plain.len() % 16 != 0 {
        plain.push(0);
    }
    let mut out = salt.to_vec();
    let mut b = md5(&[secret, request_auth, &salt]);
    for block in plain.chunks_exact(16) {
        let c: Vec<u8> = block.iter().zip(b).map(|(x, k)| x ^ k).collect();
        b = md5(&[secret, &c]);
        out.extend_from_slice(&c);
    }
    out
}

/// Builds an answer as a RADIUS server would (for tests and test
/// servers): `attrs` as (type, value) pairs, then a Message-Authenticator
/// and the Response Authenticator.
pub fn encode_answer(
    code: u8,
    id: u8,
    request_auth: &[u8; 16],
    secret: &[u8],
    attrs: &[(u8, Vec<u8>)],
) -> Vec<u8> {
    let mut out = vec![code, id, 0, 0];
    out.extend_from_slice(request_auth);
    for (ty, v) in attrs {
        push_attr(&mut out, *ty, v);
    }
    let ma_at = out.len() + 2;
    push_attr(&mut out, attr::MESSAGE_AUTHENTICATOR, &[0; 16]);
    let len = (out.len() as u16).to_be_bytes();
    out[2..4].copy_from_slice(&len);
    let ma = hmac_md5(secret, &[&out]);
    out[ma_at..ma_at + 16].copy_from_slice(&ma);
    let ra = md5(&[&out, secret]);
    out[4..HEADER].copy_from_slice(&ra);
    out
}

/// A Microsoft vendor attribute value holding one sub-attribute.
pub fn ms_vendor_attr(vendor_type: u8, value: &[u8]) -> Vec<u8> {
    let mut v = VENDOR_MICROSOFT.to_be_bytes().to_vec();
    v.push(vendor_type);
    v.push((value.len() + 2) as u8);
    v.extend_from_slice(value);
    v
}

/// The MS-MPPE-Recv-Key and -Send-Key attributes for an MSK (recv = first
/// half), as a server sends them.
pub fn mppe_attrs(msk: &[u8], request_auth: &[u8; 16], secret: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let (r, s) = msk.split_at(msk.len() / 2);
    vec![
        (
            attr::VENDOR_SPECIFIC,
            ms_vendor_attr(
                MS_MPPE_RECV_KEY,
                &encrypt_mppe(r, [0x80, 1], request_auth, secret),
            ),
        ),
        (
            attr::VENDOR_SPECIFIC,
            ms_vendor_attr(
                MS_MPPE_SEND_KEY,
                &encrypt_mppe(s, [0x80, 2], request_auth, secret),
            ),
        ),
    ]
}

/// Where and how to reach the RADIUS servers.
#[derive(Clone)]
pub struct ClientConfig {
    /// Tried in order; the next one when one does not answer.
    pub servers: Vec<SocketAddr>,
    pub secret: Secret,
    pub nas_identifier: String,
    /// Wait for an answer before retransmitting.
    pub timeout: Duration,
    /// Sends per server (first one included).
    pub tries: u32,
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("servers", &self.servers)
            .field("secret", &"[REDACTED]")
            .field("nas_identifier", &self.nas_identifier)
            .field("timeout", &self.timeout)
            .field("tries", &self.tries)
            .finish()
    }
}

impl ClientConfig {
    /// Defaults: 3 s per try, 7 tries per server (about 20 s, room for a
    /// push MFA approval); the configuration keeps servers × wait within
    /// the engine's `RELAY_TIMEOUT`.
    pub fn new(servers: Vec<SocketAddr>, secret: Secret) -> ClientConfig {
        ClientConfig {
            servers,
            secret,
            nas_identifier: "oxisec".into(),
            timeout: Duration::from_secs(3),
            tries: 7,
        }
    }
}

/// One Access-Request/answer exchange: each server in turn, retransmitting
/// the same packet `tries` times (RFC 2865 §2.5: same Identifier and
/// Authenticator), ignoring any datagram that is not a verified answer.
pub async fn exchange(cfg: &ClientConfig, a: &RequestAttrs<'_>) -> Result<Answer, RadiusError> {
    let mut errors = Vec::new();
    for server in &cfg.servers {
        let mut rnd = [0u8; 17];
        SystemRng.fill(&mut rnd);
        let id = rnd[0];
        let mut auth = [0u8; 16];
        auth.copy_from_slice(&rnd[1..]);
        let pkt = access_request(id, &auth, cfg.secret.as_bytes(), a)?;
        let bind: SocketAddr = if server.is_ipv4() {
            "0.0.0.0:0".parse().expect("literal")
        } else {
            "[::]:0".parse().expect("literal")
        };
        let sock = tokio::net::UdpSocket::bind(bind)
            .await
            .map_err(|e| RadiusError::Io(format!("RADIUS socket: {e}")))?;
        if let Err(e) = sock.connect(server).await {
            errors.push(format!("{server}: {e}"));
            continue;
        }
        let mut buf = vec![0u8; MAX_PACKET];
        'tries: for _ in 0..cfg.tries.max(1) {
            if let Err(e) = sock.send(&pkt).await {
                errors.push(format!("{server}: {e}"));
                break 'tries;
            }
            let deadline = tokio::time::Instant::now() + cfg.timeout;
            loop {
                let n = match tokio::time::timeout_at(deadline, sock.recv(&mut buf)).await {
                    Err(_) => continue 'tries,
                    Ok(Err(e)) => {
                        // ICMP port unreachable and the like: next server.
                        errors.push(format!("{server}: {e}"));
                        break 'tries;
                    }
                    Ok(Ok(n)) => n,
                };
                match decode_answer(&buf[..n], id, &auth, cfg.secret.as_bytes()) {
                    Ok(answer) => return Ok(answer),
                    Err(e) => {
                        tracing::debug!(server = %server, "ignoring a RADIUS datagram: {e}");
                    }
                }
            }
        }
        if errors
            .last()
            .is_none_or(|e| !e.starts_with(&server.to_string()))
        {
            errors.push(format!("{server}: no answer"));
        }
        tracing::warn!(server = %server, "RADIUS server did not answer; trying the next one if any");
    }
    Err(RadiusError::NoAnswer(errors.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"testing123";
    const RA: [u8; 16] = [7; 16];

    fn request(eap: &[u8], state: Option<&[u8]>) -> Vec<u8> {
        let a = RequestAttrs {
            user_name: "alice",
            eap,
            state,
            nas_ip: Some("192.0.2.1".parse().unwrap()),
            nas_identifier: "gw",
            called: "192.0.2.1[4500]",
            calling: "198.51.100.7[4500]",
        };
        access_request(9, &RA, SECRET, &a).unwrap()
    }

    #[test]
    fn access_request_splits_eap_and_signs() {
        let eap: Vec<u8> = (0..600u32).map(|i| i as u8).collect();
        let p = request(&eap, Some(b"st"));
        assert_eq!(p[0], code::ACCESS_REQUEST);
        assert_eq!(usize::from(u16::from_be_bytes([p[2], p[3]])), p.len());
        let attrs = attributes(&p[HEADER..]).unwrap();
        let eaps: Vec<usize> = attrs
            .iter()
            .filter(|(t, _)| *t == attr::EAP_MESSAGE)
            .map(|(_, v)| v.len())
            .collect();
        assert_eq!(eaps, [253, 253, 94]);
        let joined: Vec<u8> = attrs
            .iter()
            .filter(|(t, _)| *t == attr::EAP_MESSAGE)
            .flat_map(|(_, v)| v.iter().copied())
            .collect();
        assert_eq!(joined, eap);
        assert!(attrs.contains(&(attr::USER_NAME, &b"alice"[..])));
        assert!(attrs.contains(&(attr::STATE, &b"st"[..])));
        assert!(attrs.contains(&(attr::NAS_IP_ADDRESS, &[192, 0, 2, 1][..])));
        // The Message-Authenticator verifies over the packet with it zeroed.
        let (ty, ma) = attrs.last().unwrap();
        assert_eq!(*ty, attr::MESSAGE_AUTHENTICATOR);
        let mut z = p.clone();
        let at = p.len() - 16;
        z[at..].fill(0);
        assert_eq!(&hmac_md5(SECRET, &[&z])[..], *ma);
    }

    #[test]
    fn hmac_md5_rfc2202_vector() {
        // RFC 2202 test case 2.
        let m = hmac_md5(b"Jefe", &[b"what do ya want for nothing?"]);
        assert_eq!(hex::encode(m), "750c783e6ab0b503eaa86e310a5db738");
    }

    #[test]
    fn accept_with_keys_round_trips() {
        let msk: Vec<u8> = (0..64).collect();
        let mut attrs = vec![(attr::EAP_MESSAGE, vec![3, 5, 0, 4])];
        attrs.extend(mppe_attrs(&msk, &RA, SECRET));
        let p = encode_answer(code::ACCESS_ACCEPT, 9, &RA, SECRET, &attrs);
        let a = decode_answer(&p, 9, &RA, SECRET).unwrap();
        assert_eq!(a.verdict, Verdict::Accept);
        assert_eq!(a.eap.as_deref(), Some(&[3, 5, 0, 4][..]));
        assert_eq!(a.msk.unwrap().as_bytes(), &msk[..]);
        let shown = format!("{:?}", decode_answer(&p, 9, &RA, SECRET).unwrap());
        assert!(!shown.contains("63"), "the MSK stays out of Debug: {shown}");
    }

    #[test]
    fn accept_carries_class_and_filter_id_as_groups() {
        let mut attrs = vec![
            (attr::CLASS, b"staff".to_vec()),
            // Opaque accounting state, not a name: skipped.
            (attr::CLASS, vec![0x00, 0xff, 0x10]),
            (attr::FILTER_ID, b"vpn-admins\0".to_vec()),
            (attr::CLASS, b"staff".to_vec()),
            (attr::FILTER_ID, vec![b'x'; 65]),
            (attr::CLASS, b"line\nbreak".to_vec()),
        ];
        attrs.extend((0..20).map(|i| (attr::CLASS, format!("g{i}").into_bytes())));
        let p = encode_answer(code::ACCESS_ACCEPT, 9, &RA, SECRET, &attrs);
        let a = decode_answer(&p, 9, &RA, SECRET).unwrap();
        assert_eq!(a.groups.len(), 16);
        assert_eq!(a.groups[..3], ["staff", "vpn-admins", "g0"]);
        let none = encode_answer(code::ACCESS_ACCEPT, 9, &RA, SECRET, &[]);
        assert!(
            decode_answer(&none, 9, &RA, SECRET)
                .unwrap()
                .groups
                .is_empty()
        );
    }

    #[test]
    fn challenge_joins_eap_and_keeps_state() {
        let big: Vec<u8> = vec![0xab; 400];
        let attrs = vec![
            (attr::EAP_MESSAGE, big[..253].to_vec()),
            (attr::EAP_MESSAGE, big[253..].to_vec()),
            (attr::STATE, b"conv-1".to_vec()),
            (attr::REPLY_MESSAGE, b"Enter\ncode".to_vec()),
        ];
        let p = encode_answer(code::ACCESS_CHALLENGE, 9, &RA, SECRET, &attrs);
        let a = decode_answer(&p, 9, &RA, SECRET).unwrap();
        assert_eq!(a.verdict, Verdict::Challenge);
        assert_eq!(a.eap.unwrap(), big);
        assert_eq!(a.state.unwrap(), b"conv-1");
        assert_eq!(a.reply_message.unwrap(), "Enter\\ncode");
        assert!(a.msk.is_none());
    }

    #[test]
    fn rejects_forged_and_broken_answers() {
        let p = encode_answer(code::ACCESS_ACCEPT, 9, &RA, SECRET, &[]);
        assert_eq!(
            decode_answer(&p, 9, &RA, b"wrong").unwrap_err(),
            RadiusError::BadResponseAuthenticator
        );
        assert_eq!(
            decode_answer(&p, 8, &RA, SECRET).unwrap_err(),
            RadiusError::WrongIdentifier { got: 9, want: 8 }
        );
        assert_eq!(
            decode_answer(&p, 9, &[8; 16], SECRET).unwrap_err(),
            RadiusError::BadResponseAuthenticator
        );
        // A Message-Authenticator that does not verify, with the Response
        // Authenticator fixed up (an attacker who knows neither cannot,
        // but a server with a different secret for one of them can).
        let mut q = p.clone();
        let n = q.len();
        q[n - 1] ^= 1;
        q[4..20].copy_from_slice(&RA);
        let ra = md5(&[&q, SECRET]);
        q[4..20].copy_from_slice(&ra);
        assert_eq!(
            decode_answer(&q, 9, &RA, SECRET).unwrap_err(),
            RadiusError::BadMessageAuthenticator
        );
        // No Message-Authenticator at all.
        let mut r = vec![code::ACCESS_REJECT, 9, 0, 20];
        r.extend_from_slice(&RA);
        let ra = md5(&[&r, SECRET]);
        r[4..20].copy_from_slice(&ra);
        assert_eq!(
            decode_answer(&r, 9, &RA, SECRET).unwrap_err(),
            RadiusError::MissingMessageAuthenticator
        );
        assert_eq!(
            decode_answer(&[], 9, &RA, SECRET).unwrap_err(),
            RadiusError::Truncated
        );
        assert_eq!(
            decode_answer(&[2, 9, 0, 19], 9, &RA, SECRET).unwrap_err(),
            RadiusError::BadLength(19)
        );
        assert_eq!(
            decode_answer(&[2, 9, 0x20, 0], 9, &RA, SECRET).unwrap_err(),
            RadiusError::BadLength(0x2000)
        );
        assert_eq!(
            decode_answer(&[2, 9, 0, 30, 0], 9, &RA, SECRET).unwrap_err(),
            RadiusError::Truncated
        );
        let mut req = request(&[2, 1, 0, 5, 1], None);
        req[1] = 9;
        assert_eq!(
            decode_answer(&req, 9, &RA, SECRET).unwrap_err(),
            RadiusError::UnexpectedCode(1)
        );
    }

    #[test]
    fn rejects_bad_attribute_lengths_after_authentication() {
        // A server with the right secret but a broken attribute list.
        let mut p = vec![code::ACCESS_REJECT, 9, 0, 23];
        p.extend_from_slice(&RA);
        p.extend_from_slice(&[attr::STATE, 1, 0]);
        let ra = md5(&[&p, SECRET]);
        p[4..20].copy_from_slice(&ra);
        assert_eq!(
            decode_answer(&p, 9, &RA, SECRET).unwrap_err(),
            RadiusError::BadAttribute(attr::STATE, 1)
        );
    }

    #[test]
    fn mppe_key_round_trip_and_rejects() {
        let key = [0x42u8; 32];
        let c = encrypt_mppe(&key, [0x81, 0x23], &RA, SECRET);
        assert_eq!(c.len(), 2 + 48);
        assert_eq!(decrypt_mppe(&c, &RA, SECRET).unwrap().as_bytes(), &key);
        // Salt without the high bit, ragged length, length beyond the data.
        let mut bad = c.clone();
        bad[0] = 0x01;
        assert!(matches!(
            decrypt_mppe(&bad, &RA, SECRET),
            Err(RadiusError::BadMppeKey)
        ));
        assert!(decrypt_mppe(&c[..c.len() - 1], &RA, SECRET).is_err());
        assert!(decrypt_mppe(&c[..2], &RA, SECRET).is_err());
        assert!(decrypt_mppe(&[], &RA, SECRET).is_err());
        let long = encrypt_mppe(&[1; 15], [0x80, 0], &RA, SECRET);
        let mut forged = long.clone();
        // Flip the plaintext length byte to 200: beyond the block.
        forged[2] ^= 15 ^ 200;
        assert!(decrypt_mppe(&forged, &RA, SECRET).is_err());
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Whatever arrives, decoding answers with a value or an
            /// error and never panics.
            #[test]
            fn decode_never_panics(b in proptest::collection::vec(any::<u8>(), 0..600)) {
                let _ = decode_answer(&b, 9, &RA, SECRET);
                let _ = decrypt_mppe(&b, &RA, SECRET);
            }

            /// Arbitrary attributes in an authentic answer decode, and the
            /// EAP message and State come back as sent.
            #[test]
            fn authentic_answers_round_trip(
                eap in proptest::collection::vec(any::<u8>(), 1..253),
                state in proptest::collection::vec(any::<u8>(), 0..253),
                junk in proptest::collection::vec((1u8..79, proptest::collection::vec(any::<u8>(), 0..40)), 0..6),
            ) {
                let mut attrs: Vec<(u8, Vec<u8>)> = junk
                    .into_iter()
                    .filter(|(t, _)| ![attr::EAP_MESSAGE, attr::STATE, attr::VENDOR_SPECIFIC, attr::REPLY_MESSAGE].contains(t))
                    .collect();
                attrs.push((attr::EAP_MESSAGE, eap.clone()));
                attrs.push((attr::STATE, state.clone()));
                let p = encode_answer(code::ACCESS_CHALLENGE, 9, &RA, SECRET, &attrs);
                let a = decode_answer(&p, 9, &RA, SECRET).unwrap();
                prop_assert_eq!(a.eap.unwrap(), eap);
                prop_assert_eq!(a.state.unwrap(), state);
                // Any single flipped bit is caught.
                for i in 0..p.len() {
                    let mut q = p.clone();
                    q[i] ^= 0x10;
                    prop_assert!(decode_answer(&q, 9, &RA, SECRET).is_err());
                }
            }
        }
    }
}
