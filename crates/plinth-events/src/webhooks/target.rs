//! Where a webhook may be sent. An endpoint names a URL; an attacker who can register one
//! would like Plinth to call its own loopback services, the private network around it, or
//! the cloud's metadata service. So the URL must be `https` (plain `http` only where the
//! platform allows it), carry no credentials, and its host is resolved when the delivery
//! is made — every attempt, so a name that first resolved to a public address and then to
//! a private one (DNS rebinding) is caught — and refused when any address it resolves to
//! is not public, unless the platform lists that network as allowed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use plinth_core::proxy::Networks;
use url::{Host, Url};

/// What the platform allows webhook endpoints to reach.
#[derive(Debug, Clone)]
pub struct TargetRules {
    /// Non-public networks allowed anyway (a test's loopback receiver, an intranet).
    pub allowed: Networks,
    /// Whether plain `http://` is allowed.
    pub allow_http: bool,
}

/// Why a target is refused; the message is fit for the endpoint's owner.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetRefused {
    #[error("not an absolute URL: {0}")]
    Malformed(String),
    #[error("the URL must use https")]
    Scheme,
    #[error("the URL must not carry a user name or password")]
    Credentials,
    #[error("the URL has no host")]
    NoHost,
    #[error("{host} does not resolve to any address")]
    Unresolvable { host: String },
    #[error("{host} resolves to {address}, which is not a public address")]
    NotPublic { host: String, address: IpAddr },
}

/// The longest URL an endpoint may have.
pub const MAX_URL_LEN: usize = 2048;

impl TargetRules {
    /// Checks the form of `raw` (what can be known without resolving it), including a
    /// host written as an address.
    pub fn parse(&self, raw: &str) -> Result<Url, TargetRefused> {
        if raw.len() > MAX_URL_LEN {
            return Err(TargetRefused::Malformed(format!(
                "longer than {MAX_URL_LEN} characters"
            )));
        }
        let url = Url::parse(raw).map_err(|e| TargetRefused::Malformed(e.to_string()))?;
        match url.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            _ => return Err(TargetRefused::Scheme),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(TargetRefused::Credentials);
        }
        match url.host() {
            None => Err(TargetRefused::NoHost),
            Some(Host::Ipv4(v4)) => self.admit(&host_of(&url), IpAddr::V4(v4)).map(|()| url.clone()),
            Some(Host::Ipv6(v6)) => self.admit(&host_of(&url), IpAddr::V6(v6)).map(|()| url.clone()),
            Some(Host::Domain(_)) => Ok(url.clone()),
        }
    }

    /// Resolves `url`'s host now and returns the addresses to connect to, refusing the
    /// target when any of them is not admitted (a name with one private address among
    /// public ones is refused: the connection could go to either).
    pub async fn resolve(&self, url: &Url) -> Result<Vec<SocketAddr>, TargetRefused> {
        let port = url.port_or_known_default().unwrap_or(443);
        match url.host() {
            None => Err(TargetRefused::NoHost),
            Some(Host::Ipv4(v4)) => self
                .admit(&host_of(url), IpAddr::V4(v4))
                .map(|()| vec![SocketAddr::new(v4.into(), port)]),
            Some(Host::Ipv6(v6)) => self
                .admit(&host_of(url), IpAddr::V6(v6))
                .map(|()| vec![SocketAddr::new(v6.into(), port)]),
            Some(Host::Domain(name)) => self.resolve_name(name, port).await,
        }
    }

    /// Resolves a host name, as [`resolve`](Self::resolve) does: every address must be
    /// admitted. The HTTP client calls this for each connection it opens, so the addresses
    /// checked are the addresses connected to.
    pub async fn resolve_name(&self, name: &str, port: u16) -> Result<Vec<SocketAddr>, TargetRefused> {
        let addresses: Vec<SocketAddr> = tokio::net::lookup_host((name, port))
            .await
            .map(Iterator::collect)
            .unwrap_or_default();
        if addresses.is_empty() {
            return Err(TargetRefused::Unresolvable { host: name.to_owned() });
        }
        for address in &addresses {
            self.admit(name, address.ip())?;
        }
        Ok(addresses)
    }

    fn admit(&self, host: &str, address: IpAddr) -> Result<(), TargetRefused> {
        if is_public(address) || self.allowed.contains(address) {
            Ok(())
        } else {
            Err(TargetRefused::NotPublic {
                host: host.to_owned(),
                address,
            })
        }
    }
}

fn host_of(url: &Url) -> String {
    url.host_str().unwrap_or_default().to_owned()
}

