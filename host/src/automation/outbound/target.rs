//! What a webhook may point at and subscribe to. Each refusal is a sentence that starts
//! with the field it is about (`url: ...`), for a 422.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::capabilities::http::{Network, check_address};
use crate::events::types::{self, CATALOGUE};

pub const MAX_URL_BYTES: usize = 2000;
pub const MAX_EVENT_TYPES: usize = 50;
pub const MAX_SELECTOR_BYTES: usize = 200;
pub const MAX_DESCRIPTION_CHARS: usize = 500;
/// Every event of the workspace.
pub const ALL: &str = "*";

/// The URL a webhook may be sent to: absolute http(s), no user name or password, and
/// a host that is a public address unless the server allows its network. A name is
/// judged again by what it resolves to when each delivery is sent (DNS may change);
/// here only names that are loopback by definition (`localhost`, RFC 6761) are.
pub fn check_url(text: &str, networks: &[Network]) -> Result<url::Url, String> {
    if text.len() > MAX_URL_BYTES {
        return Err(format!("url: longer than {MAX_URL_BYTES} bytes"));
    }
    // The URL parser forgives what the OpenAPI pattern does not (spaces and controls
    // are dropped, any scheme is read), so those are refused before it reads the text.
    let scheme_end = text.find("://").unwrap_or(0);
    if !matches!(
        text[..scheme_end].to_ascii_lowercase().as_str(),
        "http" | "https"
    ) {
        return Err(format!("url: {text:?} must start with http:// or https://"));
    }
    if text
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '\u{feff}')
    {
        return Err("url: must not contain spaces or control characters".into());
    }
    let url = url::Url::parse(text).map_err(|_| {
        format!("url: {text:?} is not an absolute URL (like https://example.com/hooks)")
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "url: the scheme must be http or https, not {:?}",
            url.scheme()
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("url: must not carry a user name or password".into());
    }
    let addresses: Vec<IpAddr> = match url.host() {
        Some(url::Host::Ipv4(ip)) => vec![IpAddr::V4(ip)],
        Some(url::Host::Ipv6(ip)) => vec![IpAddr::V6(ip)],
        Some(url::Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            if name == "localhost" || name.ends_with(".localhost") {
                vec![
                    IpAddr::V4(Ipv4Addr::LOCALHOST),
                    IpAddr::V6(Ipv6Addr::LOCALHOST),
                ]
            } else {
                Vec::new()
            }
        }
        None => return Err(format!("url: {text:?} has no host")),
    };
    for ip in addresses {
        check_address(ip, networks).map_err(|why| {
            format!(
                "url: {why} is not a public address; webhooks reach it only when the \
                 server allows its network (--webhook-allow-private-networks)"
            )
        })?;
    }
    Ok(url)
}

/// Every value `event_types` takes: `*`, each type of the catalogue, and each prefix of
/// whole segments of one, bare or with `.*` (exactly what [`check_event_types`]
/// accepts, so the OpenAPI enum and the server agree).
pub fn selectors() -> Vec<String> {
    let mut all = BTreeSet::from([ALL.to_string()]);
    for event in CATALOGUE.iter() {
        let segments: Vec<&str> = event.name.split('.').collect();
        for end in 1..segments.len() {
            let prefix = segments[..end].join(".");
            all.insert(format!("{prefix}.*"));
            all.insert(prefix);
        }
        all.insert(event.name.to_string());
    }
    all.into_iter().collect()
}

/// Whether `selector` names an event type of the catalogue or a prefix of one.
fn is_known(selector: &str) -> bool {
    if selector == ALL {
        return true;
    }
    if !types::is_type_or_prefix(selector) {
        return false;
    }
    match selector.strip_suffix(".*") {
        // `x.*` is a prefix: some type goes on after it.
        Some(prefix) => CATALOGUE.iter().any(|event| {
            event
                .name
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with('.'))
        }),
        None => CATALOGUE
            .iter()
            .any(|event| types::selects(selector, event.name)),
    }
}

