//! Stateless cookies for IKE_SA_INIT (RFC 7296 §2.6).
//!
//! Cookie = version (4 bytes) ‖ HMAC-SHA-256(secret, Ni ‖ IPi ‖ SPIi). The
//! secret is random, replaced every [`ROTATE`], and the previous one is still
//! accepted so that a cookie handed out just before a rotation stays valid.
//! Verifying needs nothing but the request itself: a flood from spoofed
//! addresses never reaches the point where state is kept.
use std::net::IpAddr;
use std::time::{Duration, Instant};

use oxisec_crypto::prf::Prf;
use oxisec_crypto::{Rng, Secret};

/// How long a secret is used to make new cookies.
pub(crate) const ROTATE: Duration = Duration::from_secs(120);

#[derive(Debug)]
struct Versioned {
    version: u32,
    secret: Secret,
}

#[derive(Debug, Default)]
pub(crate) struct Cookies {
    current: Option<(Versioned, Instant)>,
    previous: Option<Versioned>,
}

fn ip_bytes(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

fn mac(secret: &Secret, ni: &[u8], ip: IpAddr, spi_i: u64) -> Secret {
    Prf::HmacSha256.compute(
        secret.as_bytes(),
        &[ni, &ip_bytes(ip), &spi_i.to_be_bytes()],
    )
}

impl Cookies {
    /// The secret for new cookies, rotated when it has been used long enough.
    fn current(&mut self, now: Instant, rng: &mut dyn Rng) -> &Versioned {
        let stale = self
            .current
            .as_ref()
            .is_none_or(|(_, born)| now.saturating_duration_since(*born) >= ROTATE);
        if stale {
            let version = self
                .current
                .as_ref()
                .map_or(1, |(v, _)| v.version.wrapping_add(1));
            let mut s = vec![0u8; 32];
            rng.fill(&mut s);
            let fresh = Versioned {
                version,
                secret: Secret::new(s),
            };
            self.previous = self.current.take().map(|(v, _)| v);
            self.current = Some((fresh, now));
        }
        &self.current.as_ref().expect("just set").0
    }

    /// The cookie to send to the initiator of a request.
    pub fn make(
        &mut self,
        now: Instant,
        rng: &mut dyn Rng,
        ni: &[u8],
        ip: IpAddr,
        spi_i: u64,
    ) -> Vec<u8> {
        let v = self.current(now, rng);
        let mut out = v.version.to_be_bytes().to_vec();
        out.extend_from_slice(mac(&v.secret, ni, ip, spi_i).as_bytes());
        out
    }

    /// Whether a cookie returned by an initiator is one of ours for this request.
    pub fn verify(&self, cookie: &[u8], ni: &[u8], ip: IpAddr, spi_i: u64) -> bool {
        let Some((version, tag)) = cookie.split_first_chunk::<4>() else {
            return false;
        };
        let version = u32::from_be_bytes(*version);
        let candidates = self
            .current
            .as_ref()
            .map(|(v, _)| v)
            .into_iter()
            .chain(self.previous.as_ref());
        candidates
            .filter(|v| v.version == version)
            .any(|v| crate::auth::same(&mac(&v.secret, ni, ip, spi_i), tag))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Counter(u8);
    impl Rng for Counter {
        fn fill(&mut self, d: &mut [u8]) {
            self.0 = self.0.wrapping_add(1);
            d.fill(self.0);
        }
    }

    #[test]
    fn cookies_verify_for_the_same_request_only_and_survive_one_rotation() {
        let t0 = Instant::now();
        let mut rng = Counter(0);
        let mut c = Cookies::default();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let cookie = c.make(t0, &mut rng, b"nonce-1", ip, 7);
        assert!(cookie.len() <= 64, "RFC 7296 §2.6 caps cookies at 64 bytes");
        assert!(c.verify(&cookie, b"nonce-1", ip, 7));
        assert!(!c.verify(&cookie, b"nonce-2", ip, 7));
        assert!(!c.verify(&cookie, b"nonce-1", "192.0.2.9".parse().unwrap(), 7));
        assert!(!c.verify(&cookie, b"nonce-1", ip, 8));
        assert!(!c.verify(&cookie[..10], b"nonce-1", ip, 7));
        assert!(!c.verify(&[], b"nonce-1", ip, 7));
        // After one rotation the old cookie still works; after two it does not.
        let _ = c.make(t0 + ROTATE, &mut rng, b"x", ip, 1);
        assert!(c.verify(&cookie, b"nonce-1", ip, 7));
        let _ = c.make(t0 + ROTATE * 2, &mut rng, b"x", ip, 1);
        assert!(!c.verify(&cookie, b"nonce-1", ip, 7));
    }
}
