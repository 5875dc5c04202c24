//! The tools that read the workspace's data. Sums are done by PostgreSQL (exact
//! numeric arithmetic) and rows are scoped to the workspace by row-level security;
//! ratios and derived figures are computed here.

use agenthost_sdk::Error;
use agenthost_sdk::database::{self, Rows, Value as Sql};
use agenthost_sdk::serde_json::{Map, Value, json};

use crate::calculators::{count, money, ratio, ratio_or_null, unsigned_zero};
use crate::date::Period;

/// How long a customer is assumed to stay when churn is zero or tiny: 5 years.
pub const MAX_LIFESPAN_MONTHS: f64 = 60.0;

fn number(rows: &Rows, index: usize, column: &str) -> f64 {
    rows.get(index, column).and_then(Sql::as_f64).unwrap_or(0.0)
}

/// A count the database computed (`count(*)` is bigint, a sum of counts numeric).
fn whole(rows: &Rows, index: usize, column: &str) -> i64 {
    count(number(rows, index, column))
}

fn text(rows: &Rows, index: usize, column: &str) -> String {
    rows.get(index, column)
        .and_then(Sql::as_str)
        .unwrap_or_default()
        .to_string()
}

fn dates(period: &Period) -> [Sql; 2] {
    [
        Sql::Date(period.start.to_string()),
        Sql::Date(period.end.to_string()),
    ]
}

fn describe(period: &Period) -> Value {
    json!({ "label": period.label, "start": period.start.to_string(), "end": period.end.to_string() })
}

fn growth(current: f64, before: f64) -> Value {
    ratio_or_null(current - before, before)
}

/// The one currency of won deals in `period`, or the one asked for. Amounts in
/// different currencies are never added up.
fn currency_of(period: &Period, asked: Option<&str>) -> Result<Option<String>, Error> {
    if let Some(currency) = asked {
        return Ok(Some(currency.to_ascii_uppercase()));
    }
    let [start, end] = dates(period);
    let rows = database::query(
        "SELECT DISTINCT currency::text AS currency FROM data.deals \
         WHERE won AND actual_close BETWEEN $1 AND $2 ORDER BY 1",
        &[start, end],
    )?;
    match rows.len() {
        0 => Ok(None),
        1 => Ok(Some(text(&rows, 0, "currency"))),
        _ => {
            let all: Vec<String> = (0..rows.len())
                .map(|i| text(&rows, i, "currency"))
                .collect();
            Err(Error::invalid(format!(
                "won deals in {} are in several currencies ({}); pass `currency` to pick one",
                period.label,
                all.join(", ")
            )))
        }
    }
}

/// Won revenue and deal count in a period.
fn won(period: &Period, currency: &Option<String>) -> Result<(f64, i64), Error> {
    let [start, end] = dates(period);
    let rows = database::query(
        "SELECT coalesce(sum(amount), 0) AS revenue, count(*) AS deals FROM data.deals \
         WHERE won AND actual_close BETWEEN $1 AND $2 AND ($3::text IS NULL OR currency::text = $3::text)",
        &[start, end, currency.clone().into()],
    )?;
    Ok((number(&rows, 0, "revenue"), whole(&rows, 0, "deals")))
}

