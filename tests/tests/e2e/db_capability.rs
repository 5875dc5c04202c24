//! The database capability through a real plugin (`sqlprobe`) against the real
//! PostgreSQL: workspace isolation, grants, typed parameters, limits, the plugin's own
//! schema, and one test per hostile statement the issue lists.

use agenthost_tests::{StatusCode, TestServer, error_of, plugin_wasm};
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;

use super::plugins::{admin, json_of};

pub(super) const NOTES_TABLE: &str = "CREATE TABLE notes (
    id bigserial PRIMARY KEY,
    workspace_id uuid NOT NULL,
    body text NOT NULL
)";

pub(super) fn manifest(version: &str, migrations: &[&str]) -> Value {
    json!({
        "name": "sqlprobe", "version": version, "kind": "tool",
        "capabilities": { "database": { "tables": { "customers": "read", "deals": "write" } } },
        "migrations": migrations,
    })
}

/// A server, two workspaces with a member key each and two customers each, and the
/// probe plugin installed with `grant`.
pub(super) struct Probe {
    pub(super) server: TestServer,
    pub(super) host: PgPool,
    pub(super) key_a: String,
    pub(super) key_b: String,
    pub(super) workspace_a: String,
    pub(super) workspace_b: String,
}

impl Probe {
    pub(super) async fn start(grant: Value) -> Probe {
        Self::start_with(grant, |_| {}).await
    }

    pub(super) async fn start_with(
        grant: Value,
        change: impl FnOnce(&mut agenthost::Config),
    ) -> Probe {
        let server = TestServer::start_with(change).await;
        let host = PgPool::connect(&server.database_url).await.unwrap();
        let (workspace_a, _) = server.create_workspace("alpha").await;
        let (workspace_b, _) = server.create_workspace("beta").await;
        let (_, key_a) = server.create_key(&workspace_a, "member").await;
        let (_, key_b) = server.create_key(&workspace_b, "member").await;
        for (workspace, prefix) in [(&workspace_a, "A"), (&workspace_b, "B")] {
            for n in 1..=2 {
                sqlx::query(
                    "INSERT INTO data.customers (workspace_id, external_id, name, segment, created_on) \
                     VALUES ($1::uuid, $2, $3, 'smb', '2025-01-01')",
                )
                .bind(workspace)
                .bind(format!("{prefix}{n}"))
                .bind(format!("{prefix} customer {n}"))
                .execute(&host)
                .await
                .unwrap();
            }
        }
        let response = server
            .upload_plugin(
                &manifest("1.0.0", &[NOTES_TABLE]),
                plugin_wasm("sqlprobe"),
                true,
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let probe = Probe {
            server,
            host,
            key_a,
            key_b,
            workspace_a,
            workspace_b,
        };
        let response = probe.grant("1.0.0", grant).await;
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "{}",
            response.text().await.unwrap()
        );
        probe
    }

    pub(super) async fn grant(&self, version: &str, grant: Value) -> reqwest::Response {
        admin(
            &self.server,
            Method::PUT,
            &format!("/api/admin/plugins/sqlprobe/versions/{version}/grants"),
            Some(grant),
        )
        .await
    }

    /// Run statements as workspace A, continuing past errors; returns each result.
    pub(super) async fn run(&self, statements: Value) -> Vec<Value> {
        self.run_as(&self.key_a, statements).await
    }

    pub(super) async fn run_as(&self, key: &str, statements: Value) -> Vec<Value> {
        let input = json!({ "statements": statements, "keep_going": true });
        let response = self.server.call_tool(key, "sqlprobe", "run", &input).await;
        assert_eq!(response.status(), StatusCode::OK);
        json_of(response).await["output"]["results"]
            .as_array()
            .unwrap()
            .clone()
    }

    /// One statement as workspace A; its error text, failing the test if it succeeded.
    pub(super) async fn refused(&self, sql: &str) -> String {
        let results = self.run(json!([{ "sql": sql }])).await;
        results[0]["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{sql} should fail, got {}", results[0]))
            .to_string()
    }

    /// The customer names workspace A's call can see (after whatever ran before).
    pub(super) async fn visible_customers(&self, before: Value) -> Vec<String> {
        let mut statements = before.as_array().unwrap().clone();
        statements.push(json!({ "sql": "SELECT name FROM customers ORDER BY name" }));
        let results = self.run(Value::Array(statements)).await;
        names(results.last().unwrap())
    }
}

