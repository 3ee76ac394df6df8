//! Routes that send traffic for a CHILD_SA's remote selectors into the TUN
//! device, via rtnetlink.
//!
//! One route per prefix of the remote selectors, with `src` set to one of
//! the host's addresses inside the local selectors when it has one — then
//! packets the gateway itself originates (a ping from the gateway) carry a
//! source address the policy accepts. Prefixes shared by several CHILD_SAs
//! (a rekey overlaps old and new) are reference counted. Routes are added by
//! a single task in the order the engine's commands came, so add and remove
//! of the same prefix never race.
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use futures_util::TryStreamExt;
use netlink_packet_route::address::AddressAttribute;
use netlink_packet_route::link::LinkAttribute;
use netlink_packet_route::route::{RouteAttribute, RouteMetric};
use oxisec_ike::{ChildId, TsRange};
use rtnetlink::{Handle, RouteMessageBuilder};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

/// A destination prefix.
pub type Prefix = (IpAddr, u8);

/// The smallest list of prefixes that exactly covers `start..=end` (one family).
pub fn range_to_prefixes(start: IpAddr, end: IpAddr) -> Vec<Prefix> {
    let (v4, bits, mut lo, hi) = match (start, end) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (true, 32u32, u32::from(a) as u128, u32::from(b) as u128),
        (IpAddr::V6(a), IpAddr::V6(b)) => (false, 128u32, u128::from(a), u128::from(b)),
        _ => return Vec::new(),
    };
    let mut out = Vec::new();
    if lo > hi {
        return out;
    }
    // The last address of the 2^k block starting at the aligned `lo`.
    let block_last = |lo: u128, k: u32| {
        if k >= 128 {
            u128::MAX
        } else {
            lo + ((1u128 << k) - 1)
        }
    };
    loop {
        // The largest block aligned at `lo` that does not pass `hi`.
        let mut k = if lo == 0 {
            bits
        } else {
            lo.trailing_zeros().min(bits)
        };
        while k > 0 && block_last(lo, k) > hi {
            k -= 1;
        }
        let addr = if v4 {
            IpAddr::V4(Ipv4Addr::from(lo as u32))
        } else {
            IpAddr::V6(Ipv6Addr::from(lo))
        };
        out.push((addr, (bits - k) as u8));
        let last = block_last(lo, k);
        if last >= hi {
            break;
        }
        lo = last + 1;
    }
    out
}

fn prefix_contains(p: &Prefix, a: IpAddr) -> bool {
    match (p.0, a) {
        (IpAddr::V4(n), IpAddr::V4(a)) => {
            let mask = if p.1 == 0 {
                0
            } else {
                u32::MAX << (32 - p.1 as u32)
            };
            u32::from(n) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) => {
            let mask = if p.1 == 0 {
                0
            } else {
                u128::MAX << (128 - p.1 as u32)
            };
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

/// The prefixes to route for a child: every remote selector's range, with
/// the peer's own address cut out (the tunnel's outer packets would
/// otherwise loop into the tunnel). A full tunnel (0.0.0.0/0) thus becomes
/// the 32 prefixes around the gateway's address, each more specific than
/// the default route, which stays in place for the gateway itself. The
/// second list names the prefixes that had to be split that way.
pub fn prefixes_for(remote_ts: &[TsRange], peer: IpAddr) -> (Vec<Prefix>, Vec<Prefix>) {
    let mut ok = Vec::new();
    let mut split = Vec::new();
    let push = |p: Prefix, ok: &mut Vec<Prefix>| {
        if !ok.contains(&p) {
            ok.push(p);
        }
    };
    for ts in remote_ts {
        for p in range_to_prefixes(ts.start, ts.end) {
            if !prefix_contains(&p, peer) {
                push(p, &mut ok);
                continue;
            }
            split.push(p);
            let (first, last) = prefix_bounds(&p);
            let k = addr_int(peer);
            if k > first {
                for q in range_to_prefixes(int_addr(peer, first), int_addr(peer, k - 1)) {
                    push(q, &mut ok);
                }
            }
            if k < last {
                for q in range_to_prefixes(int_addr(peer, k + 1), int_addr(peer, last)) {
                    push(q, &mut ok);
                }
            }
        }
    }
    (ok, split)
}

fn addr_int(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v) => u32::from(v).into(),
        IpAddr::V6(v) => v.into(),
    }
}

/// `k` as an address of `like`'s family.
fn int_addr(like: IpAddr, k: u128) -> IpAddr {
    match like {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(k as u32)),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(k)),
    }
}

/// First and last address of a prefix, as integers.
fn prefix_bounds(p: &Prefix) -> (u128, u128) {
    let bits: u32 = if p.0.is_ipv4() { 32 } else { 128 };
    let host = bits - u32::from(p.1).min(bits);
    let mask = if host >= 128 {
        u128::MAX
    } else {
        (1u128 << host) - 1
    };
    let first = addr_int(p.0) & !mask;
    (first, first | mask)
}

