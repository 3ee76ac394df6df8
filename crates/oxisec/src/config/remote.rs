//! Remote access in the configuration file: address pools and the
//! per-connection keys that hand them out (gateway) or ask for one (client).
//!
//! ```toml
//! [pools.staff]
//! addrs = "10.3.0.0/24"          # or "10.3.0.10-10.3.0.200"
//!
//! [connections.rw]               # gateway
//! pools = ["staff"]
//! dns = ["10.1.0.53"]
//! dns_domains = ["corp.example"] # split DNS
//! subnets = ["10.1.0.0/16"]      # split tunnel; leave out for everything
//!
//! [connections.home]             # road warrior
//! vips = ["0.0.0.0"]             # any IPv4 address, or a specific one
//! ```
//!
//! The names follow swanctl.conf (`pools`, `vips`, `addrs`) so that admins
//! can carry their strongSwan configuration over.

use std::collections::BTreeMap;
use std::net::IpAddr;

use oxisec_ike::ts::TsRange;
use oxisec_ike::{PoolConfig, RemoteAccess};
use serde::Deserialize;
use toml::Spanned;

use super::{ConfigError, Cx, RawConnection};

/// One `[pools.NAME]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPool {
    addrs: Spanned<String>,
}

/// The keyword for "our address or virtual IP" in `local_ts`/`remote_ts`
/// (strongSwan's term).
pub(super) const DYNAMIC: &str = "dynamic";

/// Most DNS servers / domains / subnets a connection hands out: the
/// configuration payload has to fit one IKE message.
const MAX_ATTRS: usize = 16;

/// First and last usable address of a pool written as a subnet or a range.
/// A subnet loses its network and broadcast address (IPv4) or its
/// subnet-router anycast address (IPv6, RFC 4291 §2.6.1): a client given
/// one of them could not use it.
pub(super) fn pool_range(text: &str) -> Result<(IpAddr, IpAddr), String> {
    let text = text.trim();
    if let Some((a, b)) = text.split_once('-') {
        let first: IpAddr = a
            .trim()
            .parse()
            .map_err(|_| format!("{:?} is not an IP address", a.trim()))?;
        let last: IpAddr = b
            .trim()
            .parse()
            .map_err(|_| format!("{:?} is not an IP address", b.trim()))?;
        if first.is_ipv4() != last.is_ipv4() {
            return Err("the range mixes IPv4 and IPv6".into());
        }
        if int(first) > int(last) {
            return Err(format!("the range is empty: {first} comes after {last}"));
        }
        return Ok((first, last));
    }
    let (a, len) = text.split_once('/').ok_or_else(|| {
        format!("{text:?}: expected a subnet (10.3.0.0/24) or a range (10.3.0.10-10.3.0.200)")
    })?;
    let net: IpAddr = a
        .parse()
        .map_err(|_| format!("{a:?} is not an IP address"))?;
    let bits = if net.is_ipv4() { 32 } else { 128 };
    let len: u32 = len
        .parse()
        .ok()
        .filter(|l| (1..=bits).contains(l))
        .ok_or_else(|| format!("prefix length {len:?} must be 1..={bits}"))?;
    let host_bits = bits - len;
    let mask = if host_bits == 128 {
        u128::MAX
    } else {
        (1u128 << host_bits) - 1
    };
    let start = int(net) & !mask;
    let end = start | mask;
    if int(net) != start {
        return Err(format!(
            "{net} has host bits set for /{len}; the subnet is {}/{len}",
            from_int(net.is_ipv4(), start)
        ));
    }
    // /31 and /32 (and /127, /128) have no network or broadcast address to spare.
    let (first, last) = match (net.is_ipv4(), host_bits) {
        (_, 0 | 1) => (start, end),
        (true, _) => (start + 1, end - 1),
        (false, _) => (start + 1, end),
    };
    Ok((
        from_int(net.is_ipv4(), first),
        from_int(net.is_ipv4(), last),
    ))
}

