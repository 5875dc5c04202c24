//! Tickets through the REST API: create, show, list with filters, text search and
//! pages; numbers per workspace; the transitions, SLA and history the triggers keep;
//! comments; roles; isolation between workspaces; JSON and CSV imports.

use std::collections::HashSet;

use agenthost_tests::{StatusCode, TestServer, error_of};
use chrono::{DateTime, FixedOffset};
use reqwest::Method;
use serde_json::{Value, json};

/// A server with a workspace holding two people and a customer, and a key per role.
struct Fixture {
    server: TestServer,
    workspace: String,
    owner: String,
    admin: String,
    member: String,
    member_id: String,
    viewer: String,
}

async fn fixture(slug: &str) -> Fixture {
    let server = TestServer::start().await;
    let (workspace, owner) = server.create_workspace(slug).await;
    let (_, admin) = server.create_key(&workspace, "admin").await;
    let (member_id, member) = server.create_key(&workspace, "member").await;
    let (_, viewer) = server.create_key(&workspace, "viewer").await;
    seed_people(&server, &owner).await;
    Fixture {
        server,
        workspace,
        owner,
        admin,
        member,
        member_id,
        viewer,
    }
}

async fn seed_people(server: &TestServer, owner: &str) {
    let people = json!([
        { "external_id": "p1", "name": "Ana", "email": "ana@example.com" },
        { "external_id": "p2", "name": "Ben", "email": "ben@example.com" },
    ]);
    let (status, body) = server.import(owner, "people", &people).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let customers = json!([{ "external_id": "c1", "name": "Acme", "created_on": "2025-01-02" }]);
    let (status, body) = server.import(owner, "customers", &customers).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

impl Fixture {
    async fn call(
        &self,
        key: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let response = self.server.send(key, method, path, body).await;
        let status = response.status();
        let text = response.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
        };
        (status, body)
    }

    async fn create(&self, body: Value) -> Value {
        let (status, ticket) = self
            .call(&self.member, Method::POST, "/api/tickets", Some(body))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{ticket}");
        ticket
    }

    async fn list(&self, query: &str) -> Value {
        let (status, body) = self
            .call(
                &self.viewer,
                Method::GET,
                &format!("/api/tickets{query}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    async fn subjects(&self, query: &str) -> Vec<String> {
        let body = self.list(query).await;
        body["tickets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["subject"].as_str().unwrap().to_string())
            .collect()
    }

    async fn show(&self, id: &str) -> Value {
        let (status, body) = self
            .call(
                &self.viewer,
                Method::GET,
                &format!("/api/tickets/{id}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    async fn patch(&self, key: &str, id: &str, body: Value) -> (StatusCode, Value) {
        self.call(
            key,
            Method::PATCH,
            &format!("/api/tickets/{id}"),
            Some(body),
        )
        .await
    }

    async fn import_csv(&self, csv: &str) -> (StatusCode, Value) {
        let response = self
            .server
            .request(Method::POST, "/api/tickets/import", &self.member)
            .header("content-type", "text/csv")
            .body(csv.to_string())
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap())
    }

    async fn import_json(&self, rows: Value) -> (StatusCode, Value) {
        self.call(
            &self.member,
            Method::POST,
            "/api/tickets/import",
            Some(rows),
        )
        .await
    }
}

fn time(value: &Value) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(
        value
            .as_str()
            .unwrap_or_else(|| panic!("not a time: {value}")),
    )
    .unwrap()
}

fn minutes_between(from: &Value, to: &Value) -> i64 {
    (time(to) - time(from)).num_minutes()
}

/// (row, field) of every problem of an `invalid_rows` answer.
fn row_problems(body: &Value) -> Vec<(u64, String)> {
    assert_eq!(body["error"]["code"], "invalid_rows", "{body}");
    body["error"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["row"].as_u64().unwrap(),
                e["field"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn ticket(subject: &str) -> Value {
    json!({ "subject": subject, "requester": { "email": "kim@acme.test" } })
}

#[tokio::test]
async fn tickets_are_created_shown_and_listed_by_every_filter() {
    let f = fixture("tickets-basics").await;
    let login = f
        .create(json!({
            "subject": "  Cannot log in  ",
            "description": "The password reset email never arrives.",
            "priority": "high",
            "channel": "email",
            "requester": { "email": "kim@acme.test", "name": "Kim", "customer": "c1" },
            "assignee": "p1",
            "tags": [" Login", "login", "VIP "],
        }))
        .await;
    assert_eq!(login["number"], 1);
    assert_eq!(login["subject"], "Cannot log in");
    assert_eq!(login["status"], "open");
    assert_eq!(login["priority"], "high");
    assert_eq!(login["channel"], "email");
    assert_eq!(login["tags"], json!(["login", "vip"]));
    assert_eq!(login["requester"]["customer"]["name"], "Acme");
    assert_eq!(login["requester"]["customer"]["external_id"], "c1");
    assert_eq!(login["assignee"]["name"], "Ana");
    assert_eq!(login["assignee"]["email"], "ana@example.com");
    assert_eq!(login["sla_breached"], false);
    assert_eq!(login["enrichment"], Value::Null);
    assert_eq!(login["external_id"], Value::Null);

    // The assignee may be named by email; a pending ticket is allowed at creation.
    let refund = f
        .create(json!({
            "subject": "Refund for a double charge",
            "description": "I was charged twice for the annual plan.",
            "status": "pending",
            "requester": { "email": "lee@beta.test" },
            "assignee": "BEN@example.com",
            "tags": ["billing"],
        }))
        .await;
    assert_eq!(refund["number"], 2);
    assert_eq!(refund["assignee"]["external_id"], "p2");
    assert_eq!(refund["priority"], "normal");
    assert_eq!(refund["channel"], "api");
    assert_eq!(refund["requester"]["customer"], Value::Null);
    let export = f
        .create(json!({
            "subject": "Exports are slow",
            "description": "Exporting invoices takes minutes.",
            "priority": "low",
            "requester": { "email": "kim@acme.test" },
            "tags": ["performance", "billing"],
        }))
        .await;

    // Shown by id or by number, with (so far empty) comments and the creation event.
    let shown = f.show(login["id"].as_str().unwrap()).await;
    assert_eq!(shown["subject"], "Cannot log in");
    assert_eq!(shown["comments"], json!([]));
    assert_eq!(shown["events"][0]["kind"], "created");
    let by_number = f.show("2").await;
    assert_eq!(by_number["id"], refund["id"]);
    let (status, body) = f
        .call(&f.viewer, Method::GET, "/api/tickets/99", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        body["error"]["message"].as_str().unwrap().contains("#99"),
        "{body}"
    );
    let (status, _) = f
        .call(&f.viewer, Method::GET, "/api/tickets/nonsense", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Newest first, and each filter alone and combined.
    let all = [
        "Exports are slow",
        "Refund for a double charge",
        "Cannot log in",
    ];
    assert_eq!(f.subjects("").await, all);
    assert_eq!(f.list("").await["next_cursor"], Value::Null);
    assert_eq!(
        f.subjects("?status=pending").await,
        ["Refund for a double charge"]
    );
    assert_eq!(
        f.subjects("?status=open").await,
        ["Exports are slow", "Cannot log in"]
    );
    assert_eq!(f.subjects("?priority=high").await, ["Cannot log in"]);
    assert_eq!(
        f.subjects("?assignee=p2").await,
        ["Refund for a double charge"]
    );
    assert_eq!(
        f.subjects("?assignee=ana@example.com").await,
        ["Cannot log in"]
    );
    assert_eq!(
        f.subjects("?tag=billing").await,
        ["Exports are slow", "Refund for a double charge"]
    );
    assert_eq!(
        f.subjects("?tag=billing&status=open").await,
        ["Exports are slow"]
    );
    assert_eq!(
        f.subjects("?tag=billing&priority=high").await,
        Vec::<String>::new()
    );
    // Full text over subject and description, with stemming and web-search syntax.
    assert_eq!(
        f.subjects("?q=charged").await,
        ["Refund for a double charge"]
    );
    assert_eq!(f.subjects("?q=email%20password").await, ["Cannot log in"]);
    assert_eq!(f.subjects("?q=exporting").await, ["Exports are slow"]);
    assert_eq!(
        f.subjects("?q=invoices%20-slow").await,
        Vec::<String>::new()
    );
    assert_eq!(
        f.subjects("?q=charge&status=open").await,
        Vec::<String>::new()
    );
    let (status, body) = f
        .call(
            &f.viewer,
            Method::GET,
            "/api/tickets?priority=critical",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("low, normal, high, urgent")
    );
    assert_eq!(export["number"], 3);
    f.server.stop().await;
}

/// A create refused with 422 `invalid` whose message holds each of `expected`.
async fn refused(f: &Fixture, body: Value, expected: &[&str]) {
    let (status, error) = f
        .call(&f.member, Method::POST, "/api/tickets", Some(body))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    assert_eq!(error["error"]["code"], "invalid");
    let message = error["error"]["message"].as_str().unwrap();
    for part in expected {
        assert!(message.contains(part), "{part:?} not in {message:?}");
    }
}

#[tokio::test]
async fn invalid_tickets_are_refused_naming_the_field() {
    let f = fixture("tickets-invalid").await;
    refused(
        &f,
        json!({ "subject": "x", "priority": "critical", "requester": { "email": "a@b.c" } }),
        &["priority", "\"critical\"", "low, normal, high, urgent"],
    )
    .await;
    refused(
        &f,
        json!({ "subject": "x", "assignee": "p9", "requester": { "email": "a@b.c" } }),
        &["assignee", "no person", "\"p9\""],
    )
    .await;
    refused(
        &f,
        json!({ "subject": "x", "requester": { "email": "a@b.c", "customer": "c9" } }),
        &["requester.customer", "no customer", "\"c9\""],
    )
    .await;
    refused(
        &f,
        json!({ "subject": "  ", "requester": { "email": "a@b.c" } }),
        &["subject: is required"],
    )
    .await;
    refused(
        &f,
        json!({ "subject": "x".repeat(501), "requester": { "email": "a@b.c" } }),
        &["subject", "500"],
    )
    .await;
    refused(&f, json!({ "subject": "x" }), &["requester: is required"]).await;
    refused(
        &f,
        json!({ "subject": "x", "requester": { "email": "nobody" }, "colour": "red" }),
        &["requester.email", "not an email", "colour: unknown field"],
    )
    .await;
    refused(
        &f,
        json!({ "subject": "x", "requester": { "email": "a@b.c" }, "status": "solved" }),
        &["status", "open or pending"],
    )
    .await;
    let many: Vec<String> = (0..21).map(|i| format!("tag{i}")).collect();
    refused(
        &f,
        json!({ "subject": "x", "requester": { "email": "a@b.c" }, "tags": many }),
        &["tags", "20"],
    )
    .await;
    refused(
        &f,
        json!({ "subject": "x", "requester": { "email": "a@b.c" }, "tags": ["y".repeat(51)] }),
        &["tags", "50"],
    )
    .await;
    // Nothing of the above was written.
    assert_eq!(f.list("").await["tickets"], json!([]));
    f.server.stop().await;
}

#[tokio::test]
async fn pages_follow_the_cursor_without_duplicates() {
    let f = fixture("tickets-pages").await;
    for i in 0..7 {
        f.create(ticket(&format!("Ticket {i}"))).await;
    }
    let mut seen = Vec::new();
    let mut query = "?limit=3".to_string();
    let mut pages = 0;
    loop {
        let body = f.list(&query).await;
        let page = body["tickets"].as_array().unwrap();
        assert!(page.len() <= 3);
        seen.extend(page.iter().map(|t| t["number"].as_i64().unwrap()));
        pages += 1;
        assert!(pages <= 3, "the cursor must move on: {seen:?}");
        match body["next_cursor"].as_str() {
            Some(cursor) => query = format!("?limit=3&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, [7, 6, 5, 4, 3, 2, 1], "newest first, each once");
    // The cursor keeps the filters' company.
    let first = f.list("?limit=2&q=ticket").await;
    assert_eq!(first["tickets"].as_array().unwrap().len(), 2);
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = f.list(&format!("?limit=2&q=ticket&cursor={cursor}")).await;
    assert_eq!(second["tickets"][0]["number"], 5);
    let (status, _) = f
        .call(&f.viewer, Method::GET, "/api/tickets?cursor=zz", None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // 50 by default, at most 200 whatever the client asks.
    let many: Vec<Value> = (0..250)
        .map(|i| json!({ "external_id": format!("m{i}"), "subject": "Many", "requester_email": "a@b.c" }))
        .collect();
    let (status, body) = f.import_json(Value::Array(many)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let page = f.list("").await;
    assert_eq!(page["tickets"].as_array().unwrap().len(), 50);
    assert!(page["next_cursor"].is_string());
    let page = f.list("?limit=1000").await;
    assert_eq!(page["tickets"].as_array().unwrap().len(), 200);
    f.server.stop().await;
}

#[tokio::test]
async fn numbers_are_per_workspace() {
    let f = fixture("tickets-numbers-a").await;
    let (_, other) = f.server.create_workspace("tickets-numbers-b").await;
    assert_eq!(f.create(ticket("First in A")).await["number"], 1);
    assert_eq!(f.create(ticket("Second in A")).await["number"], 2);
    let (status, b) = f
        .call(
            &other,
            Method::POST,
            "/api/tickets",
            Some(ticket("First in B")),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(b["number"], 1);
    // #1 names each workspace's own ticket.
    let (_, shown) = f.call(&other, Method::GET, "/api/tickets/1", None).await;
    assert_eq!(shown["subject"], "First in B");
    assert_eq!(f.show("1").await["subject"], "First in A");
    f.server.stop().await;
}

#[tokio::test]
async fn every_allowed_transition_works_and_refused_ones_change_nothing() {
    let f = fixture("tickets-transitions").await;
    let t = f.create(ticket("Moves around")).await;
    let id = t["id"].as_str().unwrap();
    // open -> pending -> open -> pending -> solved
    for to in ["pending", "open", "pending", "solved"] {
        let (status, body) = f.patch(&f.member, id, json!({ "status": to })).await;
        assert_eq!(status, StatusCode::OK, "{to}: {body}");
        assert_eq!(body["status"], to);
    }
    // pending -> solved (above) stamped solved_at; solved -> open clears it.
    assert!(f.show(id).await["solved_at"].is_string());
    let (_, body) = f.patch(&f.member, id, json!({ "status": "open" })).await;
    assert_eq!(body["status"], "open");
    assert_eq!(body["solved_at"], Value::Null);

    // open -> closed is refused with the rule's message, and nothing changes.
    let before = f.show(id).await;
    let (status, body) = f
        .patch(
            &f.member,
            id,
            json!({ "status": "closed", "subject": "Changed" }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["code"], "invalid");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("cannot go from open to closed"),
        "{message}"
    );
    let after = f.show(id).await;
    assert_eq!(after["subject"], "Moves around");
    assert_eq!(after["status"], "open");
    assert_eq!(after["updated_at"], before["updated_at"]);
    assert_eq!(after["events"], before["events"]);

    // open -> solved -> closed; closed is final.
    let (_, body) = f.patch(&f.member, id, json!({ "status": "solved" })).await;
    assert!(body["solved_at"].is_string());
    let (status, body) = f.patch(&f.member, id, json!({ "status": "closed" })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["closed_at"].is_string());
    let (status, body) = f.patch(&f.member, id, json!({ "status": "open" })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cannot go from closed to open"),
        "{body}"
    );
    assert_eq!(f.show(id).await["status"], "closed");

    // A status that doesn't exist is refused before the database sees it.
    let (status, body) = f
        .patch(&f.member, id, json!({ "status": "reopened" }))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("open, pending, solved, closed")
    );
    let (status, _) = f.patch(&f.member, "42", json!({ "status": "open" })).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    f.server.stop().await;
}

#[tokio::test]
async fn patches_change_fields_and_clear_the_assignee() {
    let f = fixture("tickets-patch").await;
    let t = f
        .create(json!({ "subject": "Old", "assignee": "p1", "requester": { "email": "a@b.c", "customer": "c1" } }))
        .await;
    let id = t["id"].as_str().unwrap();
    let (status, body) = f
        .patch(
            &f.member,
            id,
            json!({ "subject": "New", "tags": ["A", "b"], "requester": { "name": "Al", "customer": null },
                    "assignee": "ben@example.com" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["subject"], "New");
    assert_eq!(body["tags"], json!(["a", "b"]));
    assert_eq!(
        body["requester"],
        json!({ "email": "a@b.c", "name": "Al", "customer": null })
    );
    assert_eq!(body["assignee"]["external_id"], "p2");
    let (_, body) = f.patch(&f.member, id, json!({ "assignee": null })).await;
    assert_eq!(body["assignee"], Value::Null);
    assert_eq!(body["subject"], "New", "fields not named stay");
    let (status, body) = f
        .patch(&f.member, id, json!({ "assignee": "nobody" }))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("assignee")
    );
    let (status, body) = f.patch(&f.member, id, json!({ "subject": null })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("subject")
    );
    f.server.stop().await;
}

#[tokio::test]
async fn sla_due_times_follow_priority_and_the_policy() {
    let f = fixture("tickets-sla").await;
    // The defaults: urgent 4 h, high 24 h, normal 3 days, low 7 days.
    let (status, policy) = f
        .call(&f.viewer, Method::GET, "/api/tickets/sla", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        policy,
        json!({ "low": 10080, "normal": 4320, "high": 1440, "urgent": 240 })
    );
    let normal = f.create(ticket("Normal by default")).await;
    assert_eq!(
        minutes_between(&normal["created_at"], &normal["sla_due_at"]),
        4320
    );

    let custom = json!({ "low": 600, "normal": 120, "high": 60, "urgent": 15 });
    let (status, body) = f
        .call(
            &f.member,
            Method::PUT,
            "/api/tickets/sla",
            Some(custom.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = f
        .call(
            &f.admin,
            Method::PUT,
            "/api/tickets/sla",
            Some(custom.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, custom);
    assert_eq!(
        f.call(&f.viewer, Method::GET, "/api/tickets/sla", None)
            .await
            .1,
        custom
    );
    let (status, body) = f
        .call(
            &f.admin,
            Method::PUT,
            "/api/tickets/sla",
            Some(json!({ "low": 0, "normal": 1, "high": 1 })),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("low") && message.contains("urgent"),
        "{message}"
    );

    let mut urgent = ticket("Everything is down");
    urgent["priority"] = json!("urgent");
    let urgent = f.create(urgent).await;
    assert_eq!(
        minutes_between(&urgent["created_at"], &urgent["sla_due_at"]),
        15
    );
    // A new priority moves the due time, counted from creation.
    let id = urgent["id"].as_str().unwrap();
    let (_, body) = f.patch(&f.member, id, json!({ "priority": "low" })).await;
    assert_eq!(
        minutes_between(&body["created_at"], &body["sla_due_at"]),
        600
    );
    let events = f.show(id).await["events"].clone();
    let last = events.as_array().unwrap().last().unwrap();
    assert_eq!(
        last["changes"]["priority"],
        json!({ "from": "urgent", "to": "low" })
    );
    assert!(last["changes"]["sla_due_at"].is_object());

    // An old open ticket is past its due time; solving it ends the breach.
    let (status, body) = f
        .import_json(
            json!([{ "external_id": "old-1", "subject": "Old", "priority": "urgent",
                             "requester_email": "a@b.c", "created_at": "2025-01-01T00:00:00Z" }]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let old = &f.list("?q=old").await["tickets"][0];
    assert_eq!(old["sla_breached"], true);
    assert_eq!(
        time(&old["sla_due_at"]),
        time(&json!("2025-01-01T00:15:00Z"))
    );
    let (_, body) = f
        .patch(
            &f.member,
            old["id"].as_str().unwrap(),
            json!({ "status": "solved" }),
        )
        .await;
    assert_eq!(body["sla_breached"], false);
    f.server.stop().await;
}

#[tokio::test]
async fn the_history_names_who_did_what() {
    let f = fixture("tickets-history").await;
    let (other_id, other) = f.server.create_key(&f.workspace, "member").await;
    let t = f.create(ticket("Who did it")).await;
    let id = t["id"].as_str().unwrap();
    let (status, _) = f
        .patch(&other, id, json!({ "priority": "high", "assignee": "p1" }))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = f
        .call(
            &other,
            Method::POST,
            &format!("/api/tickets/{id}/comments"),
            Some(json!({ "body": "On it" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = f.patch(&f.member, id, json!({ "status": "solved" })).await;
    assert_eq!(status, StatusCode::OK);

    let events = f.show(id).await["events"].as_array().unwrap().clone();
    let summary: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().into(),
                e["actor"].as_str().unwrap().into(),
            )
        })
        .collect();
    let by_member = format!("key:{}", f.member_id);
    let by_other = format!("key:{other_id}");
    assert_eq!(
        summary,
        [
            ("created".to_string(), by_member.clone()),
            ("updated".to_string(), by_other.clone()),
            ("commented".to_string(), by_other.clone()),
            ("updated".to_string(), by_member.clone()),
        ]
    );
    assert_eq!(
        events[0]["changes"],
        json!({ "status": "open", "priority": "normal" })
    );
    assert_eq!(
        events[1]["changes"]["priority"],
        json!({ "from": "normal", "to": "high" })
    );
    assert_eq!(events[1]["changes"]["assignee_id"]["from"], Value::Null);
    assert!(events[1]["changes"]["assignee_id"]["to"].is_string());
    assert_eq!(events[2]["changes"]["public"], true);
    assert_eq!(
        events[3]["changes"]["status"],
        json!({ "from": "open", "to": "solved" })
    );
    f.server.stop().await;
}

#[tokio::test]
async fn comments_are_public_or_internal() {
    let f = fixture("tickets-comments").await;
    let t = f.create(ticket("Talk to me")).await;
    let path = format!("/api/tickets/{}/comments", t["number"]);
    let (status, reply) = f
        .call(
            &f.member,
            Method::POST,
            &path,
            Some(json!({ "body": "We are looking into it." })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    assert_eq!(reply["public"], true);
    assert_eq!(reply["author"], format!("key:{}", f.member_id));
    let (status, note) = f
        .call(
            &f.member,
            Method::POST,
            &path,
            Some(json!({ "body": "Customer is on the old plan", "public": false })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(note["public"], false);

    let shown = f.show(t["id"].as_str().unwrap()).await;
    let comments = shown["comments"].as_array().unwrap();
    assert_eq!(comments.len(), 2);
    assert_eq!(comments[0]["id"], reply["id"]);
    assert_eq!(comments[0]["body"], "We are looking into it.");
    assert_eq!(comments[1]["id"], note["id"]);
    assert_eq!(comments[1]["public"], false);
    assert!(time(&shown["updated_at"]) >= time(&t["updated_at"]));

    let (status, _) = f
        .call(
            &f.member,
            Method::POST,
            &path,
            Some(json!({ "body": "  " })),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = f
        .call(
            &f.viewer,
            Method::POST,
            &path,
            Some(json!({ "body": "Hi" })),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = f
        .call(
            &f.member,
            Method::POST,
            "/api/tickets/77/comments",
            Some(json!({ "body": "Hi" })),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    f.server.stop().await;
}

#[tokio::test]
async fn roles_decide_who_reads_writes_and_deletes() {
    let f = fixture("tickets-roles").await;
    let (status, body) = f
        .call(
            &f.viewer,
            Method::POST,
            "/api/tickets",
            Some(ticket("Nope")),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let t = f.create(ticket("Keep me")).await;
    let id = t["id"].as_str().unwrap();
    let path = format!("/api/tickets/{id}");
    let (status, _) = f.patch(&f.viewer, id, json!({ "priority": "high" })).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = f.call(&f.member, Method::DELETE, &path, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = f
        .call(
            &f.member,
            Method::PUT,
            "/api/tickets/sla",
            Some(json!({ "low": 1, "normal": 1, "high": 1, "urgent": 1 })),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = f
        .call(
            &f.viewer,
            Method::POST,
            "/api/tickets/import",
            Some(json!([])),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(f.show(id).await["priority"], "normal");

    let (status, _) = f.call(&f.admin, Method::DELETE, &path, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = f.call(&f.viewer, Method::GET, &path, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = f.call(&f.owner, Method::DELETE, &path, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    f.server.stop().await;
}

#[tokio::test]
async fn another_workspace_cannot_see_or_touch_a_ticket() {
    let f = fixture("tickets-isolation-a").await;
    let t = f.create(ticket("Private to A")).await;
    let id = t["id"].as_str().unwrap();
    let (_, b) = f.server.create_workspace("tickets-isolation-b").await;
    for (method, path, body) in [
        (Method::GET, format!("/api/tickets/{id}"), None),
        (Method::GET, "/api/tickets/1".to_string(), None),
        (
            Method::PATCH,
            format!("/api/tickets/{id}"),
            Some(json!({ "subject": "Mine now" })),
        ),
        (
            Method::POST,
            format!("/api/tickets/{id}/comments"),
            Some(json!({ "body": "Hello" })),
        ),
        (Method::DELETE, format!("/api/tickets/{id}"), None),
    ] {
        let response = f.server.send(&b, method.clone(), &path, body).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{method} {path}");
        let (code, _) = error_of(response).await;
        assert_eq!(code, "not_found");
    }
    let (_, listed) = f.call(&b, Method::GET, "/api/tickets", None).await;
    assert_eq!(listed["tickets"], json!([]));
    // B's people are not A's either.
    let (status, _) = f
        .call(
            &b,
            Method::POST,
            "/api/tickets",
            Some(json!({ "subject": "x", "assignee": "p1", "requester": { "email": "a@b.c" } })),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let shown = f.show(id).await;
    assert_eq!(shown["subject"], "Private to A");
    assert_eq!(shown["comments"], json!([]));
    f.server.stop().await;
}

#[tokio::test]
async fn imports_with_problems_report_every_row_and_write_nothing() {
    let f = fixture("tickets-import-errors").await;
    let (status, body) = f
        .import_csv(include_str!("../../data/tickets/broken.csv"))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let problems = row_problems(&body);
    for expected in [
        (2, "subject"),
        (2, "priority"),
        (2, "requester_email"),
        (3, "status"),
        (3, "channel"),
        (3, "created_at"),
        (4, "external_id"),
    ] {
        assert!(
            problems.contains(&(expected.0, expected.1.to_string())),
            "{expected:?} not in {problems:?}"
        );
    }
    assert!(
        !problems.iter().any(|(row, _)| *row == 1),
        "row 1 is fine: {problems:?}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nothing was imported")
    );

    let rows = json!([
        { "subject": "No id", "requester_email": "a@b.c" },
        { "external_id": "j2", "subject": "Fine", "requester_email": "a@b.c", "colour": "red" },
        { "external_id": "j3", "subject": "Tags", "requester_email": "a@b.c", "tags": 7 },
        "not an object",
    ]);
    let (status, body) = f.import_json(rows).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let problems = row_problems(&body);
    assert!(problems.contains(&(4, String::new())), "{problems:?}");

    let rows = json!([
        { "external_id": "j1", "subject": "Fine", "requester_email": "a@b.c" },
        { "external_id": "j2", "subject": "Fine", "requester_email": "a@b.c", "colour": "red" },
        { "external_id": "j3", "subject": "Tags", "requester_email": "a@b.c", "tags": 7 },
        { "subject": "No id", "requester_email": "a@b.c" },
    ]);
    let (status, body) = f.import_json(rows).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let problems = row_problems(&body);
    assert_eq!(
        problems,
        [
            (2, "colour".to_string()),
            (3, "tags".to_string()),
            (4, "external_id".to_string())
        ]
    );

    // References are checked against the workspace's people and customers.
    let rows = json!([
        { "external_id": "r1", "subject": "Fine", "requester_email": "a@b.c", "assignee": "p1" },
        { "external_id": "r2", "subject": "Who", "requester_email": "a@b.c", "assignee": "p9" },
        { "external_id": "r3", "subject": "Which", "requester_email": "a@b.c", "customer": "c9" },
    ]);
    let (status, body) = f.import_json(rows).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        row_problems(&body),
        [(2, "assignee".to_string()), (3, "customer".to_string())]
    );

    let (status, _) = f.import_json(json!([])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        f.list("").await["tickets"],
        json!([]),
        "nothing was written"
    );
    f.server.stop().await;
}

#[tokio::test]
async fn imports_upsert_by_external_id_and_keep_history_dates() {
    let f = fixture("tickets-import").await;
    let (status, body) = f
        .import_csv(include_str!("../../data/tickets/history.csv"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({ "received": 3, "inserted": 3, "updated": 0 }));

    let listed = f.list("").await["tickets"].as_array().unwrap().clone();
    let by_external = |id: &str| {
        listed
            .iter()
            .find(|t| t["external_id"] == id)
            .unwrap()
            .clone()
    };
    let login = by_external("zd-1001");
    assert_eq!(login["number"], 1, "numbers follow the rows");
    assert_eq!(login["status"], "solved");
    assert!(login["solved_at"].is_string());
    assert_eq!(login["tags"], json!(["login", "email"]));
    assert_eq!(login["assignee"]["name"], "Ana");
    assert_eq!(login["requester"]["customer"]["name"], "Acme");
    assert_eq!(
        time(&login["created_at"]),
        time(&json!("2025-03-01T09:00:00Z"))
    );
    assert_eq!(
        time(&login["sla_due_at"]),
        time(&json!("2025-03-02T09:00:00Z")),
        "high: 24 h"
    );
    assert_eq!(login["sla_breached"], false, "solved");
    let refund = by_external("zd-1002");
    assert_eq!(refund["status"], "closed");
    assert!(refund["closed_at"].is_string());
    assert_eq!(refund["assignee"]["external_id"], "p2", "named by email");
    assert_eq!(
        refund["description"],
        "I was charged twice, please refund one"
    );
    let export = by_external("zd-1003");
    assert_eq!(export["status"], "pending");
    assert_eq!(
        time(&export["created_at"]),
        time(&json!("2025-03-03T08:15:00Z"))
    );
    assert_eq!(export["sla_breached"], true, "low: 7 days, long past");
    // Newest first by the imported creation times.
    let numbers: Vec<i64> = listed
        .iter()
        .map(|t| t["number"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, [3, 2, 1]);
    // A closed import went open -> solved -> closed, as the history shows.
    let history = f.show(refund["id"].as_str().unwrap()).await["events"].clone();
    let statuses: Vec<&Value> = history
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["changes"].get("status"))
        .collect();
    assert_eq!(
        statuses,
        [
            &json!("open"),
            &json!({ "from": "open", "to": "solved" }),
            &json!({ "from": "solved", "to": "closed" })
        ]
    );

    // The same external ids again update in place; a new one is inserted.
    let rows = json!([
        { "external_id": "zd-1001", "subject": "Cannot log in (reopened)", "status": "open",
          "priority": "urgent", "requester_email": "kim@acme.test", "tags": ["login"],
          "created_at": "2025-06-01T00:00:00Z" },
        { "external_id": "zd-1003", "subject": "Export to CSV is slow", "status": "closed",
          "priority": "low", "requester_email": "kim@acme.test" },
        { "external_id": "zd-1004", "subject": "Dark mode", "requester_email": "max@gamma.test" },
    ]);
    let (status, body) = f.import_json(rows).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({ "received": 3, "inserted": 1, "updated": 2 }));
    let listed = f.list("").await["tickets"].as_array().unwrap().clone();
    assert_eq!(listed.len(), 4);
    let by_external = |id: &str| {
        listed
            .iter()
            .find(|t| t["external_id"] == id)
            .unwrap()
            .clone()
    };
    let login = by_external("zd-1001");
    assert_eq!(login["number"], 1);
    assert_eq!(login["subject"], "Cannot log in (reopened)");
    assert_eq!(login["status"], "open");
    assert_eq!(login["solved_at"], Value::Null);
    assert_eq!(
        login["assignee"],
        Value::Null,
        "an import row replaces the fields"
    );
    assert_eq!(
        time(&login["created_at"]),
        time(&json!("2025-03-01T09:00:00Z")),
        "creation stays"
    );
    assert_eq!(
        time(&login["sla_due_at"]),
        time(&json!("2025-03-01T13:00:00Z")),
        "urgent: 4 h"
    );
    assert_eq!(by_external("zd-1003")["status"], "closed");
    let dark = by_external("zd-1004");
    assert_eq!(
        (dark["number"].clone(), dark["status"].clone()),
        (json!(4), json!("open"))
    );

    // A closed ticket can't be reopened by an import; the whole import is refused.
    let rows = json!([
        { "external_id": "zd-1001", "subject": "Should not change", "requester_email": "kim@acme.test" },
        { "external_id": "zd-1002", "subject": "Refund", "status": "open", "requester_email": "lee@beta.test" },
    ]);
    let (status, body) = f.import_json(rows).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(row_problems(&body), [(2, "status".to_string())]);
    assert!(
        body["error"]["rows"][0]["message"]
            .as_str()
            .unwrap()
            .contains("closed")
    );
    assert_eq!(f.show("1").await["subject"], "Cannot log in (reopened)");
    assert_eq!(f.show("2").await["status"], "closed");
    f.server.stop().await;
}

#[tokio::test]
async fn nul_bytes_are_refused() {
    let f = fixture("tickets-nul").await;
    let (status, body) = f
        .call(
            &f.member,
            Method::POST,
            "/api/tickets",
            Some(json!({ "subject": "a\u{0}b", "requester": { "email": "a@b.c" } })),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`subject`"),
        "{body}"
    );
    let (status, _) = f
        .import_csv("external_id,subject,requester_email\nn1,a\0b,a@b.c\n")
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(f.list("").await["tickets"], json!([]));
    f.server.stop().await;
}

#[tokio::test]
async fn a_new_ticket_queues_its_enrichment() {
    let f = fixture("tickets-enrich").await;
    let t = f.create(ticket("Enrich me")).await;
    let pool = sqlx::PgPool::connect(&f.server.database_url).await.unwrap();
    let jobs: Vec<(String, String)> = sqlx::query_as(
        "SELECT kind, status FROM support_jobs WHERE target = $1::text::uuid AND workspace_id = $2::text::uuid",
    )
    .bind(t["id"].as_str().unwrap())
    .bind(&f.workspace)
    .fetch_all(&pool)
    .await
    .unwrap();
    // Queued in the ticket's transaction; the worker may already have taken it.
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0].0, "enrich_ticket");
    assert!(
        ["queued", "running", "done"].contains(&jobs[0].1.as_str()),
        "{jobs:?}"
    );
    // Deleting the ticket drops a queued job nobody needs any more.
    let (status, _) = f
        .call(
            &f.admin,
            Method::DELETE,
            &format!("/api/tickets/{}", t["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let left: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM support_jobs WHERE target = $1::text::uuid AND status = 'queued'",
    )
    .bind(t["id"].as_str().unwrap())
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(left, 0);
    pool.close().await;
    f.server.stop().await;
}

#[tokio::test]
async fn unique_numbers_survive_concurrent_creation() {
    let f = fixture("tickets-concurrent").await;
    let creates = (0..8).map(|i| {
        f.call(
            &f.member,
            Method::POST,
            "/api/tickets",
            Some(ticket(&format!("T{i}"))),
        )
    });
    let results = futures_util::future::join_all(creates).await;
    let numbers: HashSet<i64> = results
        .iter()
        .map(|(status, body)| {
            assert_eq!(*status, StatusCode::CREATED, "{body}");
            body["number"].as_i64().unwrap()
        })
        .collect();
    assert_eq!(numbers, (1..=8).collect());
    f.server.stop().await;
}

/// A plugin with a write grant on every ticket table still can't rewrite the record.
#[tokio::test]
async fn plugins_cannot_rewrite_comments_or_history_or_delete_tickets() {
    let server = TestServer::start().await;
    let host = sqlx::PgPool::connect(&server.database_url).await.unwrap();
    let (workspace, _) = server.create_workspace("tickets-guard").await;
    let (_, key) = server.create_key(&workspace, "member").await;
    let capabilities = json!({ "database": { "tables": {
        "tickets": "write", "ticket_comments": "write", "ticket_events": "write"
    } } });
    let manifest = json!({
        "name": "sqlprobe", "version": "1.0.0", "kind": "tool", "capabilities": capabilities,
    });
    let response = server
        .upload_plugin(&manifest, agenthost_tests::plugin_wasm("sqlprobe"), true)
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let response = server
        .send(
            agenthost_tests::ADMIN_TOKEN,
            Method::PUT,
            "/api/admin/plugins/sqlprobe/versions/1.0.0/grants",
            Some(capabilities),
        )
        .await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{}",
        response.text().await.unwrap()
    );
    let run = |statements: Value| {
        let server = &server;
        let key = key.clone();
        async move {
            let input = json!({ "statements": statements, "keep_going": true });
            let response = server.call_tool(&key, "sqlprobe", "run", &input).await;
            assert_eq!(response.status(), StatusCode::OK);
            let body: Value = response.json().await.unwrap();
            body["output"]["results"].as_array().unwrap().clone()
        }
    };
    let results = run(json!([
        { "sql": "INSERT INTO tickets (subject, requester_email) VALUES ('Printer jam', 'a@example.com')" },
        { "sql": "INSERT INTO ticket_comments (ticket_id, body, author) SELECT id, 'Try a reset', 'key:someone-else' FROM tickets" },
    ]))
    .await;
    assert!(results.iter().all(|r| r["error"].is_null()), "{results:?}");
    for (sql, refusal) in [
        (
            "UPDATE ticket_comments SET body = 'rewritten', author = 'key:admin'",
            "cannot change or delete comments",
        ),
        (
            "DELETE FROM ticket_comments",
            "cannot change or delete comments",
        ),
        // (refused first by the sequence's privileges, else by the trigger)
        (
            "INSERT INTO ticket_events (id, ticket_id, actor, kind) SELECT 1000, id, 'key:admin', 'updated' FROM tickets",
            "written by the database itself",
        ),
        (
            "UPDATE ticket_events SET actor = 'key:admin'",
            "written by the database itself",
        ),
        (
            "DELETE FROM ticket_events",
            "written by the database itself",
        ),
        ("DELETE FROM tickets", "cannot delete tickets"),
    ] {
        let results = run(json!([{ "sql": sql }])).await;
        let error = results[0]["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{sql}: {results:?}"));
        assert!(error.contains(refusal), "{sql}: {error}");
    }
    // What it did is on record, signed by the plugin, whatever author it claimed.
    // (Enrichment of the new ticket runs in the background and may be on record too.)
    let trail: Vec<(String, String)> = sqlx::query_as(
        "SELECT kind, actor FROM data.ticket_events WHERE kind <> 'enriched' ORDER BY id",
    )
    .fetch_all(&host)
    .await
    .unwrap();
    assert_eq!(
        trail,
        [
            ("created".to_string(), "plugin:sqlprobe".to_string()),
            ("commented".to_string(), "plugin:sqlprobe".to_string()),
        ]
    );
    let author: String = sqlx::query_scalar("SELECT author FROM data.ticket_comments")
        .fetch_one(&host)
        .await
        .unwrap();
    assert_eq!(author, "plugin:sqlprobe");
    server.stop().await;
}
