//! Calculators that need no data: ROI, break-even, balance sheet, and cash flow from
//! given months. Inputs are validated; a ratio with a zero denominator is `null`.

use agenthost_sdk::Error;
use agenthost_sdk::serde_json::{Value, json};
use serde::Deserialize;

/// Zero without a sign: an empty `f64` sum is -0.0 (the identity of float addition),
/// and rounding a tiny negative amount gives -0.0 too; neither should print as `-0.0`.
pub fn unsigned_zero(x: f64) -> f64 {
    // -0.0 + 0.0 is +0.0; every other value is unchanged.
    x + 0.0
}

/// An amount rounded to cents.
pub fn money(x: f64) -> f64 {
    unsigned_zero((x * 100.0).round() / 100.0)
}

/// A ratio rounded to 4 decimals.
pub fn ratio(x: f64) -> f64 {
    unsigned_zero((x * 10_000.0).round() / 10_000.0)
}

/// A count (of deals, customers) as a JSON integer, from a number the database summed.
pub fn count(x: f64) -> i64 {
    x.round() as i64
}

/// `numerator / denominator`, or null when the denominator is zero.
pub fn ratio_or_null(numerator: f64, denominator: f64) -> Value {
    if denominator == 0.0 {
        Value::Null
    } else {
        json!(ratio(numerator / denominator))
    }
}

