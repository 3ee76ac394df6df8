//! IKE fragmentation (RFC 7383): reassembly of received Encrypted Fragment
//! payloads. Each fragment is authenticated and decrypted on its own before
//! it is kept, so unauthenticated data never costs memory; the number of
//! fragments, the bytes held and the time a message may take to complete are
//! all bounded, and a message that does not add up is dropped whole.
use std::time::{Duration, Instant};

use oxisec_wire::PayloadType;

/// At most this many fragments per message (Windows sends many small ones).
pub(crate) const MAX_FRAGMENTS: u16 = 32;
/// At most this many plaintext bytes held for one message.
pub(crate) const MAX_BYTES: usize = 64 * 1024;
/// A message whose fragments do not all arrive within this is dropped.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(30);

/// Why a fragment was not accepted.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// More fragments than we accept, or a total that changed.
    Count,
    /// The message would exceed the memory bound.
    TooLarge,
    /// Fragment 1 must name the first inner payload; others must not.
    FirstInner,
}

/// One message being reassembled.
#[derive(Debug)]
pub(crate) struct Reassembly {
    pub msg_id: u32,
    pub response: bool,
    total: u16,
    first_inner: PayloadType,
    parts: Vec<Option<Vec<u8>>>,
    bytes: usize,
    started: Instant,
    /// The datagram that carried fragment 1: a retransmitted request is
    /// recognised by it.
    pub first_datagram: Option<Vec<u8>>,
}

/// A completed message.
pub(crate) struct Complete {
    pub first_inner: PayloadType,
    pub plaintext: Vec<u8>,
    pub first_datagram: Vec<u8>,
}

/// Decrypted IKE payloads are not printed.
impl std::fmt::Debug for Complete {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Complete {{ first_inner: {:?}, {} bytes }}",
            self.first_inner,
            self.plaintext.len()
        )
    }
}

impl Reassembly {
    pub fn new(
        msg_id: u32,
        response: bool,
        total: u16,
        now: Instant,
    ) -> Result<Reassembly, Refused> {
        if total == 0 || total > MAX_FRAGMENTS {
            return Err(Refused::Count);
        }
        Ok(Reassembly {
            msg_id,
            response,
            total,
            first_inner: PayloadType::NONE,
            parts: vec![None; total as usize],
            bytes: 0,
            started: now,
            first_datagram: None,
        })
    }

    pub fn expired(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.started) >= TIMEOUT
    }

    pub fn matches(&self, msg_id: u32, response: bool) -> bool {
        self.msg_id == msg_id && self.response == response
    }

    /// Adds one authenticated, decrypted fragment. Duplicates are ignored.
    /// Returns the whole message once every fragment is there.
    pub fn add(
        &mut self,
        number: u16,
        total: u16,
        first_inner: PayloadType,
        plaintext: Vec<u8>,
        datagram: &[u8],
    ) -> Result<Option<Complete>, Refused> {
        if total != self.total || number == 0 || number > total {
            return Err(Refused::Count);
        }
        if (number == 1) == (first_inner == PayloadType::NONE)
            && !(number == 1 && plaintext.is_empty())
        {
            return Err(Refused::FirstInner);
        }
        let slot = &mut self.parts[usize::from(number - 1)];
        if slot.is_some() {
            return Ok(None);
        }
        if self.bytes + plaintext.len() > MAX_BYTES {
            return Err(Refused::TooLarge);
        }
        self.bytes += plaintext.len();
        *slot = Some(plaintext);
        if number == 1 {
            self.first_inner = first_inner;
            self.first_datagram = Some(datagram.to_vec());
        }
        if self.parts.iter().any(Option::is_none) {
            return Ok(None);
        }
        let plaintext = self
            .parts
            .iter_mut()
            .flat_map(|p| p.take().unwrap_or_default())
            .collect();
        Ok(Some(Complete {
            first_inner: self.first_inner,
            plaintext,
            first_datagram: self.first_datagram.take().unwrap_or_default(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reassembles_in_any_order_and_ignores_duplicates() {
        let now = Instant::now();
        let mut r = Reassembly::new(1, false, 3, now).unwrap();
        assert!(
            r.add(3, 3, PayloadType::NONE, b"ghi".to_vec(), b"d3")
                .unwrap()
                .is_none()
        );
        assert!(
            r.add(3, 3, PayloadType::NONE, b"xxx".to_vec(), b"d3")
                .unwrap()
                .is_none()
        );
        assert!(
            r.add(1, 3, PayloadType::IDI, b"abc".to_vec(), b"d1")
                .unwrap()
                .is_none()
        );
        let done = r
            .add(2, 3, PayloadType::NONE, b"def".to_vec(), b"d2")
            .unwrap()
            .unwrap();
        assert_eq!(done.plaintext, b"abcdefghi");
        assert_eq!(done.first_inner, PayloadType::IDI);
        assert_eq!(done.first_datagram, b"d1");
    }

    #[test]
    fn refuses_what_does_not_add_up() {
        let now = Instant::now();
        assert_eq!(
            Reassembly::new(1, false, 0, now).unwrap_err(),
            Refused::Count
        );
        assert_eq!(
            Reassembly::new(1, false, MAX_FRAGMENTS + 1, now).unwrap_err(),
            Refused::Count
        );
        let mut r = Reassembly::new(1, false, 2, now).unwrap();
        assert_eq!(
            r.add(1, 3, PayloadType::IDI, vec![1], b"").unwrap_err(),
            Refused::Count
        );
        assert_eq!(
            r.add(0, 2, PayloadType::NONE, vec![1], b"").unwrap_err(),
            Refused::Count
        );
        assert_eq!(
            r.add(3, 2, PayloadType::NONE, vec![1], b"").unwrap_err(),
            Refused::Count
        );
        assert_eq!(
            r.add(2, 2, PayloadType::IDI, vec![1], b"").unwrap_err(),
            Refused::FirstInner
        );
        assert_eq!(
            r.add(1, 2, PayloadType::NONE, vec![1], b"").unwrap_err(),
            Refused::FirstInner
        );
        let mut big = Reassembly::new(1, false, 2, now).unwrap();
        big.add(1, 2, PayloadType::IDI, vec![0; MAX_BYTES - 10], b"")
            .unwrap();
        assert_eq!(
            big.add(2, 2, PayloadType::NONE, vec![0; 11], b"")
                .unwrap_err(),
            Refused::TooLarge
        );
        assert!(!big.expired(now + TIMEOUT - Duration::from_millis(1)));
        assert!(big.expired(now + TIMEOUT));
    }
}
