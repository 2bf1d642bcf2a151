//! The client's address behind reverse proxies. `X-Forwarded-For` is a list the client
//! starts and every proxy appends to, so only the entries added by proxies we trust are
//! believable: walk it from the right, skipping trusted proxies, and take the first
//! address that is not one (nginx's `real_ip_recursive`). The leftmost entry is whatever
//! the client wrote.

use std::net::IpAddr;

use ipnet::IpNet;

/// A list of networks: our reverse proxies, or the private ranges webhooks may reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Networks(Vec<IpNet>);

impl Networks {
    /// Whether `ip` (an IPv4-mapped IPv6 address as its IPv4 form) is in one of them.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|net| net.contains(&ip))
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.contains(ip)
    }

    /// The address of the client, given the connection's peer and the request's
    /// `X-Forwarded-For` headers (in the order they arrived).
    pub fn client_address<'a>(&self, peer: IpAddr, forwarded_for: impl Iterator<Item = &'a str>) -> IpAddr {
        let peer = canonical(peer);
        if !self.trusts(peer) {
            return peer;
        }
        let entries: Vec<&str> = forwarded_for.flat_map(|header| header.split(',')).collect();
        let mut client = peer;
        for entry in entries.iter().rev() {
            // An entry that is not an address ends what can be believed: the hop to its
            // right (a trusted proxy) is the best answer.
            let Some(ip) = parse_entry(entry) else { return client };
            client = ip;
            if !self.trusts(ip) {
                return ip;
            }
        }
        client
    }
}

/// IPv4 peers on a dual-stack socket arrive as `::ffff:a.b.c.d`; compare them as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// One `X-Forwarded-For` entry: an address, an `[IPv6]`, or either with a port.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Ok(addr) = entry.parse::<std::net::SocketAddr>() {
        return Some(canonical(addr.ip()));
    }
    entry
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .and_then(|inner| inner.parse::<IpAddr>().ok())
        .map(canonical)
}

impl std::str::FromStr for Networks {
    type Err = String;

    /// A comma-separated list of networks (`10.0.0.0/8`) or single addresses (`10.1.2.3`).
    fn from_str(raw: &str) -> Result<Self, String> {
        let mut networks = Vec::new();
        for item in raw.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let net = item
                .parse::<IpNet>()
                .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("{item:?} is not a network (CIDR) or an address"))?;
            networks.push(net.trunc());
        }
        Ok(Networks(networks))
    }
}

impl std::fmt::Display for Networks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list: Vec<String> = self.0.iter().map(IpNet::to_string).collect();
        f.write_str(&list.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn networks(raw: &str) -> Networks {
        raw.parse().unwrap()
    }

    fn ip(raw: &str) -> IpAddr {
        raw.parse().unwrap()
    }

    #[test]
    fn the_rightmost_untrusted_entry_is_the_client() {
        let trusted = networks("10.0.0.0/8, 192.0.2.7");
        // The client wrote 6.6.6.6 itself; the proxy at 10.0.0.2 appended 203.0.113.9.
        let client = trusted.client_address(ip("10.0.0.1"), ["6.6.6.6, 203.0.113.9, 10.0.0.2"].into_iter());
        assert_eq!(client, ip("203.0.113.9"));
        // Several headers count as one list, in order.
        let client = trusted.client_address(ip("192.0.2.7"), ["6.6.6.6", "203.0.113.9"].into_iter());
        assert_eq!(client, ip("203.0.113.9"));
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let trusted = networks("10.0.0.0/8");
        let client = trusted.client_address(ip("203.0.113.5"), ["6.6.6.6"].into_iter());
        assert_eq!(client, ip("203.0.113.5"));
    }

    #[test]
    fn only_trusted_hops_give_the_leftmost_and_garbage_stops_the_walk() {
        let trusted = networks("10.0.0.0/8");
        assert_eq!(
            trusted.client_address(ip("10.0.0.1"), ["10.0.0.9, 10.0.0.8"].into_iter()),
            ip("10.0.0.9")
        );
        assert_eq!(
            trusted.client_address(ip("10.0.0.1"), ["6.6.6.6, not-an-ip, 10.0.0.8"].into_iter()),
            ip("10.0.0.8")
        );
        assert_eq!(
            trusted.client_address(ip("10.0.0.1"), std::iter::empty()),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn ports_brackets_and_mapped_addresses_are_understood() {
        let trusted = networks("127.0.0.0/8, ::1");
        assert_eq!(
            trusted.client_address(ip("::ffff:127.0.0.1"), ["[2001:db8::1]:4711"].into_iter()),
            ip("2001:db8::1")
        );
        assert_eq!(
            trusted.client_address(ip("::1"), ["198.51.100.4:80"].into_iter()),
            ip("198.51.100.4")
        );
    }

    #[test]
    fn malformed_networks_are_refused() {
        assert!("10.0.0.0/33".parse::<Networks>().is_err());
        assert!("proxy.internal".parse::<Networks>().is_err());
        assert_eq!(networks("").to_string(), "");
        assert_eq!(networks("10.1.2.3/8").to_string(), "10.0.0.0/8");
    }
}
