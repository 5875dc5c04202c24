//! Dexter's tools against a small fixture in PostgreSQL, imported through the data API.
//! Every expected figure is worked out by hand in the comments next to it.
//!
//! Fixture (all USD):
//! people: p1 Ana (quota 10 000 / month), p2 Ben (5 000 / month)
//! customers: c1 Enterprise created 2024-01-15; c2 SMB created 2024-06-01 churned
//!   2025-11-15; c3 SMB created 2025-10-05; c4 Enterprise created 2025-11-20
//! deals:  d1 c1 Ana Suite 10 000 won  2025-09-01 -> 2025-10-10
//!         d2 c2 Ben Desk   2 000 won  2025-10-01 -> 2025-11-05
//!         d3 c3 Ben Desk   3 000 won  2025-10-05 -> 2025-12-01
//!         d4 c4 Ana Suite 15 000 won  2025-11-20 -> 2025-12-20
//!         d5 c1 Ana Suite  8 000 won  2025-06-01 -> 2025-08-15   (Q3 2025)
//!         d6 c2 Ben Desk   4 000 lost 2025-09-10 -> 2025-11-30
//!         d7 c1 Ana Suite  6 000 won  2024-10-01 -> 2024-11-10   (Q4 2024)
//!         d8 c3 Ben Desk   5 000 open since 2025-12-01
//! expenses: COGS 4 000 (10-31) + 3 500 (11-30); OpEx 6 000 (10-31); Marketing
//!   2 500 (11-15); Travel 500 (12-10); Marketing 1 000 on 2025-09-15 (Q3)
//! other: revenue transaction 10 000 (10-10), a transfer of 7 000 (10-15)
//! rules: COGS 30 % of revenue, OpEx 1 000 a month

use agenthost_tests::{StatusCode, TestServer};
use serde_json::{Value, json};

pub struct Fixture {
    pub server: TestServer,
    pub key: String,
}

async fn fixture() -> Fixture {
    fixture_with(|_| {}).await
}

/// The fixture on a server with a changed configuration (an LLM for chat tests).
pub async fn fixture_with(change: impl FnOnce(&mut agenthost::Config)) -> Fixture {
    let server = TestServer::start_with(change).await;
    server.install_dexter().await;
    let (_, key) = server.create_workspace("fin").await;
    let data = [
        (
            "people",
            json!([
                { "external_id": "p1", "name": "Ana Lopez", "monthly_quota": 10000 },
                { "external_id": "p2", "name": "Ben Carter", "monthly_quota": 5000 },
            ]),
        ),
        (
            "customers",
            json!([
                { "external_id": "c1", "name": "Acme", "segment": "Enterprise", "created_on": "2024-01-15" },
                { "external_id": "c2", "name": "Beta", "segment": "SMB", "created_on": "2024-06-01", "churned_on": "2025-11-15" },
                { "external_id": "c3", "name": "Gamma", "segment": "SMB", "created_on": "2025-10-05" },
                { "external_id": "c4", "name": "Delta", "segment": "Enterprise", "created_on": "2025-11-20" },
            ]),
        ),
        (
            "deals",
            json!([
                deal(
                    "d1",
                    "c1",
                    "p1",
                    "Suite",
                    10000,
                    Some(true),
                    "2025-09-01",
                    Some("2025-10-10")
                ),
                deal(
                    "d2",
                    "c2",
                    "p2",
                    "Desk",
                    2000,
                    Some(true),
                    "2025-10-01",
                    Some("2025-11-05")
                ),
                deal(
                    "d3",
                    "c3",
                    "p2",
                    "Desk",
                    3000,
                    Some(true),
                    "2025-10-05",
                    Some("2025-12-01")
                ),
                deal(
                    "d4",
                    "c4",
                    "p1",
                    "Suite",
                    15000,
                    Some(true),
                    "2025-11-20",
                    Some("2025-12-20")
                ),
                deal(
                    "d5",
                    "c1",
                    "p1",
                    "Suite",
                    8000,
                    Some(true),
                    "2025-06-01",
                    Some("2025-08-15")
                ),
                deal(
                    "d6",
                    "c2",
                    "p2",
                    "Desk",
                    4000,
                    Some(false),
                    "2025-09-10",
                    Some("2025-11-30")
                ),
                deal(
                    "d7",
                    "c1",
                    "p1",
                    "Suite",
                    6000,
                    Some(true),
                    "2024-10-01",
                    Some("2024-11-10")
                ),
                deal("d8", "c3", "p2", "Desk", 5000, None, "2025-12-01", None),
            ]),
        ),
        (
            "transactions",
            json!([
                tx("t1", "expense", "COGS", 4000, "2025-10-31"),
                tx("t2", "expense", "COGS", 3500, "2025-11-30"),
                tx("t3", "expense", "OpEx", 6000, "2025-10-31"),
                tx("t4", "expense", "Marketing", 2500, "2025-11-15"),
                tx("t5", "expense", "Travel", 500, "2025-12-10"),
                tx("t6", "revenue", "Subscription", 10000, "2025-10-10"),
                tx("t7", "transfer", "Internal", 7000, "2025-10-15"),
                tx("t8", "expense", "Marketing", 1000, "2025-09-15"),
            ]),
        ),
        (
            "cost_allocation_rules",
            json!([
                { "external_id": "r1", "category": "COGS", "method": "percent_of_revenue", "value": 30 },
                { "external_id": "r2", "category": "OpEx", "method": "fixed_monthly", "value": 1000 },
            ]),
        ),
    ];
    for (entity, rows) in data {
        let (status, body) = server.import(&key, entity, &rows).await;
        assert_eq!(status, StatusCode::OK, "{entity}: {body}");
    }
    Fixture { server, key }
}

