//! The message-ID windows of one IKE SA (RFC 7296 §2.1–§2.3), kept in one place
//! so that no exchange deals with retransmission or duplicate requests.
//!
//! We use a window of one in each direction: at most one request of ours is
//! outstanding, and the peer's last request is answered from a cache when it
//! is retransmitted.
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use oxisec_crypto::hash::sha256;
use oxisec_wire::ExchangeType;

use crate::config::RetransmitConfig;

/// Our outstanding request.
#[derive(Debug)]
pub(crate) struct Outstanding {
    pub msg_id: u32,
    pub exchange: ExchangeType,
    /// The datagrams as sent (one, or several fragments later).
    pub packets: Vec<Vec<u8>>,
    pub sent_from: SocketAddr,
    pub sent_to: SocketAddr,
    /// Retransmissions done so far.
    pub retries: u32,
    pub deadline: Instant,
}

/// What to do when the retransmission timer fires.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TimerAction {
    /// Nothing is due.
    Idle,
    /// Send the packets again.
    Retransmit,
    /// The schedule is exhausted: the peer is considered dead.
    GiveUp,
}

#[derive(Debug, Default)]
pub(crate) struct RequestWindow {
    /// The message ID our next request will carry.
    pub next_id: u32,
    pub outstanding: Option<Outstanding>,
}

/// The delay before retransmission number `retries` (0 = after first send):
/// timeout · base^retries.
pub(crate) fn retransmit_delay(cfg: &RetransmitConfig, retries: u32) -> Duration {
    let factor = cfg.base.powi(retries as i32);
    cfg.timeout.mul_f64(factor.clamp(1.0, 1e6))
}

impl RequestWindow {
    /// Whether a new request may be sent now.
    pub fn is_free(&self) -> bool {
        self.outstanding.is_none()
    }

    /// Takes the next message ID.
    pub fn allocate(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        id
    }

    /// Records a request as sent.
    #[allow(clippy::too_many_arguments)]
    pub fn sent(
        &mut self,
        now: Instant,
        cfg: &RetransmitConfig,
        msg_id: u32,
        exchange: ExchangeType,
        packets: Vec<Vec<u8>>,
        sent_from: SocketAddr,
        sent_to: SocketAddr,
    ) {
        self.outstanding = Some(Outstanding {
            msg_id,
            exchange,
            packets,
            sent_from,
            sent_to,
            retries: 0,
            deadline: now + retransmit_delay(cfg, 0),
        });
    }

    /// Whether a response with this message ID answers our outstanding request.
    pub fn matches_response(&self, msg_id: u32) -> bool {
        self.outstanding
            .as_ref()
            .is_some_and(|o| o.msg_id == msg_id)
    }

    /// Clears the outstanding request once its response arrived.
    pub fn complete(&mut self) -> Option<Outstanding> {
        self.outstanding.take()
    }

    pub fn deadline(&self) -> Option<Instant> {
        self.outstanding.as_ref().map(|o| o.deadline)
    }

    /// Advances the retransmission schedule at `now`.
    pub fn on_timer(&mut self, now: Instant, cfg: &RetransmitConfig) -> TimerAction {
        let Some(o) = self.outstanding.as_mut() else {
            return TimerAction::Idle;
        };
        if now < o.deadline {
            return TimerAction::Idle;
        }
        if o.retries >= cfg.tries {
            return TimerAction::GiveUp;
        }
        o.retries += 1;
        o.deadline = now + retransmit_delay(cfg, o.retries);
        TimerAction::Retransmit
    }
}

/// What to do with a request from the peer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RequestVerdict {
    /// The next request in sequence: process it.
    New,
    /// A retransmission of the last request: resend the cached response.
    Retransmitted,
    /// Outside the window (old, duplicate without cache, or from the future): drop.
    Drop,
}

#[derive(Debug, Default)]
pub(crate) struct ResponseWindow {
    /// The message ID the peer's next request must carry.
    pub expected: u32,
    /// A fingerprint of the last request and our response to it.
    pub last: Option<CachedResponse>,
}

