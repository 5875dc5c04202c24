//! Which language a text is in, as an ISO 639-1 code (`de`, `en`), and the PostgreSQL
//! text-search configuration that stems it. Detection is whatlang's trigram
//! classifier; a text too short or too mixed to tell is "undetermined" and callers
//! fall back to a declared language (an article's, a workspace's) or to English.
//!
//! ```
//! use agenthost_support::language;
//!
//! assert_eq!(language::detect("Ich habe meine Rechnung noch nicht erhalten."), Some("de"));
//! assert_eq!(language::detect("ok"), None);
//! assert_eq!(language::text_search_config("de"), "german");
//! ```

use whatlang::{Detector, Lang};

/// The languages PostgreSQL 18 stems (its Snowball configurations), by ISO 639-1 code;
/// any other language is indexed word for word (`simple`).
const CONFIGS: [(&str, &str); 29] = [
    ("ar", "arabic"),
    ("ca", "catalan"),
    ("da", "danish"),
    ("de", "german"),
    ("el", "greek"),
    ("en", "english"),
    ("es", "spanish"),
    ("et", "estonian"),
    ("eu", "basque"),
    ("fi", "finnish"),
    ("fr", "french"),
    ("ga", "irish"),
    ("hi", "hindi"),
    ("hu", "hungarian"),
    ("hy", "armenian"),
    ("id", "indonesian"),
    ("it", "italian"),
    ("lt", "lithuanian"),
    ("nb", "norwegian"),
    ("ne", "nepali"),
    ("nl", "dutch"),
    ("no", "norwegian"),
    ("pt", "portuguese"),
    ("ro", "romanian"),
    ("ru", "russian"),
    ("sr", "serbian"),
    ("sv", "swedish"),
    ("ta", "tamil"),
    ("tr", "turkish"),
];

/// Below this confidence whatlang's answer is a guess (short texts, mixed languages).
/// Low, because whatlang is unsure between close languages (Spanish and Portuguese
/// score 0.1-0.7 on a sentence) while a four-word English question can come out as
/// Vietnamese at 0.13.
const MIN_CONFIDENCE: f64 = 0.15;

/// The language of `text` as an ISO 639-1 code, or None when it can't be told.
pub fn detect(text: &str) -> Option<&'static str> {
    let info = Detector::new().detect(text)?;
    if info.confidence() < MIN_CONFIDENCE || text.split_whitespace().count() < 3 {
        return None;
    }
    code(info.lang())
}

/// Whether `code` is a language code this module knows (declared languages are checked
/// against it).
pub fn is_known(code: &str) -> bool {
    Lang::all()
        .iter()
        .any(|lang| self::code(*lang) == Some(code))
}

/// The PostgreSQL text-search configuration for a language code: its stemmer and stop
/// words, or `simple` (lower-cased words) for a language PostgreSQL doesn't stem.
/// migrations/20261207000120_multilingual.sql has the same table.
pub fn text_search_config(code: &str) -> &'static str {
    CONFIGS
        .iter()
        .find(|(c, _)| *c == code)
        .map_or("simple", |(_, config)| config)
}

/// ISO 639-1 codes of whatlang's languages (Esperanto, Latin and a few others have
/// codes too; languages without one are not reported).
fn code(lang: Lang) -> Option<&'static str> {
    Some(match lang {
        Lang::Afr => "af",
        Lang::Aka => "ak",
        Lang::Amh => "am",
        Lang::Ara => "ar",
        Lang::Aze => "az",
        Lang::Bel => "be",
        Lang::Ben => "bn",
        Lang::Bul => "bg",
        Lang::Cat => "ca",
        Lang::Ces => "cs",
        Lang::Cmn => "zh",
        Lang::Dan => "da",
        Lang::Deu => "de",
        Lang::Ell => "el",
        Lang::Eng => "en",
        Lang::Epo => "eo",
        Lang::Est => "et",
        Lang::Fin => "fi",
        Lang::Fra => "fr",
        Lang::Guj => "gu",
        Lang::Heb => "he",
        Lang::Hin => "hi",
        Lang::Hrv => "hr",
        Lang::Hun => "hu",
        Lang::Hye => "hy",
        Lang::Ind => "id",
        Lang::Ita => "it",
        Lang::Jav => "jv",
        Lang::Jpn => "ja",
        Lang::Kan => "kn",
        Lang::Kat => "ka",
        Lang::Khm => "km",
        Lang::Kor => "ko",
        Lang::Lat => "la",
        Lang::Lav => "lv",
        Lang::Lit => "lt",
        Lang::Mal => "ml",
        Lang::Mar => "mr",
        Lang::Mkd => "mk",
        Lang::Mya => "my",
        Lang::Nep => "ne",
        Lang::Nld => "nl",
        Lang::Nob => "nb",
        Lang::Ori => "or",
        Lang::Pan => "pa",
        Lang::Pes => "fa",
        Lang::Pol => "pl",
        Lang::Por => "pt",
        Lang::Ron => "ro",
        Lang::Rus => "ru",
        Lang::Sin => "si",
        Lang::Slk => "sk",
        Lang::Slv => "sl",
        Lang::Sna => "sn",
        Lang::Spa => "es",
        Lang::Srp => "sr",
        Lang::Swe => "sv",
        Lang::Tam => "ta",
        Lang::Tel => "te",
        Lang::Tgl => "tl",
        Lang::Tha => "th",
        Lang::Tur => "tr",
        Lang::Ukr => "uk",
        Lang::Urd => "ur",
        Lang::Uzb => "uz",
        Lang::Vie => "vi",
        Lang::Yid => "yi",
        Lang::Zul => "zu",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn european_languages_are_told_apart() {
        for (text, expected) in [
            ("Mein Paket ist seit zwei Wochen nicht angekommen.", "de"),
            ("My parcel has not arrived for two weeks now.", "en"),
            (
                "Mon colis n'est toujours pas arrivé après deux semaines.",
                "fr",
            ),
            (
                "Mi pedido todavía no ha llegado y nadie contesta mis correos electrónicos.",
                "es",
            ),
            ("Wie kündige ich mein Abo?", "de"),
            (
                "Il mio pacco non è ancora arrivato dopo due settimane.",
                "it",
            ),
            (
                "Mijn pakket is na twee weken nog steeds niet aangekomen, kunnen jullie dat alsjeblieft nakijken?",
                "nl",
            ),
        ] {
            assert_eq!(detect(text), Some(expected), "{text}");
        }
    }

    #[test]
    fn too_little_text_is_undetermined() {
        assert_eq!(detect(""), None);
        assert_eq!(detect("Hallo"), None);
        assert_eq!(detect("12345 !!!"), None);
    }

    #[test]
    fn every_language_has_a_configuration() {
        assert_eq!(text_search_config("de"), "german");
        assert_eq!(text_search_config("en"), "english");
        assert_eq!(text_search_config("pl"), "simple");
        assert!(is_known("de") && is_known("pl") && !is_known("xx"));
    }
}
