//! Dexter, the financial analyst. Every figure comes from the workspace's own data
//! (through the database capability) or from the inputs given; nothing is assumed.
//! See docs/dexter.md for each tool's formulas and its documented edge cases.

pub mod analysis;
pub mod calculators;
pub mod date;
pub mod forecast;

use agenthost_sdk::serde_json::{Value, json};
use agenthost_sdk::{CallContext, Error, ToolPlugin, ToolSpec, typed};

use date::Period;

struct Dexter;

const PERIOD: &str =
    "A year (2025), quarter (2025-Q4), month (2025-11) or date range (2025-01-01..2025-03-31)";

fn period_schema(extra: Value) -> Value {
    let mut properties = json!({
        "period": { "type": "string", "description": PERIOD },
        "currency": { "type": "string", "pattern": "^[A-Za-z]{3}$",
                      "description": "Only deals/transactions in this currency (needed when several are used)" },
    });
    if let (Some(p), Some(extra)) = (properties.as_object_mut(), extra.as_object()) {
        p.extend(extra.clone());
    }
    json!({ "type": "object", "required": ["period"], "properties": properties, "additionalProperties": false })
}

fn object() -> Value {
    json!({ "type": "object" })
}

fn item_list() -> Value {
    json!({ "type": "array", "items": { "type": "object", "required": ["name", "amount"],
        "properties": { "name": { "type": "string" }, "amount": { "type": "number" },
                        "current": { "type": "boolean" } }, "additionalProperties": false } })
}

fn period_of(input: &Value) -> Result<Period, Error> {
    let text = input["period"]
        .as_str()
        .ok_or_else(|| Error::invalid("period is required"))?;
    Period::parse(text).map_err(Error::invalid)
}

