//! The real binary as a process: first start, restart, crash, stale pid file.

use std::path::Path;

use agenthost_tests::{HostProcess, StatusCode};
use serde_json::{Value, json};

async fn get_status(host: &HostProcess, path: &str, token: &str) -> StatusCode {
    reqwest::Client::new()
        .get(host.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
}

/// Create a workspace; returns its owner key.
async fn create_workspace(host: &HostProcess, admin_token: &str, slug: &str) -> String {
    let response = reqwest::Client::new()
        .post(host.url("/api/admin/workspaces"))
        .bearer_auth(admin_token)
        .json(&json!({ "slug": slug, "name": slug }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    body["owner_key"]["secret"].as_str().unwrap().to_string()
}

fn printed_admin_token(host: &HostProcess) -> Option<String> {
    host.stdout
        .iter()
        .find_map(|line| {
            line.rsplit_once(": ")
                .filter(|_| line.contains("admin token"))
        })
        .map(|(_, token)| token.to_string())
}

fn postmaster_pid_file(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join("pgdata/postmaster.pid")
}

#[tokio::test]
async fn workspaces_keys_and_the_admin_token_survive_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let host = HostProcess::start(data.path(), &[]).await;
    let admin = printed_admin_token(&host).expect("first start prints the admin token");
    let owner = create_workspace(&host, &admin, "durable").await;
    host.stop().await;
    assert!(
        !postmaster_pid_file(data.path()).exists(),
        "PostgreSQL stopped with the host"
    );

    let host = HostProcess::start(data.path(), &[]).await;
    assert_eq!(
        printed_admin_token(&host),
        None,
        "the token is shown only once"
    );
    assert_eq!(get_status(&host, "/api/me", &owner).await, StatusCode::OK);
    assert_eq!(
        get_status(&host, "/api/admin/workspaces", &admin).await,
        StatusCode::OK
    );
    host.stop().await;

    // A lost token is replaced with `rotate-admin-token`; the old one stops working.
    let output = HostProcess::command(data.path(), &[])
        .arg("rotate-admin-token")
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let rotated = stdout.trim().rsplit_once(": ").unwrap().1.to_string();
    let host = HostProcess::start(data.path(), &[]).await;
    assert_eq!(
        get_status(&host, "/api/admin/workspaces", &admin).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get_status(&host, "/api/admin/workspaces", &rotated).await,
        StatusCode::OK
    );
    host.stop().await;
}

#[tokio::test]
async fn a_host_killed_with_sigkill_starts_again_with_its_data() {
    let data = tempfile::tempdir().unwrap();
    let env = [("AGENTHOST_ADMIN_TOKEN", "aha_configured")];
    let host = HostProcess::start(data.path(), &env).await;
    assert_eq!(
        printed_admin_token(&host),
        None,
        "a configured token is never generated"
    );
    let owner = create_workspace(&host, "aha_configured", "crashy").await;
    host.crash().await;
    // The host died; its PostgreSQL did not, and still holds the data directory.
    assert!(postmaster_pid_file(data.path()).exists());

    let host = HostProcess::start(data.path(), &env).await;
    assert_eq!(get_status(&host, "/api/me", &owner).await, StatusCode::OK);
    host.stop().await;
}

#[tokio::test]
async fn a_stale_pid_file_naming_another_process_is_recovered() {
    let data = tempfile::tempdir().unwrap();
    let env = [("AGENTHOST_ADMIN_TOKEN", "aha_configured")];
    let host = HostProcess::start(data.path(), &env).await;
    let owner = create_workspace(&host, "aha_configured", "stale").await;
    host.stop().await;

    // As after a power loss: the pid file names a pid that now belongs to an
    // unrelated live process, which makes PostgreSQL itself refuse to start.
    let mut unrelated = tokio::process::Command::new("sleep")
        .arg("60")
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = unrelated.id().unwrap();
    let stale = format!(
        "{pid}\n{}\n1700000000\n5432\n\n\n  1234 5678\nready\n",
        data.path().join("pgdata").display()
    );
    std::fs::write(postmaster_pid_file(data.path()), stale).unwrap();

    let host = HostProcess::start(data.path(), &env).await;
    assert_eq!(get_status(&host, "/api/me", &owner).await, StatusCode::OK);
    host.stop().await;
    assert!(
        unrelated.try_wait().unwrap().is_none(),
        "the unrelated process was left alone"
    );
    unrelated.kill().await.unwrap();
}

#[tokio::test]
async fn missing_postgres_binaries_name_the_command_that_fixes_it() {
    let data = tempfile::tempdir().unwrap();
    let output = HostProcess::command(data.path(), &[("AGENTHOST_PG_DIR", "/nonexistent/pg")])
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("make setup") && stderr.contains("DATABASE_URL"),
        "{stderr}"
    );
}

#[tokio::test]
async fn an_unreachable_external_database_is_a_clear_startup_error() {
    let data = tempfile::tempdir().unwrap();
    let output = HostProcess::command(
        data.path(),
        &[("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")],
    )
    .output()
    .await
    .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("connecting to PostgreSQL"), "{stderr}");
}
