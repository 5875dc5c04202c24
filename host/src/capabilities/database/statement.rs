//! Which statements a plugin may send. Privileges already stop reads and writes outside
//! the grant; this stops what privileges can't: session and transaction control (`SET
//! statement_timeout = 0`, `COMMIT`, `LISTEN`, `DO`...). One statement per call is
//! enforced by PostgreSQL itself, since statements are prepared (extended protocol).

use crate::runtime::bindings::Error;

/// First keywords of the statements plugins may run.
const ALLOWED: &[&str] = &[
    "select", "with", "insert", "update", "delete", "values", "table", "merge",
];

pub fn check(sql: &str) -> Result<(), Error> {
    let keyword = first_keyword(sql).to_ascii_lowercase();
    if keyword.is_empty() {
        return Err(Error::Invalid("the statement is empty".into()));
    }
    if ALLOWED.contains(&keyword.as_str()) {
        return Ok(());
    }
    Err(Error::Denied(format!(
        "{} statements are not allowed through the database capability; allowed: {}",
        keyword.to_ascii_uppercase(),
        ALLOWED.join(", ").to_ascii_uppercase()
    )))
}

/// The first word of `sql` after whitespace, comments (`--`, nested `/* */`) and
/// opening parentheses.
fn first_keyword(sql: &str) -> &str {
    let mut rest = sql;
    loop {
        let trimmed = rest.trim_start_matches(|c: char| c.is_whitespace() || c == '(');
        if let Some(comment) = trimmed.strip_prefix("--") {
            rest = comment.split_once('\n').map_or("", |(_, after)| after);
        } else if trimmed.starts_with("/*") {
            rest = skip_block_comment(trimmed);
        } else {
            rest = trimmed;
            break;
        }
    }
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    &rest[..end]
}

/// `text` starts with `/*`; returns what follows the matching `*/` (comments nest in
/// PostgreSQL), or "" when unterminated.
fn skip_block_comment(text: &str) -> &str {
    let bytes = text.as_bytes();
    let (mut depth, mut i) = (0usize, 0usize);
    while i + 1 < bytes.len() {
        match (bytes[i], bytes[i + 1]) {
            (b'/', b'*') => {
                depth += 1;
                i += 2;
            }
            (b'*', b'/') => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return &text[i..];
                }
            }
            _ => i += 1,
        }
    }
    ""
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dml_passes_and_everything_else_is_denied() {
        for ok in [
            "SELECT 1",
            "  with x as (select 1) select * from x",
            "(SELECT 1) UNION (SELECT 2)",
            "-- note\nINSERT INTO t VALUES (1)",
            "/* a /* nested */ comment */ update t set a = 1",
            "delete from t",
        ] {
            assert!(check(ok).is_ok(), "{ok}");
        }
        for denied in [
            "RESET ROLE",
            "set role postgres",
            "SET app.workspace_id = 'x'",
            "DO $$ BEGIN END $$",
            "COPY t TO STDOUT",
            "LISTEN x",
            "NOTIFY x",
            "COMMIT",
            "begin",
            "/* select */ SHOW ALL",
            "-- select\nDISCARD ALL",
            "PREPARE p AS SELECT 1",
            "CREATE TABLE t (a int)",
        ] {
            assert!(matches!(check(denied), Err(Error::Denied(_))), "{denied}");
        }
        assert!(matches!(
            check("  -- only a comment"),
            Err(Error::Invalid(_))
        ));
        assert!(matches!(
            check("/* unterminated select"),
            Err(Error::Invalid(_))
        ));
    }
}
