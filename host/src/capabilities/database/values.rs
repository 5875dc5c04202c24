//! Typed parameters in, typed rows out. Values only ever travel as bound parameters,
//! so nothing a plugin passes can become SQL.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::types::Oid;
use sqlx::postgres::{PgArgumentBuffer, PgArguments, PgRow, PgTypeInfo, PgValueFormat};
use sqlx::{Column, Postgres, Row, TypeInfo, ValueRef};

use crate::runtime::bindings::Error;
use crate::runtime::bindings::agenthost::plugin::database::Value;

type Query = sqlx::query::Query<'static, Postgres, PgArguments>;

/// A NULL whose type PostgreSQL infers from where it is used (`WHERE id = $1` with
/// an integer `id`), as a literal NULL would; a typed NULL would make that an error.
struct UntypedNull;

impl sqlx::Type<Postgres> for UntypedNull {
    fn type_info() -> PgTypeInfo {
        PgTypeInfo::with_oid(Oid(0))
    }
}

impl sqlx::Encode<'_, Postgres> for UntypedNull {
    fn encode_by_ref(&self, _: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        Ok(IsNull::Yes)
    }
}

pub fn bind(mut query: Query, params: Vec<Value>) -> Result<Query, Error> {
    for (index, param) in params.into_iter().enumerate() {
        let position = index + 1;
        let invalid = |what: &str, e: &dyn std::fmt::Display| {
            Error::Invalid(format!("parameter ${position} is not a valid {what}: {e}"))
        };
        query = match param {
            Value::Null => query.bind(UntypedNull),
            Value::Boolean(b) => query.bind(b),
            Value::Int(i) => query.bind(i),
            Value::Float(f) => query.bind(f),
            Value::Numeric(text) | Value::Text(text) => query.bind(text),
            Value::Json(text) => {
                let json: serde_json::Value =
                    serde_json::from_str(&text).map_err(|e| invalid("JSON text", &e))?;
                query.bind(sqlx::types::Json(json))
            }
            Value::Timestamp(text) => {
                let at = DateTime::parse_from_rfc3339(&text)
                    .map_err(|e| invalid("RFC 3339 timestamp", &e))?;
                query.bind(at.with_timezone(&Utc))
            }
            Value::Date(text) => {
                let date = NaiveDate::parse_from_str(&text, "%Y-%m-%d")
                    .map_err(|e| invalid("YYYY-MM-DD date", &e))?;
                query.bind(date)
            }
            Value::Uuid(text) => {
                let uuid = uuid::Uuid::parse_str(&text).map_err(|e| invalid("UUID", &e))?;
                query.bind(uuid)
            }
            Value::Bytes(bytes) => query.bind(bytes),
        };
    }
    Ok(query)
}

/// The bytes of a row's values as they came off the wire (NULLs count nothing), which
/// is what the host holds, and about what the guest will.
pub fn row_bytes(row: &PgRow) -> u64 {
    (0..row.columns().len())
        .filter_map(|index| row.try_get_raw(index).ok())
        .filter_map(|raw| raw.as_bytes().ok().map(|bytes| bytes.len() as u64))
        .sum()
}

pub fn decode_row(row: &PgRow) -> Result<Vec<Value>, Error> {
    (0..row.columns().len())
        .map(|index| decode(row, index))
        .collect()
}