pub(super) fn full_grant() -> Value {
    json!({ "database": { "tables": { "customers": "read", "deals": "write" } } })
}

pub(super) fn names(result: &Value) -> Vec<String> {
    result["rows"]
        .as_array()
        .unwrap_or_else(|| panic!("no rows in {result}"))
        .iter()
        .map(|row| row["name"].as_str().unwrap().to_string())
        .collect()
}

pub(super) const OWN_ROWS: [&str; 2] = ["A customer 1", "A customer 2"];

#[tokio::test]
async fn a_cross_workspace_read_returns_nothing() {
    let probe = Probe::start(full_grant()).await;
    assert_eq!(probe.visible_customers(json!([])).await, OWN_ROWS);
    let results = probe
        .run_as(
            &probe.key_b,
            json!([{ "sql": "SELECT name FROM customers ORDER BY name" }]),
        )
        .await;
    assert_eq!(names(&results[0]), ["B customer 1", "B customer 2"]);
    // The transaction is bound to the caller's workspace.
    let results = probe
        .run(json!([{ "sql": "SELECT agenthost_sandbox.current_workspace()::text AS w" }]))
        .await;
    assert_eq!(results[0]["rows"][0]["w"], probe.workspace_a.as_str());
    // Asking for the other workspace's rows by id finds none.
    let results = probe
        .run(json!([{
            "sql": "SELECT name FROM data.customers WHERE workspace_id = $1",
            "params": [{ "uuid": probe.workspace_b }],
        }]))
        .await;
    assert_eq!(results[0]["rows"], json!([]));
    // Writing a row into the other workspace is refused by the policy.
    let results = probe
        .run(json!([{
            "sql": "INSERT INTO deals (workspace_id, external_id, amount, stage, created_on) \
                    VALUES ($1, 'x', 10, 'open', '2025-01-01')",
            "params": [{ "uuid": probe.workspace_b }], "execute": true,
        }]))
        .await;
    let error = results[0]["error"].as_str().unwrap();
    assert!(error.contains("row-level security"), "{error}");
}

