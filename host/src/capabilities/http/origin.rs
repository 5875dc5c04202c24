//! Origin patterns from an http grant: `https://api.example.com`, `*.example.com:443`,
//! `http://127.0.0.1:8080`. A pattern names a host (exactly, or every subdomain with a
//! leading `*.`), optionally a scheme and optionally a port.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginPattern {
    /// `None` allows both http and https.
    scheme: Option<Scheme>,
    host: HostPattern,
    /// `None` means the scheme's default port (80 or 443).
    port: Option<u16>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn parse(text: &str) -> Option<Scheme> {
        match text.to_ascii_lowercase().as_str() {
            "http" => Some(Scheme::Http),
            "https" => Some(Scheme::Https),
            _ => None,
        }
    }

    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Exact(String),
    /// `*.example.com`: any name ending in `.example.com` (not `example.com` itself).
    Subdomains(String),
}

/// The parts of a request's URL that a pattern is matched against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub scheme: Scheme,
    /// Lowercase, without a trailing dot; IPv6 addresses without brackets.
    pub host: String,
    pub port: u16,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

impl OriginPattern {
    pub fn parse(text: &str) -> Result<OriginPattern, String> {
        let bad = |why: &str| format!("origin {text:?} {why}");
        let (scheme, rest) = match text.split_once("://") {
            Some((scheme, rest)) => (
                Some(Scheme::parse(scheme).ok_or_else(|| bad("must use http or https"))?),
                rest,
            ),
            None => (None, text),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#', '@']) {
            return Err(bad("must be scheme://host[:port], without a path or user"));
        }
        let (host, port) = split_host_port(rest).ok_or_else(|| bad("has a malformed port"))?;
        let host = normalize_host(host);
        if host.is_empty() {
            return Err(bad("has no host"));
        }
        let host = match host.strip_prefix("*.") {
            Some(suffix) => match canonical_host(suffix) {
                Some(suffix) if valid_name(&suffix) && suffix.contains('.') => {
                    HostPattern::Subdomains(suffix)
                }
                _ => return Err(bad("needs a domain of at least two labels after `*.`")),
            },
            None if host.contains('*') => return Err(bad("may only use `*.` as a prefix")),
            None => match canonical_host(&host) {
                Some(host) if valid_name(&host) || host.parse::<std::net::IpAddr>().is_ok() => {
                    HostPattern::Exact(host)
                }
                _ => return Err(bad("has an invalid host name")),
            },
        };
        Ok(OriginPattern { scheme, host, port })
    }

