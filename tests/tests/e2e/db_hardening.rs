//! The sandbox holes a hostile plugin found in the database capability, one test each:
//! migrations that switch off the isolation of their own tables, large objects,
//! session state left on a pooled connection, and results too big for the host.

use std::time::Duration;

use agenthost_tests::{StatusCode, error_of, plugin_wasm};
use reqwest::Method;
use serde_json::json;

use super::db_capability::{NOTES_TABLE, Probe, full_grant, manifest, names};
use super::plugins::admin;

impl Probe {
    /// Upload `version` with `migrations`, grant it, try to activate it.
    async fn activate_with(&self, version: &str, migrations: &[&str]) -> reqwest::Response {
        let response = self
            .server
            .upload_plugin(
                &manifest(version, migrations),
                plugin_wasm("sqlprobe"),
                false,
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(
            self.grant(version, full_grant()).await.status(),
            StatusCode::OK
        );
        admin(
            &self.server,
            Method::POST,
            &format!("/api/admin/plugins/sqlprobe/versions/{version}/activate"),
            None,
        )
        .await
    }

    /// One note per workspace, written through the plugin.
    async fn write_notes(&self) {
        let insert = |body: &str| {
            json!([{ "sql": "INSERT INTO notes (body) VALUES ($1)",
                     "params": [{ "text": body }], "execute": true }])
        };
        self.run(insert("A's note")).await;
        self.run_as(&self.key_b, insert("B's secret")).await;
    }

    /// The note bodies workspace A's call sees through `sql`.
    async fn notes_seen_by_a(&self, sql: &str) -> Vec<String> {
        let results = self.run(json!([{ "sql": sql }])).await;
        results[0]["rows"]
            .as_array()
            .unwrap_or_else(|| panic!("{sql}: {}", results[0]))
            .iter()
            .map(|row| row["body"].as_str().unwrap().to_string())
            .collect()
    }

    async fn login_role(&self) -> String {
        sqlx::query_scalar(
            "SELECT login_role::text FROM agenthost_sandbox.roles WHERE plugin = 'sqlprobe'",
        )
        .fetch_one(&self.host)
        .await
        .unwrap()
    }
}

async fn refused_with(response: reqwest::Response, expected: &str) {
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let (_, message) = error_of(response).await;
    assert!(message.contains(expected), "{message}");
}

#[tokio::test]
async fn migrations_cannot_open_the_isolation_of_plugin_tables() {
    let probe = Probe::start(full_grant()).await;
    probe.write_notes().await;
    let attempts: [(&str, &str); 6] = [
        // An extra permissive policy (B's rows readable from A).
        ("CREATE POLICY open ON notes USING (true)", "CREATE POLICY"),
        // The host's policy dropped and re-created wide open under its own name.
        (
            "DROP POLICY workspace_isolation ON notes; \
             CREATE POLICY workspace_isolation ON notes USING (true) WITH CHECK (true)",
            "CREATE POLICY",
        ),
        // Forced row security off while a materialized view snapshots every workspace.
        (
            "ALTER TABLE notes NO FORCE ROW LEVEL SECURITY; \
             CREATE MATERIALIZED VIEW everything AS SELECT * FROM notes",
            "NO FORCE ROW LEVEL SECURITY",
        ),
        // The same with the keywords split by comments.
        (
            "ALTER TABLE notes NO/* x */FORCE -- y\n ROW LEVEL SECURITY",
            "NO FORCE ROW LEVEL SECURITY",
        ),
        (
            "ALTER TABLE notes DISABLE ROW LEVEL SECURITY",
            "DISABLE ROW LEVEL SECURITY",
        ),
        (
            "ALTER POLICY workspace_isolation ON notes USING (true)",
            "ALTER POLICY",
        ),
    ];
    for (n, (migration, expected)) in attempts.iter().enumerate() {
        let version = format!("1.0.{}", n + 1);
        let response = probe
            .activate_with(&version, &[NOTES_TABLE, migration])
            .await;
        refused_with(response, expected).await;
    }
    // Objects that would read past the policies are refused by what they are.
    let objects: [(&str, &str); 3] = [
        (
            "CREATE MATERIALIZED VIEW snapshot AS SELECT * FROM notes",
            "materialized view snapshot",
        ),
        (
            "CREATE VIEW as_owner AS SELECT * FROM notes",
            "security_invoker",
        ),
        (
            "CREATE FUNCTION all_notes() RETURNS bigint LANGUAGE sql SECURITY DEFINER \
             AS 'SELECT count(*) FROM notes'",
            "SECURITY DEFINER",
        ),
    ];
    for (n, (migration, expected)) in objects.iter().enumerate() {
        let version = format!("1.1.{n}");
        let response = probe
            .activate_with(&version, &[NOTES_TABLE, migration])
            .await;
        refused_with(response, expected).await;
    }
    // Nothing of the refused migrations stayed behind: A still sees only its note.
    assert_eq!(
        probe.notes_seen_by_a("SELECT body FROM notes").await,
        ["A's note"]
    );
    let policies: Vec<String> = sqlx::query_scalar(
        "SELECT polname::text FROM pg_policy WHERE polrelid = 'plugin_sqlprobe.notes'::regclass",
    )
    .fetch_all(&probe.host)
    .await
    .unwrap();
    assert_eq!(policies, ["workspace_isolation"]);

    // A view that runs as its caller is fine, and sees only the caller's rows.
    let response = probe
        .activate_with(
            "1.2.0",
            &[
                NOTES_TABLE,
                "CREATE VIEW note_bodies WITH (security_invoker = true) AS SELECT body FROM notes",
            ],
        )
        .await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{}",
        response.text().await.unwrap()
    );
    assert_eq!(
        probe.notes_seen_by_a("SELECT body FROM note_bodies").await,
        ["A's note"]
    );
}

