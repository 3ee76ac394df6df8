//! The network between the two nodes: one independent, seeded model per
//! direction with latency and jitter, random loss, duplication, reordering
//! (an extra random delay for some packets), an MTU, an on/off switch and
//! test hooks that drop chosen packets. IKE datagrams and ESP packets go
//! through the same model.
use std::fmt;
use std::time::Duration;

use oxisec_wire::{ExchangeType, Header};

use crate::NodeId;
use crate::rng::SimRng;

/// IPv4 + UDP header bytes in front of every datagram on the wire.
pub const IP_UDP_OVERHEAD: usize = 28;
/// The non-ESP marker in front of IKE messages on port 4500 (RFC 3948).
pub const NON_ESP_MARKER: usize = 4;

/// The behaviour of one direction of the link.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkConfig {
    /// One-way delay every packet gets.
    pub latency: Duration,
    /// A uniform extra delay in [0, jitter] per packet. Jitter larger than
    /// the gap between two packets reorders them, as on a real path.
    pub jitter: Duration,
    /// Probability that a packet is lost.
    pub loss: f64,
    /// Probability that a delivered packet arrives twice (the copy with its
    /// own delay).
    pub duplicate: f64,
    /// Probability that a packet is held back by a uniform extra delay in
    /// [0, reorder_delay], so that later packets overtake it.
    pub reorder: f64,
    pub reorder_delay: Duration,
    /// Largest IP packet (outer headers included) that passes; larger ones
    /// are dropped and counted.
    pub mtu: usize,
    /// When false every packet is dropped (cable cut, peer gone).
    pub up: bool,
}

impl LinkConfig {
    /// No delay, no loss: for unit tests of the harness itself.
    pub fn ideal() -> LinkConfig {
        LinkConfig {
            latency: Duration::ZERO,
            jitter: Duration::ZERO,
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_delay: Duration::ZERO,
            mtu: 1500,
            up: true,
        }
    }

    /// A continental WAN path: 25 ms ± 5 ms one way, nothing lost.
    pub fn wan() -> LinkConfig {
        LinkConfig {
            latency: Duration::from_millis(25),
            jitter: Duration::from_millis(5),
            ..LinkConfig::ideal()
        }
    }

    /// [`wan`](Self::wan) with `loss` and a little duplication and
    /// reordering (2 % each, reordered packets held up to 60 ms).
    pub fn lossy(loss: f64) -> LinkConfig {
        LinkConfig {
            loss,
            duplicate: 0.02,
            reorder: 0.02,
            reorder_delay: Duration::from_millis(60),
            ..LinkConfig::wan()
        }
    }

    /// The longest delay a packet can get.
    pub fn max_delay(&self) -> Duration {
        self.latency + self.jitter + self.reorder_delay
    }
}

/// Which kind of traffic a packet is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Ike,
    Esp,
}

/// The clear-text header fields of an IKE message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IkeInfo {
    pub spi_i: u64,
    pub spi_r: u64,
    pub exchange: ExchangeType,
    pub response: bool,
    /// The sender is the original initiator of the IKE SA.
    pub initiator: bool,
    pub message_id: u32,
}

impl IkeInfo {
    /// Reads the fixed header; `None` for anything that is not IKE.
    pub fn parse(data: &[u8]) -> Option<IkeInfo> {
        let h = Header::new_checked(data).ok()?;
        Some(IkeInfo {
            spi_i: h.spi_i(),
            spi_r: h.spi_r(),
            exchange: h.exchange_type(),
            response: h.flags().response(),
            initiator: h.flags().initiator(),
            message_id: h.message_id(),
        })
    }
}

/// What a hook sees of a packet about to enter the link.
#[derive(Debug, Clone, Copy)]
pub struct PacketInfo<'a> {
    pub from: NodeId,
    pub kind: Kind,
    /// The UDP payload (IKE message without the non-ESP marker, or ESP packet).
    pub data: &'a [u8],
    /// Bytes on the wire, outer IP and UDP headers included.
    pub wire_len: usize,
    /// Virtual time since the start of the simulation.
    pub at: Duration,
    /// For IKE: the header; `None` for ESP or an unparsable message.
    pub ike: Option<IkeInfo>,
}

