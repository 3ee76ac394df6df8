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
//! [connections.rw.groups.contractors]  # members of the user group
//! pools = ["guests"]             # "contractors" get these instead
//! subnets = ["10.1.5.0/24"]      # (keys left out: the connection's)
//!
//! [connections.home]             # road warrior
//! vips = ["0.0.0.0"]             # any IPv4 address, or a specific one
//! ```
//!
//! A client's groups come with its authentication: the users file
//! (`oxisec user add --group`), the RADIUS Access-Accept (Class and
//! Filter-Id attributes) or the OU of its certificate. The first of its
//! groups that the connection lists applies; a client in none gets the
//! connection's values, or is refused with `require_group = true`. This is
//! strongSwan's "one connection per group" (`groups` in a remote auth
//! round) folded into one connection, so an admin writes one gateway.
//!
//! The names follow swanctl.conf (`pools`, `vips`, `addrs`) so that admins
//! can carry their strongSwan configuration over.

use std::collections::BTreeMap;
use std::net::IpAddr;

use oxisec_ike::ts::TsRange;
use oxisec_ike::{GroupAccess, PoolConfig, RemoteAccess};
use serde::Deserialize;
use toml::Spanned;

use super::{ConfigError, Cx, RawConnection};

/// One `[connections.X.groups.NAME]` table: what members of the user
/// group NAME get instead of the connection's values; a key left out
/// keeps the connection's.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGroup {
    pools: Option<Spanned<Vec<Spanned<String>>>>,
    dns: Option<Spanned<Vec<Spanned<String>>>>,
    dns_domains: Option<Spanned<Vec<Spanned<String>>>>,
    subnets: Option<Spanned<Vec<Spanned<String>>>>,
}

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
            ra.pools = self.pool_names(&format!("{base}.pools"), list, pools)?;
            if !ra.request_vips.is_empty() && !ra.pools.is_empty() {
                return Err(self.err(
                    Some(list.span()),
                    format!("{base}.pools"),
                    "a connection either asks for a virtual IP (vips, client) or hands them out (pools, gateway), not both",
                ));
            }
        }
        for (name, rg) in &raw.groups {
            let gbase = format!("{base}.groups.{name}");
            if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
                return Err(self.err(
                    Some(rg.span()),
                    gbase,
                    "a group name has 1 to 64 printable characters",
                ));
            }
            if !ra.request_vips.is_empty() {
                return Err(self.err(
                    Some(rg.span()),
                    gbase,
                    "groups choose what a gateway hands out; this connection asks for a virtual IP (vips)",
                ));
            }
            if let Some(dup) = ra
                .groups
                .iter()
                .find(|g| g.group.eq_ignore_ascii_case(name))
            {
                return Err(self.err(
                    Some(rg.span()),
                    gbase,
                    format!(
                        "the same group as {:?} (group names ignore ASCII case)",
                        dup.group
                    ),
                ));
            }
            let g = rg.get_ref();
            let mut ga = GroupAccess {
                group: name.clone(),
                ..GroupAccess::default()
            };
            if let Some(list) = &g.pools {
                ga.pools = self.pool_names(&format!("{gbase}.pools"), list, pools)?;
            }
            ga.dns = g.dns.as_ref().map(|l| self.dns(&gbase, l)).transpose()?;
            ga.dns_domains = g
                .dns_domains
                .as_ref()
                .map(|l| self.dns_domains(&gbase, l))
                .transpose()?;
            ga.subnets = g
                .subnets
                .as_ref()
                .map(|l| self.subnets(&gbase, l))
                .transpose()?;
            if ga.pools.is_empty() && ra.pools.is_empty() {
                let has_values = g.dns.is_some() || g.dns_domains.is_some() || g.subnets.is_some();
                if has_values {
                    return Err(self.err(
                        Some(rg.span()),
                        gbase,
                        "its values go to clients with a virtual IP: set pools in the group or on the connection",
                    ));
                }
            }
            ra.groups.push(ga);
        }
        if let Some(req) = &raw.require_group {
            ra.require_group = *req.get_ref();
            if ra.require_group && ra.groups.is_empty() {
                return Err(self.err(
                    Some(req.span()),
                    format!("{base}.require_group"),
                    "admits members of [connections.NAME.groups.GROUP] only: define at least one group",
                ));
            }
        }
        let gateway = ra.hands_out_addresses();
        let gateway_only = |key: &str, span: std::ops::Range<usize>| -> Result<(), ConfigError> {
            if !gateway {
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
            ra.dns = self.dns(base, list)?;
        }
        if let Some(list) = &raw.dns_domains {
            gateway_only("dns_domains", list.span())?;
            ra.dns_domains = self.dns_domains(base, list)?;
        }
        if let Some(list) = &raw.subnets {
            gateway_only("subnets", list.span())?;
            ra.subnets = self.subnets(base, list)?;
        }
        Ok(ra)
    }

    /// A list of pool names, each defined in `[pools]`, without repeats.
    fn pool_names(
        &self,
        field: &str,
        list: &Spanned<Vec<Spanned<String>>>,
        pools: &[PoolConfig],
    ) -> Result<Vec<String>, ConfigError> {
        let mut out: Vec<String> = Vec::new();
        for (i, p) in list.get_ref().iter().enumerate() {
            let name = p.get_ref();
            if !pools.iter().any(|q| &q.name == name) {
                let known: Vec<&str> = pools.iter().map(|q| q.name.as_str()).collect();
                return Err(self.err(
                    Some(p.span()),
                    format!("{field}[{i}]"),
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
            if !out.contains(name) {
                out.push(name.clone());
            }
        }
        Ok(out)
    }

    /// `dns` under `base`: DNS server addresses.
    fn dns(
        &self,
        base: &str,
        list: &Spanned<Vec<Spanned<String>>>,
    ) -> Result<Vec<IpAddr>, ConfigError> {
        self.capped(base, "dns", list)?;
        let mut out = Vec::new();
        for (i, v) in list.get_ref().iter().enumerate() {
            let a: IpAddr = v.get_ref().trim().parse().map_err(|_| {
                self.err(
                    Some(v.span()),
                    format!("{base}.dns[{i}]"),
                    format!("{:?} is not an IP address", v.get_ref()),
                )
            })?;
            out.push(a);
        }
        Ok(out)
    }

    /// `dns_domains` under `base`: DNS names, lowercased, without the
    /// trailing dot.
    fn dns_domains(
        &self,
        base: &str,
        list: &Spanned<Vec<Spanned<String>>>,
    ) -> Result<Vec<String>, ConfigError> {
        self.capped(base, "dns_domains", list)?;
        let mut out = Vec::new();
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
            out.push(d.to_ascii_lowercase());
        }
        Ok(out)
    }

    /// `subnets` under `base`: split-tunnel selectors.
    fn subnets(
        &self,
        base: &str,
        list: &Spanned<Vec<Spanned<String>>>,
    ) -> Result<Vec<TsRange>, ConfigError> {
        self.capped(base, "subnets", list)?;
        let mut out = Vec::new();
        for (i, v) in list.get_ref().iter().enumerate() {
            let ts: TsRange = v
                .get_ref()
                .parse()
                .map_err(|e: oxisec_ike::ts::TsParseError| {
                    self.err(
                        Some(v.span()),
                        format!("{base}.subnets[{i}]"),
                        e.to_string(),
                    )
                })?;
            out.push(ts);
        }
        Ok(out)
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
