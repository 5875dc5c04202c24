//! Business data (schema `data`): what each importable entity looks like, and the row
//! validation every import goes through before anything is written.

pub mod demo;
pub mod import;

use serde_json::{Map, Value};

/// How a field's value is checked and stored.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Text,
    /// `YYYY-MM-DD`.
    Date,
    /// A decimal number, kept as its text so no precision is lost on the way.
    Numeric,
    /// A decimal number that is zero or more.
    NonNegative,
    Int,
    /// A whole number within an inclusive range.
    IntIn(i32, i32),
    Bool,
    /// Three upper-case letters (ISO 4217).
    Currency,
    OneOf(&'static [&'static str]),
}

impl Kind {
    fn sql_type(self) -> &'static str {
        match self {
            Kind::Text | Kind::Currency | Kind::OneOf(_) => "text",
            Kind::Date => "date",
            Kind::Numeric | Kind::NonNegative => "numeric",
            Kind::Int | Kind::IntIn(..) => "integer",
            Kind::Bool => "boolean",
        }
    }
}

#[derive(Debug)]
pub struct Field {
    /// The name in JSON objects and CSV headers.
    pub name: &'static str,
    pub kind: Kind,
    pub required: bool,
    /// Used when the field is absent or empty.
    pub default: Option<&'static str>,
    /// The field holds the external id of a row of this table; the column stores its
    /// id (`<name>_id`).
    pub references: Option<&'static str>,
}

impl Field {
    pub fn column(&self) -> String {
        match self.references {
            Some(_) => format!("{}_id", self.name),
            None => self.name.to_string(),
        }
    }
}

#[derive(Debug)]
pub struct Entity {
    /// The URL segment and the table in schema `data`.
    pub name: &'static str,
    pub fields: &'static [Field],
    /// Date fields that must not be before another: (earlier, later).
    pub ordered_dates: &'static [(&'static str, &'static str)],
}

const fn field(name: &'static str, kind: Kind) -> Field {
    Field {
        name,
        kind,
        required: false,
        default: None,
        references: None,
    }
}

const fn required(name: &'static str, kind: Kind) -> Field {
    Field {
        required: true,
        ..field(name, kind)
    }
}

const fn reference(name: &'static str, table: &'static str, required: bool) -> Field {
    Field {
        references: Some(table),
        required,
        ..field(name, Kind::Text)
    }
}

const fn currency() -> Field {
    Field {
        default: Some("USD"),
        ..field("currency", Kind::Currency)
    }
}

/// Every importable entity. `external_id` is implied and required in each.
pub const ENTITIES: &[Entity] = &[
    Entity {
        name: "people",
        fields: &[
            required("name", Kind::Text),
            field("email", Kind::Text),
            field("title", Kind::Text),
            field("team", Kind::Text),
            field("monthly_quota", Kind::Numeric),
            field("hired_on", Kind::Date),
        ],
        ordered_dates: &[],
    },
    Entity {
        name: "customers",
        fields: &[
            required("name", Kind::Text),
            field("segment", Kind::Text),
            field("acquisition_channel", Kind::Text),
            required("created_on", Kind::Date),
            field("churned_on", Kind::Date),
        ],
        ordered_dates: &[("created_on", "churned_on")],
    },
    Entity {
        name: "deals",
        fields: &[
            field("name", Kind::Text),
            reference("customer", "customers", false),
            reference("owner", "people", false),
            field("product", Kind::Text),
            required("amount", Kind::Numeric),
            currency(),
            required("stage", Kind::Text),
            field("won", Kind::Bool),
            required("created_on", Kind::Date),
            field("expected_close", Kind::Date),
            field("actual_close", Kind::Date),
        ],
        ordered_dates: &[("created_on", "actual_close")],
    },
    Entity {
        name: "transactions",
        fields: &[
            required("type", Kind::OneOf(&["revenue", "expense", "transfer"])),
            required("category", Kind::Text),
            field("subcategory", Kind::Text),
            required("amount", Kind::Numeric),
            currency(),
            field("account_code", Kind::Text),
            field("cost_center", Kind::Text),
            field("fiscal_year", Kind::Int),
            field("fiscal_period", Kind::IntIn(1, 13)),
            field("reference", Kind::Text),
            field("description", Kind::Text),
            required("transaction_date", Kind::Date),
        ],
        ordered_dates: &[],
    },
    Entity {
        name: "sales_rep_performance",
        fields: &[
            reference("person", "people", true),
            required("period_start", Kind::Date),
            required("period_end", Kind::Date),
            field("deals_won", Kind::Int),
            field("deals_lost", Kind::Int),
            field("deals_open", Kind::Int),
            field("revenue_won", Kind::Numeric),
            field("pipeline", Kind::Numeric),
            field("quota", Kind::Numeric),
        ],
        ordered_dates: &[("period_start", "period_end")],
    },
    Entity {
        name: "cost_allocation_rules",
        fields: &[
            required("category", Kind::Text),
            required(
                "method",
                Kind::OneOf(&["percent_of_revenue", "fixed_monthly"]),
            ),
            required("value", Kind::NonNegative),
            field("cost_center", Kind::Text),
            field("effective_from", Kind::Date),
            field("effective_to", Kind::Date),
        ],
        ordered_dates: &[("effective_from", "effective_to")],
    },
];

