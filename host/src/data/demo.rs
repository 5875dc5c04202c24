//! `agenthost demo seed`: a realistic, deterministic dataset for a demo workspace —
//! 2024 and 2025 of a small B2B software company. The same seed always gives the same
//! rows (our own generator, so a dependency update can't change them), and seeding
//! again upserts the same external ids instead of adding rows.

use chrono::{Datelike, Duration, NaiveDate};
use serde_json::{Map, Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use super::import;

/// SplitMix64: tiny, fast, and stable forever.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

const REPS: &[(&str, &str, &str, u32)] = &[
    ("rep-01", "Maya Okafor", "Enterprise", 120_000),
    ("rep-02", "Lukas Brandt", "Enterprise", 110_000),
    ("rep-03", "Sofia Alvarez", "Mid-Market", 70_000),
    ("rep-04", "Daniel Kim", "Mid-Market", 65_000),
    ("rep-05", "Priya Raman", "SMB", 35_000),
    ("rep-06", "Tom Hughes", "SMB", 30_000),
];
const SEGMENTS: &[(&str, f64, f64)] = &[
    // segment, typical deal size, spread
    ("Enterprise", 48_000.0, 0.5),
    ("Mid-Market", 14_000.0, 0.4),
    ("SMB", 3_500.0, 0.4),
];
const CHANNELS: &[&str] = &["Outbound", "Inbound", "Partner", "Events", "Referral"];
const PRODUCTS: &[&str] = &["Analytics Suite", "Support Desk", "Automation Platform"];

fn object(value: Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap_or_default()
}

fn month_start(year: i32, month: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, 1).unwrap_or_default()
}

fn round2(x: f64) -> String {
    format!("{:.2}", (x * 100.0).round() / 100.0)
}

