//! The ticket rules the host's REST API and Cassie both apply before a ticket reaches
//! the database: the allowed values, the limits, tag clean-up and how a ticket is
//! named. The table's checks and triggers (migration 0011) stay the last word; these
//! give a client or the model a message naming the problem first.

use std::fmt;

/// A ticket's statuses; the trigger judges the moves between them.
pub const STATUSES: &[&str] = &["open", "pending", "solved", "closed"];
/// A ticket's priorities, lowest first (the SLA policy has one target per priority).
pub const PRIORITIES: &[&str] = &["low", "normal", "high", "urgent"];
/// Where a ticket came from.
pub const CHANNELS: &[&str] = &["email", "chat", "phone", "web", "api"];

/// Characters of a subject (the table's check).
pub const MAX_SUBJECT_CHARS: usize = 500;
/// Characters of a description (the table's check).
pub const MAX_DESCRIPTION_CHARS: usize = 65_536;
/// Characters of a comment's body (the table's check).
pub const MAX_COMMENT_CHARS: usize = 65_536;
/// Tags a ticket may have.
pub const MAX_TAGS: usize = 20;
/// Characters of one tag.
pub const MAX_TAG_CHARS: usize = 50;

/// Characters of a ticket that are embedded, searched and sent to the model: the
/// embedding model reads 256 pieces, so more would not be seen anyway.
pub const TICKET_TEXT_CHARS: usize = 1500;

/// A ticket as one text: its subject, a blank line, its description.
pub fn ticket_text(subject: &str, description: &str) -> String {
    format!("{}\n\n{}", subject.trim(), description.trim())
}

/// The part of [`ticket_text`] that is searched: its first [`TICKET_TEXT_CHARS`].
pub fn searched_text(full: &str) -> String {
    full.chars().take(TICKET_TEXT_CHARS).collect()
}

/// Why tags were refused; the text is the REST API's message for the `tags` field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagError {
    /// This tag (trimmed, lower-cased) has more than [`MAX_TAG_CHARS`] characters.
    TooLong(String),
    /// This many distinct tags is more than [`MAX_TAGS`].
    TooMany(usize),
}

impl fmt::Display for TagError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TagError::TooLong(tag) => {
                write!(f, "{tag:?} is longer than {MAX_TAG_CHARS} characters")
            }
            TagError::TooMany(count) => {
                write!(f, "{count} tags is more than {MAX_TAGS} per ticket")
            }
        }
    }
}

impl std::error::Error for TagError {}

/// Tags trimmed and lower-cased, empty ones and duplicates dropped (the first one
/// stays, in order); at most [`MAX_TAGS`] of at most [`MAX_TAG_CHARS`] characters.
pub fn clean_tags<S: AsRef<str>>(tags: &[S]) -> Result<Vec<String>, TagError> {
    let mut out: Vec<String> = Vec::new();
    for tag in tags {
        let tag = tag.as_ref().trim().to_lowercase();
        if tag.is_empty() || out.contains(&tag) {
            continue;
        }
        if tag.chars().count() > MAX_TAG_CHARS {
            return Err(TagError::TooLong(tag));
        }
        out.push(tag);
    }
    if out.len() > MAX_TAGS {
        return Err(TagError::TooMany(out.len()));
    }
    Ok(out)
}

/// How a person or the model names a ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TicketKey {
    /// Its id, lower-case and hyphenated (`67e55044-10b1-426f-9247-bb680e5fe0c8`).
    Id(String),
    /// Its number in the workspace (numbers start at 1).
    Number(i64),
}

impl TicketKey {
    /// A ticket's id in any of the forms the `uuid` crate reads (hyphenated, 32 hex
    /// digits, `{braced}`, `urn:uuid:`; any case), or its number with or
    /// without `#` (`42`, `#42`); surrounding spaces don't count. `None` for anything
    /// else, a number below 1 included.
    pub fn parse(text: &str) -> Option<TicketKey> {
        let text = text.trim();
        if let Some(id) = uuid(text) {
            return Some(TicketKey::Id(id));
        }
        match text.trim_start_matches('#').trim().parse::<i64>() {
            Ok(n) if n > 0 => Some(TicketKey::Number(n)),
            _ => None,
        }
    }
}