#[allow(clippy::too_many_arguments)]
fn deal(
    id: &str,
    customer: &str,
    owner: &str,
    product: &str,
    amount: i64,
    won: Option<bool>,
    created: &str,
    closed: Option<&str>,
) -> Value {
    let stage = match won {
        Some(true) => "closed_won",
        Some(false) => "closed_lost",
        None => "negotiation",
    };
    json!({ "external_id": id, "customer": customer, "owner": owner, "product": product,
            "amount": amount, "won": won, "stage": stage, "created_on": created, "actual_close": closed })
}

fn tx(id: &str, kind: &str, category: &str, amount: i64, date: &str) -> Value {
    json!({ "external_id": id, "type": kind, "category": category, "amount": amount, "transaction_date": date })
}

impl Fixture {
    async fn call(&self, tool: &str, input: Value) -> Value {
        let response = self
            .server
            .call_tool(&self.key, "dexter", tool, &input)
            .await;
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, StatusCode::OK, "{tool} {input}: {body}");
        body["output"].clone()
    }

    /// The error of a call that must fail: (status, message).
    async fn refused(&self, tool: &str, input: Value) -> (StatusCode, String) {
        let response = self
            .server
            .call_tool(&self.key, "dexter", tool, &input)
            .await;
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        (
            status,
            body["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        )
    }
}

fn close(actual: &Value, expected: f64) {
    let actual = actual
        .as_f64()
        .unwrap_or_else(|| panic!("{actual} is not a number"));
    assert!((actual - expected).abs() < 0.006, "{actual} != {expected}");
}

#[tokio::test]
async fn revenue_analysis_uses_real_segments_owners_and_growth() {
    let f = fixture().await;
    let out = f
        .call("revenue_analysis", json!({ "period": "2025-Q4" }))
        .await;
    // Won in Q4 2025: d1 10 000 + d2 2 000 + d3 3 000 + d4 15 000 = 30 000, 4 deals.
    close(&out["total_revenue"], 30000.0);
    assert_eq!(out["deals_won"], json!(4));
    close(&out["average_deal_size"], 7500.0);
    // By month: Oct d1 10 000; Nov d2 2 000; Dec d3 + d4 = 18 000.
    let series: Vec<(String, f64)> = out["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["period"].as_str().unwrap().to_string(),
                s["revenue"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        series,
        [
            ("2025-10".into(), 10000.0),
            ("2025-11".into(), 2000.0),
            ("2025-12".into(), 18000.0)
        ]
    );
    // Segments from the customers: Enterprise d1 + d4 = 25 000 (25/30 = 0.8333),
    // SMB d2 + d3 = 5 000 (0.1667). No invented shares.
    let groups = &out["breakdown"]["groups"];
    assert_eq!(groups[0]["key"], "Enterprise");
    close(&groups[0]["revenue"], 25000.0);
    close(&groups[0]["share"], 0.8333);
    assert_eq!(groups[1]["key"], "SMB");
    close(&groups[1]["share"], 0.1667);
    // Q3 2025: d5 8 000 -> growth (30 000 - 8 000) / 8 000 = 2.75.
    assert_eq!(out["previous_period"]["period"]["label"], "2025-Q3");
    close(&out["previous_period"]["growth"], 2.75);
    // Q4 2024: d7 6 000 -> growth (30 000 - 6 000) / 6 000 = 4.
    assert_eq!(out["year_over_year"]["period"]["label"], "2024-Q4");
    close(&out["year_over_year"]["growth"], 4.0);

    // By owner: the people's real names. Quarterly buckets: one.
    let out = f
        .call(
            "revenue_analysis",
            json!({ "period": "2025-Q4", "group_by": "owner", "granularity": "quarter" }),
        )
        .await;
    assert_eq!(out["breakdown"]["groups"][0]["key"], "Ana Lopez");
    close(&out["breakdown"]["groups"][0]["revenue"], 25000.0);
    assert_eq!(out["breakdown"]["groups"][1]["key"], "Ben Carter");
    assert_eq!(out["series"].as_array().unwrap().len(), 1);
    assert_eq!(out["series"][0]["period"], "2025-Q4");

    // An empty period: zero revenue, growth null (0 before), said in the notes.
    let out = f
        .call("revenue_analysis", json!({ "period": "2023-Q1" }))
        .await;
    close(&out["total_revenue"], 0.0);
    assert_eq!(out["previous_period"]["growth"], Value::Null);
    assert_eq!(out["average_deal_size"], Value::Null);
    assert!(
        out["notes"][0]
            .as_str()
            .unwrap()
            .contains("no deals were won")
    );

    // A bad period is a clear error; so is mixing currencies.
    let (status, message) = f
        .refused("revenue_analysis", json!({ "period": "Q4" }))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message.contains("is not a year"), "{message}");
    let eur = json!([deal(
        "d9",
        "c1",
        "p1",
        "Suite",
        1000,
        Some(true),
        "2025-12-01",
        Some("2025-12-05")
    )]);
    let mut eur = eur;
    eur[0]["currency"] = json!("EUR");
    assert_eq!(
        f.server.import(&f.key, "deals", &eur).await.0,
        StatusCode::OK
    );
    let (status, message) = f
        .refused("revenue_analysis", json!({ "period": "2025-Q4" }))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        message.contains("several currencies (EUR, USD)"),
        "{message}"
    );
    let out = f
        .call(
            "revenue_analysis",
            json!({ "period": "2025-Q4", "currency": "USD" }),
        )
        .await;
    close(&out["total_revenue"], 30000.0);
    f.server.stop().await;
}

