//! What a person writes as an article, checked and shaped: slugs, a Markdown file's
//! front matter, tags, title and body limits, the body's checksum.

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::ArticleInput;
use crate::error::{ApiError, ApiResult};

/// A slug from a title: lower-case words joined by `-`.
pub fn slugify(title: &str) -> String {
    let mut slug = String::new();
    for c in title.to_lowercase().chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    let slug: String = slug.trim_end_matches('-').chars().take(100).collect();
    slug.trim_end_matches('-').to_string()
}

pub(super) fn valid_slug(slug: &str) -> bool {
    (1..=128).contains(&slug.len())
        && slug
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// `---\nkey: value\n---\nbody`: the keys of a simple front matter and the body.
/// Values are strings, or lists written `[a, b]`.
pub fn front_matter(markdown: &str) -> (Vec<(String, Value)>, &str) {
    let Some(rest) = markdown
        .strip_prefix("---\n")
        .or_else(|| markdown.strip_prefix("---\r\n"))
    else {
        return (Vec::new(), markdown);
    };
    let Some(end) = rest.find("\n---") else {
        return (Vec::new(), markdown);
    };
    let body = rest[end + 4..].trim_start_matches(['\r', '\n']);
    let mut fields = Vec::new();
    for line in rest[..end].lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        let value = if let Some(list) = value.strip_prefix('[').and_then(|v| v.strip_suffix(']')) {
            Value::Array(
                list.split(',')
                    .map(|item| item.trim().trim_matches(['"', '\'']))
                    .filter(|item| !item.is_empty())
                    .map(|item| Value::String(item.to_string()))
                    .collect(),
            )
        } else {
            Value::String(value.trim_matches(['"', '\'']).to_string())
        };
        fields.push((key.trim().to_string(), value));
    }
    (fields, body)
}

/// The input with a `markdown` file's front matter read into its fields.
pub(super) fn resolved(mut input: ArticleInput) -> ApiResult<ArticleInput> {
    if let Some(markdown) = input.markdown.take() {
        if input.body.is_some() {
            return Err(ApiError::Invalid(
                "give either markdown (with front matter) or body, not both".into(),
            ));
        }
        let (fields, body) = front_matter(&markdown);
        for (key, value) in fields {
            let text = value.as_str().map(str::to_string);
            match key.as_str() {
                "title" if input.title.is_none() => input.title = text,
                "slug" if input.slug.is_none() => input.slug = text,
                "category" if input.category.is_none() => input.category = text,
                "tags" if input.tags.is_none() => {
                    input.tags = value.as_array().map(|items| {
                        items
                            .iter()
                            .filter_map(|i| i.as_str().map(str::to_string))
                            .collect()
                    });
                }
                _ => {}
            }
        }
        input.body = Some(body.to_string());
    }
    Ok(input)
}

pub(super) fn checked_tags(tags: Option<Vec<String>>) -> ApiResult<Vec<String>> {
    let mut clean: Vec<String> = Vec::new();
    for tag in tags.unwrap_or_default() {
        let tag = tag.trim().to_lowercase();
        if tag.is_empty() || tag.chars().count() > 50 {
            return Err(ApiError::Invalid(format!(
                "tag {tag:?} must be 1 to 50 characters"
            )));
        }
        if !clean.contains(&tag) {
            clean.push(tag);
        }
    }
    if clean.len() > 20 {
        return Err(ApiError::Invalid("at most 20 tags".into()));
    }
    Ok(clean)
}

pub(super) fn checked_body(body: Option<String>) -> ApiResult<String> {
    let body = body.unwrap_or_default();
    if body.trim().is_empty() {
        return Err(ApiError::Invalid(
            "body (Markdown) must not be empty".into(),
        ));
    }
    if body.len() > 1 << 20 {
        return Err(ApiError::Invalid("body is over 1 MiB".into()));
    }
    Ok(body)
}

pub(super) fn checked_title(title: Option<String>) -> ApiResult<String> {
    let title = title.unwrap_or_default().trim().to_string();
    if title.is_empty() || title.chars().count() > 300 {
        return Err(ApiError::Invalid(
            "title must be 1 to 300 characters".into(),
        ));
    }
    Ok(title)
}

pub(super) fn checksum(body: &str) -> String {
    hex::encode(Sha256::digest(body.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn slugs_come_from_titles() {
        assert_eq!(slugify("How refunds work?"), "how-refunds-work");
        assert_eq!(slugify("  NW-4410: Setup & Reset "), "nw-4410-setup-reset");
        assert!(valid_slug(&slugify("Ünïcode title 2")));
    }

    #[test]
    fn front_matter_is_read() {
        let (fields, body) = front_matter(
            "---\ntitle: How refunds work\ntags: [billing, \"refunds\"]\n---\n\n## Hi\n",
        );
        assert_eq!(fields[0], ("title".into(), json!("How refunds work")));
        assert_eq!(fields[1], ("tags".into(), json!(["billing", "refunds"])));
        assert_eq!(body, "## Hi\n");
        assert_eq!(front_matter("no front matter").1, "no front matter");
    }
}
