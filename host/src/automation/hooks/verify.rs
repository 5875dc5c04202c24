//! Signed webhook requests: HMAC-SHA256 over the timestamp and the exact body bytes,
//! with the timestamp no further from the host's clock than the hook's tolerance, so a
//! captured request can't be replayed later. Every comparison of a signature is in
//! constant time.

use std::time::Duration;

use axum::http::HeaderMap;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::hmac;
use subtle::ConstantTimeEq;

use super::Scheme;

/// `hmac_sha256`: the Unix time in seconds the sender signed at.
pub const TIMESTAMP_HEADER: &str = "x-webhook-timestamp";
/// `hmac_sha256`: `sha256=<hex>`; several, space-separated, while a sender signs with
/// an old and a new secret.
pub const SIGNATURE_HEADER: &str = "x-webhook-signature";
/// Standard Webhooks: the message id (the same on every retry), its timestamp and
/// `v1,<base64>` signatures, space-separated.
pub const SW_ID: &str = "webhook-id";
pub const SW_TIMESTAMP: &str = "webhook-timestamp";
pub const SW_SIGNATURE: &str = "webhook-signature";

/// Why a request's signature was refused (a 401 whose message is this).
#[derive(Debug, PartialEq, Eq)]
pub struct Refused(pub String);

/// Check a request signed by `scheme` with one of `secrets` (the current one, and the
/// one before it during a rotation's grace period), at `now` (Unix seconds).
pub fn verify(
    scheme: Scheme,
    secrets: &[&str],
    headers: &HeaderMap,
    body: &[u8],
    tolerance: Duration,
    now: i64,
) -> Result<(), Refused> {
    let (timestamp_header, signature_header) = match scheme {
        Scheme::HmacSha256 => (TIMESTAMP_HEADER, SIGNATURE_HEADER),
        Scheme::StandardWebhooks => (SW_TIMESTAMP, SW_SIGNATURE),
    };
    let header = |name: &str| -> Result<&str, Refused> {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::trim)
            .filter(|value| !value.is_empty())
            .ok_or_else(|| Refused(format!("this webhook is signed: send the `{name}` header")))
    };
    let timestamp_text = header(timestamp_header)?;
    let timestamp: i64 = timestamp_text.parse().map_err(|_| {
        Refused(format!(
            "`{timestamp_header}` must be the Unix time in seconds, not {timestamp_text:?}"
        ))
    })?;
    let tolerance_secs = i64::try_from(tolerance.as_secs()).unwrap_or(i64::MAX);
    if now.abs_diff(timestamp) > tolerance_secs.unsigned_abs() {
        return Err(Refused(format!(
            "`{timestamp_header}` is more than {tolerance_secs} s from the server's clock: \
             a replayed or delayed request, or a sender whose clock is off"
        )));
    }
    let signatures = header(signature_header)?;
    let (prefix, message_prefix) = match scheme {
        Scheme::HmacSha256 => ("sha256=", format!("{timestamp_text}.")),
        Scheme::StandardWebhooks => {
            let id = header(SW_ID)?;
            ("v1,", format!("{id}.{timestamp_text}."))
        }
    };
    let candidates: Vec<Vec<u8>> = signatures
        .split_ascii_whitespace()
        .filter_map(|entry| entry.strip_prefix(prefix))
        .filter_map(|encoded| match scheme {
            Scheme::HmacSha256 => hex::decode(encoded).ok(),
            Scheme::StandardWebhooks => STANDARD.decode(encoded).ok(),
        })
        .collect();
    if candidates.is_empty() {
        let example = match scheme {
            Scheme::HmacSha256 => "sha256=<hex of the HMAC-SHA256>",
            Scheme::StandardWebhooks => "v1,<base64 of the HMAC-SHA256>",
        };
        return Err(Refused(format!(
            "`{signature_header}` holds no signature of the form `{example}`"
        )));
    }
    for secret in secrets {
        let Some(key) = key_of(scheme, secret) else {
            continue;
        };
        let mut context = hmac::Context::with_key(&key);
        context.update(message_prefix.as_bytes());
        context.update(body);
        let expected = context.sign();
        if candidates
            .iter()
            .any(|candidate| bool::from(candidate.as_slice().ct_eq(expected.as_ref())))
        {
            return Ok(());
        }
    }
    Err(Refused(format!(
        "`{signature_header}` does not match the body: sign `{}<body>` with the hook's secret",
        match scheme {
            Scheme::HmacSha256 => "<timestamp>.",
            Scheme::StandardWebhooks => "<id>.<timestamp>.",
        }
    )))
}