#[tokio::test]
async fn profit_and_loss_from_transactions_then_from_allocation_rules() {
    let f = fixture().await;
    let out = f
        .call("profit_and_loss", json!({ "period": "2025-Q4" }))
        .await;
    assert_eq!(out["cost_basis"], "transactions");
    // Revenue 30 000; COGS 4 000 + 3 500 = 7 500; gross profit 22 500, margin 0.75.
    close(&out["revenue"], 30000.0);
    close(&out["cogs"], 7500.0);
    close(&out["gross_profit"], 22500.0);
    close(&out["gross_margin"], 0.75);
    // OpEx 6 000 + Marketing 2 500 + other (Travel) 500 = 9 000; the September
    // marketing and the revenue/transfer transactions are not costs of Q4.
    close(&out["opex"], 6000.0);
    close(&out["marketing"], 2500.0);
    close(&out["other_expenses"], 500.0);
    close(&out["other_expenses_by_category"]["Travel"], 500.0);
    // Operating income 22 500 - 9 000 = 13 500, margin 0.45.
    close(&out["operating_income"], 13500.0);
    close(&out["operating_margin"], 0.45);

    // Q4 2024 has no expense transactions: the rules apply, and the output says so.
    // Revenue d7 6 000; COGS 30 % = 1 800; OpEx 1 000 x 3 months = 3 000;
    // gross profit 4 200 (0.7); operating income 1 200 (0.2).
    let out = f
        .call("profit_and_loss", json!({ "period": "2024-Q4" }))
        .await;
    assert_eq!(out["cost_basis"], "allocation_rules");
    assert!(
        out["notes"][0]
            .as_str()
            .unwrap()
            .contains("cost allocation rules")
    );
    close(&out["cogs"], 1800.0);
    close(&out["opex"], 3000.0);
    close(&out["gross_margin"], 0.7);
    close(&out["operating_income"], 1200.0);
    close(&out["operating_margin"], 0.2);
    assert_eq!(out["allocation_rules_applied"].as_array().unwrap().len(), 2);

    // No revenue at all: margins are null rather than a division by zero.
    // OpEx rule over 12 months: 12 000; COGS 30 % of 0 = 0.
    let out = f.call("profit_and_loss", json!({ "period": "2023" })).await;
    assert_eq!(out["gross_margin"], Value::Null);
    close(&out["opex"], 12000.0);
    close(&out["operating_income"], -12000.0);
    f.server.stop().await;
}

