//! Networking rules every layer shares: which addresses a plugin (or an outbound
//! webhook) may connect to, and the process's TLS crypto provider.
//!
//! Which addresses a plugin may connect to. Everything that is not a public unicast
//! address (loopback, private, link-local, CGNAT, cloud metadata, multicast, reserved)
//! is refused unless the grant lists a network containing it. The check runs on the
//! addresses a name resolves to, right before connecting, so a name that resolves to
//! 127.0.0.1 is refused like the literal.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One crypto provider (ring, which lettre brings too) is compiled in; make it the
/// process default that reqwest's rustls expects. Idempotent: an error only means a
/// provider is set already.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// An IP network in CIDR notation (`10.0.0.0/8`, `::1/128`, or a bare address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    address: IpAddr,
    prefix: u8,
}

impl Network {
    pub fn parse(text: &str) -> Result<Network, String> {
        let bad = || format!("network {text:?} must be an address or CIDR such as 10.0.0.0/8");
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let address: IpAddr = address.parse().map_err(|_| bad())?;
        let bits = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(prefix) => prefix
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= bits)
                .ok_or_else(bad)?,
            None => bits,
        };
        Ok(Network { address, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.address, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_eq(u32::from(net).into(), u32::from(ip).into(), 32, self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(u128::from(net), u128::from(ip), 128, self.prefix)
            }
            _ => false,
        }
    }
}

fn prefix_eq(a: u128, b: u128, bits: u8, prefix: u8) -> bool {
    if prefix == 0 {
        return true;
    }
    let shift = u32::from(bits - prefix);
    (a >> shift) == (b >> shift)
}

/// IPv4-mapped IPv6 addresses (`::ffff:127.0.0.1`) are judged as the IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Why an address is not public, or `None` for a public unicast address.
pub fn special_use(ip: IpAddr) -> Option<&'static str> {
    match canonical(ip) {
        IpAddr::V4(v4) => special_v4(v4),
        IpAddr::V6(v6) => special_v6(v6),
    }
}

fn special_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        _ if ip.is_loopback() => "loopback",
        _ if ip.is_unspecified() || a == 0 => "unspecified (0.0.0.0/8)",
        (169, 254, 169) if ip.octets()[3] == 254 => "cloud metadata",
        _ if ip.is_link_local() => "link-local",
        _ if ip.is_private() => "private",
        (100, b, _) if (64..128).contains(&b) => "shared address space (CGNAT, 100.64.0.0/10)",
        (192, 0, 0) => "IETF protocol assignments (192.0.0.0/24)",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        (198, b, _) if b == 18 || b == 19 => "benchmarking (198.18.0.0/15)",
        _ if ip.is_multicast() => "multicast",
        _ if a >= 240 => "reserved (240.0.0.0/4)",
        _ => return None,
    })
}

fn special_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    Some(match first {
        _ if ip.is_loopback() => "loopback",
        _ if ip.is_unspecified() => "unspecified",
        // NAT64 (64:ff9b::/96) embeds an IPv4 address: judge that one.
        0x64 if ip.segments()[1] == 0xff9b => {
            let [.., a, b, c, d] = ip.octets();
            return special_v4(Ipv4Addr::new(a, b, c, d));
        }
        _ if first & 0xfe00 == 0xfc00 => "unique local (fc00::/7, includes AWS metadata)",
        _ if first & 0xffc0 == 0xfe80 => "link-local",
        _ if first & 0xff00 == 0xff00 => "multicast",
        0x2001 if ip.segments()[1] == 0x0db8 => "documentation",
        // Other addresses that embed IPv4 (IPv4-compatible ::a.b.c.d, 6to4) or are
        // otherwise not global unicast.
        0 => "reserved (::/16)",
        0x2002 => "6to4",
        _ => return None,
    })
}

/// Whether a connection to `ip` is allowed with `allowed` extra networks; the error
/// says why not (`127.0.0.1 (loopback address)`). Who may allow it (a plugin's grant,
/// a server flag) is for the caller to say.
pub fn check(ip: IpAddr, allowed: &[Network]) -> Result<(), String> {
    match special_use(ip) {
        None => Ok(()),
        Some(_) if allowed.iter().any(|network| network.contains(ip)) => Ok(()),
        Some(kind) => Err(format!("{ip} ({kind} address)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn non_public_addresses_are_refused() {
        for blocked in [
            "127.0.0.1",
            "127.1.2.3",
            "0.0.0.0",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "169.254.1.1",
            "100.64.0.1",
            "100.127.255.255",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "fd00:ec2::254",
            "fe80::1",
            "ff02::1",
            "::127.0.0.1",
        ] {
            assert!(check(ip(blocked), &[]).is_err(), "{blocked} was allowed");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for public in [
            "93.184.215.14",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(check(ip(public), &[]).is_ok(), "{public} was refused");
        }
    }

    #[test]
    fn a_granted_network_lets_its_addresses_through_and_no_others() {
        let loopback = [Network::parse("127.0.0.0/8").unwrap()];
        assert!(check(ip("127.0.0.1"), &loopback).is_ok());
        assert!(check(ip("::ffff:127.0.0.1"), &loopback).is_ok());
        assert!(check(ip("10.0.0.1"), &loopback).is_err());
        assert!(check(ip("169.254.169.254"), &loopback).is_err());
        let host = [Network::parse("10.1.2.3").unwrap()];
        assert!(check(ip("10.1.2.3"), &host).is_ok());
        assert!(check(ip("10.1.2.4"), &host).is_err());
        assert!(check(ip("::1"), &[Network::parse("::1/128").unwrap()]).is_ok());
    }

    #[test]
    fn malformed_networks_are_refused() {
        for bad in ["10.0.0.0/33", "10.0.0/8", "localhost", "::1/129", ""] {
            assert!(Network::parse(bad).is_err(), "{bad} was accepted");
        }
    }
}
