//! The security policy database for outbound traffic (RFC 4301 §4.4.1): an
//! ordered list of entries; the first whose selectors match a packet decides
//! whether it is protected by a child SA, sent in the clear, or discarded.
//!
//! Like the [`Sad`](crate::sad::Sad), an `Spd` is a value published as a
//! snapshot; lookups take `&self` and no lock.
//!
//! Matching follows IKEv2's reading of traffic selector sets (RFC 7296 §2.9):
//! an entry covers every combination of one of its local selectors (for the
//! packet's source) and one of its remote selectors (for its destination).
//! A `Protect` entry whose child SA is not (yet) in the SAD is the driver's cue
//! to drop the packet and ask the engine for an SA (an acquire).
use crate::inner::{self, FlowKey, InnerError};
use crate::selector::Selector;

/// What to do with a matching packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyAction {
    /// Encapsulate with the outbound SA of this child SA id.
    Protect(u64),
    /// Send in the clear.
    Bypass,
    /// Drop.
    Discard,
}

/// One policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpdEntry {
    /// Matched against the packet's source. Empty matches nothing.
    pub local: Vec<Selector>,
    /// Matched against the packet's destination. Empty matches nothing.
    pub remote: Vec<Selector>,
    pub action: PolicyAction,
}

impl SpdEntry {
    pub fn new(local: Vec<Selector>, remote: Vec<Selector>, action: PolicyAction) -> SpdEntry {
        SpdEntry {
            local,
            remote,
            action,
        }
    }

    /// Whether an outgoing packet with this flow matches.
    pub fn matches(&self, flow: &FlowKey) -> bool {
        self.local.iter().any(|s| s.matches_src(flow))
            && self.remote.iter().any(|s| s.matches_dst(flow))
    }
}

/// The ordered policy list. Cheap enough to clone for copy-on-write updates
/// (policies change on SA setup and teardown, not per packet).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Spd {
    entries: Vec<SpdEntry>,
}

impl Spd {
    pub fn new() -> Spd {
        Spd::default()
    }

    pub fn from_entries(entries: Vec<SpdEntry>) -> Spd {
        Spd { entries }
    }

    pub fn entries(&self) -> &[SpdEntry] {
        &self.entries
    }

    /// Appends an entry (lowest priority so far).
    pub fn push(&mut self, entry: SpdEntry) {
        self.entries.push(entry);
    }

    /// Inserts an entry at `index` (0 = highest priority); appends if
    /// `index` is past the end.
    pub fn insert(&mut self, index: usize, entry: SpdEntry) {
        let index = index.min(self.entries.len());
        self.entries.insert(index, entry);
    }

    /// Keeps the entries for which `keep` returns true.
    pub fn retain(&mut self, keep: impl FnMut(&SpdEntry) -> bool) {
        self.entries.retain(keep);
    }

    /// Removes every `Protect(child)` entry of this child SA; returns how many.
    pub fn remove_child(&mut self, child: u64) -> usize {
        let before = self.entries.len();
        self.entries
            .retain(|e| e.action != PolicyAction::Protect(child));
        before - self.entries.len()
    }

    /// Points the `Protect(old)` entries at `new` (after a rekey, when the
    /// engine gives the new child SA a new id).
    pub fn replace_child(&mut self, old: u64, new: u64) {
        for e in &mut self.entries {
            if e.action == PolicyAction::Protect(old) {
                e.action = PolicyAction::Protect(new);
            }
        }
    }

    /// The first entry matching an outgoing packet's flow.
    pub fn lookup(&self, flow: &FlowKey) -> Option<&SpdEntry> {
        self.entries.iter().find(|e| e.matches(flow))
    }

    /// Parses an outgoing IP packet and looks up its entry. `Ok(None)`: no
    /// policy matches (RFC 4301 says discard; the driver decides).
    pub fn lookup_packet(&self, packet: &[u8]) -> Result<Option<&SpdEntry>, InnerError> {
        let info = inner::parse(packet)?;
        Ok(self.lookup(&info.flow))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inner::tests::v4;
    use crate::selector::IpFamily;
    use core::net::IpAddr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn net(s: &str, len: u8) -> Selector {
        Selector::prefix(ip(s), len).unwrap()
    }

    fn flow(src: &str, dst: &str, protocol: u8, dport: Option<u16>) -> FlowKey {
        FlowKey {
            src: ip(src),
            dst: ip(dst),
            protocol,
            src_port: dport.map(|_| 40000),
            dst_port: dport,
        }
    }

    fn spd() -> Spd {
        let mut spd = Spd::new();
        // Management traffic to the peer gateway stays in the clear.
        spd.push(SpdEntry::new(
            vec![Selector::any(IpFamily::V4)],
            vec![Selector::host(ip("203.0.113.1"))],
            PolicyAction::Bypass,
        ));
        // Telnet into the remote site is never allowed.
        spd.push(SpdEntry::new(
            vec![net("192.0.2.0", 24)],
            vec![net("198.51.100.0", 24).with_protocol(6).with_ports(23, 23)],
            PolicyAction::Discard,
        ));
        // Two local subnets × one remote subnet through child 9.
        spd.push(SpdEntry::new(
            vec![net("192.0.2.0", 25), net("192.0.2.128", 25)],
            vec![net("198.51.100.0", 24)],
            PolicyAction::Protect(9),
        ));
        spd
    }

    #[test]
    fn first_match_wins() {
        let spd = spd();
        let act = |f: FlowKey| spd.lookup(&f).map(|e| e.action);
        assert_eq!(
            act(flow("192.0.2.5", "198.51.100.7", 17, Some(53))),
            Some(PolicyAction::Protect(9))
        );
        assert_eq!(
            act(flow("192.0.2.200", "198.51.100.7", 6, Some(23))),
            Some(PolicyAction::Discard)
        );
        assert_eq!(
            act(flow("192.0.2.200", "198.51.100.7", 6, Some(22))),
            Some(PolicyAction::Protect(9))
        );
        assert_eq!(
            act(flow("192.0.2.1", "203.0.113.1", 17, Some(500))),
            Some(PolicyAction::Bypass)
        );
        assert_eq!(act(flow("10.0.0.1", "198.51.100.7", 17, Some(53))), None);
        assert_eq!(act(flow("2001:db8::1", "2001:db8::2", 17, Some(53))), None);
    }

    #[test]
    fn lookup_from_packet_bytes() {
        let spd = spd();
        let p = v4([192, 0, 2, 9], [198, 51, 100, 1], 6, &[0x9c, 0x40, 0, 23]);
        assert_eq!(
            spd.lookup_packet(&p).unwrap().map(|e| e.action),
            Some(PolicyAction::Discard)
        );
        assert!(spd.lookup_packet(&p[..10]).is_err());
    }

    #[test]
    fn edit_entries() {
        let mut spd = spd();
        spd.replace_child(9, 10);
        assert_eq!(spd.entries()[2].action, PolicyAction::Protect(10));
        spd.insert(
            0,
            SpdEntry::new(
                vec![Selector::any(IpFamily::V4)],
                vec![Selector::any(IpFamily::V4)],
                PolicyAction::Discard,
            ),
        );
        assert_eq!(
            spd.lookup(&flow("192.0.2.5", "198.51.100.7", 17, Some(53)))
                .unwrap()
                .action,
            PolicyAction::Discard
        );
        assert_eq!(spd.remove_child(10), 1);
        spd.retain(|e| e.action != PolicyAction::Discard);
        assert_eq!(spd.entries().len(), 1);
    }
}