impl ToolPlugin for Dexter {
    fn tools() -> Vec<ToolSpec> {
        vec![
            ToolSpec::new(
                "revenue_analysis",
                "Revenue from won deals in a period: total, a series by month/quarter/year, a breakdown by the customers' segments, the deal owners or products, and growth against the previous period and the same period a year earlier.",
                period_schema(json!({
                    "granularity": { "type": "string", "enum": ["month", "quarter", "year"], "default": "month" },
                    "group_by": { "type": "string", "enum": ["segment", "owner", "product"], "default": "segment" },
                })),
                object(),
            ),
            ToolSpec::new(
                "profit_and_loss",
                "Profit and loss for a period: revenue from won deals; COGS, OpEx, Marketing and other costs from expense transactions by category (or from the cost allocation rules when the period has no expense transactions, which the output says); gross profit and margin; operating income and margin.",
                period_schema(json!({})),
                object(),
            ),
            ToolSpec::new(
                "sales_rep_performance",
                "Each sales rep's deals won and lost, win rate, revenue, average deal size, average sales cycle in days, open pipeline and quota attainment for a period, from the sales performance table when it covers the period, else from the deals.",
                json!({ "type": "object", "required": ["period"], "properties": { "period": { "type": "string", "description": PERIOD } }, "additionalProperties": false }),
                object(),
            ),
            ToolSpec::new(
                "customer_analytics",
                "Customer economics for a period, overall and per segment: new customers, CAC (marketing spend / new customers), churn rate, average lifespan from churn (capped at 60 months), ARPA per month and LTV.",
                json!({ "type": "object", "required": ["period"], "properties": { "period": { "type": "string", "description": PERIOD } }, "additionalProperties": false }),
                object(),
            ),
            ToolSpec::new(
                "forecast_revenue",
                "Monthly revenue forecast from the history of won deals, with 80% and 95% prediction intervals. Linear needs 3 months of history, Holt-Winters (seasonal) 24.",
                json!({ "type": "object", "required": ["horizon_months"], "properties": {
                    "horizon_months": { "type": "integer", "minimum": 1, "maximum": 36 },
                    "method": { "type": "string", "enum": ["linear", "holt_winters"], "default": "linear" },
                    "history_until": { "type": "string", "pattern": "^[0-9]{4}-[0-9]{2}$", "description": "Last month of history (YYYY-MM); default the last month with a won deal" },
                    "currency": { "type": "string", "pattern": "^[A-Za-z]{3}$" },
                }, "additionalProperties": false }),
                object(),
            ),
            ToolSpec::new(
                "roi",
                "Return on investment: net profit, ROI and (given years) the annualised rate.",
                json!({ "type": "object", "required": ["investment", "returns"], "properties": {
                    "investment": { "type": "number", "exclusiveMinimum": 0 },
                    "returns": { "type": "number", "minimum": 0, "description": "Everything the investment brought back" },
                    "years": { "type": "number", "exclusiveMinimum": 0 },
                }, "additionalProperties": false }),
                object(),
            ),
            ToolSpec::new(
                "break_even",
                "Break-even point in units and revenue from fixed costs, price and variable cost per unit.",
                json!({ "type": "object", "required": ["fixed_costs", "price_per_unit", "variable_cost_per_unit"], "properties": {
                    "fixed_costs": { "type": "number", "minimum": 0 },
                    "price_per_unit": { "type": "number", "exclusiveMinimum": 0 },
                    "variable_cost_per_unit": { "type": "number", "minimum": 0 },
                }, "additionalProperties": false }),
                object(),
            ),
            ToolSpec::new(
                "cash_flow",
                "Monthly cash flow (in, out, net, running balance), burn and runway: from the workspace's transactions for a period (transfers excluded), or from the months given.",
                json!({ "type": "object", "properties": {
                    "period": { "type": "string", "description": PERIOD },
                    "opening_balance": { "type": "number", "default": 0 },
                    "months": { "type": "array", "items": { "type": "object", "required": ["month", "inflow", "outflow"],
                        "properties": { "month": { "type": "string" }, "inflow": { "type": "number", "minimum": 0 },
                                        "outflow": { "type": "number", "minimum": 0 } }, "additionalProperties": false } },
                }, "additionalProperties": false }),
                object(),
            ),
            ToolSpec::new(
                "balance_sheet",
                "Totals of a balance sheet from its items, whether it balances, working capital, current ratio and debt to equity.",
                json!({ "type": "object", "required": ["assets", "liabilities", "equity"], "properties": {
                    "assets": item_list(), "liabilities": item_list(), "equity": item_list(),
                }, "additionalProperties": false }),
                object(),
            ),
        ]
    }

    fn invoke(_: &CallContext, tool: &str, input: Value) -> Result<Value, Error> {
        let currency = input["currency"].as_str();
        match tool {
            "revenue_analysis" => analysis::revenue_analysis(
                &period_of(&input)?,
                input["granularity"].as_str().unwrap_or("month"),
                input["group_by"].as_str().unwrap_or("segment"),
                currency,
            ),
            "profit_and_loss" => analysis::profit_and_loss(&period_of(&input)?, currency),
            "sales_rep_performance" => analysis::sales_rep_performance(&period_of(&input)?),
            "customer_analytics" => analysis::customer_analytics(&period_of(&input)?),
            "forecast_revenue" => forecast(&input),
            "roi" => typed(input, calculators::roi),
            "break_even" => typed(input, calculators::break_even),
            "balance_sheet" => typed(input, calculators::balance_sheet),
            "cash_flow" => cash_flow(&input),
            other => Err(Error::NotFound(format!("Dexter has no tool {other}"))),
        }
    }
}