pub fn revenue_analysis(
    period: &Period,
    granularity: &str,
    group_by: &str,
    currency: Option<&str>,
) -> Result<Value, Error> {
    let bucket = match granularity {
        "month" => "to_char(d.actual_close, 'YYYY-MM')",
        "quarter" => "to_char(d.actual_close, 'YYYY-\"Q\"Q')",
        "year" => "to_char(d.actual_close, 'YYYY')",
        other => {
            return Err(Error::invalid(format!(
                "granularity {other:?} must be month, quarter or year"
            )));
        }
    };
    let group = match group_by {
        "segment" => "coalesce(c.segment, '(no segment)')",
        "owner" => "coalesce(p.name, '(no owner)')",
        "product" => "coalesce(d.product, '(no product)')",
        other => {
            return Err(Error::invalid(format!(
                "group_by {other:?} must be segment, owner or product"
            )));
        }
    };
    let currency = currency_of(period, currency)?;
    let [start, end] = dates(period);
    let sql = format!(
        "SELECT {bucket} AS bucket, {group} AS key, sum(d.amount) AS revenue, count(*) AS deals \
         FROM data.deals d LEFT JOIN data.customers c ON c.id = d.customer_id \
         LEFT JOIN data.people p ON p.id = d.owner_id \
         WHERE d.won AND d.actual_close BETWEEN $1 AND $2 AND ($3::text IS NULL OR d.currency::text = $3::text) \
         GROUP BY 1, 2 ORDER BY 1, 2"
    );
    let rows = database::query(&sql, &[start, end, currency.clone().into()])?;
    let mut series: Vec<(String, f64, i64)> = Vec::new();
    let mut groups: Vec<(String, f64, i64)> = Vec::new();
    for i in 0..rows.len() {
        let (b, k) = (text(&rows, i, "bucket"), text(&rows, i, "key"));
        let (revenue, deals) = (number(&rows, i, "revenue"), whole(&rows, i, "deals"));
        match series.iter_mut().find(|s| s.0 == b) {
            Some(s) => (s.1, s.2) = (s.1 + revenue, s.2 + deals),
            None => series.push((b, revenue, deals)),
        }
        match groups.iter_mut().find(|g| g.0 == k) {
            Some(g) => (g.1, g.2) = (g.1 + revenue, g.2 + deals),
            None => groups.push((k, revenue, deals)),
        }
    }
    let total: f64 = series.iter().map(|s| s.1).sum();
    let deals: i64 = series.iter().map(|s| s.2).sum();
    groups.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let previous = period.previous();
    let year_earlier = period.year_earlier();
    let (previous_revenue, _) = won(&previous, &currency)?;
    let (year_earlier_revenue, _) = won(&year_earlier, &currency)?;
    let mut notes = Vec::new();
    if deals == 0 {
        notes.push(format!("no deals were won in {}", period.label));
    }
    if previous_revenue == 0.0 || year_earlier_revenue == 0.0 {
        notes.push("growth is null where the earlier period had no revenue".to_string());
    }
    Ok(json!({
        "period": describe(period), "currency": currency, "granularity": granularity,
        "total_revenue": money(total), "deals_won": deals,
        "average_deal_size": if deals > 0 { json!(money(total / deals as f64)) } else { Value::Null },
        "series": series.iter().map(|(b, r, d)| json!({ "period": b, "revenue": money(*r), "deals_won": d })).collect::<Vec<_>>(),
        "breakdown": { "by": group_by, "groups": groups.iter().map(|(k, r, d)| json!({
            "key": k, "revenue": money(*r), "deals_won": d, "share": ratio_or_null(*r, total),
        })).collect::<Vec<_>>() },
        "previous_period": { "period": describe(&previous), "revenue": money(previous_revenue),
                             "growth": growth(total, previous_revenue) },
        "year_over_year": { "period": describe(&year_earlier), "revenue": money(year_earlier_revenue),
                            "growth": growth(total, year_earlier_revenue) },
        "notes": notes,
    }))
}

/// Expense categories as the P&L groups them.
fn pnl_line(category: &str) -> &'static str {
    match category.to_ascii_lowercase().as_str() {
        "cogs" | "cost of goods sold" | "cost of sales" => "cogs",
        "opex" | "operating expenses" => "opex",
        "marketing" => "marketing",
        _ => "other",
    }
}

