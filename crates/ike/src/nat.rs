//! NAT detection (RFC 7296 §2.23): SHA-1 over the SPIs and an address/port.
use std::net::{IpAddr, SocketAddr};

use oxisec_crypto::hash::sha1;
use oxisec_wire::{NotifyPayload, NotifyType, Payload};

/// The NAT_DETECTION_*_IP hash for `addr` under the SPIs as they appear in the header.
pub(crate) fn nat_hash(spi_i: u64, spi_r: u64, addr: SocketAddr) -> [u8; 20] {
    let ip: Vec<u8> = match addr.ip() {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    };
    sha1(&[
        &spi_i.to_be_bytes(),
        &spi_r.to_be_bytes(),
        &ip,
        &addr.port().to_be_bytes(),
    ])
}

/// The two NAT detection notifies we send. With `fake_source` the source hash
/// is computed over an address no packet can come from, so the peer believes
/// we are behind a NAT and both sides use UDP encapsulation (strongSwan's
/// `encap = yes` does the same).
pub(crate) fn notifies(
    spi_i: u64,
    spi_r: u64,
    local: SocketAddr,
    remote: SocketAddr,
    fake_source: bool,
) -> [Payload; 2] {
    let source = if fake_source {
        let unreachable: SocketAddr = match local {
            SocketAddr::V4(_) => "0.0.0.0:0".parse().expect("literal"),
            SocketAddr::V6(_) => "[::]:0".parse().expect("literal"),
        };
        nat_hash(spi_i, spi_r, unreachable)
    } else {
        nat_hash(spi_i, spi_r, local)
    };
    [
        Payload::Notify(NotifyPayload::new(
            NotifyType::NAT_DETECTION_SOURCE_IP,
            source.to_vec(),
        )),
        Payload::Notify(NotifyPayload::new(
            NotifyType::NAT_DETECTION_DESTINATION_IP,
            nat_hash(spi_i, spi_r, remote).to_vec(),
        )),
    ]
}

/// What the peer's NAT detection notifies tell us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct NatResult {
    /// The peer supports NAT traversal (sent both notifies).
    pub supported: bool,
    /// The peer's address as we see it differs from what it hashed: a NAT in front of it.
    pub remote_behind: bool,
    /// Our address as the peer saw it differs from ours: a NAT in front of us.
    pub local_behind: bool,
}

/// Evaluates the peer's NAT detection notifies. `local`/`remote` are the
/// addresses of the datagram as received.
pub(crate) fn evaluate(
    payloads: &[Payload],
    spi_i: u64,
    spi_r: u64,
    local: SocketAddr,
    remote: SocketAddr,
) -> NatResult {
    let mut sources = Vec::new();
    let mut dest = None;
    for p in payloads {
        if let Payload::Notify(n) = p {
            if n.ty == NotifyType::NAT_DETECTION_SOURCE_IP {
                sources.push(n.data.as_slice());
            } else if n.ty == NotifyType::NAT_DETECTION_DESTINATION_IP {
                dest = Some(n.data.as_slice());
            }
        }
    }
    let Some(dest) = dest else {
        return NatResult::default();
    };
    if sources.is_empty() {
        return NatResult::default();
    }
    let remote_hash = nat_hash(spi_i, spi_r, remote);
    let local_hash = nat_hash(spi_i, spi_r, local);
    NatResult {
        supported: true,
        remote_behind: !sources.iter().any(|s| *s == remote_hash),
        local_behind: dest != local_hash,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_nat_on_either_side_and_fakes_on_request() {
        let a: SocketAddr = "192.0.2.1:500".parse().unwrap();
        let b: SocketAddr = "192.0.2.2:500".parse().unwrap();
        let honest = notifies(1, 0, a, b, false);
        let r = evaluate(&honest, 1, 0, b, a);
        assert_eq!(
            r,
            NatResult {
                supported: true,
                remote_behind: false,
                local_behind: false
            }
        );
        // Seen from a NAT'ed source address/port.
        let natted: SocketAddr = "198.51.100.7:31000".parse().unwrap();
        let r = evaluate(&honest, 1, 0, b, natted);
        assert!(r.remote_behind && !r.local_behind);
        // We are reached under another address than we think.
        let r = evaluate(&honest, 1, 0, "203.0.113.9:500".parse().unwrap(), a);
        assert!(r.local_behind);
        let fake = notifies(1, 0, a, b, true);
        assert!(evaluate(&fake, 1, 0, b, a).remote_behind);
        assert!(!evaluate(&[], 1, 0, b, a).supported);
    }
}