fn int(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v) => u32::from(v).into(),
        IpAddr::V6(v) => v.into(),
    }
}

fn from_int(v4: bool, k: u128) -> IpAddr {
    if v4 {
        IpAddr::V4((k as u32).into())
    } else {
        IpAddr::V6(k.into())
    }
}

impl Cx<'_> {
    /// `[pools.*]`; pools may not overlap (one address, one client).
    pub(super) fn pools(
        &self,
        raw: &BTreeMap<String, Spanned<RawPool>>,
    ) -> Result<Vec<PoolConfig>, ConfigError> {
        let mut out: Vec<PoolConfig> = Vec::new();
        for (name, rp) in raw {
            let field = format!("pools.{name}.addrs");
            if !super::valid_name(name) {
                return Err(self.err(
                    Some(rp.span()),
                    format!("pools.{name}"),
                    format!(
                        "invalid pool name {name:?}: use letters, digits, -, _ and . (at most 64)"
                    ),
                ));
            }
            let addrs = &rp.get_ref().addrs;
            let (first, last) =
                pool_range(addrs.get_ref()).map_err(|m| self.err(Some(addrs.span()), &field, m))?;
            if let Some(o) = out.iter().find(|o| {
                o.first.is_ipv4() == first.is_ipv4()
                    && int(o.first) <= int(last)
                    && int(first) <= int(o.last)
            }) {
                return Err(self.err(
                    Some(addrs.span()),
                    &field,
                    format!(
                        "overlaps pool {:?} ({}-{}): an address must belong to one pool",
                        o.name, o.first, o.last
                    ),
                ));
            }
            out.push(PoolConfig {
                name: name.clone(),
                first,
                last,
            });
        }
        Ok(out)
    }

    /// The remote-access keys of one connection.
    pub(super) fn remote_access(
        &self,
        base: &str,
        raw: &RawConnection,
        pools: &[PoolConfig],
    ) -> Result<RemoteAccess, ConfigError> {
        let mut ra = RemoteAccess::default();
        if let Some(list) = &raw.vips {
            for (i, v) in list.get_ref().iter().enumerate() {
                let a: IpAddr = v.get_ref().trim().parse().map_err(|_| {
                    self.err(
                        Some(v.span()),
                        format!("{base}.vips[{i}]"),
                        format!(
                            "{:?} is not an IP address; use 0.0.0.0 or :: to take any address the gateway assigns",
                            v.get_ref()
                        ),
                    )
                })?;
                if ra.request_vips.iter().any(|o| o.is_ipv4() == a.is_ipv4()) {
                    return Err(self.err(
                        Some(v.span()),
                        format!("{base}.vips[{i}]"),
                        "one virtual IP per address family",
                    ));
                }
                ra.request_vips.push(a);
            }
        }
        if let Some(list) = &raw.pools {
            for (i, p) in list.get_ref().iter().enumerate() {
                let name = p.get_ref();
                if !pools.iter().any(|q| &q.name == name) {
                    let known: Vec<&str> = pools.iter().map(|q| q.name.as_str()).collect();
                    return Err(self.err(
                        Some(p.span()),
                        format!("{base}.pools[{i}]"),
                        format!(
                            "no pool named {name:?} ({})",
                            if known.is_empty() {
                                "define it as [pools.NAME] with addrs = \"10.3.0.0/24\"".to_string()
                            } else {
                                format!("defined: {}", known.join(", "))
                            }
                        ),
                    ));
                }
                if !ra.pools.contains(name) {
                    ra.pools.push(name.clone());
                }
            }
            if !ra.request_vips.is_empty() && !ra.pools.is_empty() {
                return Err(self.err(
                    Some(list.span()),
                    format!("{base}.pools"),
                    "a connection either asks for a virtual IP (vips, client) or hands them out (pools, gateway), not both",
                ));
            }
        }
        let gateway_only = |key: &str, span: std::ops::Range<usize>| -> Result<(), ConfigError> {
            if ra.pools.is_empty() {
                return Err(self.err(
                    Some(span),
                    format!("{base}.{key}"),
                    "is sent to clients together with a virtual IP: set pools too",
                ));
            }
            Ok(())
        };
        if let Some(list) = &raw.dns {
            gateway_only("dns", list.span())?;
            self.capped(base, "dns", list)?;
            for (i, v) in list.get_ref().iter().enumerate() {
                let a: IpAddr = v.get_ref().trim().parse().map_err(|_| {
                    self.err(
                        Some(v.span()),
                        format!("{base}.dns[{i}]"),
                        format!("{:?} is not an IP address", v.get_ref()),
                    )
                })?;
                ra.dns.push(a);
            }
        }
        if let Some(list) = &raw.dns_domains {
            gateway_only("dns_domains", list.span())?;
            self.capped(base, "dns_domains", list)?;
            for (i, v) in list.get_ref().iter().enumerate() {
                let d = v.get_ref().trim().trim_end_matches('.');
                let ok = !d.is_empty()
                    && d.len() <= 253
                    && d.split('.').all(|l| {
                        !l.is_empty()
                            && l.len() <= 63
                            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    });
                if !ok {
                    return Err(self.err(
                        Some(v.span()),
                        format!("{base}.dns_domains[{i}]"),
                        format!("{:?} is not a DNS domain name", v.get_ref()),
                    ));
                }
                ra.dns_domains.push(d.to_ascii_lowercase());
            }
        }
        if let Some(list) = &raw.subnets {
            gateway_only("subnets", list.span())?;
            self.capped(base, "subnets", list)?;
            for (i, v) in list.get_ref().iter().enumerate() {
                let ts: TsRange =
                    v.get_ref()
                        .parse()
                        .map_err(|e: oxisec_ike::ts::TsParseError| {
                            self.err(
                                Some(v.span()),
                                format!("{base}.subnets[{i}]"),
                                e.to_string(),
                            )
                        })?;
                ra.subnets.push(ts);
            }
        }
        Ok(ra)
    }

    fn capped(
        &self,
        base: &str,
        key: &str,
        list: &Spanned<Vec<Spanned<String>>>,
    ) -> Result<(), ConfigError> {
        if list.get_ref().len() > MAX_ATTRS {
            return Err(self.err(
                Some(list.span()),
                format!("{base}.{key}"),
                format!("at most {MAX_ATTRS} entries"),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> (String, String) {
        let (a, b) = pool_range(s).unwrap();
        (a.to_string(), b.to_string())
    }

    #[test]
    fn subnets_lose_network_and_broadcast() {
        assert_eq!(r("10.3.0.0/24"), ("10.3.0.1".into(), "10.3.0.254".into()));
        assert_eq!(r("10.3.0.8/31"), ("10.3.0.8".into(), "10.3.0.9".into()));
        assert_eq!(r("10.3.0.8/32"), ("10.3.0.8".into(), "10.3.0.8".into()));
        assert_eq!(
            r("2001:db8:3::/64"),
            (
                "2001:db8:3::1".into(),
                "2001:db8:3:0:ffff:ffff:ffff:ffff".into()
            )
        );
        assert_eq!(
            r(" 10.3.0.10 - 10.3.0.20 "),
            ("10.3.0.10".into(), "10.3.0.20".into())
        );
    }

    #[test]
    fn bad_pools_say_why() {
        let e = |s: &str| pool_range(s).unwrap_err();
        assert!(
            e("10.3.0.1/24").contains("host bits"),
            "{}",
            e("10.3.0.1/24")
        );
        assert!(e("10.3.0.0/33").contains("1..=32"));
        assert!(e("0.0.0.0/0").contains("1..=32"));
        assert!(e("10.3.0.20-10.3.0.10").contains("empty"));
        assert!(e("10.3.0.1-2001:db8::1").contains("mixes"));
        assert!(e("10.3.0.0").contains("expected a subnet"));
        assert!(e("pool").contains("expected a subnet"));
    }
}