/// A host address inside the local selectors, of the prefix's family:
/// global addresses before link-local ones.
pub fn pick_source(local_ts: &[TsRange], host: &[IpAddr], family_v4: bool) -> Option<IpAddr> {
    let inside =
        |a: &IpAddr| a.is_ipv4() == family_v4 && local_ts.iter().any(|t| t.contains(*a, 0, None));
    let link_local = |a: &IpAddr| match a {
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
        IpAddr::V4(v4) => v4.is_link_local(),
    };
    host.iter()
        .filter(|a| inside(a))
        .find(|a| !link_local(a))
        .or_else(|| host.iter().find(|a| inside(a)))
        .copied()
}

/// Requests to the route task.
#[derive(Debug)]
pub enum RouteOp {
    Add {
        child: ChildId,
        local_ts: Vec<TsRange>,
        remote_ts: Vec<TsRange>,
        peer: IpAddr,
        /// The largest inner packet the child's SA carries, as the routes'
        /// `mtu` (the kernel then answers local senders and forwarded DF
        /// packets itself); `None`: the device's MTU.
        mtu: Option<u32>,
    },
    Remove {
        child: ChildId,
    },
    /// Put a virtual IP the gateway assigned on the TUN device (host
    /// prefix). Routes added without a source before it arrived pick it up:
    /// the kernel prefers an address of the outgoing device.
    AddAddress(IpAddr),
    RemoveAddress(IpAddr),
    /// Remove everything and acknowledge (shutdown).
    RemoveAll(oneshot::Sender<()>),
}

struct RouteState {
    handle: Handle,
    ifindex: u32,
    ifname: String,
    /// prefix → (children using it, src it was installed with)
    installed: BTreeMap<Prefix, (BTreeSet<ChildId>, Option<IpAddr>)>,
    /// The `mtu` a prefix was installed with.
    mtus: BTreeMap<Prefix, u32>,
    by_child: HashMap<ChildId, Vec<Prefix>>,
    /// Virtual IPs we put on the device.
    addresses: Vec<IpAddr>,
}

/// Starts the route task for the interface `ifname`. Returns the sender
/// for [`RouteOp`]s.
pub async fn start(ifname: &str) -> std::io::Result<mpsc::UnboundedSender<RouteOp>> {
    let (conn, handle, _) = rtnetlink::new_connection()?;
    tokio::spawn(conn);
    let mut links = handle.link().get().match_name(ifname.to_string()).execute();
    let link = links
        .try_next()
        .await
        .map_err(|e| std::io::Error::other(format!("netlink: looking up {ifname}: {e}")))?
        .ok_or_else(|| std::io::Error::other(format!("interface {ifname} not found")))?;
    debug!(
        ifname,
        index = link.header.index,
        up = link
            .attributes
            .iter()
            .any(|a| matches!(a, LinkAttribute::OperState(_))),
        "route task attached"
    );
    let mut st = RouteState {
        handle,
        ifindex: link.header.index,
        ifname: ifname.to_string(),
        installed: BTreeMap::new(),
        mtus: BTreeMap::new(),
        by_child: HashMap::new(),
        addresses: Vec::new(),
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(op) = rx.recv().await {
            match op {
                RouteOp::Add {
                    child,
                    local_ts,
                    remote_ts,
                    peer,
                    mtu,
                } => st.add(child, &local_ts, &remote_ts, peer, mtu).await,
                RouteOp::Remove { child } => st.remove(child).await,
                RouteOp::AddAddress(a) => st.add_address(a).await,
                RouteOp::RemoveAddress(a) => st.remove_address(a).await,
                RouteOp::RemoveAll(ack) => {
                    let children: Vec<ChildId> = st.by_child.keys().copied().collect();
                    for c in children {
                        st.remove(c).await;
                    }
                    for a in st.addresses.clone() {
                        st.remove_address(a).await;
                    }
                    let _ = ack.send(());
                }
            }
        }
    });
    Ok(tx)
}

