//! Virtual IP pools of a gateway: each client identity keeps its address
//! across reconnects (the lease stays, offline, when its IKE SA goes), a
//! client may ask for a specific free address, and a full pool reuses the
//! lease that has been offline longest before it refuses.
//!
//! Leases are keyed by the client's identity text (IDi, or its EAP
//! identity). The daemon persists them through [`crate::Engine::leases`] and
//! [`crate::Engine::restore_leases`], so that they survive a restart.
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::api::IkeId;
use crate::config::PoolConfig;

/// One address held for one identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub pool: String,
    pub identity: String,
    pub address: IpAddr,
}

#[derive(Debug)]
struct Entry {
    identity: String,
    /// The IKE SAs using the address now; empty when offline.
    online: Vec<IkeId>,
    /// When it went offline, as a sequence number (older = smaller).
    offline_since: u64,
}

#[derive(Debug)]
pub(crate) struct Pool {
    cfg: PoolConfig,
    /// Address (as an integer) → lease.
    leases: BTreeMap<u128, Entry>,
    by_identity: HashMap<String, u128>,
    /// Where the search for a never-used address continues.
    cursor: u128,
    clock: u64,
}

fn key(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v) => u32::from(v) as u128,
        IpAddr::V6(v) => u128::from(v),
    }
}

fn addr(v4: bool, k: u128) -> IpAddr {
    if v4 {
        IpAddr::V4(Ipv4Addr::from(k as u32))
    } else {
        IpAddr::V6(Ipv6Addr::from(k))
    }
}

/// Why no address was assigned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PoolError {
    Exhausted,
}

impl Pool {
    pub fn new(cfg: PoolConfig) -> Pool {
        let cursor = key(cfg.first);
        Pool {
            cfg,
            leases: BTreeMap::new(),
            by_identity: HashMap::new(),
            cursor,
            clock: 0,
        }
    }

    pub fn name(&self) -> &str {
        &self.cfg.name
    }

    pub fn is_ipv4(&self) -> bool {
        self.cfg.first.is_ipv4()
    }

    fn contains(&self, k: u128) -> bool {
        (key(self.cfg.first)..=key(self.cfg.last)).contains(&k)
    }

    /// An address for `identity` on IKE SA `ike`: its own lease if it has
    /// one, else the requested address if free, else the next free one,
    /// else the longest-offline lease of someone else.
    pub fn acquire(
        &mut self,
        identity: &str,
        ike: IkeId,
        requested: Option<IpAddr>,
    ) -> Result<IpAddr, PoolError> {
        let v4 = self.is_ipv4();
        if let Some(&k) = self.by_identity.get(identity)
            && let Some(e) = self.leases.get_mut(&k)
        {
            if !e.online.contains(&ike) {
                e.online.push(ike);
            }
            return Ok(addr(v4, k));
        }
        let wanted = requested
            .filter(|a| a.is_ipv4() == v4)
            .map(key)
            .filter(|k| self.contains(*k) && !self.leases.contains_key(k));
        let k = match wanted.or_else(|| self.next_free()) {
            Some(k) => k,
            None => self.reclaim().ok_or(PoolError::Exhausted)?,
        };
        self.leases.insert(
            k,
            Entry {
                identity: identity.to_string(),
                online: vec![ike],
                offline_since: 0,
            },
        );
        self.by_identity.insert(identity.to_string(), k);
        Ok(addr(v4, k))
    }

    /// A never-leased address, searching on from the cursor (and wrapping
    /// once), so that fresh clients do not get a recently freed address.
    fn next_free(&mut self) -> Option<u128> {
        let (first, last) = (key(self.cfg.first), key(self.cfg.last));
        let start = self.cursor.clamp(first, last);
        // Walk at most leases.len() + 1 steps: among that many consecutive
        // addresses at least one is free if the pool is not full.
        let size = last - first + 1;
        let steps = (self.leases.len() as u128 + 1).min(size);
        let mut k = start;
        for _ in 0..steps {
            if !self.leases.contains_key(&k) {
                self.cursor = if k == last { first } else { k + 1 };
                return Some(k);
            }
            k = if k == last { first } else { k + 1 };
        }
        None
    }