impl PacketInfo<'_> {
    /// The ESP SPI and (low 32 bits of the) sequence number.
    pub fn esp(&self) -> Option<(u32, u32)> {
        if self.kind != Kind::Esp || self.data.len() < 8 {
            return None;
        }
        let spi = u32::from_be_bytes(self.data[0..4].try_into().ok()?);
        let seq = u32::from_be_bytes(self.data[4..8].try_into().ok()?);
        Some((spi, seq))
    }
}

/// What a hook does with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Leave it to the random model.
    Pass,
    Drop,
    /// Deliver it exactly once, this long after it was sent, regardless of
    /// the random model (e.g. a response that arrives after a retransmission).
    Delay(Duration),
}

/// A test hook. Hooks run before the random model and see every packet; the
/// first verdict other than [`Verdict::Pass`] decides, but every hook sees
/// every packet so that counting hooks stay exact.
pub type Hook = Box<dyn FnMut(&PacketInfo) -> Verdict>;

/// Why the link did not deliver a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    /// Lost by the random loss model.
    Lost,
    /// Larger than the MTU.
    TooBig,
    /// The link is down.
    Down,
    /// A test hook dropped it.
    Hook,
}

/// Counters of one direction and one kind of traffic.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LinkCounters {
    /// Packets handed to the link.
    pub offered: u64,
    /// Copies put on their way (a duplicated packet counts twice).
    pub delivered: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub reordered: u64,
    pub too_big: u64,
    pub down: u64,
    /// Dropped by a hook.
    pub hooked: u64,
    /// Delayed by a hook.
    pub held: u64,
}

impl LinkCounters {
    fn count_drop(&mut self, why: Dropped) {
        match why {
            Dropped::Lost => self.lost += 1,
            Dropped::TooBig => self.too_big += 1,
            Dropped::Down => self.down += 1,
            Dropped::Hook => self.hooked += 1,
        }
    }

    /// Packets the link dropped for any reason.
    pub fn dropped(&self) -> u64 {
        self.lost + self.too_big + self.down + self.hooked
    }

    pub fn add(&mut self, o: &LinkCounters) {
        self.offered += o.offered;
        self.delivered += o.delivered;
        self.lost += o.lost;
        self.duplicated += o.duplicated;
        self.reordered += o.reordered;
        self.too_big += o.too_big;
        self.down += o.down;
        self.hooked += o.hooked;
        self.held += o.held;
    }
}

/// One direction of the link.
struct Direction {
    cfg: LinkConfig,
    rng: SimRng,
    hooks: Vec<Hook>,
    ike: LinkCounters,
    esp: LinkCounters,
}

impl Direction {
    fn counters(&mut self, kind: Kind) -> &mut LinkCounters {
        match kind {
            Kind::Ike => &mut self.ike,
            Kind::Esp => &mut self.esp,
        }
    }

    fn delay(&mut self) -> (Duration, bool) {
        let mut d = self.cfg.latency + self.rng.between(Duration::ZERO, self.cfg.jitter);
        let reordered = self.rng.chance(self.cfg.reorder);
        if reordered {
            d += self.rng.between(Duration::ZERO, self.cfg.reorder_delay);
        }
        (d, reordered)
    }
}

/// The two directions of the link between node A and node B.
pub struct Link {
    dirs: [Direction; 2],
}

impl fmt::Debug for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Link")
            .field("a_to_b", &self.dirs[0].cfg)
            .field("b_to_a", &self.dirs[1].cfg)
            .finish_non_exhaustive()
    }
}

impl Link {
    /// The same configuration both ways, each direction with its own stream
    /// derived from `seed`.
    pub fn new(seed: u64, cfg: LinkConfig) -> Link {
        Link::asymmetric(seed, cfg.clone(), cfg)
    }

    pub fn asymmetric(seed: u64, a_to_b: LinkConfig, b_to_a: LinkConfig) -> Link {
        let dir = |cfg, tag| Direction {
            cfg,
            rng: SimRng::fork(seed, tag),
            hooks: Vec::new(),
            ike: LinkCounters::default(),
            esp: LinkCounters::default(),
        };
        Link {
            dirs: [dir(a_to_b, "link a->b"), dir(b_to_a, "link b->a")],
        }
    }