    pub fn matches(&self, origin: &Origin) -> bool {
        if self.scheme.is_some_and(|scheme| scheme != origin.scheme) {
            return false;
        }
        if self.port.unwrap_or(origin.scheme.default_port()) != origin.port {
            return false;
        }
        match &self.host {
            HostPattern::Exact(host) => *host == origin.host,
            HostPattern::Subdomains(suffix) => origin
                .host
                .strip_suffix(suffix.as_str())
                .is_some_and(|label| label.len() > 1 && label.ends_with('.')),
        }
    }
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`; `None` when the port is malformed.
pub fn split_host_port(text: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':')?)),
        }
    } else {
        match text.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    let port = match port {
        Some(port) => Some(port.parse::<u16>().ok().filter(|port| *port != 0)?),
        None => None,
    };
    Some((host, port))
}

/// Lowercase without a trailing dot, so `API.Example.com.` and `api.example.com` agree.
pub fn normalize_host(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// The host as the request's URL parser (WHATWG, the `url` crate reqwest uses) reads
/// it: numeric IPv4 spellings (`127.1`, `2130706433`, `0x7f000001`, `0177.0.0.1`)
/// become the dotted address that is dialled, IPv6 is compressed, names are
/// IDNA-mapped. `None` when that parser refuses the host.
pub fn canonical_host(host: &str) -> Option<String> {
    let bracketed;
    let input = if host.contains(':') {
        bracketed = format!("[{host}]");
        &bracketed
    } else {
        host
    };
    Some(match url::Host::parse(input).ok()? {
        url::Host::Domain(name) => normalize_host(&name),
        url::Host::Ipv4(ip) => ip.to_string(),
        url::Host::Ipv6(ip) => ip.to_string(),
    })
}

fn valid_name(host: &str) -> bool {
    !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(scheme: Scheme, host: &str, port: u16) -> Origin {
        Origin {
            scheme,
            host: host.into(),
            port,
        }
    }

    #[test]
    fn exact_origins_match_scheme_host_and_default_port() {
        let pattern = OriginPattern::parse("https://API.example.com").unwrap();
        assert!(pattern.matches(&origin(Scheme::Https, "api.example.com", 443)));
        assert!(!pattern.matches(&origin(Scheme::Http, "api.example.com", 80)));
        assert!(!pattern.matches(&origin(Scheme::Https, "api.example.com", 8443)));
        assert!(!pattern.matches(&origin(Scheme::Https, "evil-api.example.com", 443)));
        assert!(!pattern.matches(&origin(Scheme::Https, "api.example.com.evil.io", 443)));
    }

    #[test]
    fn wildcards_match_subdomains_only_on_the_named_port() {
        let pattern = OriginPattern::parse("*.example.com:443").unwrap();
        assert!(pattern.matches(&origin(Scheme::Https, "a.example.com", 443)));
        assert!(pattern.matches(&origin(Scheme::Https, "a.b.example.com", 443)));
        assert!(!pattern.matches(&origin(Scheme::Https, "example.com", 443)));
        assert!(!pattern.matches(&origin(Scheme::Https, "badexample.com", 443)));
        assert!(!pattern.matches(&origin(Scheme::Https, "a.example.com", 80)));
        // No scheme in the pattern: plain http on 443 is allowed too.
        assert!(pattern.matches(&origin(Scheme::Http, "a.example.com", 443)));
    }

    #[test]
    fn ip_literals_and_ports() {
        let pattern = OriginPattern::parse("http://127.0.0.1:8080").unwrap();
        assert!(pattern.matches(&origin(Scheme::Http, "127.0.0.1", 8080)));
        assert!(!pattern.matches(&origin(Scheme::Http, "127.0.0.1", 8081)));
        let v6 = OriginPattern::parse("https://[::1]:9000").unwrap();
        assert!(v6.matches(&origin(Scheme::Https, "::1", 9000)));
    }

    #[test]
    fn numeric_ipv4_spellings_are_read_as_the_address_they_dial() {
        for spelling in [
            "127.1",
            "2130706433",
            "0x7f000001",
            "017700000001",
            "127.0.1",
            "0177.0.0.1",
            "0x7f.1",
        ] {
            assert_eq!(canonical_host(spelling).as_deref(), Some("127.0.0.1"));
            let pattern = OriginPattern::parse(&format!("http://{spelling}:8080")).unwrap();
            assert!(pattern.matches(&origin(Scheme::Http, "127.0.0.1", 8080)));
        }
        assert_eq!(canonical_host("0").as_deref(), Some("0.0.0.0"));
        assert_eq!(
            canonical_host("::FFFF:7f00:1").as_deref(),
            Some("::ffff:127.0.0.1")
        );
        assert_eq!(
            canonical_host("Example.COM").as_deref(),
            Some("example.com")
        );
        // A last label that is numeric but no valid IPv4 address is refused, as the
        // request's parser refuses it.
        assert!(OriginPattern::parse("http://1.2.3.4.5").is_err());
        assert!(OriginPattern::parse("http://256.1.1.1").is_err());
    }

    #[test]
    fn malformed_patterns_are_refused() {
        for bad in [
            "ftp://example.com",
            "https://example.com/path",
            "https://user@example.com",
            "*.com",
            "api.*.example.com",
            "https://example.com:99999",
            "https://example.com:0",
            "https://",
            "*",
        ] {
            assert!(OriginPattern::parse(bad).is_err(), "{bad} was accepted");
        }
    }
}