fn forecast(input: &Value) -> Result<Value, Error> {
    let horizon = input["horizon_months"].as_u64().unwrap_or(0) as usize;
    if !(1..=36).contains(&horizon) {
        return Err(Error::invalid("horizon_months must be 1 to 36"));
    }
    let method = input["method"].as_str().unwrap_or("linear");
    let (labels, history) =
        analysis::monthly_revenue(input["history_until"].as_str(), input["currency"].as_str())?;
    let points = match method {
        "linear" => forecast::linear(&history, horizon),
        "holt_winters" => forecast::holt_winters(&history, horizon),
        other => {
            return Err(Error::invalid(format!(
                "method {other:?} must be linear or holt_winters"
            )));
        }
    }
    .map_err(Error::invalid)?;
    let last = labels
        .last()
        .and_then(|l| date::Date::parse(&format!("{l}-01")));
    let Some(last) = last else {
        return Err(Error::invalid("there is no won revenue to forecast from"));
    };
    let round = calculators::money;
    let months: Vec<Value> = points
        .iter()
        .enumerate()
        .map(|(h, p)| {
            json!({
                "month": last.add_months(h as i32 + 1).month_label(), "revenue": round(p.value),
                "interval_80": [round(p.lower_80), round(p.upper_80)],
                "interval_95": [round(p.lower_95), round(p.upper_95)],
            })
        })
        .collect();
    Ok(json!({
        "method": method, "history_months": history.len(),
        "history_from": labels.first(), "history_until": labels.last(),
        "forecast": months,
        "total_forecast_revenue": round(points.iter().map(|p| p.value).sum()),
        "notes": ["intervals use normal quantiles; lower bounds are cut at 0"],
    }))
}

fn cash_flow(input: &Value) -> Result<Value, Error> {
    let opening = input["opening_balance"].as_f64().unwrap_or(0.0);
    let months: Vec<(String, f64, f64)> = match (&input["months"], input["period"].as_str()) {
        (Value::Array(given), _) => given
            .iter()
            .map(|m| {
                let label = m["month"].as_str().unwrap_or_default().to_string();
                let (inflow, outflow) = (
                    m["inflow"].as_f64().unwrap_or(-1.0),
                    m["outflow"].as_f64().unwrap_or(-1.0),
                );
                if inflow < 0.0 || outflow < 0.0 || !inflow.is_finite() || !outflow.is_finite() {
                    return Err(Error::invalid(format!(
                        "month {label:?}: inflow and outflow must be 0 or more"
                    )));
                }
                Ok((label, inflow, outflow))
            })
            .collect::<Result<_, _>>()?,
        (_, Some(period)) => {
            analysis::cash_months(&Period::parse(period).map_err(Error::invalid)?)?
        }
        _ => {
            return Err(Error::invalid(
                "give either a period (to use the transactions) or months",
            ));
        }
    };
    let mut out = calculators::cash_flow(opening, &months);
    out["source"] = json!(if input["months"].is_array() {
        "input"
    } else {
        "transactions"
    });
    Ok(out)
}

agenthost_sdk::export_tool_plugin!(Dexter);

#[cfg(test)]
mod tests {
    use super::*;
    use agenthost_sdk::database::Rows;
    use agenthost_sdk::testing::TestHost;
    use analysis::tests::assert_clean;

    #[test]
    fn cash_flow_of_an_empty_period_or_no_months_has_unsigned_zeros() {
        let _host = TestHost::new()
            .database(|_, _| Ok(Rows::new(&["month", "inflow", "outflow"])))
            .install();
        for input in [
            json!({ "period": "2030-Q1" }),
            json!({ "months": [] }),
            json!({ "months": [{ "month": "2030-01", "inflow": 0, "outflow": 0 }] }),
        ] {
            let out = cash_flow(&input).unwrap();
            assert_clean(&out, "");
            for total in [
                "total_inflow",
                "net_cash_flow",
                "monthly_burn",
                "closing_balance",
            ] {
                assert_eq!(out[total].to_string(), "0.0", "{total} of {input}");
            }
        }
    }

    #[test]
    fn break_even_units_are_a_whole_number() {
        let ctx = CallContext::for_tests("ws");
        for (fixed, units) in [(50_000.0, "1250"), (0.0, "0"), (100.0, "3")] {
            let input = json!({ "fixed_costs": fixed, "price_per_unit": 100.0,
                                "variable_cost_per_unit": 60.0 });
            let out = Dexter::invoke(&ctx, "break_even", input).unwrap();
            assert_clean(&out, "");
            assert_eq!(out["break_even_units_whole"].to_string(), units);
        }
    }
}