    fn dir(&mut self, from: NodeId) -> &mut Direction {
        &mut self.dirs[from.index()]
    }

    /// The configuration of the direction leaving `from`.
    pub fn config(&self, from: NodeId) -> &LinkConfig {
        &self.dirs[from.index()].cfg
    }

    pub fn config_mut(&mut self, from: NodeId) -> &mut LinkConfig {
        &mut self.dir(from).cfg
    }

    /// Takes both directions up or down.
    pub fn set_up(&mut self, up: bool) {
        for d in &mut self.dirs {
            d.cfg.up = up;
        }
    }

    /// Adds a hook on the direction leaving `from`.
    pub fn add_hook(&mut self, from: NodeId, hook: Hook) {
        self.dir(from).hooks.push(hook);
    }

    /// Drops the first `n` packets leaving `from` that `pred` selects, and
    /// nothing else; the drops show in [`LinkCounters::hooked`].
    pub fn drop_matching(
        &mut self,
        from: NodeId,
        n: usize,
        pred: impl FnMut(&PacketInfo) -> bool + 'static,
    ) {
        self.verdict_matching(from, n, Verdict::Drop, pred);
    }

    /// Delivers the first `n` packets leaving `from` that `pred` selects
    /// after exactly `delay` (and never loses them); the rest as usual.
    pub fn delay_matching(
        &mut self,
        from: NodeId,
        n: usize,
        delay: Duration,
        pred: impl FnMut(&PacketInfo) -> bool + 'static,
    ) {
        self.verdict_matching(from, n, Verdict::Delay(delay), pred);
    }

    fn verdict_matching(
        &mut self,
        from: NodeId,
        mut n: usize,
        verdict: Verdict,
        mut pred: impl FnMut(&PacketInfo) -> bool + 'static,
    ) {
        self.add_hook(
            from,
            Box::new(move |p| {
                if n > 0 && pred(p) {
                    n -= 1;
                    return verdict;
                }
                Verdict::Pass
            }),
        );
    }

    pub fn clear_hooks(&mut self) {
        for d in &mut self.dirs {
            d.hooks.clear();
        }
    }

    /// Counters of the direction leaving `from` for one kind of traffic.
    pub fn counters(&self, from: NodeId, kind: Kind) -> LinkCounters {
        let d = &self.dirs[from.index()];
        match kind {
            Kind::Ike => d.ike,
            Kind::Esp => d.esp,
        }
    }