/// `text` as a lower-case hyphenated UUID, if it is one.
fn uuid(text: &str) -> Option<String> {
    let hex: String = match text.len() {
        32 => text.to_string(),
        36 | 38 | 45 => {
            let hyphenated = match text.len() {
                38 => text.strip_prefix('{')?.strip_suffix('}')?,
                45 => text.strip_prefix("urn:uuid:")?,
                _ => text,
            };
            let bytes = hyphenated.as_bytes();
            if [8, 13, 18, 23].iter().any(|&i| bytes.get(i) != Some(&b'-')) {
                return None;
            }
            hyphenated.split('-').collect()
        }
        _ => return None,
    };
    if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let hex = hex.to_ascii_lowercase();
    Some(format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "67e55044-10b1-426f-9247-bb680e5fe0c8";

    #[test]
    fn tickets_are_named_by_id_in_any_form_or_by_number() {
        let id = Some(TicketKey::Id(ID.into()));
        for text in [
            ID.to_string(),
            ID.to_uppercase(),
            format!(" {ID} "),
            ID.replace('-', ""),
            format!("{{{ID}}}"),
            format!("urn:uuid:{ID}"),
        ] {
            assert_eq!(TicketKey::parse(&text), id, "{text}");
        }
        for text in ["42", "#42", " # 42 ", "+42"] {
            assert_eq!(
                TicketKey::parse(text),
                Some(TicketKey::Number(42)),
                "{text}"
            );
        }
        for text in [
            "",
            "#",
            "0",
            "-3",
            "the billing one",
            "9223372036854775808",
            &ID[1..],
            &format!("{ID}0"),
            &ID.replace('-', "_"),
            &format!("{{{ID}"),
            &format!("URN:UUID:{ID}"),
            &ID.replace('6', "g"),
        ] {
            assert_eq!(TicketKey::parse(text), None, "{text}");
        }
    }

    #[test]
    fn tags_are_trimmed_lower_cased_unique_and_limited() {
        assert_eq!(
            clean_tags(&[" Billing", "billing", "", "VIP "]),
            Ok(vec!["billing".to_string(), "vip".to_string()])
        );
        let long = "X".repeat(MAX_TAG_CHARS + 1);
        let error = clean_tags(&[long.as_str()]).unwrap_err();
        assert_eq!(error, TagError::TooLong(long.to_lowercase()));
        assert_eq!(
            error.to_string(),
            format!("{:?} is longer than 50 characters", long.to_lowercase())
        );
        assert!(clean_tags(&["é".repeat(MAX_TAG_CHARS)]).is_ok());
        let many: Vec<String> = (0..=MAX_TAGS).map(|i| format!("t{i}")).collect();
        let error = clean_tags(&many).unwrap_err();
        assert_eq!(error.to_string(), "21 tags is more than 20 per ticket");
        // Duplicates don't count towards the limit.
        let twice: Vec<&String> = many[..MAX_TAGS].iter().cycle().take(2 * MAX_TAGS).collect();
        assert_eq!(clean_tags(&twice).map(|t| t.len()), Ok(MAX_TAGS));
    }

    #[test]
    fn the_searched_text_is_the_first_characters_of_subject_and_description() {
        let full = ticket_text(" Charged twice ", " My card… ");
        assert_eq!(full, "Charged twice\n\nMy card…");
        assert_eq!(searched_text(&full), full);
        let long = "é".repeat(TICKET_TEXT_CHARS + 10);
        assert_eq!(searched_text(&long).chars().count(), TICKET_TEXT_CHARS);
    }
}