pub fn entity(name: &str) -> Option<&'static Entity> {
    ENTITIES.iter().find(|e| e.name == name)
}

/// A problem with one row, numbered from 1 (in CSV, row 1 is the line after the header).
#[derive(Debug, Clone, serde::Serialize, PartialEq, utoipa::ToSchema)]
pub struct RowError {
    /// The row, numbered from 1.
    pub row: usize,
    /// The field, when the problem is one field's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub message: String,
}

const MAX_TEXT: usize = 2000;

impl Entity {
    /// Check one row and return it normalised: every known field present (null when
    /// absent), values as the text PostgreSQL will parse, plus `row_number`.
    pub fn normalise(
        &self,
        row: usize,
        input: &Map<String, Value>,
    ) -> Result<Value, Vec<RowError>> {
        let mut errors = Vec::new();
        let error = |field: &str, message: String| RowError {
            row,
            field: Some(field.to_string()),
            message,
        };
        for key in input.keys() {
            if key != "external_id" && !self.fields.iter().any(|f| f.name == key) {
                let known: Vec<&str> = self.fields.iter().map(|f| f.name).collect();
                errors.push(error(
                    key,
                    format!(
                        "unknown field; {} has external_id, {}",
                        self.name,
                        known.join(", ")
                    ),
                ));
            }
        }
        let mut out = Map::new();
        out.insert("row_number".into(), Value::from(row));
        match text_of(input.get("external_id")) {
            Some(id) if id.len() <= 200 => {
                out.insert("external_id".into(), Value::String(id));
            }
            Some(_) => errors.push(error("external_id", "longer than 200 characters".into())),
            None => errors.push(error("external_id", "is required".into())),
        }
        for field in self.fields {
            let value = text_of(input.get(field.name)).or(field.default.map(String::from));
            match (value, field.required) {
                (None, true) => errors.push(error(field.name, "is required".into())),
                (None, false) => {
                    out.insert(field.name.into(), Value::Null);
                }
                (Some(text), _) => match check(field.kind, &text) {
                    Ok(value) => {
                        out.insert(field.name.into(), value);
                    }
                    Err(message) => errors.push(error(field.name, message)),
                },
            }
        }
        for (earlier, later) in self.ordered_dates {
            // ISO dates compare correctly as text.
            if let (Some(a), Some(b)) = (
                out.get(*earlier).and_then(Value::as_str),
                out.get(*later).and_then(Value::as_str),
            ) && b < a
            {
                errors.push(error(later, format!("{b} is before {earlier} {a}")));
            }
        }
        if errors.is_empty() {
            Ok(Value::Object(out))
        } else {
            Err(errors)
        }
    }

    /// `name type, ...` for `jsonb_to_recordset`.
    pub(crate) fn record_columns(&self) -> String {
        let mut columns = vec!["row_number integer".to_string(), "external_id text".into()];
        columns.extend(
            self.fields
                .iter()
                .map(|f| format!("\"{}\" {}", f.name, f.kind.sql_type())),
        );
        columns.join(", ")
    }
}

/// A JSON value as text; null, empty and whitespace-only strings are absent.
fn text_of(value: Option<&Value>) -> Option<String> {
    let text = match value? {
        Value::Null => return None,
        Value::String(s) => s.trim().to_string(),
        other => other.to_string(),
    };
    (!text.is_empty()).then_some(text)
}