    /// Takes over the lease that has been offline longest.
    fn reclaim(&mut self) -> Option<u128> {
        let (&k, _) = self
            .leases
            .iter()
            .filter(|(_, e)| e.online.is_empty())
            .min_by_key(|(_, e)| e.offline_since)?;
        let e = self.leases.remove(&k)?;
        self.by_identity.remove(&e.identity);
        Some(k)
    }

    /// IKE SA `ike` no longer uses its address; the lease stays, offline.
    pub fn release(&mut self, address: IpAddr, ike: IkeId) {
        self.clock += 1;
        let clock = self.clock;
        if let Some(e) = self.leases.get_mut(&key(address)) {
            e.online.retain(|i| *i != ike);
            if e.online.is_empty() {
                e.offline_since = clock;
            }
        }
    }

    /// A rekey made IKE SA `new` from `old`: both hold the address until
    /// each releases it (the old one when it closes; of two crossing
    /// rekeys' SAs, the redundant one when it closes).
    pub fn moved(&mut self, address: IpAddr, old: IkeId, new: IkeId) {
        if let Some(e) = self.leases.get_mut(&key(address))
            && e.online.contains(&old)
            && !e.online.contains(&new)
        {
            e.online.push(new);
        }
    }

    pub fn leases(&self) -> Vec<Lease> {
        let v4 = self.is_ipv4();
        self.leases
            .iter()
            .map(|(k, e)| Lease {
                pool: self.cfg.name.clone(),
                identity: e.identity.clone(),
                address: addr(v4, *k),
            })
            .collect()
    }

    /// Puts back a lease read from disk (as offline); ignored if the
    /// address is outside the pool or taken.
    pub fn restore(&mut self, lease: &Lease) -> bool {
        let k = key(lease.address);
        if lease.address.is_ipv4() != self.is_ipv4()
            || !self.contains(k)
            || self.leases.contains_key(&k)
            || self.by_identity.contains_key(&lease.identity)
        {
            return false;
        }
        self.clock += 1;
        self.leases.insert(
            k,
            Entry {
                identity: lease.identity.clone(),
                online: Vec::new(),
                offline_since: self.clock,
            },
        );
        self.by_identity.insert(lease.identity.clone(), k);
        true
    }

    /// Addresses in use now and leases held offline.
    pub fn usage(&self) -> (usize, usize) {
        let online = self
            .leases
            .values()
            .filter(|e| !e.online.is_empty())
            .count();
        (online, self.leases.len() - online)
    }
}

/// Every pool of the configuration, by name.
#[derive(Debug, Default)]
pub(crate) struct Pools {
    pools: Vec<Pool>,
}

impl Pools {
    /// The pools of `cfg`; a pool that exists in `old` with the same range
    /// keeps its leases (a configuration reload must not renumber clients).
    pub fn from_config(cfg: &[PoolConfig], old: Pools) -> Pools {
        let mut old = old.pools;
        let pools = cfg
            .iter()
            .map(|c| match old.iter().position(|p| p.cfg == *c) {
                Some(i) => old.swap_remove(i),
                None => Pool::new(c.clone()),
            })
            .collect();
        Pools { pools }
    }

    /// An address of one family from the first of `names` that has room.
    pub fn acquire(
        &mut self,
        names: &[String],
        v4: bool,
        identity: &str,
        ike: IkeId,
        requested: Option<IpAddr>,
    ) -> Result<(String, IpAddr), PoolError> {
        let mut result = Err(PoolError::Exhausted);
        for name in names {
            let Some(p) = self
                .pools
                .iter_mut()
                .find(|p| p.name() == name && p.is_ipv4() == v4)
            else {
                continue;
            };
            match p.acquire(identity, ike, requested) {
                Ok(a) => return Ok((name.clone(), a)),
                Err(e) => result = Err(e),
            }
        }
        result
    }

    pub fn release(&mut self, pool: &str, address: IpAddr, ike: IkeId) {
        if let Some(p) = self.pools.iter_mut().find(|p| p.name() == pool) {
            p.release(address, ike);
        }
    }

    pub fn moved(&mut self, pool: &str, address: IpAddr, old: IkeId, new: IkeId) {
        if let Some(p) = self.pools.iter_mut().find(|p| p.name() == pool) {
            p.moved(address, old, new);
        }
    }

    pub fn leases(&self) -> Vec<Lease> {
        self.pools.iter().flat_map(Pool::leases).collect()
    }