pub fn profit_and_loss(period: &Period, currency: Option<&str>) -> Result<Value, Error> {
    let currency = currency_of(period, currency)?;
    let (revenue, _) = won(period, &currency)?;
    let [start, end] = dates(period);
    let rows = database::query(
        "SELECT category, sum(amount) AS amount FROM data.transactions \
         WHERE type = 'expense' AND transaction_date BETWEEN $1 AND $2 \
         AND ($3::text IS NULL OR currency::text = $3::text) GROUP BY 1 ORDER BY 1",
        &[start.clone(), end.clone(), currency.clone().into()],
    )?;
    let mut lines: Map<String, Value> = Map::new();
    let (mut cogs, mut opex, mut marketing, mut other) = (0.0, 0.0, 0.0, 0.0);
    let mut other_detail = Map::new();
    let mut add =
        |category: &str, amount: f64, other_detail: &mut Map<String, Value>| match pnl_line(
            category,
        ) {
            "cogs" => cogs += amount,
            "opex" => opex += amount,
            "marketing" => marketing += amount,
            _ => {
                other += amount;
                other_detail.insert(category.to_string(), json!(money(amount)));
            }
        };
    let basis;
    let mut notes = Vec::new();
    if !rows.is_empty() {
        basis = "transactions";
        for i in 0..rows.len() {
            add(
                &text(&rows, i, "category"),
                number(&rows, i, "amount"),
                &mut other_detail,
            );
        }
    } else {
        let rules = database::query(
            "SELECT external_id, category, method, value FROM data.cost_allocation_rules \
             WHERE (effective_from IS NULL OR effective_from <= $2) \
             AND (effective_to IS NULL OR effective_to >= $1) ORDER BY external_id",
            &[start, end],
        )?;
        if rules.is_empty() {
            basis = "none";
            notes.push(format!(
                "there are no expense transactions in {} and no cost allocation rules: costs are unknown and shown as 0",
                period.label
            ));
        } else {
            basis = "allocation_rules";
            let mut applied = Vec::new();
            for i in 0..rules.len() {
                let value = number(&rules, i, "value");
                let method = text(&rules, i, "method");
                let amount = if method == "percent_of_revenue" {
                    revenue * value / 100.0
                } else {
                    value * period.months()
                };
                let category = text(&rules, i, "category");
                add(&category, amount, &mut other_detail);
                applied.push(
                    json!({ "rule": text(&rules, i, "external_id"), "category": category,
                                     "method": method, "value": value, "amount": money(amount) }),
                );
            }
            lines.insert("allocation_rules_applied".into(), Value::Array(applied));
            notes.push(format!(
                "there are no expense transactions in {}: costs are estimated with the workspace's cost allocation rules",
                period.label
            ));
        }
    }
    let gross_profit = revenue - cogs;
    let operating_expenses = opex + marketing + other;
    let operating_income = gross_profit - operating_expenses;
    let mut out = json!({
        "period": describe(period), "currency": currency, "cost_basis": basis,
        "revenue": money(revenue), "cogs": money(cogs), "gross_profit": money(gross_profit),
        "gross_margin": ratio_or_null(gross_profit, revenue),
        "opex": money(opex), "marketing": money(marketing), "other_expenses": money(other),
        "other_expenses_by_category": other_detail,
        "operating_expenses": money(operating_expenses), "operating_income": money(operating_income),
        "operating_margin": ratio_or_null(operating_income, revenue), "notes": notes,
    });
    if let Some(applied) = lines.remove("allocation_rules_applied") {
        out["allocation_rules_applied"] = applied;
    }
    Ok(out)
}