    /// Decides a packet's fate: the delays of the copies to deliver (one,
    /// or two when duplicated), or why it is dropped.
    pub fn send(&mut self, p: &PacketInfo) -> Result<Vec<Duration>, Dropped> {
        let d = self.dir(p.from);
        d.counters(p.kind).offered += 1;
        let mut verdict = Verdict::Pass;
        for h in &mut d.hooks {
            let v = h(p);
            if verdict == Verdict::Pass {
                verdict = v;
            }
        }
        if let Verdict::Delay(delay) = verdict {
            let c = d.counters(p.kind);
            c.delivered += 1;
            c.held += 1;
            return Ok(vec![delay]);
        }
        let verdict = if verdict == Verdict::Drop {
            Err(Dropped::Hook)
        } else if !d.cfg.up {
            Err(Dropped::Down)
        } else if p.wire_len > d.cfg.mtu {
            Err(Dropped::TooBig)
        } else if d.rng.chance(d.cfg.loss) {
            Err(Dropped::Lost)
        } else {
            Ok(())
        };
        if let Err(why) = verdict {
            d.counters(p.kind).count_drop(why);
            return Err(why);
        }
        let mut copies = vec![];
        let (first, reordered) = d.delay();
        copies.push(first);
        let mut reorders = u64::from(reordered);
        if d.rng.chance(d.cfg.duplicate) {
            let (second, reordered) = d.delay();
            copies.push(second);
            reorders += u64::from(reordered);
            d.counters(p.kind).duplicated += 1;
        }
        let c = d.counters(p.kind);
        c.reordered += reorders;
        c.delivered += copies.len() as u64;
        Ok(copies)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esp(from: NodeId, len: usize) -> (Vec<u8>, NodeId, usize) {
        (vec![0u8; len], from, len + IP_UDP_OVERHEAD)
    }

    fn info<'a>(from: NodeId, data: &'a [u8], wire_len: usize) -> PacketInfo<'a> {
        PacketInfo {
            from,
            kind: Kind::Esp,
            data,
            wire_len,
            at: Duration::ZERO,
            ike: None,
        }
    }

    #[test]
    fn ideal_link_delivers_once_without_delay() {
        let mut l = Link::new(1, LinkConfig::ideal());
        let (d, from, w) = esp(NodeId::A, 100);
        assert_eq!(l.send(&info(from, &d, w)), Ok(vec![Duration::ZERO]));
        let c = l.counters(NodeId::A, Kind::Esp);
        assert_eq!((c.offered, c.delivered, c.dropped()), (1, 1, 0));
        assert_eq!(l.counters(NodeId::B, Kind::Esp), LinkCounters::default());
    }

    #[test]
    fn packets_over_the_mtu_are_dropped_and_counted() {
        let mut l = Link::new(
            1,
            LinkConfig {
                mtu: 1280,
                ..LinkConfig::ideal()
            },
        );
        let (d, from, _) = esp(NodeId::B, 1252);
        assert!(l.send(&info(from, &d, 1280)).is_ok());
        assert_eq!(l.send(&info(from, &d, 1281)), Err(Dropped::TooBig));
        assert_eq!(l.counters(NodeId::B, Kind::Esp).too_big, 1);
    }

    #[test]
    fn loss_duplication_and_delays_follow_the_configuration() {
        let cfg = LinkConfig {
            loss: 0.1,
            duplicate: 0.05,
            reorder: 0.1,
            reorder_delay: Duration::from_millis(100),
            ..LinkConfig::wan()
        };
        let mut l = Link::new(9, cfg.clone());
        let (d, from, w) = esp(NodeId::A, 64);
        let n = 20_000;
        for _ in 0..n {
            if let Ok(copies) = l.send(&info(from, &d, w)) {
                for c in copies {
                    assert!(c >= cfg.latency && c <= cfg.max_delay(), "{c:?}");
                }
            }
        }
        let c = l.counters(NodeId::A, Kind::Esp);
        assert_eq!(c.offered, n);
        assert!((1_800..2_200).contains(&c.lost), "{c:?}");
        assert!((800..1_000).contains(&c.duplicated), "{c:?}");
        assert_eq!(c.delivered, n - c.lost + c.duplicated);
        assert!(c.reordered > 1_500, "{c:?}");
    }

    #[test]
    fn down_link_and_hooks_drop_everything_they_select() {
        let mut l = Link::new(1, LinkConfig::ideal());
        let (d, from, w) = esp(NodeId::A, 64);
        l.drop_matching(NodeId::A, 2, |_| true);
        assert_eq!(l.send(&info(from, &d, w)), Err(Dropped::Hook));
        assert_eq!(l.send(&info(from, &d, w)), Err(Dropped::Hook));
        assert!(l.send(&info(from, &d, w)).is_ok());
        l.set_up(false);
        assert_eq!(l.send(&info(from, &d, w)), Err(Dropped::Down));
        l.delay_matching(NodeId::A, 1, Duration::from_secs(5), |_| true);
        assert_eq!(l.send(&info(from, &d, w)), Ok(vec![Duration::from_secs(5)]));
        assert_eq!(l.send(&info(from, &d, w)), Err(Dropped::Down));
        let c = l.counters(NodeId::A, Kind::Esp);
        assert_eq!((c.hooked, c.down, c.delivered, c.held), (2, 2, 2, 1));
    }

    #[test]
    fn same_seed_same_fates() {
        let run = |seed| {
            let mut l = Link::new(seed, LinkConfig::lossy(0.3));
            let (d, from, w) = esp(NodeId::A, 64);
            (0..200)
                .map(|_| l.send(&info(from, &d, w)))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(5), run(5));
        assert_ne!(run(5), run(6));
    }
}