/// Whether `address` is on the public Internet: not loopback, private, shared (CGNAT),
/// link-local (the cloud metadata address 169.254.169.254 among them), multicast,
/// broadcast, unspecified, documentation, benchmarking or reserved; IPv6 forms that embed
/// an IPv4 address (mapped, NAT64, 6to4) are judged by it.
pub fn is_public(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0                                   // "this network"
        || (a == 100 && (64..128).contains(&b))     // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0)           // IETF protocol assignments
        || (a == 198 && (18..20).contains(&b))      // benchmarking
        || a >= 240) // reserved
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let segments = ip.segments();
    let embedded_v4 = |high: u16, low: u16| {
        let [a, b] = high.to_be_bytes();
        let [c, d] = low.to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    match segments {
        // NAT64 (64:ff9b::/96): the IPv4 address in the last 32 bits.
        [0x64, 0xff9b, 0, 0, 0, 0, high, low] => return is_public_v4(embedded_v4(high, low)),
        // 6to4 (2002::/16): the IPv4 address in bits 16..48.
        [0x2002, high, low, ..] => return is_public_v4(embedded_v4(high, low)),
        _ => {}
    }
    let first = segments[0];
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00               // unique local fc00::/7
        || (first & 0xffc0) == 0xfe80               // link-local fe80::/10
        || (first & 0xffc0) == 0xfec0               // site-local (deprecated) fec0::/10
        || (first == 0x2001 && segments[1] == 0x0db8) // documentation
        || (first == 0x2001 && segments[1] == 0)    // Teredo: the far end is unknowable
        || segments[..6] == [0, 0, 0, 0, 0, 0]) // IPv4-compatible (deprecated)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(allowed: &str, allow_http: bool) -> TargetRules {
        TargetRules {
            allowed: allowed.parse().unwrap(),
            allow_http,
        }
    }

    #[test]
    fn non_public_addresses_are_recognised_in_every_form() {
        for address in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "100.100.100.200",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.2.10",
            "198.18.0.1",
            "240.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "2002:a00:1::1",
            "2001:0:4136:e378::1",
        ] {
            assert!(!is_public(address.parse().unwrap()), "{address} counted as public");
        }
        for address in [
            "93.184.216.34",
            "8.8.8.8",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert!(is_public(address.parse().unwrap()), "{address} counted as not public");
        }
    }

    #[test]
    fn the_form_of_a_url_is_checked_before_any_lookup() {
        let strict = rules("", false);
        assert_eq!(strict.parse("http://example.com/hook"), Err(TargetRefused::Scheme));
        assert_eq!(strict.parse("ftp://example.com/hook"), Err(TargetRefused::Scheme));
        assert_eq!(
            strict.parse("https://user:pw@example.com/"),
            Err(TargetRefused::Credentials)
        );
        assert!(matches!(strict.parse("not a url"), Err(TargetRefused::Malformed(_))));
        assert!(matches!(
            strict.parse(&format!("https://example.com/{}", "a".repeat(3000))),
            Err(TargetRefused::Malformed(_))
        ));
        for literal in [
            "https://127.0.0.1/",
            "https://10.0.0.1:8443/x",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/",
            "https://0x7f000001/",
        ] {
            assert!(
                matches!(strict.parse(literal), Err(TargetRefused::NotPublic { .. })),
                "{literal}"
            );
        }
        assert!(strict.parse("https://hooks.example.com/plinth").is_ok());
        assert!(rules("", true).parse("http://example.com/hook").is_ok());
        assert!(rules("127.0.0.0/8", false).parse("https://127.0.0.1:9/").is_ok());
    }

    #[tokio::test]
    async fn names_are_judged_by_every_address_they_resolve_to() {
        let strict = rules("", false);
        let url = strict.parse("https://localhost:8443/hook").unwrap();
        let refused = strict.resolve(&url).await.unwrap_err();
        assert!(
            matches!(&refused, TargetRefused::NotPublic { host, .. } if host == "localhost"),
            "{refused:?}"
        );
        assert!(refused.to_string().contains("not a public address"));

        let loopback_allowed = rules("127.0.0.0/8,::1/128", false);
        let addresses = loopback_allowed.resolve(&url).await.unwrap();
        assert!(addresses.iter().all(|a| a.port() == 8443 && a.ip().is_loopback()));

        let unknown = strict.parse("https://no-such-host.invalid/").unwrap();
        assert!(matches!(
            strict.resolve(&unknown).await,
            Err(TargetRefused::Unresolvable { .. })
        ));
    }
}