pub fn sales_rep_performance(period: &Period) -> Result<Value, Error> {
    let [start, end] = dates(period);
    // Average cycle and pipeline always come from the deals themselves.
    let computed = database::query(
        "SELECT p.external_id, p.name, p.monthly_quota AS monthly_quota, \
           count(d.id) FILTER (WHERE d.won AND d.actual_close BETWEEN $1 AND $2) AS won, \
           count(d.id) FILTER (WHERE NOT d.won AND d.actual_close BETWEEN $1 AND $2) AS lost, \
           coalesce(sum(d.amount) FILTER (WHERE d.won AND d.actual_close BETWEEN $1 AND $2), 0) AS revenue, \
           avg(d.actual_close - d.created_on) FILTER (WHERE d.won AND d.actual_close BETWEEN $1 AND $2) AS cycle_days, \
           count(d.id) FILTER (WHERE d.created_on <= $2 AND (d.actual_close IS NULL OR d.actual_close > $2)) AS open, \
           coalesce(sum(d.amount) FILTER (WHERE d.created_on <= $2 AND (d.actual_close IS NULL OR d.actual_close > $2)), 0) AS pipeline \
         FROM data.people p LEFT JOIN data.deals d ON d.owner_id = p.id \
         GROUP BY p.id, p.external_id, p.name, p.monthly_quota ORDER BY p.external_id",
        &[start.clone(), end.clone()],
    )?;
    let table = database::query(
        "SELECT p.external_id, sum(s.deals_won) AS won, sum(s.deals_lost) AS lost, \
           (array_agg(s.deals_open ORDER BY s.period_end DESC))[1] AS open, \
           sum(s.revenue_won) AS revenue, \
           (array_agg(s.pipeline ORDER BY s.period_end DESC))[1] AS pipeline, \
           sum(s.quota) AS quota \
         FROM data.sales_rep_performance s JOIN data.people p ON p.id = s.person_id \
         WHERE s.period_start >= $1 AND s.period_end <= $2 GROUP BY 1",
        &[start, end],
    )?;
    let source = if table.is_empty() {
        "deals"
    } else {
        "performance_table"
    };
    let mut reps = Vec::new();
    let (mut team_won, mut team_lost, mut team_revenue, mut team_quota) = (0, 0, 0.0, 0.0);
    for i in 0..computed.len() {
        let id = text(&computed, i, "external_id");
        let row = (0..table.len()).find(|j| text(&table, *j, "external_id") == id);
        let (won, lost, open, revenue, pipeline, quota) = match (source, row) {
            ("performance_table", None) => continue,
            ("performance_table", Some(j)) => (
                whole(&table, j, "won"),
                whole(&table, j, "lost"),
                whole(&table, j, "open"),
                number(&table, j, "revenue"),
                number(&table, j, "pipeline"),
                table.get(j, "quota").and_then(Sql::as_f64),
            ),
            _ => (
                whole(&computed, i, "won"),
                whole(&computed, i, "lost"),
                whole(&computed, i, "open"),
                number(&computed, i, "revenue"),
                number(&computed, i, "pipeline"),
                computed
                    .get(i, "monthly_quota")
                    .and_then(Sql::as_f64)
                    .map(|q| q * period.months()),
            ),
        };
        team_won += won;
        team_lost += lost;
        team_revenue += revenue;
        team_quota += quota.unwrap_or(0.0);
        let cycle = computed.get(i, "cycle_days").and_then(Sql::as_f64);
        reps.push(json!({
            "person": id, "name": text(&computed, i, "name"),
            "deals_won": won, "deals_lost": lost, "deals_open": open,
            "win_rate": ratio_or_null(won as f64, (won + lost) as f64), "revenue_won": money(revenue),
            "average_deal_size": if won > 0 { json!(money(revenue / won as f64)) } else { Value::Null },
            "average_cycle_days": cycle.map(|c| unsigned_zero((c * 10.0).round() / 10.0)),
            "pipeline": money(pipeline), "quota": quota.map(money),
            "quota_attainment": quota.map_or(Value::Null, |q| ratio_or_null(revenue, q)),
        }));
    }
    reps.sort_by(|a, b| {
        b["revenue_won"]
            .as_f64()
            .unwrap_or(0.0)
            .total_cmp(&a["revenue_won"].as_f64().unwrap_or(0.0))
    });
    Ok(json!({
        "period": describe(period), "source": source, "reps": reps,
        "team": { "deals_won": team_won, "deals_lost": team_lost,
                  "win_rate": ratio_or_null(team_won as f64, (team_won + team_lost) as f64),
                  "revenue_won": money(team_revenue), "quota": money(team_quota),
                  "quota_attainment": ratio_or_null(team_revenue, team_quota) },
    }))
}

/// Customer economics of one group (a segment, or everyone).
fn economics(
    new: i64,
    at_start: i64,
    churned: i64,
    active: i64,
    revenue: f64,
    months: f64,
) -> Map<String, Value> {
    let churn_rate = if at_start > 0 {
        Some(churned as f64 / at_start as f64)
    } else {
        None
    };
    let monthly_churn = churn_rate.map(|c| c / months);
    let lifespan = match monthly_churn {
        Some(m) if m > 0.0 => (1.0 / m).min(MAX_LIFESPAN_MONTHS),
        _ => MAX_LIFESPAN_MONTHS,
    };
    let arpa = if active > 0 {
        Some(revenue / active as f64 / months)
    } else {
        None
    };
    let mut out = Map::new();
    out.insert("new_customers".into(), json!(new));
    out.insert("customers_at_start".into(), json!(at_start));
    out.insert("churned_customers".into(), json!(churned));
    out.insert("active_customers".into(), json!(active));
    out.insert("revenue".into(), json!(money(revenue)));
    out.insert("churn_rate".into(), json!(churn_rate.map(ratio)));
    out.insert("monthly_churn_rate".into(), json!(monthly_churn.map(ratio)));
    out.insert("average_lifespan_months".into(), json!(ratio(lifespan)));
    out.insert(
        "lifespan_capped".into(),
        json!(lifespan >= MAX_LIFESPAN_MONTHS),
    );
    out.insert("arpa_monthly".into(), json!(arpa.map(money)));
    out.insert("ltv".into(), json!(arpa.map(|a| money(a * lifespan))));
    out
}