#[tokio::test]
async fn sales_reps_from_deals_and_from_the_performance_table() {
    let f = fixture().await;
    let out = f
        .call("sales_rep_performance", json!({ "period": "2025-Q4" }))
        .await;
    assert_eq!(out["source"], "deals");
    let ana = &out["reps"][0];
    // Ana: won d1 + d4 = 25 000, 2 won 0 lost (win rate 1), average 12 500;
    // cycles 39 days (09-01 -> 10-10) and 30 (11-20 -> 12-20): 34.5;
    // quota 10 000 x 3 = 30 000, attainment 25 000 / 30 000 = 0.8333; no open deals.
    assert_eq!(ana["name"], "Ana Lopez");
    close(&ana["revenue_won"], 25000.0);
    close(&ana["win_rate"], 1.0);
    close(&ana["average_deal_size"], 12500.0);
    close(&ana["average_cycle_days"], 34.5);
    close(&ana["quota_attainment"], 0.8333);
    close(&ana["pipeline"], 0.0);
    // Ben: won d2 + d3 = 5 000, lost d6: win rate 2/3; cycles 35 and 57 days: 46;
    // pipeline d8 5 000 (1 open); quota 15 000, attainment 0.3333.
    let ben = &out["reps"][1];
    assert_eq!(ben["deals_lost"], json!(1));
    close(&ben["win_rate"], 0.6667);
    close(&ben["average_cycle_days"], 46.0);
    close(&ben["pipeline"], 5000.0);
    assert_eq!(ben["deals_open"], json!(1));
    close(&ben["quota_attainment"], 0.3333);
    // Team: 4 won, 1 lost (0.8), 30 000 of 45 000 quota (0.6667).
    close(&out["team"]["win_rate"], 0.8);
    close(&out["team"]["quota_attainment"], 0.6667);

    // With performance rows for the period, those figures are used instead.
    let rows = json!([{ "external_id": "s1", "person": "p1", "period_start": "2025-10-01",
        "period_end": "2025-12-31", "deals_won": 3, "deals_lost": 1, "deals_open": 2,
        "revenue_won": 27000, "pipeline": 9000, "quota": 30000 }]);
    assert_eq!(
        f.server
            .import(&f.key, "sales_rep_performance", &rows)
            .await
            .0,
        StatusCode::OK
    );
    let out = f
        .call("sales_rep_performance", json!({ "period": "2025-Q4" }))
        .await;
    assert_eq!(out["source"], "performance_table");
    let ana = &out["reps"][0];
    // 3 won / 4 closed = 0.75; 27 000 / 3 = 9 000; 27 000 / 30 000 = 0.9.
    close(&ana["win_rate"], 0.75);
    close(&ana["average_deal_size"], 9000.0);
    close(&ana["quota_attainment"], 0.9);
    close(&ana["pipeline"], 9000.0);
    assert_eq!(out["reps"].as_array().unwrap().len(), 1);
    f.server.stop().await;
}