/// 1-50 distinct selectors, each known.
pub fn check_event_types(selectors: &[String]) -> Result<(), String> {
    if selectors.is_empty() {
        return Err("event_types: list at least one event type (or `*` for every event)".into());
    }
    if selectors.len() > MAX_EVENT_TYPES {
        return Err(format!(
            "event_types: {} entries is more than the {MAX_EVENT_TYPES} a webhook may have",
            selectors.len()
        ));
    }
    for (i, selector) in selectors.iter().enumerate() {
        if selector.len() > MAX_SELECTOR_BYTES || !is_known(selector) {
            let shown: String = selector.chars().take(MAX_SELECTOR_BYTES).collect();
            return Err(format!(
                "event_types[{i}]: {shown:?} is not an event type or a prefix of one \
                 (GET /api/event-types lists them; `*` is every event)"
            ));
        }
        if selectors[..i].contains(selector) {
            return Err(format!("event_types[{i}]: {selector:?} is listed twice"));
        }
    }
    Ok(())
}

/// Whether a webhook with these selectors is sent an event of type `kind`.
pub fn selects(selectors: &[String], kind: &str) -> bool {
    selectors
        .iter()
        .any(|selector| selector == ALL || types::selects(selector, kind))
}

pub fn check_description(description: &str) -> Result<(), String> {
    if description.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(format!(
            "description: longer than {MAX_DESCRIPTION_CHARS} characters"
        ));
    }
    Ok(())
}

pub fn check_secret(secret: &str) -> Result<(), String> {
    super::sign::key_of(secret)
        .map(drop)
        .map_err(|why| format!("secret: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(url: &str, networks: &[Network]) -> String {
        check_url(url, networks).unwrap_err()
    }

    #[test]
    fn non_public_hosts_are_refused_unless_their_network_is_allowed() {
        for url in [
            "http://127.0.0.1:8080/hook",
            "http://2130706433/",
            "http://127.1/",
            "http://[::1]/",
            "http://10.0.0.8/",
            "http://169.254.169.254/latest/meta-data",
            "http://localhost:9000/",
            "http://api.localhost./",
        ] {
            let why = refused(url, &[]);
            assert!(why.starts_with("url: "), "{why}");
            assert!(why.contains("--webhook-allow-private-networks"), "{why}");
        }
        let loopback = [
            Network::parse("127.0.0.0/8").unwrap(),
            Network::parse("::1").unwrap(),
        ];
        assert!(check_url("http://127.0.0.1:8080/hook", &loopback).is_ok());
        assert!(check_url("http://localhost:8080/hook", &loopback).is_ok());
        assert!(check_url("http://10.0.0.8/", &loopback).is_err());
        assert!(check_url("https://hooks.example.com/in?x=1", &[]).is_ok());
    }

    #[test]
    fn malformed_urls_name_the_field() {
        for url in [
            "",
            "hooks.example.com/in",
            "ftp://example.com/",
            "https://user:pw@example.com/",
            "javascript:alert(1)",
        ] {
            assert!(refused(url, &[]).starts_with("url: "), "{url}");
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_BYTES));
        assert!(refused(&long, &[]).contains("longer than"));
    }

    #[test]
    fn event_types_are_catalogued_types_or_prefixes() {
        let ok = |list: &[&str]| {
            check_event_types(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        };
        assert!(ok(&["ticket.created", "workflow.*", "kb", "*"]).is_ok());
        assert!(ok(&["webhook.delivery.failed"]).is_ok());
        let unknown = ok(&["ticket.created", "ticket.exploded"]).unwrap_err();
        assert!(unknown.starts_with("event_types[1]: "), "{unknown}");
        assert!(ok(&["tick"]).is_err(), "a prefix is of whole segments");
        assert!(
            ok(&["ticket.created.*"]).is_err(),
            "nothing goes on after a type"
        );
        let every = selectors();
        assert!(every.contains(&"ticket.*".to_string()));
        assert!(!every.contains(&"ticket.created.*".to_string()));
        assert!(ok(&[]).unwrap_err().starts_with("event_types: "));
        assert!(ok(&["kb", "kb"]).unwrap_err().contains("twice"));
        for selector in selectors() {
            assert!(is_known(&selector), "{selector}");
        }
        assert!(selects(&["ticket".into()], "ticket.created"));
        assert!(selects(&["*".into()], "deal.won"));
        assert!(!selects(&["ticket.created".into()], "ticket.updated"));
    }
}