pub fn customer_analytics(period: &Period) -> Result<Value, Error> {
    let [start, end] = dates(period);
    let rows = database::query(
        "WITH counts AS (SELECT coalesce(c.segment, '(no segment)') AS segment, \
           count(*) FILTER (WHERE c.created_on BETWEEN $1 AND $2) AS new, \
           count(*) FILTER (WHERE c.created_on < $1 AND (c.churned_on IS NULL OR c.churned_on >= $1)) AS at_start, \
           count(*) FILTER (WHERE c.churned_on BETWEEN $1 AND $2) AS churned, \
           count(*) FILTER (WHERE c.created_on <= $2 AND (c.churned_on IS NULL OR c.churned_on >= $1)) AS active \
           FROM data.customers c GROUP BY 1), \
         revenue AS (SELECT coalesce(c.segment, '(no segment)') AS segment, sum(d.amount) AS revenue \
           FROM data.deals d JOIN data.customers c ON c.id = d.customer_id \
           WHERE d.won AND d.actual_close BETWEEN $1 AND $2 GROUP BY 1) \
         SELECT counts.*, coalesce(revenue.revenue, 0) AS revenue \
         FROM counts LEFT JOIN revenue USING (segment) ORDER BY 1",
        &[start.clone(), end.clone()],
    )?;
    let spend = database::query(
        "SELECT coalesce(sum(amount), 0) AS spend FROM data.transactions \
         WHERE type = 'expense' AND lower(category) = 'marketing' AND transaction_date BETWEEN $1 AND $2",
        &[start, end],
    )?;
    let spend = number(&spend, 0, "spend");
    let months = period.months();
    let mut totals = [0; 4];
    let mut total_revenue = 0.0;
    let mut segments = Vec::new();
    for i in 0..rows.len() {
        let v: Vec<i64> = ["new", "at_start", "churned", "active"]
            .iter()
            .map(|c| whole(&rows, i, c))
            .collect();
        for (t, x) in totals.iter_mut().zip(&v) {
            *t += x;
        }
        let revenue = number(&rows, i, "revenue");
        total_revenue += revenue;
        let mut segment = economics(v[0], v[1], v[2], v[3], revenue, months);
        segment.insert("segment".into(), json!(text(&rows, i, "segment")));
        segments.push(Value::Object(segment));
    }
    let mut overall = economics(
        totals[0],
        totals[1],
        totals[2],
        totals[3],
        total_revenue,
        months,
    );
    let cac = if totals[0] > 0 {
        Some(spend / totals[0] as f64)
    } else {
        None
    };
    overall.insert("marketing_spend".into(), json!(money(spend)));
    overall.insert("cac".into(), json!(cac.map(money)));
    let ltv = overall.get("ltv").and_then(Value::as_f64);
    overall.insert(
        "ltv_to_cac".into(),
        match (ltv, cac) {
            (Some(l), Some(c)) if c > 0.0 => json!(ratio(l / c)),
            _ => Value::Null,
        },
    );
    let mut notes = vec![format!(
        "lifespan = 1 / monthly churn rate, capped at {MAX_LIFESPAN_MONTHS} months; monthly churn = churn over the period / its months"
    )];
    if cac.is_none() {
        notes.push(format!("no new customers in {}: CAC is null", period.label));
    }
    notes.push(
        "marketing spend is not split by segment, so CAC is given for all customers only".into(),
    );
    Ok(
        json!({ "period": describe(period), "overall": overall, "segments": segments, "notes": notes }),
    )
}