#[tokio::test]
async fn tables_and_access_modes_outside_the_grant_are_refused() {
    let probe = Probe::start(json!({ "database": { "tables": { "customers": "read" } } })).await;
    let error = probe.refused("SELECT * FROM deals").await;
    assert!(
        error.starts_with("denied: permission denied for table deals"),
        "{error}"
    );
    let error = probe.refused("DELETE FROM customers").await;
    assert!(
        error.starts_with("denied: permission denied for table customers"),
        "{error}"
    );
    // A grant beyond the manifest's request is refused.
    let response = probe
        .grant(
            "1.0.0",
            json!({ "database": { "tables": { "customers": "write" } } }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // Without the capability, every call is denied before reaching the database.
    assert_eq!(
        probe.grant("1.0.0", json!({})).await.status(),
        StatusCode::OK
    );
    let error = probe.refused("SELECT 1").await;
    assert!(error.contains("not granted"), "{error}");
}

#[tokio::test]
async fn injection_through_parameters_is_impossible() {
    let probe = Probe::start(full_grant()).await;
    let hostile = "x' OR '1'='1'; DROP TABLE data.customers; --";
    let results = probe
        .run(json!([
            { "sql": "SELECT name FROM customers WHERE name = $1", "params": [{ "text": hostile }] },
            { "sql": "INSERT INTO notes (body) VALUES ($1)", "params": [{ "text": hostile }], "execute": true },
            { "sql": "SELECT body FROM notes" },
        ]))
        .await;
    assert_eq!(results[0]["rows"], json!([]));
    assert_eq!(results[1]["affected"], 1);
    assert_eq!(results[2]["rows"][0]["body"], hostile, "stored verbatim");
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM data.customers")
        .fetch_one(&probe.host)
        .await
        .unwrap();
    assert_eq!(count, 4, "the table is still there, whole");
}

#[tokio::test]
async fn typed_parameters_and_typed_rows_round_trip() {
    let probe = Probe::start(full_grant()).await;
    let results = probe
        .run(json!([{
            "sql": "SELECT $1::bool AS b, $2::int8 AS i, $3::float8 AS f, $4::numeric(10,2) AS n, \
                    $5::text AS t, $6::jsonb AS j, $7::timestamptz AS ts, $8::date AS d, \
                    $9::uuid AS u, $10::bytea AS by, $11::int4 AS nothing, 12345678901.25::numeric AS big",
            "params": [
                { "bool": true }, { "int": -42 }, { "float": 1.5 }, { "numeric": "1234.5" },
                { "text": "héllo" }, { "json": { "a": [1, 2] } },
                { "timestamp": "2025-03-31T12:00:00+02:00" }, { "date": "2025-02-28" },
                { "uuid": "6f1c2c2e-8a54-4d55-9c1a-1b7ad1b1e5f0" }, { "bytes": "ab" }, null,
            ],
        }]))
        .await;
    let row = &results[0]["rows"][0];
    assert_eq!(row["b"], true);
    assert_eq!(row["i"], -42);
    assert_eq!(row["f"], 1.5);
    assert_eq!(row["n"], 1234.5);
    assert_eq!(row["t"], "héllo");
    assert_eq!(row["j"], json!({ "a": [1, 2] }));
    assert_eq!(row["ts"], "2025-03-31T10:00:00+00:00");
    assert_eq!(row["d"], "2025-02-28");
    assert_eq!(row["u"], "6f1c2c2e-8a54-4d55-9c1a-1b7ad1b1e5f0");
    assert_eq!(row["by"], json!([97, 98]));
    assert_eq!(row["nothing"], Value::Null);
    assert_eq!(row["big"], 12345678901.25);
    // A malformed typed parameter is the plugin's error, not the database's.
    let results = probe
        .run(json!([{ "sql": "SELECT $1::uuid", "params": [{ "uuid": "nope" }] }]))
        .await;
    assert!(
        results[0]["error"]
            .as_str()
            .unwrap()
            .starts_with("invalid: parameter $1")
    );
}

#[tokio::test]
async fn the_statement_timeout_fires() {
    let probe = Probe::start_with(full_grant(), |config| {
        config.plugin_db_statement_timeout = std::time::Duration::from_millis(200);
    })
    .await;
    let error = probe.refused("SELECT pg_sleep(5)").await;
    assert!(
        error.starts_with("unavailable:") && error.contains("200 ms statement timeout"),
        "{error}"
    );
    // The next statement of the same call runs normally.
    assert_eq!(
        probe
            .visible_customers(json!([{ "sql": "SELECT pg_sleep(5)" }]))
            .await,
        OWN_ROWS
    );
}

#[tokio::test]
async fn the_row_cap_is_an_error_not_a_silent_cut() {
    let probe = Probe::start_with(full_grant(), |config| config.plugin_db_max_rows = 10).await;
    let error = probe.refused("SELECT generate_series(1, 11) AS n").await;
    assert!(error.contains("more than 10 rows"), "{error}");
    let results = probe
        .run(json!([{ "sql": "SELECT generate_series(1, 10) AS n" }]))
        .await;
    assert_eq!(results[0]["rows"].as_array().unwrap().len(), 10);
}

#[tokio::test]
async fn the_plugin_schema_is_per_workspace_and_calls_are_transactions() {
    let probe = Probe::start(full_grant()).await;
    let insert = |body: &str| json!({ "sql": "INSERT INTO notes (body) VALUES ($1)", "params": [{ "text": body }], "execute": true });
    probe.run(json!([insert("from A")])).await;
    probe.run_as(&probe.key_b, json!([insert("from B")])).await;
    let results = probe
        .run(json!([{ "sql": "SELECT body FROM notes" }]))
        .await;
    assert_eq!(results[0]["rows"], json!([{ "body": "from A" }]));

    // A call that returns an error leaves nothing behind.
    let input = json!({ "statements": [insert("rolled back")], "fail": true });
    let response = probe
        .server
        .call_tool(&probe.key_a, "sqlprobe", "run", &input)
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let bodies: Vec<String> =
        sqlx::query_scalar("SELECT body FROM plugin_sqlprobe.notes ORDER BY body")
            .fetch_all(&probe.host)
            .await
            .unwrap();
    assert_eq!(bodies, ["from A", "from B"]);
}

#[tokio::test]
async fn migrations_are_append_only_and_every_plugin_table_is_per_workspace() {
    let probe = Probe::start(full_grant()).await;
    // Changing a migration that ran is refused at activation.
    let changed = manifest("1.1.0", &["CREATE TABLE notes (id int, workspace_id uuid)"]);
    let response = probe
        .server
        .upload_plugin(&changed, plugin_wasm("sqlprobe"), false)
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(
        probe.grant("1.1.0", full_grant()).await.status(),
        StatusCode::OK
    );
    let response = admin(
        &probe.server,
        Method::POST,
        "/api/admin/plugins/sqlprobe/versions/1.1.0/activate",
        None,
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let (_, message) = error_of(response).await;
    assert!(message.contains("append-only"), "{message}");

    // A table without workspace_id is refused.
    let bad = manifest("1.2.0", &[NOTES_TABLE, "CREATE TABLE shared (x int)"]);
    probe
        .server
        .upload_plugin(&bad, plugin_wasm("sqlprobe"), false)
        .await;
    assert_eq!(
        probe.grant("1.2.0", full_grant()).await.status(),
        StatusCode::OK
    );
    let response = admin(
        &probe.server,
        Method::POST,
        "/api/admin/plugins/sqlprobe/versions/1.2.0/activate",
        None,
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let (_, message) = error_of(response).await;
    assert!(message.contains("workspace_id"), "{message}");

    // A migration trying to leave its role can't reach the host's tables.
    let escape = manifest(
        "1.3.0",
        &[
            NOTES_TABLE,
            "RESET ROLE; CREATE TABLE public.stolen AS SELECT * FROM public.api_keys",
        ],
    );
    probe
        .server
        .upload_plugin(&escape, plugin_wasm("sqlprobe"), false)
        .await;
    assert_eq!(
        probe.grant("1.3.0", full_grant()).await.status(),
        StatusCode::OK
    );
    let response = admin(
        &probe.server,
        Method::POST,
        "/api/admin/plugins/sqlprobe/versions/1.3.0/activate",
        None,
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let (_, message) = error_of(response).await;
    assert!(message.contains("permission denied"), "{message}");
}

// --- A hostile plugin: one test per attempt to widen its access. -------------------

#[tokio::test]
async fn reset_role_is_refused_and_changes_nothing() {
    let probe = Probe::start(full_grant()).await;
    assert!(
        probe
            .refused("RESET ROLE")
            .await
            .starts_with("denied: RESET statements")
    );
    // Even through the function route, the session is the plugin's own login role.
    let results = probe
        .run(json!([{ "sql": "SELECT session_user::text AS s, current_user::text AS c" }]))
        .await;
    let row = &results[0]["rows"][0];
    assert_eq!(row["s"], row["c"]);
    assert!(row["s"].as_str().unwrap().starts_with("ahp_"), "{row}");
    assert_eq!(
        probe
            .visible_customers(json!([{ "sql": "RESET ROLE" }]))
            .await,
        OWN_ROWS
    );
}

#[tokio::test]
async fn set_role_is_refused() {
    let probe = Probe::start(full_grant()).await;
    assert!(
        probe
            .refused("SET ROLE postgres")
            .await
            .starts_with("denied: SET statements")
    );
    let error = probe
        .refused("SELECT set_config('role', 'postgres', true)")
        .await;
    assert!(error.contains("permission denied"), "{error}");
}

#[tokio::test]
async fn setting_app_workspace_id_does_not_change_the_workspace() {
    let probe = Probe::start(full_grant()).await;
    let set = format!("SET app.workspace_id = '{}'", probe.workspace_b);
    assert!(probe.refused(&set).await.starts_with("denied"));
    assert_eq!(
        probe.visible_customers(json!([{ "sql": set }])).await,
        OWN_ROWS
    );
}

#[tokio::test]
async fn set_config_cannot_rebind_the_workspace() {
    let probe = Probe::start(full_grant()).await;
    let sql = "SELECT set_config('app.workspace_id', $1, true)";
    let before = json!([{ "sql": sql, "params": [{ "text": probe.workspace_b }] }]);
    let results = probe.run(before.clone()).await;
    assert!(
        results[0]["error"]
            .as_str()
            .unwrap()
            .contains("permission denied for function set_config")
    );
    assert_eq!(probe.visible_customers(before).await, OWN_ROWS);
    // Nor can the binding function be used without the host's key.
    let bind = json!([{ "sql": "SELECT agenthost_sandbox.bind($1, 'guess', 1000)", "params": [{ "uuid": probe.workspace_b }] }]);
    let results = probe.run(bind.clone()).await;
    assert!(
        results[0]["error"]
            .as_str()
            .unwrap()
            .contains("refused sandbox binding")
    );
    assert_eq!(probe.visible_customers(bind).await, OWN_ROWS);
}

#[tokio::test]
async fn several_statements_in_one_string_are_refused() {
    let probe = Probe::start(full_grant()).await;
    let error = probe.refused("SELECT 1; DELETE FROM data.customers").await;
    assert!(error.contains("multiple commands"), "{error}");
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM data.customers")
        .fetch_one(&probe.host)
        .await
        .unwrap();
    assert_eq!(count, 4);
}

#[tokio::test]
async fn do_blocks_are_refused() {
    let probe = Probe::start(full_grant()).await;
    let sql = "DO $$ BEGIN PERFORM set_config('app.workspace_id', 'x', false); END $$";
    assert!(
        probe
            .refused(sql)
            .await
            .starts_with("denied: DO statements")
    );
    // Wrapped in a statement we allow, it is still not SQL the server accepts.
    let error = probe.refused(&format!("SELECT 1 FROM ({sql}) x")).await;
    assert!(error.contains("syntax error"), "{error}");
}

#[tokio::test]
async fn copy_is_refused() {
    let probe = Probe::start(full_grant()).await;
    assert!(
        probe
            .refused("COPY public.api_keys TO STDOUT")
            .await
            .starts_with("denied: COPY")
    );
    let error = probe.refused("SELECT pg_read_file('/etc/passwd')").await;
    assert!(error.contains("permission denied"), "{error}");
}

#[tokio::test]
async fn listen_and_notify_are_refused() {
    let probe = Probe::start(full_grant()).await;
    assert!(
        probe
            .refused("LISTEN agenthost_plugins")
            .await
            .starts_with("denied: LISTEN")
    );
    assert!(
        probe
            .refused("NOTIFY agenthost_plugins, 'x:sqlprobe'")
            .await
            .starts_with("denied: NOTIFY")
    );
    let error = probe
        .refused("SELECT pg_notify('agenthost_plugins', 'x:sqlprobe')")
        .await;
    assert!(
        error.contains("permission denied for function pg_notify"),
        "{error}"
    );
}

#[tokio::test]
async fn transaction_control_is_refused() {
    let probe = Probe::start(full_grant()).await;
    for sql in [
        "COMMIT",
        "ROLLBACK",
        "BEGIN",
        "SAVEPOINT s",
        "SET TRANSACTION ISOLATION LEVEL READ COMMITTED",
        "SET statement_timeout = 0",
    ] {
        assert!(probe.refused(sql).await.starts_with("denied:"), "{sql}");
    }
    // A committed-early transaction would have lost its binding: still only own rows.
    assert_eq!(
        probe.visible_customers(json!([{ "sql": "COMMIT" }])).await,
        OWN_ROWS
    );
}

#[tokio::test]
async fn the_hosts_own_tables_are_out_of_reach() {
    let probe = Probe::start(full_grant()).await;
    for table in [
        "api_keys",
        "plugins",
        "audit_log",
        "secrets",
        "agenthost_sandbox.roles",
        "agenthost_sandbox.bindings",
    ] {
        let qualified = if table.contains('.') {
            table.to_string()
        } else {
            format!("public.{table}")
        };
        let error = probe.refused(&format!("SELECT * FROM {qualified}")).await;
        assert!(
            error.starts_with("denied: permission denied"),
            "{table}: {error}"
        );
    }
    // Unqualified, they are not even on the plugin's search path.
    let error = probe.refused("SELECT * FROM api_keys").await;
    assert!(error.starts_with("not-found:"), "{error}");
}