/// The HMAC key of a secret: its text for `hmac_sha256` (what `openssl dgst -hmac`
/// takes), the bytes of the base64 after `whsec_` for Standard Webhooks.
fn key_of(scheme: Scheme, secret: &str) -> Option<hmac::Key> {
    match scheme {
        Scheme::HmacSha256 => Some(hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes())),
        Scheme::StandardWebhooks => {
            let bytes = STANDARD
                .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
                .ok()?;
            Some(hmac::Key::new(hmac::HMAC_SHA256, &bytes))
        }
    }
}

/// A signature of `body` as a sender makes it (for tests and the benchmark).
pub fn sign(scheme: Scheme, secret: &str, id: &str, timestamp: i64, body: &[u8]) -> String {
    let Some(key) = key_of(scheme, secret) else {
        return String::new();
    };
    let mut context = hmac::Context::with_key(&key);
    match scheme {
        Scheme::HmacSha256 => context.update(format!("{timestamp}.").as_bytes()),
        Scheme::StandardWebhooks => context.update(format!("{id}.{timestamp}.").as_bytes()),
    }
    context.update(body);
    let tag = context.sign();
    match scheme {
        Scheme::HmacSha256 => format!("sha256={}", hex::encode(tag.as_ref())),
        Scheme::StandardWebhooks => format!("v1,{}", STANDARD.encode(tag.as_ref())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const FIVE_MINUTES: Duration = Duration::from_secs(300);

    fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().expect("header value"));
        }
        map
    }

    #[test]
    fn the_standard_webhooks_example_verifies() {
        // The example of the spec's reference libraries (standard-webhooks, Svix).
        let body = br#"{"test": 2432232314}"#;
        let request = headers(&[
            (SW_ID, "msg_p5jXN8AQM9LWM0D4loKWxJek".into()),
            (SW_TIMESTAMP, "1614265330".into()),
            (
                SW_SIGNATURE,
                "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=".into(),
            ),
        ]);
        let scheme = Scheme::StandardWebhooks;
        assert_eq!(
            verify(scheme, &[SECRET], &request, body, FIVE_MINUTES, 1614265330),
            Ok(())
        );
        assert_eq!(
            sign(
                scheme,
                SECRET,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                body
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        // Ten minutes later the same request is a replay.
        let late = verify(scheme, &[SECRET], &request, body, FIVE_MINUTES, 1614265930);
        assert!(late.is_err_and(|r| r.0.contains("from the server's clock")));
    }

    #[test]
    fn hmac_sha256_checks_body_timestamp_and_every_secret() {
        let now = 1_800_000_000;
        let body = b"{\"order\": 7}";
        let signed = |secret: &str, at: i64, body: &[u8]| {
            headers(&[
                (TIMESTAMP_HEADER, at.to_string()),
                (
                    SIGNATURE_HEADER,
                    sign(Scheme::HmacSha256, secret, "", at, body),
                ),
            ])
        };
        let check = |request: &HeaderMap, body: &[u8], secrets: &[&str]| {
            verify(
                Scheme::HmacSha256,
                secrets,
                request,
                body,
                FIVE_MINUTES,
                now,
            )
        };
        assert_eq!(check(&signed("s1", now - 299, body), body, &["s1"]), Ok(()));
        assert!(check(&signed("s1", now, body), b"{\"order\": 8}", &["s1"]).is_err());
        assert!(check(&signed("s2", now, body), body, &["s1"]).is_err());
        // During a rotation's grace period, the old secret still verifies.
        assert_eq!(check(&signed("s2", now, body), body, &["s1", "s2"]), Ok(()));
        // The timestamp is signed: moving it breaks the signature.
        let mut moved = signed("s1", now - 1000, body);
        moved.insert(TIMESTAMP_HEADER, now.to_string().parse().expect("value"));
        assert!(check(&moved, body, &["s1"]).is_err());
        assert!(check(&signed("s1", now - 301, body), body, &["s1"]).is_err());
        assert!(check(&signed("s1", now + 301, body), body, &["s1"]).is_err());
        let missing = check(&HeaderMap::new(), body, &["s1"]);
        assert!(missing.is_err_and(|r| r.0.contains(TIMESTAMP_HEADER)));
        // A sender signing with two secrets sends two signatures.
        let both = format!(
            "{} {}",
            sign(Scheme::HmacSha256, "old", "", now, body),
            sign(Scheme::HmacSha256, "s1", "", now, body)
        );
        let request = headers(&[
            (TIMESTAMP_HEADER, now.to_string()),
            (SIGNATURE_HEADER, both),
        ]);
        assert_eq!(check(&request, body, &["s1"]), Ok(()));
    }
}