/// Monthly won revenue from the first month with a won deal to `until` (or the last
/// month with one), months without deals as 0.
pub fn monthly_revenue(
    until: Option<&str>,
    currency: Option<&str>,
) -> Result<(Vec<String>, Vec<f64>), Error> {
    let rows = database::query(
        "SELECT to_char(actual_close, 'YYYY-MM') AS month, sum(amount) AS revenue FROM data.deals \
         WHERE won AND actual_close IS NOT NULL AND ($1::text IS NULL OR currency::text = $1::text) \
         AND ($2::text IS NULL OR to_char(actual_close, 'YYYY-MM') <= $2) GROUP BY 1 ORDER BY 1",
        &[
            currency.map(str::to_string).into(),
            until.map(str::to_string).into(),
        ],
    )?;
    if rows.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let first = crate::date::Date::parse(&format!("{}-01", text(&rows, 0, "month")))
        .ok_or_else(|| Error::Internal("bad month from the database".into()))?;
    let last_label = match until {
        Some(u) => u.to_string(),
        None => text(&rows, rows.len() - 1, "month"),
    };
    let (mut labels, mut values) = (Vec::new(), Vec::new());
    let mut month = first;
    loop {
        let label = month.month_label();
        if label > last_label {
            break;
        }
        let value = (0..rows.len())
            .find(|i| text(&rows, *i, "month") == label)
            .map_or(0.0, |i| number(&rows, i, "revenue"));
        labels.push(label);
        values.push(value);
        month = month.add_months(1);
    }
    Ok((labels, values))
}