/// Where plpgsql is available to plugin roles (an external server whose admin did not
/// revoke it), a migration can build its statements at run time, past any reading of
/// its text: the check of what the migrations left behind still holds.
#[tokio::test]
async fn policies_built_by_dynamic_sql_are_refused_by_the_end_state_check() {
    let probe = Probe::start(full_grant()).await;
    probe.write_notes().await;
    sqlx::query("GRANT USAGE ON LANGUAGE plpgsql TO PUBLIC")
        .execute(&probe.host)
        .await
        .unwrap();
    let extra = "DO $$ BEGIN EXECUTE 'CREATE POL' || 'ICY open ON notes USING (true)'; END $$";
    let response = probe.activate_with("1.0.1", &[NOTES_TABLE, extra]).await;
    refused_with(response, "row-level security policy \"open\"").await;
    let replaced = "DO $$ BEGIN \
        EXECUTE 'DROP POL' || 'ICY workspace_isolation ON notes'; \
        EXECUTE 'CREATE POL' || 'ICY workspace_isolation ON notes USING (true) WITH CHECK (true)'; \
        END $$";
    let response = probe.activate_with("1.0.2", &[NOTES_TABLE, replaced]).await;
    refused_with(response, "was changed by a migration").await;
    sqlx::query("REVOKE USAGE ON LANGUAGE plpgsql FROM PUBLIC")
        .execute(&probe.host)
        .await
        .unwrap();
    assert_eq!(
        probe.notes_seen_by_a("SELECT body FROM notes").await,
        ["A's note"]
    );
}

#[tokio::test]
async fn large_objects_are_out_of_reach() {
    let probe = Probe::start(full_grant()).await;
    for sql in [
        "SELECT lo_from_bytea(0, convert_to((SELECT string_agg(name, ',') FROM customers), 'UTF8')) AS oid",
        "SELECT lo_create(0) AS oid",
        "SELECT lo_get(1) AS data",
        "SELECT loread(lo_open(1, 262144), 100) AS data",
    ] {
        let error = probe.refused(sql).await;
        assert!(
            error.contains("permission denied for function"),
            "{sql}: {error}"
        );
    }
    let objects: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_largeobject_metadata")
        .fetch_one(&probe.host)
        .await
        .unwrap();
    assert_eq!(objects, 0);
}

#[tokio::test]
async fn advisory_locks_are_denied_and_never_outlive_a_call() {
    let probe = Probe::start(full_grant()).await;
    for sql in [
        "SELECT pg_advisory_lock(42)",
        "SELECT pg_try_advisory_lock_shared(1, 2)",
        "SELECT pg_advisory_xact_lock(hashtext('agenthost_sandbox:other'))",
    ] {
        let error = probe.refused(sql).await;
        assert!(
            error.contains("permission denied for function"),
            "{sql}: {error}"
        );
    }

    // Where the revoke could not run (the host isn't a superuser), the lock is taken,
    // but released when the connection goes back to the plugin's pool.
    let role = probe.login_role().await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "GRANT EXECUTE ON FUNCTION pg_advisory_lock(bigint) TO \"{role}\""
    )))
    .execute(&probe.host)
    .await
    .unwrap();
    let key = "SELECT pg_advisory_lock(hashtext('agenthost_sandbox:other')) AS locked";
    let results = probe.run(json!([{ "sql": key }])).await;
    assert!(results[0].get("error").is_none(), "{}", results[0]);
    let mut held = i64::MAX;
    for _ in 0..100 {
        held = sqlx::query_scalar(
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
             WHERE l.locktype = 'advisory' AND a.usename = $1",
        )
        .bind(&role)
        .fetch_one(&probe.host)
        .await
        .unwrap();
        if held == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(held, 0, "the plugin's advisory lock outlived its call");
    // The host's own lock on that key is free: another plugin's set-up goes through.
    let mut host = probe.host.acquire().await.unwrap();
    let free: bool =
        sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtext('agenthost_sandbox:other'))")
            .fetch_one(&mut *host)
            .await
            .unwrap();
    assert!(free);
}

#[tokio::test]
async fn a_result_over_the_byte_cap_fails_before_the_host_holds_it() {
    let probe = Probe::start_with(full_grant(), |config| {
        config.plugin_db_max_result_bytes = 1 << 20;
    })
    .await;
    // 20 rows of 100 KB: under the row cap, over the byte cap.
    let error = probe
        .refused("SELECT repeat('x', 100000) AS body FROM generate_series(1, 20)")
        .await;
    assert!(error.starts_with("invalid:"), "{error}");
    assert!(error.contains("1048576 bytes"), "{error}");
    // One value bigger than the cap, too.
    let error = probe.refused("SELECT repeat('y', 2000000) AS body").await;
    assert!(error.contains("1048576 bytes"), "{error}");
    // Under the cap, the same query works.
    let results = probe
        .run(json!([{ "sql": "SELECT repeat('x', 100000) AS body FROM generate_series(1, 5)" }]))
        .await;
    assert_eq!(results[0]["rows"].as_array().unwrap().len(), 5);
    // And the connection is fine afterwards.
    let results = probe
        .run(json!([{ "sql": "SELECT name FROM customers ORDER BY name" }]))
        .await;
    assert_eq!(names(&results[0]), ["A customer 1", "A customer 2"]);
}