fn check(kind: Kind, text: &str) -> Result<Value, String> {
    let quoted = |t: &str| format!("{t:?}");
    match kind {
        Kind::Text if text.len() > MAX_TEXT => Err(format!("longer than {MAX_TEXT} characters")),
        Kind::Text => Ok(Value::String(text.into())),
        Kind::Date => chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .map(|d| Value::String(d.to_string()))
            .map_err(|_| format!("{} is not a date (YYYY-MM-DD)", quoted(text))),
        Kind::NonNegative if text.starts_with('-') => {
            Err(format!("{} must not be negative", quoted(text)))
        }
        Kind::Numeric | Kind::NonNegative => {
            let (whole, fraction) = text
                .trim_start_matches('-')
                .split_once('.')
                .unwrap_or((text.trim_start_matches('-'), ""));
            let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
            if whole.is_empty() || !digits(whole) || !digits(fraction) {
                Err(format!("{} is not a number", quoted(text)))
            } else if whole.trim_start_matches('0').len() > 14 {
                Err(format!("{} is too large", quoted(text)))
            } else {
                Ok(Value::String(text.into()))
            }
        }
        Kind::Int => text
            .parse::<i32>()
            .map(Value::from)
            .map_err(|_| format!("{} is not a whole number", quoted(text))),
        Kind::IntIn(min, max) => match text.parse::<i32>() {
            Ok(n) if (min..=max).contains(&n) => Ok(Value::from(n)),
            _ => Err(format!(
                "{} is not a whole number from {min} to {max}",
                quoted(text)
            )),
        },
        Kind::Bool => match text.to_ascii_lowercase().as_str() {
            "true" | "t" | "yes" | "1" => Ok(Value::Bool(true)),
            "false" | "f" | "no" | "0" => Ok(Value::Bool(false)),
            _ => Err(format!("{} is not true or false", quoted(text))),
        },
        Kind::Currency if text.len() == 3 && text.chars().all(|c| c.is_ascii_uppercase()) => {
            Ok(Value::String(text.into()))
        }
        Kind::Currency => Err(format!(
            "{} is not a currency code (three capital letters, e.g. USD)",
            quoted(text)
        )),
        Kind::OneOf(options) if options.contains(&text) => Ok(Value::String(text.into())),
        Kind::OneOf(options) => Err(format!(
            "{} is not one of {}",
            quoted(text),
            options.join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn row(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn a_valid_row_is_normalised_with_defaults() {
        let deals = entity("deals").unwrap_or_else(|| panic!("deals"));
        let out = deals
            .normalise(
                1,
                &row(
                    json!({"external_id": "D1", "amount": 1200.5, "stage": "won",
                             "won": "yes", "created_on": "2025-01-02"}),
                ),
            )
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(out["amount"], "1200.5");
        assert_eq!(out["won"], true);
        assert_eq!(out["currency"], "USD");
        assert_eq!(out["customer"], Value::Null);
        assert_eq!(out["row_number"], 1);
    }

    #[test]
    fn every_problem_of_a_row_is_reported_with_its_field() {
        let deals = entity("deals").unwrap_or_else(|| panic!("deals"));
        let errors = deals
            .normalise(
                7,
                &row(
                    json!({"amount": "12,5", "currency": "usd", "created_on": "2025-13-01",
                             "colour": "red"}),
                ),
            )
            .err()
            .unwrap_or_default();
        let fields: Vec<&str> = errors.iter().filter_map(|e| e.field.as_deref()).collect();
        assert!(errors.iter().all(|e| e.row == 7));
        for expected in [
            "colour",
            "external_id",
            "amount",
            "currency",
            "stage",
            "created_on",
        ] {
            assert!(
                fields.contains(&expected),
                "{expected} missing from {errors:?}"
            );
        }
    }

    #[test]
    fn numbers_are_checked_without_losing_precision() {
        assert_eq!(check(Kind::Numeric, "-0012.345"), Ok(json!("-0012.345")));
        assert!(check(Kind::Numeric, "1e5").is_err());
        assert!(check(Kind::Numeric, ".5").is_err());
        assert!(check(Kind::Numeric, "123456789012345").is_err());
        assert!(check(Kind::Int, "2.5").is_err());
        assert!(check(Kind::OneOf(&["a", "b"]), "c").is_err());
    }
}