    /// Puts back saved leases; returns how many fitted.
    pub fn restore(&mut self, leases: &[Lease]) -> usize {
        leases
            .iter()
            .filter(|l| {
                self.pools
                    .iter_mut()
                    .find(|p| p.name() == l.pool)
                    .is_some_and(|p| p.restore(l))
            })
            .count()
    }

    /// (pool name, addresses online, leases offline) for status.
    pub fn usage(&self) -> Vec<(String, usize, usize)> {
        self.pools
            .iter()
            .map(|p| {
                let (on, off) = p.usage();
                (p.name().to_string(), on, off)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(first: &str, last: &str) -> Pool {
        Pool::new(PoolConfig {
            name: "p".into(),
            first: first.parse().unwrap(),
            last: last.parse().unwrap(),
        })
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_client_gets_its_address_back() {
        let mut p = pool("10.3.0.1", "10.3.0.254");
        let a = p.acquire("alice", IkeId(1), None).unwrap();
        let b = p.acquire("bob", IkeId(2), None).unwrap();
        assert_ne!(a, b);
        p.release(a, IkeId(1));
        assert_eq!(p.acquire("carol", IkeId(3), None).unwrap(), ip("10.3.0.3"));
        assert_eq!(p.acquire("alice", IkeId(4), None).unwrap(), a);
        assert_eq!(p.usage(), (3, 0));
    }

    #[test]
    fn requested_addresses_are_granted_when_free_and_in_range() {
        let mut p = pool("10.3.0.1", "10.3.0.10");
        assert_eq!(
            p.acquire("a", IkeId(1), Some(ip("10.3.0.7"))).unwrap(),
            ip("10.3.0.7")
        );
        // Taken, out of range, other family: the next free one instead.
        assert_eq!(
            p.acquire("b", IkeId(2), Some(ip("10.3.0.7"))).unwrap(),
            ip("10.3.0.1")
        );
        assert_eq!(
            p.acquire("c", IkeId(3), Some(ip("10.9.0.1"))).unwrap(),
            ip("10.3.0.2")
        );
        assert_eq!(
            p.acquire("d", IkeId(4), Some(ip("2001:db8::1"))).unwrap(),
            ip("10.3.0.3")
        );
    }

    #[test]
    fn a_full_pool_reuses_the_oldest_offline_lease_then_refuses() {
        let mut p = pool("10.3.0.1", "10.3.0.2");
        let a = p.acquire("a", IkeId(1), None).unwrap();
        let b = p.acquire("b", IkeId(2), None).unwrap();
        assert_eq!(p.acquire("c", IkeId(3), None), Err(PoolError::Exhausted));
        p.release(b, IkeId(2));
        p.release(a, IkeId(1));
        assert_eq!(
            p.acquire("c", IkeId(3), None).unwrap(),
            b,
            "b went offline first"
        );
        assert_eq!(p.acquire("b", IkeId(4), None).unwrap(), a);
        assert_eq!(p.acquire("a", IkeId(5), None), Err(PoolError::Exhausted));
    }

    #[test]
    fn leases_survive_a_restart_and_rekeys_move_them() {
        let mut p = pool("2001:db8:3::1", "2001:db8:3::ffff");
        let a = p.acquire("alice", IkeId(1), None).unwrap();
        p.moved(a, IkeId(1), IkeId(9));
        p.moved(a, IkeId(1), IkeId(10));
        p.release(a, IkeId(1));
        p.release(a, IkeId(10));
        assert_eq!(p.usage(), (1, 0), "still online under the surviving IKE SA");
        p.release(a, IkeId(9));
        assert_eq!(p.usage(), (0, 1));
        let saved = p.leases();
        let mut q = pool("2001:db8:3::1", "2001:db8:3::ffff");
        assert!(saved.iter().all(|l| q.restore(l)));
        assert!(!q.restore(&saved[0]), "twice");
        assert_eq!(q.acquire("alice", IkeId(2), None).unwrap(), a);
        assert!(!q.restore(&Lease {
            pool: "p".into(),
            identity: "x".into(),
            address: ip("10.0.0.1"),
        }));
    }

    #[test]
    fn huge_pools_cost_nothing_up_front() {
        let mut p = pool("2001:db8::", "2001:db8::ffff:ffff:ffff:ffff");
        for i in 0..1000 {
            p.acquire(&format!("u{i}"), IkeId(i), None).unwrap();
        }
        assert_eq!(p.usage(), (1000, 0));
    }
}