#[tokio::test]
async fn customer_analytics_derives_cac_churn_lifespan_and_ltv() {
    let f = fixture().await;
    let out = f
        .call("customer_analytics", json!({ "period": "2025-Q4" }))
        .await;
    let all = &out["overall"];
    // New: c3, c4 = 2; at start: c1, c2 = 2; churned: c2 = 1; active: all 4.
    assert_eq!(
        (
            all["new_customers"].clone(),
            all["churned_customers"].clone()
        ),
        (json!(2), json!(1))
    );
    // CAC = marketing 2 500 / 2 new = 1 250.
    close(&all["marketing_spend"], 2500.0);
    close(&all["cac"], 1250.0);
    // Churn 1 / 2 = 0.5 over 3 months -> 0.1667 a month -> lifespan 6 months.
    close(&all["churn_rate"], 0.5);
    close(&all["monthly_churn_rate"], 0.1667);
    close(&all["average_lifespan_months"], 6.0);
    // ARPA = 30 000 / 4 active / 3 months = 2 500; LTV = 2 500 x 6 = 15 000; / CAC = 12.
    close(&all["arpa_monthly"], 2500.0);
    close(&all["ltv"], 15000.0);
    close(&all["ltv_to_cac"], 12.0);
    // Enterprise: no churn -> lifespan capped at 60; ARPA 25 000 / 2 / 3 = 4 166.67;
    // LTV 4 166.67 x 60 = 250 000.
    let enterprise = &out["segments"][0];
    assert_eq!(enterprise["segment"], "Enterprise");
    assert_eq!(enterprise["lifespan_capped"], true);
    close(&enterprise["average_lifespan_months"], 60.0);
    close(&enterprise["arpa_monthly"], 4166.67);
    close(&enterprise["ltv"], 250000.0);
    // SMB: churn 1/1 -> 1/3 a month -> 3 months; ARPA 5 000 / 2 / 3 = 833.33; LTV 2 500.
    let smb = &out["segments"][1];
    close(&smb["average_lifespan_months"], 3.0);
    close(&smb["ltv"], 2500.0);

    // Nobody new and nobody to churn: CAC and churn are null, not a division by zero.
    let out = f
        .call("customer_analytics", json!({ "period": "2023-Q1" }))
        .await;
    assert_eq!(out["overall"]["cac"], Value::Null);
    assert_eq!(out["overall"]["churn_rate"], Value::Null);
    assert_eq!(out["overall"]["arpa_monthly"], Value::Null);
    f.server.stop().await;
}