impl RouteState {
    async fn host_addrs(&self) -> Vec<IpAddr> {
        let mut out = Vec::new();
        let mut s = self.handle.address().get().execute();
        loop {
            match s.try_next().await {
                Ok(Some(m)) => {
                    for a in &m.attributes {
                        // IFA_LOCAL is the own address on point-to-point links;
                        // IFA_ADDRESS otherwise.
                        if let AddressAttribute::Local(ip) | AddressAttribute::Address(ip) = a
                            && !out.contains(ip)
                        {
                            out.push(*ip);
                        }
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    warn!("netlink: listing addresses: {e}");
                    break;
                }
            }
        }
        out
    }

    fn message(&self, p: Prefix, src: Option<IpAddr>) -> netlink_packet_route::route::RouteMessage {
        let mut m = self.bare_message(p, src);
        if let Some(mtu) = self.mtus.get(&p) {
            m.attributes
                .push(RouteAttribute::Metrics(vec![RouteMetric::Mtu(*mtu)]));
        }
        m
    }

    fn bare_message(
        &self,
        p: Prefix,
        src: Option<IpAddr>,
    ) -> netlink_packet_route::route::RouteMessage {
        match p.0 {
            IpAddr::V4(a) => {
                let mut b = RouteMessageBuilder::<Ipv4Addr>::new()
                    .destination_prefix(a, p.1)
                    .output_interface(self.ifindex);
                if let Some(IpAddr::V4(s)) = src {
                    b = b.pref_source(s);
                }
                b.build()
            }
            IpAddr::V6(a) => {
                let mut b = RouteMessageBuilder::<Ipv6Addr>::new()
                    .destination_prefix(a, p.1)
                    .output_interface(self.ifindex);
                if let Some(IpAddr::V6(s)) = src {
                    b = b.pref_source(s);
                }
                b.build()
            }
        }
    }

    fn describe(&self, p: Prefix, src: Option<IpAddr>) -> String {
        let mut d = format!("{}/{} dev {}", p.0, p.1, self.ifname);
        if let Some(s) = src {
            d += &format!(" src {s}");
        }
        if let Some(m) = self.mtus.get(&p) {
            d += &format!(" mtu {m}");
        }
        d
    }

    async fn add(
        &mut self,
        child: ChildId,
        local_ts: &[TsRange],
        remote_ts: &[TsRange],
        peer: IpAddr,
        mtu: Option<u32>,
    ) {
        let (prefixes, split) = prefixes_for(remote_ts, peer);
        for p in split {
            info!(
                "routing {}/{} into the tunnel around the peer's address {peer} (the tunnel's own packets must not loop)",
                p.0, p.1
            );
        }
        let host = self.host_addrs().await;
        let mut mine = Vec::new();
        for p in prefixes {
            if let Some((users, _)) = self.installed.get_mut(&p) {
                users.insert(child);
                mine.push(p);
                continue;
            }
            let src = pick_source(local_ts, &host, p.0.is_ipv4());
            match mtu {
                Some(m) => self.mtus.insert(p, m),
                None => self.mtus.remove(&p),
            };
            let msg = self.message(p, src);
            match self.handle.route().add(msg).replace().execute().await {
                Ok(()) => {
                    info!("route added: {}", self.describe(p, src));
                    self.installed.insert(p, ([child].into(), src));
                    mine.push(p);
                }
                Err(e) => {
                    warn!("cannot add route {}: {e}", self.describe(p, src));
                    self.mtus.remove(&p);
                }
            }
        }
        self.by_child.entry(child).or_default().extend(mine);
    }

    async fn add_address(&mut self, a: IpAddr) {
        let len = if a.is_ipv4() { 32 } else { 128 };
        let mut req = self.handle.address().add(self.ifindex, a, len).replace();
        if a.is_ipv6() {
            // No duplicate address detection on a point-to-point tunnel: a
            // tentative address would not be used as a source for seconds.
            req.message_mut().header.flags |=
                netlink_packet_route::address::AddressHeaderFlags::Nodad;
        }
        match req.execute().await {
            Ok(()) => {
                info!("virtual IP {a}/{len} on {}", self.ifname);
                if !self.addresses.contains(&a) {
                    self.addresses.push(a);
                }
            }
            Err(e) => warn!("cannot put virtual IP {a} on {}: {e}", self.ifname),
        }
    }

    async fn remove_address(&mut self, a: IpAddr) {
        self.addresses.retain(|x| *x != a);
        let mut s = self
            .handle
            .address()
            .get()
            .set_link_index_filter(self.ifindex)
            .set_address_filter(a)
            .execute();
        let msg = match s.try_next().await {
            Ok(Some(m)) => m,
            Ok(None) => return,
            Err(e) => {
                debug!("netlink: looking up {a}: {e}");
                return;
            }
        };
        match self.handle.address().del(msg).execute().await {
            Ok(()) => info!("virtual IP {a} removed from {}", self.ifname),
            Err(e) => debug!("cannot remove virtual IP {a}: {e}"),
        }
        // Linux flushes a device's IPv4 routes with its last IPv4 address;
        // the routes we still hold (the kill switch's, another child's)
        // go back in, without the source that just went away.
        let keep: Vec<(Prefix, Option<IpAddr>)> = self
            .installed
            .iter_mut()
            .filter(|(p, _)| p.0.is_ipv4() == a.is_ipv4())
            .map(|(p, (_, src))| {
                if *src == Some(a) {
                    *src = None;
                }
                (*p, *src)
            })
            .collect();
        for (p, src) in keep {
            let msg = self.message(p, src);
            if let Err(e) = self.handle.route().add(msg).replace().execute().await {
                warn!("cannot restore route {}: {e}", self.describe(p, src));
            }
        }
    }

    async fn remove(&mut self, child: ChildId) {
        let Some(prefixes) = self.by_child.remove(&child) else {
            return;
        };
        for p in prefixes {
            let Some((users, src)) = self.installed.get_mut(&p) else {
                continue;
            };
            users.remove(&child);
            if !users.is_empty() {
                continue;
            }
            let src = *src;
            self.installed.remove(&p);
            let msg = self.bare_message(p, src);
            self.mtus.remove(&p);
            match self.handle.route().del(msg).execute().await {
                Ok(()) => info!("route removed: {}", self.describe(p, src)),
                // Gone with the interface, or removed by hand: nothing to do.
                Err(e) => debug!("cannot remove route {}: {e}", self.describe(p, src)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> TsRange {
        s.parse().unwrap()
    }

    fn pfx(s: &str) -> Prefix {
        let (a, l) = s.split_once('/').unwrap();
        (a.parse().unwrap(), l.parse().unwrap())
    }

    #[test]
    fn ranges_become_minimal_prefixes() {
        let r = |a: &str, b: &str| range_to_prefixes(a.parse().unwrap(), b.parse().unwrap());
        assert_eq!(r("10.1.0.0", "10.1.0.255"), vec![pfx("10.1.0.0/24")]);
        assert_eq!(r("0.0.0.0", "255.255.255.255"), vec![pfx("0.0.0.0/0")]);
        assert_eq!(r("10.0.0.1", "10.0.0.1"), vec![pfx("10.0.0.1/32")]);
        assert_eq!(
            r("10.0.0.1", "10.0.0.6"),
            vec![
                pfx("10.0.0.1/32"),
                pfx("10.0.0.2/31"),
                pfx("10.0.0.4/31"),
                pfx("10.0.0.6/32")
            ]
        );
        assert_eq!(
            r("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
            vec![pfx("::/0")]
        );
        assert_eq!(
            r("2001:db8::", "2001:db8::ffff"),
            vec![pfx("2001:db8::/112")]
        );
        assert_eq!(
            r("255.255.255.254", "255.255.255.255"),
            vec![pfx("255.255.255.254/31")]
        );
        assert!(r("10.0.0.2", "10.0.0.1").is_empty());
        assert!(r("10.0.0.1", "::1").is_empty());
    }

    #[test]
    fn never_routes_the_peer_into_the_tunnel() {
        let peer: IpAddr = "192.0.2.2".parse().unwrap();
        let (ok, split) = prefixes_for(
            &[ts("203.0.113.0/24"), ts("0.0.0.0/0"), ts("203.0.113.0/24")],
            peer,
        );
        assert_eq!(split, vec![pfx("0.0.0.0/0")]);
        assert_eq!(ok[0], pfx("203.0.113.0/24"));
        assert!(ok.iter().all(|p| !prefix_contains(p, peer)), "{ok:?}");
        // Everything else is covered: 2^32 - 1 addresses in 32 prefixes
        // (plus the duplicate /24 that is already inside one of them).
        assert_eq!(ok.len(), 33);
        let covered: u128 = ok[1..]
            .iter()
            .map(|p| {
                let (a, b) = prefix_bounds(p);
                b - a + 1
            })
            .sum();
        assert_eq!(covered, (1u128 << 32) - 1);
        for probe in [
            "192.0.2.1",
            "192.0.2.3",
            "0.0.0.0",
            "255.255.255.255",
            "10.1.2.3",
        ] {
            let a: IpAddr = probe.parse().unwrap();
            assert!(ok.iter().any(|p| prefix_contains(p, a)), "{probe}");
        }
        let v6: IpAddr = "2001:db8::2".parse().unwrap();
        let (ok6, _) = prefixes_for(&[ts("::/0")], v6);
        assert_eq!(ok6.len(), 128);
        assert!(ok6.iter().all(|p| !prefix_contains(p, v6)));
    }

    #[test]
    fn source_is_a_host_address_inside_local_selectors() {
        let host: Vec<IpAddr> = ["192.0.2.1", "fe80::1", "198.51.100.1", "2001:db8:a::1"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        let local = [ts("198.51.100.0/24"), ts("::/0")];
        assert_eq!(
            pick_source(&local, &host, true),
            Some("198.51.100.1".parse().unwrap())
        );
        assert_eq!(
            pick_source(&local, &host, false),
            Some("2001:db8:a::1".parse().unwrap())
        );
        assert_eq!(pick_source(&[ts("10.0.0.0/8")], &host, true), None);
    }
}