fn finite(name: &str, x: f64) -> Result<f64, Error> {
    if x.is_finite() {
        Ok(x)
    } else {
        Err(Error::invalid(format!("{name} must be a finite number")))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoiInput {
    pub investment: f64,
    /// Everything the investment returned (not the profit).
    pub returns: f64,
    pub years: Option<f64>,
}

pub fn roi(input: RoiInput) -> Result<Value, Error> {
    let investment = finite("investment", input.investment)?;
    let returns = finite("returns", input.returns)?;
    if investment <= 0.0 {
        return Err(Error::invalid("investment must be more than 0"));
    }
    if returns < 0.0 {
        return Err(Error::invalid("returns must not be negative"));
    }
    let profit = returns - investment;
    let annualized = match input.years {
        Some(years) if !(years > 0.0 && years.is_finite()) => {
            return Err(Error::invalid("years must be more than 0"));
        }
        Some(years) => json!(ratio((returns / investment).powf(1.0 / years) - 1.0)),
        None => Value::Null,
    };
    Ok(json!({
        "investment": money(investment), "returns": money(returns), "net_profit": money(profit),
        "roi": ratio(profit / investment), "annualized_roi": annualized,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakEvenInput {
    pub fixed_costs: f64,
    pub price_per_unit: f64,
    pub variable_cost_per_unit: f64,
}

pub fn break_even(input: BreakEvenInput) -> Result<Value, Error> {
    let fixed = finite("fixed_costs", input.fixed_costs)?;
    let price = finite("price_per_unit", input.price_per_unit)?;
    let variable = finite("variable_cost_per_unit", input.variable_cost_per_unit)?;
    if fixed < 0.0 || variable < 0.0 || price <= 0.0 {
        return Err(Error::invalid(
            "fixed_costs and variable_cost_per_unit must be 0 or more, price_per_unit more than 0",
        ));
    }
    let margin = price - variable;
    if margin <= 0.0 {
        return Err(Error::invalid(format!(
            "price_per_unit ({price}) must exceed variable_cost_per_unit ({variable}): \
             each unit sold loses money, so there is no break-even point"
        )));
    }
    let units = fixed / margin;
    Ok(json!({
        "contribution_margin_per_unit": money(margin),
        "contribution_margin_ratio": ratio(margin / price),
        "break_even_units": ratio(units),
        "break_even_units_whole": units.ceil() as u64,
        "break_even_revenue": money(units * price),
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Item {
    pub name: String,
    pub amount: f64,
    #[serde(default)]
    pub current: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BalanceSheetInput {
    pub assets: Vec<Item>,
    pub liabilities: Vec<Item>,
    pub equity: Vec<Item>,
}

pub fn balance_sheet(input: BalanceSheetInput) -> Result<Value, Error> {
    let check = |section: &str, items: &[Item]| -> Result<(f64, f64), Error> {
        let (mut total, mut current) = (0.0, 0.0);
        for item in items {
            if item.name.trim().is_empty() {
                return Err(Error::invalid(format!("an item of {section} has no name")));
            }
            let amount = finite(&item.name, item.amount)?;
            total += amount;
            if item.current {
                current += amount;
            }
        }
        Ok((total, current))
    };
    let (assets, current_assets) = check("assets", &input.assets)?;
    let (liabilities, current_liabilities) = check("liabilities", &input.liabilities)?;
    let (equity, _) = check("equity", &input.equity)?;
    let difference = assets - (liabilities + equity);
    Ok(json!({
        "total_assets": money(assets), "total_liabilities": money(liabilities),
        "total_equity": money(equity),
        "balanced": difference.abs() < 0.005, "difference": money(difference),
        "current_assets": money(current_assets), "current_liabilities": money(current_liabilities),
        "working_capital": money(current_assets - current_liabilities),
        "current_ratio": ratio_or_null(current_assets, current_liabilities),
        "debt_to_equity": ratio_or_null(liabilities, equity),
    }))
}

/// Net, cumulative balance, burn and runway over months of (label, inflow, outflow).
pub fn cash_flow(opening: f64, months: &[(String, f64, f64)]) -> Value {
    let mut balance = opening;
    let rows: Vec<Value> = months
        .iter()
        .map(|(label, inflow, outflow)| {
            balance += inflow - outflow;
            json!({ "month": label, "inflow": money(*inflow), "outflow": money(*outflow),
                    "net": money(inflow - outflow), "balance": money(balance) })
        })
        .collect();
    let inflow: f64 = months.iter().map(|m| m.1).sum();
    let outflow: f64 = months.iter().map(|m| m.2).sum();
    let net = inflow - outflow;
    let average_net = if months.is_empty() {
        0.0
    } else {
        net / months.len() as f64
    };
    // Runway only means something when cash is shrinking.
    let runway = if average_net < 0.0 && balance > 0.0 {
        json!(ratio(balance / -average_net))
    } else {
        Value::Null
    };
    json!({
        "opening_balance": money(opening), "total_inflow": money(inflow),
        "total_outflow": money(outflow), "net_cash_flow": money(net),
        "closing_balance": money(balance), "average_monthly_net": money(average_net),
        "monthly_burn": money((-average_net).max(0.0)), "runway_months": runway, "months": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeros_have_no_sign_and_counts_are_integers() {
        let empty: f64 = [].iter().sum();
        assert!(
            empty.is_sign_negative(),
            "the premise: an empty sum is -0.0"
        );
        for zero in [money(empty), ratio(empty), money(-0.001), ratio(-0.00001)] {
            assert!(zero == 0.0 && zero.is_sign_positive(), "{zero}");
            assert_eq!(json!(zero).to_string(), "0.0");
        }
        assert_eq!(money(-12.345), -12.35);
        assert_eq!(json!(count(3.0)).to_string(), "3");
    }

    #[test]
    fn roi_and_its_annual_rate() {
        // 10 000 in, 15 000 back over 2 years: profit 5 000, ROI 0.5,
        // annualised sqrt(1.5) - 1 = 0.2247.
        let out = roi(RoiInput {
            investment: 10_000.0,
            returns: 15_000.0,
            years: Some(2.0),
        })
        .unwrap();
        assert_eq!(out["net_profit"], 5000.0);
        assert_eq!(out["roi"], 0.5);
        assert_eq!(out["annualized_roi"], 0.2247);
        assert!(
            roi(RoiInput {
                investment: 0.0,
                returns: 1.0,
                years: None
            })
            .is_err()
        );
    }

    #[test]
    fn break_even_units_and_revenue() {
        // 50 000 fixed, price 100, variable 60: margin 40, 1 250 units, 125 000 revenue.
        let out = break_even(BreakEvenInput {
            fixed_costs: 50_000.0,
            price_per_unit: 100.0,
            variable_cost_per_unit: 60.0,
        })
        .unwrap();
        assert_eq!(out["break_even_units"], 1250.0);
        assert_eq!(out["break_even_revenue"], 125_000.0);
        assert_eq!(out["contribution_margin_ratio"], 0.4);
        let loss = break_even(BreakEvenInput {
            fixed_costs: 1.0,
            price_per_unit: 5.0,
            variable_cost_per_unit: 5.0,
        });
        assert!(matches!(loss, Err(Error::Invalid(m)) if m.contains("no break-even")));
    }

    #[test]
    fn a_balance_sheet_balances_or_says_by_how_much() {
        let item = |name: &str, amount: f64, current: bool| Item {
            name: name.into(),
            amount,
            current,
        };
        let out = balance_sheet(BalanceSheetInput {
            assets: vec![
                item("cash", 30_000.0, true),
                item("equipment", 70_000.0, false),
            ],
            liabilities: vec![
                item("payables", 20_000.0, true),
                item("loan", 30_000.0, false),
            ],
            equity: vec![item("capital", 50_000.0, false)],
        })
        .unwrap();
        // 100 000 = 50 000 + 50 000; current ratio 30 000 / 20 000 = 1.5; D/E = 1.
        assert_eq!(out["balanced"], true);
        assert_eq!(out["current_ratio"], 1.5);
        assert_eq!(out["debt_to_equity"], 1.0);
        assert_eq!(out["working_capital"], 10_000.0);
        let out = balance_sheet(BalanceSheetInput {
            assets: vec![item("cash", 10.0, true)],
            liabilities: vec![],
            equity: vec![],
        })
        .unwrap();
        assert_eq!(out["balanced"], false);
        assert_eq!(out["difference"], 10.0);
        assert_eq!(out["current_ratio"], Value::Null);
    }

    #[test]
    fn cash_flow_burn_and_runway() {
        // Opening 10 000; nets -2 000 and -1 000: closing 7 000, average -1 500,
        // runway 7 000 / 1 500 = 4.6667 months.
        let out = cash_flow(
            10_000.0,
            &[
                ("2025-01".into(), 3_000.0, 5_000.0),
                ("2025-02".into(), 4_000.0, 5_000.0),
            ],
        );
        assert_eq!(out["closing_balance"], 7000.0);
        assert_eq!(out["monthly_burn"], 1500.0);
        assert_eq!(out["runway_months"], 4.6667);
        assert_eq!(out["months"][0]["balance"], 8000.0);
    }
}