fn decode(row: &PgRow, index: usize) -> Result<Value, Error> {
    let column = &row.columns()[index];
    let type_name = column.type_info().name();
    let failed = |e: sqlx::Error| {
        Error::Internal(format!(
            "column {:?} ({type_name}) could not be read: {e}",
            column.name()
        ))
    };
    let raw = row.try_get_raw(index).map_err(failed)?;
    if raw.is_null() {
        return Ok(Value::Null);
    }
    let value = match type_name {
        "BOOL" => Value::Boolean(row.try_get(index).map_err(failed)?),
        "INT2" => Value::Int(row.try_get::<i16, _>(index).map_err(failed)?.into()),
        "INT4" => Value::Int(row.try_get::<i32, _>(index).map_err(failed)?.into()),
        "INT8" => Value::Int(row.try_get(index).map_err(failed)?),
        "OID" => Value::Int(row.try_get::<Oid, _>(index).map_err(failed)?.0.into()),
        "FLOAT4" => Value::Float(row.try_get::<f32, _>(index).map_err(failed)?.into()),
        "FLOAT8" => Value::Float(row.try_get(index).map_err(failed)?),
        "NUMERIC" => {
            let text = match raw.format() {
                PgValueFormat::Binary => raw.as_bytes().ok().and_then(numeric_text),
                PgValueFormat::Text => raw.as_str().ok().map(str::to_string),
            };
            Value::Numeric(text.ok_or_else(|| {
                Error::Internal(format!("column {:?}: unreadable numeric", column.name()))
            })?)
        }
        "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" | "CHAR" | "CITEXT" => {
            Value::Text(row.try_get(index).map_err(failed)?)
        }
        "JSON" | "JSONB" => {
            let json: serde_json::Value = row.try_get(index).map_err(failed)?;
            Value::Json(json.to_string())
        }
        "TIMESTAMPTZ" => {
            let at: DateTime<Utc> = row.try_get(index).map_err(failed)?;
            Value::Timestamp(at.to_rfc3339())
        }
        "TIMESTAMP" => {
            let at: NaiveDateTime = row.try_get(index).map_err(failed)?;
            Value::Timestamp(at.and_utc().to_rfc3339())
        }
        "DATE" => {
            let date: NaiveDate = row.try_get(index).map_err(failed)?;
            Value::Date(date.format("%Y-%m-%d").to_string())
        }
        "UUID" => Value::Uuid(
            row.try_get::<uuid::Uuid, _>(index)
                .map_err(failed)?
                .to_string(),
        ),
        "BYTEA" => Value::Bytes(row.try_get(index).map_err(failed)?),
        "VOID" => Value::Null,
        other => {
            return Err(Error::Invalid(format!(
                "column {:?} has type {other}, which the database capability does not \
                 return; cast it in SQL (e.g. `::text`, `to_jsonb(...)`)",
                column.name()
            )));
        }
    };
    Ok(value)
}

/// PostgreSQL's binary NUMERIC (base-10000 digits) as exact decimal text.
fn numeric_text(bytes: &[u8]) -> Option<String> {
    use std::fmt::Write;
    let word = |i: usize| -> Option<u16> {
        Some(u16::from_be_bytes([
            *bytes.get(2 * i)?,
            *bytes.get(2 * i + 1)?,
        ]))
    };
    let ndigits = usize::from(word(0)?);
    let weight = i32::from(word(1)? as i16);
    let sign = word(2)?;
    let dscale = usize::from(word(3)?);
    match sign {
        0xC000 => return Some("NaN".into()),
        0xD000 => return Some("Infinity".into()),
        0xF000 => return Some("-Infinity".into()),
        _ => {}
    }
    let digits: Vec<u16> = (0..ndigits).map(|i| word(4 + i)).collect::<Option<_>>()?;
    let digit = |i: i32| {
        usize::try_from(i)
            .ok()
            .and_then(|i| digits.get(i).copied())
            .unwrap_or(0)
    };
    let mut text = String::new();
    if sign == 0x4000 {
        text.push('-');
    }
    if weight < 0 {
        text.push('0');
    } else {
        for i in 0..=weight {
            if i == 0 {
                write!(text, "{}", digit(i)).ok()?;
            } else {
                write!(text, "{:04}", digit(i)).ok()?;
            }
        }
    }
    if dscale > 0 {
        let mut fraction = String::new();
        let mut i = weight + 1;
        while fraction.len() < dscale {
            write!(fraction, "{:04}", digit(i)).ok()?;
            i += 1;
        }
        fraction.truncate(dscale);
        text.push('.');
        text.push_str(&fraction);
    }
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::numeric_text;

    fn encode(ndigits: u16, weight: i16, sign: u16, dscale: u16, digits: &[u16]) -> Vec<u8> {
        let mut out = Vec::new();
        for word in [ndigits, weight as u16, sign, dscale]
            .into_iter()
            .chain(digits.iter().copied())
        {
            out.extend_from_slice(&word.to_be_bytes());
        }
        out
    }

    #[test]
    fn binary_numerics_read_exactly() {
        // 1234567.89 = 123|4567 . 8900, weight 1
        let text = numeric_text(&encode(3, 1, 0, 2, &[123, 4567, 8900]));
        assert_eq!(text.as_deref(), Some("1234567.89"));
        // -0.0005 = 0 . 0005, weight -1
        let text = numeric_text(&encode(1, -1, 0x4000, 4, &[5]));
        assert_eq!(text.as_deref(), Some("-0.0005"));
        // 20000 = 2|0000 with trailing digit group dropped (ndigits 1, weight 1)
        let text = numeric_text(&encode(1, 1, 0, 0, &[2]));
        assert_eq!(text.as_deref(), Some("20000"));
        // 0.00001234: one group, 1234 x 10000^-2
        let text = numeric_text(&encode(1, -2, 0, 8, &[1234]));
        assert_eq!(text.as_deref(), Some("0.00001234"));
        assert_eq!(
            numeric_text(&encode(0, 0, 0xC000, 0, &[])).as_deref(),
            Some("NaN")
        );
        assert_eq!(numeric_text(&[0, 1]), None);
    }
}
