//! Calendar dates and the periods tools are asked about, without a date library:
//! days are counted from 1970-01-01 with the proleptic Gregorian calendar.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date {
    pub year: i32,
    pub month: u32,
    pub day: u32,
}

pub fn is_leap(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

pub fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

impl Date {
    pub fn new(year: i32, month: u32, day: u32) -> Option<Date> {
        ((1..=12).contains(&month) && day >= 1 && day <= days_in_month(year, month))
            .then_some(Date { year, month, day })
    }

    /// `YYYY-MM-DD`.
    pub fn parse(text: &str) -> Option<Date> {
        let mut parts = text.trim().splitn(3, '-');
        let year = parts.next()?.parse().ok()?;
        let month = parts.next()?.parse().ok()?;
        let day = parts.next()?.parse().ok()?;
        Date::new(year, month, day)
    }

    /// Days since 1970-01-01.
    pub fn days(self) -> i64 {
        let (mut y, m) = (i64::from(self.year), i64::from(self.month));
        if m <= 2 {
            y -= 1;
        }
        let era = y.div_euclid(400);
        let year_of_era = y - era * 400;
        let month_index = (m + 9) % 12; // March = 0
        let day_of_year = (153 * month_index + 2) / 5 + i64::from(self.day) - 1;
        let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
        era * 146_097 + day_of_era - 719_468
    }

    pub fn from_days(days: i64) -> Date {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let day_of_era = z - era * 146_097;
        let year_of_era =
            (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
        let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
        let mp = (5 * day_of_year + 2) / 153;
        let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = (year_of_era + era * 400 + i64::from(month <= 2)) as i32;
        Date { year, month, day }
    }

    pub fn add_days(self, n: i64) -> Date {
        Date::from_days(self.days() + n)
    }

    /// The first day of the month `n` months later (or earlier).
    pub fn add_months(self, n: i32) -> Date {
        let index = self.year * 12 + self.month as i32 - 1 + n;
        Date {
            year: index.div_euclid(12),
            month: index.rem_euclid(12) as u32 + 1,
            day: 1,
        }
    }

    pub fn month_start(self) -> Date {
        Date { day: 1, ..self }
    }

    pub fn month_end(self) -> Date {
        Date {
            day: days_in_month(self.year, self.month),
            ..self
        }
    }

    /// `YYYY-MM`.
    pub fn month_label(self) -> String {
        format!("{:04}-{:02}", self.year, self.month)
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// An inclusive range of days with the label it was asked for by.
#[derive(Debug, Clone, PartialEq)]
pub struct Period {
    pub label: String,
    pub start: Date,
    pub end: Date,
    /// Whole calendar months, when the period is made of them.
    pub whole_months: Option<u32>,
}

impl Period {
    /// `2025`, `2025-Q4` (or `Q4 2025`), `2025-11`, or `2025-01-15..2025-03-31`.
    pub fn parse(text: &str) -> Result<Period, String> {
        let text = text.trim();
        let bad = || {
            format!(
                "period {text:?} is not a year (2025), quarter (2025-Q4), month (2025-11) \
                 or range (2025-01-01..2025-03-31)"
            )
        };
        if let Some((a, b)) = text.split_once("..") {
            let (start, end) = (
                Date::parse(a).ok_or_else(bad)?,
                Date::parse(b).ok_or_else(bad)?,
            );
            if end < start {
                return Err(format!("period {text:?} ends before it starts"));
            }
            let whole = (start.day == 1 && end == end.month_end()).then(|| {
                ((end.year - start.year) * 12 + end.month as i32 - start.month as i32 + 1) as u32
            });
            return Ok(Period {
                label: text.into(),
                start,
                end,
                whole_months: whole,
            });
        }
        let upper = text.to_ascii_uppercase();
        // "Q4 2025" is read as "2025-Q4".
        let normal = match upper.split_once(' ') {
            Some((q, y)) if q.starts_with('Q') => format!("{y}-{q}"),
            _ => upper,
        };
        let months = |year: i32, first: u32, count: u32, label: String| {
            let start = Date::new(year, first, 1).ok_or_else(bad)?;
            let end = start.add_months(count as i32 - 1).month_end();
            Ok(Period {
                label,
                start,
                end,
                whole_months: Some(count),
            })
        };
        match normal.split_once('-') {
            None => {
                let year: i32 = normal.parse().map_err(|_| bad())?;
                months(year, 1, 12, format!("{year}"))
            }
            Some((y, rest)) => {
                let year: i32 = y.parse().map_err(|_| bad())?;
                if let Some(q) = rest.strip_prefix('Q') {
                    let q: u32 = q.parse().map_err(|_| bad())?;
                    if !(1..=4).contains(&q) {
                        return Err(bad());
                    }
                    months(year, 3 * q - 2, 3, format!("{year}-Q{q}"))
                } else {
                    let m: u32 = rest.parse().map_err(|_| bad())?;
                    months(year, m, 1, format!("{year}-{m:02}"))
                }
            }
        }
    }

    pub fn days(&self) -> i64 {
        self.end.days() - self.start.days() + 1
    }

    /// Length in months: exact for whole months, else days / (365.25 / 12).
    pub fn months(&self) -> f64 {
        match self.whole_months {
            Some(n) => f64::from(n),
            None => self.days() as f64 / (365.25 / 12.0),
        }
    }

    /// The period of the same length just before this one.
    pub fn previous(&self) -> Period {
        match self.whole_months {
            Some(n) => {
                let start = self.start.add_months(-(n as i32));
                let end = self.start.add_days(-1);
                Period {
                    label: describe(start, end, n),
                    start,
                    end,
                    whole_months: Some(n),
                }
            }
            None => {
                let end = self.start.add_days(-1);
                let start = end.add_days(-(self.days() - 1));
                Period {
                    label: format!("{start}..{end}"),
                    start,
                    end,
                    whole_months: None,
                }
            }
        }
    }

    /// The same days one year earlier.
    pub fn year_earlier(&self) -> Period {
        let back = |d: Date| {
            let day = d.day.min(days_in_month(d.year - 1, d.month));
            Date {
                year: d.year - 1,
                day,
                ..d
            }
        };
        let (start, end) = (back(self.start), back(self.end));
        let label = match self.whole_months {
            Some(n) => describe(start, end, n),
            None => format!("{start}..{end}"),
        };
        Period {
            label,
            start,
            end,
            whole_months: self.whole_months,
        }
    }
}

fn describe(start: Date, end: Date, months: u32) -> String {
    match months {
        12 if start.month == 1 => format!("{}", start.year),
        3 if start.month % 3 == 1 => format!("{}-Q{}", start.year, start.month / 3 + 1),
        1 => start.month_label(),
        _ => format!("{start}..{end}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_round_trip_across_leap_years() {
        assert_eq!(Date::parse("1970-01-01").map(Date::days), Some(0));
        assert_eq!(Date::parse("2024-03-01").map(Date::days), Some(19_783));
        for days in [-1000, 0, 19_782, 20_000, 30_000] {
            assert_eq!(Date::from_days(days).days(), days);
        }
        assert_eq!(Date::parse("2024-02-30"), None);
    }

    #[test]
    fn periods_and_their_neighbours() {
        let q4 = Period::parse("2025-Q4").unwrap();
        assert_eq!(
            (q4.start.to_string(), q4.end.to_string()),
            ("2025-10-01".into(), "2025-12-31".into())
        );
        assert_eq!(q4.previous().label, "2025-Q3");
        assert_eq!(q4.year_earlier().label, "2024-Q4");
        assert_eq!(Period::parse("q1 2025").unwrap().label, "2025-Q1");
        let feb = Period::parse("2024-02").unwrap();
        assert_eq!(feb.end.to_string(), "2024-02-29");
        assert_eq!(feb.year_earlier().end.to_string(), "2023-02-28");
        assert_eq!(Period::parse("2025").unwrap().previous().label, "2024");
        let range = Period::parse("2025-01-10..2025-01-19").unwrap();
        assert_eq!(range.previous().to_owned().start.to_string(), "2024-12-31");
        assert!(Period::parse("Q4").is_err());
        assert!(Period::parse("2025-Q5").is_err());
    }
}