#[tokio::test]
async fn forecasts_need_enough_history_and_follow_least_squares() {
    let f = fixture().await;
    // History 2024-11 .. 2025-12 (14 months, x = 0..13): 6 000 at x=0, 8 000 at x=9
    // (Aug), 10 000 at 11, 2 000 at 12, 18 000 at 13, zeros elsewhere.
    // mean x 6.5, mean y 44 000 / 14 = 3 142.857; Sxx = 14 (14^2 - 1) / 12 = 227.5;
    // Sxy = -6.5*6000 + 2.5*8000 + 4.5*10000 + 5.5*2000 + 6.5*18000 = 154 000;
    // slope 676.923, intercept 3 142.857 - 676.923 * 6.5 = -1 257.143;
    // 2026-01 (x = 14): -1 257.143 + 676.923 * 14 = 8 219.78.
    let out = f
        .call(
            "forecast_revenue",
            json!({ "horizon_months": 2, "method": "linear" }),
        )
        .await;
    assert_eq!(out["history_months"], 14);
    assert_eq!(out["history_from"], "2024-11");
    assert_eq!(out["forecast"][0]["month"], "2026-01");
    close(&out["forecast"][0]["revenue"], 8219.78);
    close(&out["forecast"][1]["revenue"], 8219.78 + 676.92);
    let interval = |p: &Value, k: &str, i: usize| p[k][i].as_f64().unwrap();
    let first = &out["forecast"][0];
    assert!(interval(first, "interval_95", 0) <= interval(first, "interval_80", 0));
    assert!(interval(first, "interval_80", 1) <= interval(first, "interval_95", 1));

    // Too short for a season, or one month only: clear errors.
    let (status, message) = f
        .refused(
            "forecast_revenue",
            json!({ "horizon_months": 3, "method": "holt_winters" }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        message.contains("24 months") && message.contains("there are 14"),
        "{message}"
    );
    let (_, message) = f
        .refused(
            "forecast_revenue",
            json!({ "horizon_months": 3, "history_until": "2024-11" }),
        )
        .await;
    assert!(
        message.contains("at least 3 months") && message.contains("there are 1"),
        "{message}"
    );
    // The schema bounds the horizon before the plugin runs.
    let (status, _) = f
        .refused("forecast_revenue", json!({ "horizon_months": 0 }))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    f.server.stop().await;
}

#[tokio::test]
async fn calculators_and_cash_flow_from_transactions() {
    let f = fixture().await;
    // Q4 2025: Oct in 10 000 (t6), out 4 000 + 6 000; Nov out 3 500 + 2 500; Dec out 500.
    // The 7 000 transfer is neither. Opening 20 000 -> closing 13 500; average net
    // -6 500 / 3 = -2 166.67; runway 13 500 / 2 166.67 = 6.2308 months.
    let out = f
        .call(
            "cash_flow",
            json!({ "period": "2025-Q4", "opening_balance": 20000 }),
        )
        .await;
    assert_eq!(out["source"], "transactions");
    close(&out["total_inflow"], 10000.0);
    close(&out["total_outflow"], 16500.0);
    close(&out["closing_balance"], 13500.0);
    close(&out["monthly_burn"], 2166.67);
    close(&out["runway_months"], 6.2308);

    // ROI: 10 000 -> 12 500 = 0.25.
    let out = f
        .call("roi", json!({ "investment": 10000, "returns": 12500 }))
        .await;
    close(&out["roi"], 0.25);
    // Break-even: 9 000 fixed / (50 - 20) = 300 units, 15 000 revenue.
    let out = f
        .call(
            "break_even",
            json!({ "fixed_costs": 9000, "price_per_unit": 50, "variable_cost_per_unit": 20 }),
        )
        .await;
    close(&out["break_even_units"], 300.0);
    close(&out["break_even_revenue"], 15000.0);
    let (status, message) = f
        .refused(
            "break_even",
            json!({ "fixed_costs": 9000, "price_per_unit": 20, "variable_cost_per_unit": 20 }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message.contains("no break-even point"), "{message}");
    let (status, _) = f
        .refused("roi", json!({ "investment": -5, "returns": 1 }))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    // Balance sheet: 80 = 30 + 50.
    let out = f
        .call(
            "balance_sheet",
            json!({
                "assets": [{ "name": "cash", "amount": 80, "current": true }],
                "liabilities": [{ "name": "payables", "amount": 30, "current": true }],
                "equity": [{ "name": "capital", "amount": 50 }],
            }),
        )
        .await;
    assert_eq!(out["balanced"], true);
    close(&out["current_ratio"], 2.6667);
    let (status, _) = f.refused("cash_flow", json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    f.server.stop().await;
}

/// Fields that count things: JSON integers, never `3.0`.
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

/// Every number of `value` that is a zero has no sign, and every count is an integer.
fn assert_clean(value: &Value, path: &str, counts_seen: &mut usize) {
    match value {
        Value::Number(n) => {
            let x = n.as_f64().unwrap();
            assert!(!(x == 0.0 && x.is_sign_negative()), "{path} is -0.0");
            if COUNTS.contains(&path.rsplit('.').next().unwrap()) {
                assert!(n.is_i64() || n.is_u64(), "{path} = {n} is not an integer");
                *counts_seen += 1;
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                assert_clean(item, &format!("{path}[{i}]"), counts_seen);
            }
        }
        Value::Object(fields) => {
            for (key, item) in fields {
                assert_clean(item, &format!("{path}.{key}"), counts_seen);
            }
        }
        _ => {}
    }
}

#[tokio::test]
async fn no_tool_prints_minus_zero_or_counts_as_floats() {
    let f = fixture().await;
    // 2030-Q1 has no deals, customers or transactions at all; 2025-Q4 has some.
    let empty = f
        .call("revenue_analysis", json!({ "period": "2030-Q1" }))
        .await;
    let text = empty.to_string();
    assert!(text.contains(r#""total_revenue":0.0"#), "{text}");
    assert!(text.contains(r#""deals_won":0"#), "{text}");
    let cash = f.call("cash_flow", json!({ "period": "2030-Q1" })).await;
    for total in [
        "total_inflow",
        "total_outflow",
        "net_cash_flow",
        "monthly_burn",
    ] {
        assert_eq!(cash[total].to_string(), "0.0", "{total}: {cash}");
    }
    let mut counts_seen = 0;
    for period in ["2030-Q1", "2025-Q4"] {
        let with_period = json!({ "period": period });
        for tool in [
            "revenue_analysis",
            "profit_and_loss",
            "sales_rep_performance",
            "customer_analytics",
            "cash_flow",
        ] {
            let out = f.call(tool, with_period.clone()).await;
            assert_clean(&out, &format!("{tool}({period})"), &mut counts_seen);
        }
        for group_by in ["owner", "product"] {
            let input = json!({ "period": period, "group_by": group_by, "granularity": "quarter" });
            let out = f.call("revenue_analysis", input).await;
            assert_clean(&out, "revenue_analysis", &mut counts_seen);
        }
    }
    for (tool, input) in [
        ("forecast_revenue", json!({ "horizon_months": 3 })),
        ("roi", json!({ "investment": 100, "returns": 100 })),
        (
            "break_even",
            json!({ "fixed_costs": 0, "price_per_unit": 5, "variable_cost_per_unit": 1 }),
        ),
        (
            "balance_sheet",
            json!({ "assets": [], "liabilities": [], "equity": [] }),
        ),
        (
            "cash_flow",
            json!({ "months": [{ "month": "2026-01", "inflow": 0, "outflow": 0 }] }),
        ),
    ] {
        let out = f.call(tool, input).await;
        assert_clean(&out, tool, &mut counts_seen);
    }
    // The walk did meet the counts (deals, reps, customers, months, units).
    assert!(counts_seen > 30, "{counts_seen}");
    f.server.stop().await;
}