/// Every entity's rows, in the order they must be imported (references first).
pub fn dataset() -> Vec<(&'static str, Vec<Map<String, Value>>)> {
    let mut rng = Rng(20_250_101);
    let people: Vec<_> = REPS
        .iter()
        .map(|(id, name, team, quota)| {
            let email = format!(
                "{}@demo.agenthost.dev",
                name.to_lowercase().replace(' ', ".")
            );
            object(json!({ "external_id": id, "name": name, "email": email, "title": "Account Executive",
                           "team": team, "monthly_quota": quota, "hired_on": "2023-06-01" }))
        })
        .collect();

    let months: Vec<NaiveDate> = (0..24)
        .map(|i| month_start(2024 + i / 12, (i % 12) as u32 + 1))
        .collect();
    let mut customers = Vec::new();
    let mut deals = Vec::new();
    let mut transactions = Vec::new();
    let mut revenue_by_month = vec![0.0; months.len()];
    for (m, start) in months.iter().enumerate() {
        // Growth: 4 new customers a month at first, about 7 at the end.
        let new_customers = 4 + (m as u64 * 3 / 23) + rng.below(2);
        for _ in 0..new_customers {
            let n = customers.len() + 1;
            let (segment, size, spread) = *rng.pick(SEGMENTS);
            let created = *start + Duration::days(rng.below(28) as i64);
            let churned = (rng.unit() < 0.12)
                .then(|| created + Duration::days(120 + rng.below(300) as i64))
                .filter(|d| *d <= NaiveDate::from_ymd_opt(2025, 12, 31).unwrap_or_default());
            let customer_id = format!("cus-{n:04}");
            customers.push(object(json!({
                "external_id": customer_id, "name": format!("{} {}", rng.pick(&["Northwind", "Blue Harbor", "Acme", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Hooli", "Vandelay"]), n),
                "segment": segment, "acquisition_channel": rng.pick(CHANNELS),
                "created_on": created.to_string(), "churned_on": churned.map(|d| d.to_string()),
            })));
            // One to three deals per customer; the first one is usually won.
            for d in 0..(1 + rng.below(3)) {
                let owners: Vec<_> = REPS.iter().filter(|r| r.2 == segment).collect();
                let owner = rng.pick(&owners).0;
                let amount = size * (1.0 + spread * (rng.unit() * 2.0 - 1.0));
                let opened = created + Duration::days(d as i64 * 90);
                let cycle = 14 + rng.below(if segment == "Enterprise" { 120 } else { 60 }) as i64;
                let close = opened + Duration::days(cycle);
                let roll = rng.unit();
                let (stage, won, actual) =
                    if close > NaiveDate::from_ymd_opt(2025, 12, 31).unwrap_or_default() {
                        ("negotiation", None, None)
                    } else if roll < if d == 0 { 0.7 } else { 0.45 } {
                        ("closed_won", Some(true), Some(close))
                    } else {
                        ("closed_lost", Some(false), Some(close))
                    };
                if let (Some(true), Some(day)) = (won, actual) {
                    let month = ((day.year() - 2024) * 12 + day.month0() as i32) as usize;
                    if let Some(total) = revenue_by_month.get_mut(month) {
                        *total += amount;
                    }
                    transactions.push(object(json!({
                        "external_id": format!("inv-{}-{d}", &customer_id), "type": "revenue",
                        "category": "Subscription", "amount": round2(amount), "account_code": "4000",
                        "cost_center": segment, "fiscal_year": day.year(), "fiscal_period": day.month(),
                        "reference": format!("deal-{}-{d}", &customer_id), "transaction_date": day.to_string(),
                    })));
                }
                deals.push(object(json!({
                    "external_id": format!("deal-{}-{d}", &customer_id),
                    "name": format!("{} — {}", rng.pick(PRODUCTS), &customer_id),
                    "customer": customer_id, "owner": owner, "product": rng.pick(PRODUCTS),
                    "amount": round2(amount), "stage": stage, "won": won,
                    "created_on": opened.to_string(), "expected_close": close.to_string(),
                    "actual_close": actual.map(|d: NaiveDate| d.to_string()),
                })));
            }
        }
    }
    // Costs: COGS tracks revenue, OpEx grows slowly, Marketing is planned per month.
    // December 2025's books are not closed yet: no expenses, so the allocation rules apply.
    for (m, start) in months.iter().enumerate().take(months.len() - 1) {
        let day = *start + Duration::days(27);
        let lines = [
            (
                "COGS",
                "Hosting",
                0.18 * revenue_by_month[m] + 6_000.0,
                "5000",
            ),
            (
                "COGS",
                "Support staff",
                0.08 * revenue_by_month[m] + 4_000.0,
                "5100",
            ),
            ("OpEx", "Salaries", 52_000.0 + 900.0 * m as f64, "6000"),
            ("OpEx", "Rent", 8_500.0, "6100"),
            (
                "Marketing",
                "Paid ads",
                9_000.0 + 4_000.0 * rng.unit(),
                "6500",
            ),
            (
                "Marketing",
                "Events",
                if m % 3 == 0 { 12_000.0 } else { 0.0 },
                "6510",
            ),
            ("G&A", "Software", 2_400.0 + 50.0 * m as f64, "6800"),
        ];
        for (i, (category, sub, amount, account)) in lines.iter().enumerate() {
            if *amount <= 0.0 {
                continue;
            }
            transactions.push(object(json!({
                "external_id": format!("exp-{}-{:02}-{i}", start.year(), start.month()),
                "type": "expense", "category": category, "subcategory": sub,
                "amount": round2(*amount), "account_code": account, "cost_center": "HQ",
                "fiscal_year": start.year(), "fiscal_period": start.month(),
                "transaction_date": day.to_string(),
            })));
        }
    }
    let rules = vec![
        object(
            json!({ "external_id": "rule-cogs", "category": "COGS", "method": "percent_of_revenue", "value": "26" }),
        ),
        object(
            json!({ "external_id": "rule-opex", "category": "OpEx", "method": "fixed_monthly", "value": "82000" }),
        ),
        object(
            json!({ "external_id": "rule-marketing", "category": "Marketing", "method": "fixed_monthly", "value": "13000" }),
        ),
    ];
    vec![
        ("people", people),
        ("customers", customers),
        ("deals", deals),
        ("transactions", transactions),
        ("cost_allocation_rules", rules),
    ]
}

/// What seeding did.
#[derive(Debug)]
pub struct Seeded {
    pub workspace_id: Uuid,
    /// The owner key's secret when the workspace was created now (shown once).
    pub owner_secret: Option<String>,
    pub rows: Vec<import::ImportSummary>,
}

/// Create the workspace `slug` if it is missing, then upsert the dataset into it.
pub async fn seed(pool: &PgPool, slug: &str) -> anyhow::Result<Seeded> {
    let existing: Option<Uuid> = sqlx::query_scalar("SELECT id FROM workspaces WHERE slug = $1")
        .bind(slug)
        .fetch_optional(pool)
        .await?;
    let (workspace_id, owner_secret) = match existing {
        Some(id) => (id, None),
        None => {
            let mut tx = pool.begin().await?;
            let new = crate::workspaces::NewWorkspace {
                slug: slug.into(),
                name: "Demo company".into(),
            };
            let (workspace, key) = crate::workspaces::create_with_owner(&mut tx, &new, "demo-seed")
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            tx.commit().await?;
            (workspace.id, Some(key.secret))
        }
    };
    let mut rows = Vec::new();
    for (name, data) in dataset() {
        let entity = super::entity(name).ok_or_else(|| anyhow::anyhow!("no entity {name}"))?;
        let normalised =
            import::normalise_all(entity, &data).map_err(|e| anyhow::anyhow!("{name}: {e:?}"))?;
        let summary = import::write(pool, workspace_id, entity, normalised, "system:demo")
            .await
            .map_err(|e| anyhow::anyhow!("{name}: {e:?}"))?;
        rows.push(summary);
    }
    Ok(Seeded {
        workspace_id,
        owner_secret,
        rows,
    })
}