#[derive(Debug)]
pub(crate) struct CachedResponse {
    pub msg_id: u32,
    /// SHA-256 of the request: a retransmission is byte-identical, and a
    /// fingerprint costs 32 bytes where the request may cost kilobytes.
    pub request: [u8; 32],
    pub packets: Vec<Vec<u8>>,
}

impl ResponseWindow {
    /// Classifies a request. A retransmission must be byte-identical to the
    /// cached request, so a forged message with an old ID cannot make us
    /// send (or even decrypt) anything.
    pub fn classify(&self, msg_id: u32, bytes: &[u8]) -> RequestVerdict {
        if msg_id == self.expected {
            return RequestVerdict::New;
        }
        match &self.last {
            Some(c) if c.msg_id == msg_id && c.request == sha256(&[bytes]) => {
                RequestVerdict::Retransmitted
            }
            _ => RequestVerdict::Drop,
        }
    }

    /// Records our response to request `msg_id` and opens the window for the next one.
    pub fn answered(&mut self, msg_id: u32, request: &[u8], packets: Vec<Vec<u8>>) {
        self.last = Some(CachedResponse {
            msg_id,
            request: sha256(&[request]),
            packets,
        });
        self.expected = msg_id.wrapping_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr() -> SocketAddr {
        "192.0.2.1:500".parse().unwrap()
    }

    #[test]
    fn retransmission_follows_exponential_backoff_then_gives_up() {
        let cfg = RetransmitConfig::default();
        let t0 = Instant::now();
        let mut w = RequestWindow::default();
        let id = w.allocate();
        w.sent(
            t0,
            &cfg,
            id,
            ExchangeType::IKE_SA_INIT,
            vec![vec![1]],
            addr(),
            addr(),
        );
        assert_eq!(
            w.on_timer(t0 + Duration::from_millis(3999), &cfg),
            TimerAction::Idle
        );
        // strongSwan's schedule: 4, 7.2, 13, 23.3, 42 s, then 75.6 s until giving up.
        let mut t = t0;
        let mut delays = Vec::new();
        loop {
            let d = w.deadline().unwrap();
            delays.push((d - t).as_secs_f64());
            t = d;
            match w.on_timer(t, &cfg) {
                TimerAction::Retransmit => continue,
                TimerAction::GiveUp => break,
                TimerAction::Idle => panic!("timer at deadline must act"),
            }
        }
        let expected = [4.0, 7.2, 12.96, 23.328, 41.99, 75.58];
        assert_eq!(delays.len(), expected.len());
        for (d, e) in delays.iter().zip(expected) {
            assert!((d - e).abs() < 0.01, "{delays:?}");
        }
        let total: f64 = delays.iter().sum();
        assert!((total - 165.0).abs() < 0.1, "total {total}");
    }

    #[test]
    fn response_window_detects_retransmissions_by_content() {
        let mut w = ResponseWindow::default();
        assert_eq!(w.classify(0, b"req0"), RequestVerdict::New);
        assert_eq!(w.classify(1, b"req1"), RequestVerdict::Drop);
        w.answered(0, b"req0", vec![b"resp0".to_vec()]);
        assert_eq!(w.classify(0, b"req0"), RequestVerdict::Retransmitted);
        assert_eq!(w.classify(0, b"forged"), RequestVerdict::Drop);
        assert_eq!(w.classify(1, b"req1"), RequestVerdict::New);
        assert_eq!(w.classify(7, b"req7"), RequestVerdict::Drop);
    }

    #[test]
    fn completed_request_frees_the_window() {
        let cfg = RetransmitConfig::default();
        let mut w = RequestWindow::default();
        let id = w.allocate();
        w.sent(
            Instant::now(),
            &cfg,
            id,
            ExchangeType::INFORMATIONAL,
            vec![],
            addr(),
            addr(),
        );
        assert!(!w.is_free());
        assert!(w.matches_response(0));
        assert!(!w.matches_response(1));
        w.complete();
        assert!(w.is_free());
        assert_eq!(w.allocate(), 1);
    }
}
