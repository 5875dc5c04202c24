//! The text check of plugin migrations: statements that would lift the row-level
//! isolation of plugin tables are refused before a migration runs, in any spelling
//! (case, comments, line breaks between the words).

/// Statements a migration may not contain. They would lift the isolation of existing
/// rows while the migration runs (the owner of a table reads every row once forced row
/// security is off), which no check of the end state can see. Keywords can't be quoted
/// or escaped in SQL, only whitespace and comments can stand between them, and dynamic
/// SQL needs plpgsql, which plugin roles can't use (docs/decisions.md): so such a
/// statement always shows in the text as these words.
const FORBIDDEN_IN_MIGRATIONS: &[(&[&str], &str)] = &[
    (
        &["NO", "FORCE", "ROW", "LEVEL", "SECURITY"],
        "turns forced row-level security off",
    ),
    (
        &["DISABLE", "ROW", "LEVEL", "SECURITY"],
        "turns row-level security off",
    ),
    (&["CREATE", "POLICY"], "adds a row-level security policy"),
    (&["ALTER", "POLICY"], "changes a row-level security policy"),
    (&["DROP", "POLICY"], "drops a row-level security policy"),
];

/// Why a migration's text is refused, if it is.
pub fn forbidden_in_migration(sql: &str) -> Option<String> {
    FORBIDDEN_IN_MIGRATIONS.iter().find_map(|(words, why)| {
        contains_words(sql, words).then(|| {
            format!(
                "it contains `{}`, which {why}; the host manages row-level security of \
                 plugin tables itself",
                words.join(" ")
            )
        })
    })
}

/// Whether `sql` has `words` in sequence (ASCII case-insensitive, whole words), with
/// only whitespace and comments (`--`, nested `/* */`) between them. Every position of
/// the raw text is tried, string literals included: a false alarm inside a literal
/// costs a clear refusal, while skipping "literals" could be fooled by quoting tricks.
fn contains_words(sql: &str, words: &[&str]) -> bool {
    let bytes = sql.as_bytes();
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80;
    let word_at = |at: usize, word: &str| {
        let end = at + word.len();
        end <= bytes.len()
            && bytes[at..end].eq_ignore_ascii_case(word.as_bytes())
            && (end == bytes.len() || !is_word(bytes[end]))
    };
    (0..bytes.len()).any(|start| {
        if start > 0 && is_word(bytes[start - 1]) {
            return false;
        }
        let mut at = start;
        for (n, word) in words.iter().enumerate() {
            if n > 0 {
                let after_gap = skip_gap(bytes, at);
                if after_gap == at {
                    return false;
                }
                at = after_gap;
            }
            if !word_at(at, word) {
                return false;
            }
            at += word.len();
        }
        true
    })
}

/// The index after the whitespace and comments starting at `at`.
fn skip_gap(bytes: &[u8], mut at: usize) -> usize {
    loop {
        match bytes.get(at..) {
            Some([b, ..]) if b.is_ascii_whitespace() => at += 1,
            Some([b'-', b'-', ..]) => {
                while at < bytes.len() && bytes[at] != b'\n' {
                    at += 1;
                }
            }
            Some([b'/', b'*', ..]) => {
                let mut depth = 0usize;
                while at < bytes.len() {
                    match &bytes[at..] {
                        [b'/', b'*', ..] => {
                            depth += 1;
                            at += 2;
                        }
                        [b'*', b'/', ..] => {
                            depth -= 1;
                            at += 2;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => at += 1,
                    }
                }
            }
            _ => return at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_that_lift_row_security_are_refused_in_any_spelling() {
        for sql in [
            "ALTER TABLE notes NO FORCE ROW LEVEL SECURITY",
            "alter table notes no\n  force /* hidden */ row\tlevel -- x\n security;",
            "ALTER TABLE notes DISABLE ROW LEVEL SECURITY",
            "CREATE POLICY open ON notes USING (true)",
            "create policy \"workspace_isolation\" on notes using (true)",
            "DROP POLICY workspace_isolation ON notes",
            "ALTER POLICY workspace_isolation ON notes USING (true)",
            "ALTER TABLE x NO/* a /* nested */ comment */FORCE ROW LEVEL SECURITY",
            "SELECT '--'; ALTER TABLE t NO FORCE ROW LEVEL SECURITY",
            "SELECT $$'$$; DROP POLICY workspace_isolation ON notes",
            "CREATE TABLE a (x int);ALTER TABLE a NO FORCE ROW LEVEL SECURITY",
        ] {
            assert!(forbidden_in_migration(sql).is_some(), "{sql} was allowed");
        }
        for sql in [
            "CREATE TABLE notes (id bigserial, workspace_id uuid NOT NULL, policy text)",
            "ALTER TABLE notes ADD COLUMN forced boolean",
            "CREATE INDEX ON notes (workspace_id)",
            "CREATE TABLE xcreate_policy (workspace_id uuid NOT NULL, nopolicy int)",
        ] {
            assert_eq!(forbidden_in_migration(sql), None, "{sql}");
        }
    }
}
