//! Standard Webhooks signatures (spec 1.0.0, symmetric): the key is `whsec_` + base64 of
//! 24-64 random bytes; the signature of an attempt is `v1,` + base64 of
//! HMAC-SHA256(key, `{webhook-id}.{webhook-timestamp}.{body}`) over the exact body
//! bytes; `webhook-signature` lists one per valid key, space-separated, so a receiver
//! keeps verifying while a secret is rotated.

use base64::Engine;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use rand::RngCore;
use ring::hmac;

pub const PREFIX: &str = "whsec_";
const MIN_KEY_BYTES: usize = 24;
const MAX_KEY_BYTES: usize = 64;
/// What a generated secret holds (the spec's range is 24-64).
const GENERATED_KEY_BYTES: usize = 32;

/// Reads secrets with or without their `=` padding, as the spec's own libraries do.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A fresh secret, `whsec_` + base64 of 32 random bytes (rand's thread generator: a
/// CSPRNG seeded from the OS, as API keys use).
pub fn generate_secret() -> String {
    let mut key = [0u8; GENERATED_KEY_BYTES];
    rand::rng().fill_bytes(&mut key);
    format!("{PREFIX}{}", STANDARD.encode(key))
}

/// The key bytes of a secret, or why it is not one.
pub fn key_of(secret: &str) -> Result<Vec<u8>, String> {
    let bad = || {
        format!(
            "must be `{PREFIX}` followed by the base64 of {MIN_KEY_BYTES} to {MAX_KEY_BYTES} \
             random bytes"
        )
    };
    let encoded = secret.strip_prefix(PREFIX).ok_or_else(bad)?;
    let key = LENIENT.decode(encoded).map_err(|_| bad())?;
    if !(MIN_KEY_BYTES..=MAX_KEY_BYTES).contains(&key.len()) {
        return Err(bad());
    }
    Ok(key)
}

/// `v1,<base64>`: one key's signature of one attempt.
pub fn signature(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let mut context = hmac::Context::with_key(&key);
    context.update(id.as_bytes());
    context.update(b".");
    context.update(timestamp.to_string().as_bytes());
    context.update(b".");
    context.update(body);
    format!("v1,{}", STANDARD.encode(context.sign().as_ref()))
}

/// The `webhook-signature` header: a signature per key, newest first.
pub fn header(keys: &[Vec<u8>], id: &str, timestamp: i64, body: &[u8]) -> String {
    keys.iter()
        .map(|key| signature(key, id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the spec's own libraries (standard-webhooks, libraries/python
    /// `test_webhook.py` and the Rust crate's tests): this key, id, timestamp and body
    /// sign to this value.
    #[test]
    fn the_reference_example_signs_as_the_spec_libraries_do() {
        let key = key_of("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            signature(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn generated_secrets_are_valid_and_different() {
        let (a, b) = (generate_secret(), generate_secret());
        assert_ne!(a, b);
        assert_eq!(key_of(&a).unwrap().len(), GENERATED_KEY_BYTES);
    }

    #[test]
    fn secrets_outside_the_spec_are_refused() {
        let short = format!("{PREFIX}{}", STANDARD.encode([7u8; 23]));
        let long = format!("{PREFIX}{}", STANDARD.encode([7u8; 65]));
        let fine = format!("{PREFIX}{}", STANDARD.encode([7u8; 24]));
        for bad in [
            short.as_str(),
            long.as_str(),
            "whsec_",
            "whsec_not base64!",
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        ] {
            assert!(key_of(bad).is_err(), "{bad}");
        }
        assert!(key_of(&fine).is_ok());
        assert!(
            key_of(fine.trim_end_matches('=')).is_ok(),
            "padding is optional"
        );
    }

    #[test]
    fn a_rotation_header_carries_both_signatures() {
        let (new, old) = (vec![1u8; 32], vec![2u8; 32]);
        let both = header(&[new.clone(), old.clone()], "id", 1, b"{}");
        let parts: Vec<&str> = both.split(' ').collect();
        assert_eq!(
            parts,
            [
                signature(&new, "id", 1, b"{}"),
                signature(&old, "id", 1, b"{}")
            ]
        );
    }
}