/// Monthly cash in (revenue transactions) and out (expense transactions); transfers
/// move money between accounts and are left out.
pub fn cash_months(period: &Period) -> Result<Vec<(String, f64, f64)>, Error> {
    let [start, end] = dates(period);
    let rows = database::query(
        "SELECT to_char(transaction_date, 'YYYY-MM') AS month, \
           coalesce(sum(amount) FILTER (WHERE type = 'revenue'), 0) AS inflow, \
           coalesce(sum(amount) FILTER (WHERE type = 'expense'), 0) AS outflow \
         FROM data.transactions WHERE transaction_date BETWEEN $1 AND $2 GROUP BY 1 ORDER BY 1",
        &[start, end],
    )?;
    Ok((0..rows.len())
        .map(|i| {
            (
                text(&rows, i, "month"),
                number(&rows, i, "inflow"),
                number(&rows, i, "outflow"),
            )
        })
        .collect())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use agenthost_sdk::testing::{InstalledHost, TestHost};

    /// Fields that count things: they must be JSON integers.
    const COUNTS: &[&str] = &[
        "deals_won",
        "deals_lost",
        "deals_open",
        "new_customers",
        "customers_at_start",
        "churned_customers",
        "active_customers",
        "history_months",
        "break_even_units_whole",
    ];

    /// No number of `value` prints as `-0.0`, and every count is an integer.
    pub(crate) fn assert_clean(value: &Value, path: &str) {
        match value {
            Value::Number(n) => {
                let x = n.as_f64().unwrap_or_default();
                assert!(
                    !(x == 0.0 && x.is_sign_negative()),
                    "{path} is -0.0 in {value}"
                );
                let field = path.rsplit('.').next().unwrap_or_default();
                if COUNTS.contains(&field) {
                    assert!(n.is_i64() || n.is_u64(), "{path} = {n} is not an integer");
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    assert_clean(item, &format!("{path}[{i}]"));
                }
            }
            Value::Object(fields) => {
                for (key, item) in fields {
                    assert_clean(item, &format!("{path}.{key}"));
                }
            }
            _ => {}
        }
    }

    /// A database with nothing in the period: aggregates answer their one row of
    /// zeros (as PostgreSQL does: `count` bigint, `coalesce(sum(numeric), 0)`
    /// numeric), grouped queries answer no rows.
    fn empty_database() -> InstalledHost {
        TestHost::new()
            .database(|sql, _| {
                Ok(if sql.contains("AS revenue, count(*) AS deals FROM") {
                    Rows::new(&["revenue", "deals"])
                        .row(vec![Sql::Numeric("0".into()), Sql::Int(0)])
                } else if sql.contains("AS spend FROM") {
                    Rows::new(&["spend"]).row(vec![Sql::Numeric("0".into())])
                } else {
                    Rows::new(&[])
                })
            })
            .install()
    }

    fn period(text: &str) -> Period {
        Period::parse(text).unwrap()
    }

    #[test]
    fn an_empty_period_has_zero_revenue_and_no_deals_without_a_sign() {
        let _host = empty_database();
        let out = revenue_analysis(&period("2030-Q1"), "month", "segment", None).unwrap();
        assert_clean(&out, "");
        assert_eq!(out["deals_won"].to_string(), "0");
        assert_eq!(out["total_revenue"].to_string(), "0.0");
        assert_eq!(out["average_deal_size"], Value::Null);
        let out = profit_and_loss(&period("2030-Q1"), None).unwrap();
        assert_clean(&out, "");
        assert_eq!(out["operating_income"].to_string(), "0.0");
        let out = sales_rep_performance(&period("2030-Q1")).unwrap();
        assert_clean(&out, "");
        assert_eq!(out["team"]["deals_won"].to_string(), "0");
        let out = customer_analytics(&period("2030-Q1")).unwrap();
        assert_clean(&out, "");
        assert_eq!(out["overall"]["new_customers"].to_string(), "0");
    }

    #[test]
    fn counts_from_the_database_are_integers() {
        let _host = TestHost::new()
            .database(|sql, _| {
                Ok(if sql.contains("GROUP BY 1, 2") {
                    // revenue_analysis: two buckets, bigint counts.
                    Rows::new(&["bucket", "key", "revenue", "deals"])
                        .row(vec![
                            "2025-10".into(),
                            "SMB".into(),
                            Sql::Numeric("3000.00".into()),
                            Sql::Int(2),
                        ])
                        .row(vec![
                            "2025-11".into(),
                            "SMB".into(),
                            Sql::Numeric("1000.00".into()),
                            Sql::Int(1),
                        ])
                } else if sql.contains("FROM data.people p LEFT JOIN") {
                    Rows::new(&[
                        "external_id",
                        "name",
                        "monthly_quota",
                        "won",
                        "lost",
                        "revenue",
                        "cycle_days",
                        "open",
                        "pipeline",
                    ])
                    .row(vec![
                        "p1".into(),
                        "Ana".into(),
                        Sql::Numeric("1000".into()),
                        Sql::Int(3),
                        Sql::Int(1),
                        Sql::Numeric("4000".into()),
                        Sql::Numeric("30.0".into()),
                        Sql::Int(2),
                        Sql::Numeric("500".into()),
                    ])
                } else if sql.contains("FROM data.sales_rep_performance") {
                    Rows::new(&[])
                } else if sql.contains("WITH counts AS") {
                    Rows::new(&["segment", "new", "at_start", "churned", "active", "revenue"]).row(
                        vec![
                            "SMB".into(),
                            Sql::Int(2),
                            Sql::Int(4),
                            Sql::Int(1),
                            Sql::Int(5),
                            Sql::Numeric("4000".into()),
                        ],
                    )
                } else if sql.contains("AS revenue, count(*) AS deals FROM") {
                    Rows::new(&["revenue", "deals"])
                        .row(vec![Sql::Numeric("0".into()), Sql::Int(0)])
                } else if sql.contains("AS spend FROM") {
                    Rows::new(&["spend"]).row(vec![Sql::Numeric("600".into())])
                } else {
                    Rows::new(&[])
                })
            })
            .install();
        let out = revenue_analysis(&period("2025-Q4"), "month", "segment", None).unwrap();
        assert_clean(&out, "");
        assert_eq!(out["deals_won"].to_string(), "3");
        assert_eq!(out["series"][0]["deals_won"].to_string(), "2");
        assert_eq!(out["breakdown"]["groups"][0]["deals_won"].to_string(), "3");
        // 4 000 over 3 deals.
        assert_eq!(out["average_deal_size"], 1333.33);
        let out = sales_rep_performance(&period("2025-Q4")).unwrap();
        assert_clean(&out, "");
        let rep = &out["reps"][0];
        assert_eq!(
            (rep["deals_won"].to_string(), rep["deals_lost"].to_string()),
            ("3".into(), "1".into())
        );
        assert_eq!(rep["deals_open"].to_string(), "2");
        assert_eq!(rep["win_rate"], 0.75);
        assert_eq!(out["team"]["deals_lost"].to_string(), "1");
        let out = customer_analytics(&period("2025-Q4")).unwrap();
        assert_clean(&out, "");
        assert_eq!(out["overall"]["active_customers"].to_string(), "5");
        // 600 of marketing over 2 new customers.
        assert_eq!(out["overall"]["cac"], 300.0);
        assert_eq!(out["segments"][0]["churned_customers"].to_string(), "1");
    }
}
