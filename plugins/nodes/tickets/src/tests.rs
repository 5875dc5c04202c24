use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use agenthost_sdk::database::{Rows, Value as Sql};
use agenthost_sdk::testing::TestHost;

use super::*;

/// What the fake database holds: tickets by id (number, status, priority, tags,
/// assignee), the ledger, comments, and every statement it got.
#[derive(Default)]
struct Db {
    tickets: Vec<(String, Value)>,
    ledger: HashMap<String, Option<String>>,
    comments: Vec<(String, String, bool)>,
    statements: Vec<String>,
}

type Shared = Rc<RefCell<Db>>;

fn text(value: &Sql) -> Option<String> {
    value.as_str().map(str::to_string)
}

/// A TestHost playing the tables closely enough for the node's statements: one person
/// (`ada@acme.com`, external id `p-1`), and the trigger's rule that closed is final.
fn host() -> (TestHost, Shared) {
    let db: Shared = Rc::default();
    let state = db.clone();
    let host = TestHost::new().database(move |sql, params| {
        let mut db = state.borrow_mut();
        db.statements.push(sql.to_string());
        let one = || Rows::new(&["n"]).row(vec![Sql::Int(1)]);
        if sql.contains(" runs ") {
            let key = text(&params[0]).unwrap();
            return Ok(if sql.starts_with("INSERT") {
                if db.ledger.contains_key(&key) {
                    Rows::new(&["n"])
                } else {
                    db.ledger.insert(key, None);
                    one()
                }
            } else if sql.starts_with("UPDATE") {
                db.ledger.insert(key, text(&params[1]));
                one()
            } else {
                let output = db.ledger.get(&key).cloned().flatten();
                Rows::new(&["output"]).row(vec![output.map_or(Sql::Null, Sql::Json)])
            });
        }
        if sql.starts_with("INSERT INTO data.tickets") {
            let id = format!("00000000-0000-4000-8000-{:012}", db.tickets.len() + 1);
            let ticket = json!({
                "id": id, "number": db.tickets.len() + 1, "subject": text(&params[0]),
                "description": text(&params[1]), "priority": text(&params[2]),
                "channel": text(&params[3]), "status": "open",
                "requester": {"email": text(&params[4]), "name": text(&params[5])},
                "tags": serde_json::from_str::<Value>(params[6].as_str().unwrap()).unwrap(),
                "assignee": null,
            });
            db.tickets.push((id.clone(), ticket));
            return Ok(Rows::new(&["id"]).row(vec![Sql::Uuid(id)]));
        }
        if sql.starts_with("SELECT jsonb_build_object") {
            let id = text(&params[0]).unwrap();
            let ticket = db
                .tickets
                .iter()
                .find(|(t, _)| *t == id)
                .map(|(_, t)| t.to_string());
            return Ok(match ticket {
                Some(ticket) => Rows::new(&["ticket"]).row(vec![Sql::Json(ticket)]),
                None => Rows::new(&["ticket"]),
            });
        }
        if sql.starts_with("SELECT id FROM data.tickets") {
            let found = db.tickets.iter().find(|(id, t)| {
                Some(id.clone()) == text(&params[0])
                    || Some(t["number"].as_i64().unwrap()) == params[1].as_i64()
            });
            let mut rows = Rows::new(&["id"]);
            if let Some((id, _)) = found {
                rows = rows.row(vec![Sql::Uuid(id.clone())]);
            }
            return Ok(rows);
        }
        if sql.starts_with("SELECT id FROM data.people") {
            let name = text(&params[0]).unwrap().to_lowercase();
            let mut rows = Rows::new(&["id"]);
            if name == "p-1" || name == "ada@acme.com" {
                rows = rows.row(vec![Sql::Uuid(
                    "00000000-0000-4000-8000-00000000000a".into(),
                )]);
            }
            return Ok(rows);
        }
        if sql.starts_with("UPDATE data.tickets") {
            let id = text(&params[0]).unwrap();
            let (_, ticket) = db.tickets.iter_mut().find(|(t, _)| *t == id).unwrap();
            if let Some(status) = text(&params[1]) {
                if ticket["status"] == "closed" && status != "closed" {
                    return Err(Error::invalid(format!(
                        "a ticket cannot go from closed to {status}"
                    )));
                }
                ticket["status"] = json!(status);
            }
            if let Some(priority) = text(&params[2]) {
                ticket["priority"] = json!(priority);
            }
            if let Some(tags) = text(&params[3]) {
                ticket["tags"] = serde_json::from_str(&tags).unwrap();
            }
            if params[4] == Sql::Bool(true) {
                ticket["assignee"] = text(&params[5]).map_or(json!(null), |id| json!({"id": id}));
            }
            return Ok(one());
        }
        if sql.starts_with("INSERT INTO data.ticket_comments") {
            let public = params[1] == Sql::Bool(true);
            db.comments
                .push((text(&params[0]).unwrap(), text(&params[2]).unwrap(), public));
            return Ok(Rows::new(&["id", "public"]).row(vec![
                Sql::Uuid(format!("c-{}", db.comments.len())),
                Sql::Bool(public),
            ]));
        }
        panic!("unexpected statement: {sql}");
    });
    (host, db)
}

fn run(key: &str, node_type: &str, config: Value) -> Result<Value, Error> {
    let ctx = CallContext {
        request_id: key.into(),
        ..CallContext::for_tests("ws")
    };
    Tickets::execute(&ctx, node_type, config, json!({})).map(|out| out.output)
}

#[test]
fn create_makes_one_ticket_per_node_run() {
    let (host, db) = host();
    let _host = host.install();
    let config = json!({"subject": " Printer on fire ", "requester": {"email": "bo@x.io", "name": "Bo"},
                        "priority": "urgent", "tags": ["Hardware", "hardware", " fire "]});
    let ticket = run("e1/open", "create", config.clone()).unwrap();
    assert_eq!(ticket["number"], 1);
    assert_eq!(ticket["status"], "open");
    assert_eq!(ticket["subject"], "Printer on fire");
    assert_eq!(ticket["priority"], "urgent");
    assert_eq!(ticket["channel"], "api");
    assert_eq!(ticket["tags"], json!(["hardware", "fire"]));
    assert_eq!(
        ticket["requester"],
        json!({"email": "bo@x.io", "name": "Bo"})
    );
    // The same node run again: the recorded ticket, no second insert.
    assert_eq!(run("e1/open", "create", config.clone()).unwrap(), ticket);
    assert_eq!(db.borrow().tickets.len(), 1);
    // Another node run makes another; a requester may be just an address.
    let second = run(
        "e2/open",
        "create",
        json!({"subject": "Hi", "requester": "al@x.io"}),
    )
    .unwrap();
    assert_eq!(second["number"], 2);
    assert_eq!(second["priority"], "normal");
}

#[test]
fn create_refusals_name_the_field() {
    let (host, db) = host();
    let _host = host.install();
    let ok = json!({"subject": "s", "requester": {"email": "a@b.c"}});
    let with = |key: &str, value: Value| {
        let mut config = ok.clone();
        config[key] = value;
        config
    };
    for (config, field) in [
        (with("subject", json!("  ")), "config.subject"),
        (with("subject", json!("x".repeat(501))), "config.subject"),
        (
            with("requester", json!({"email": "not an address"})),
            "config.requester.email",
        ),
        (
            with("requester", json!({"email": "a@"})),
            "config.requester.email",
        ),
        (with("requester", json!(null)), "config.requester"),
        (with("priority", json!("asap")), "config.priority"),
        (with("channel", json!("fax")), "config.channel"),
        (with("tags", json!(["x".repeat(51)])), "config.tags"),
        (
            with(
                "tags",
                json!((0..21).map(|i| format!("t{i}")).collect::<Vec<_>>()),
            ),
            "config.tags",
        ),
        (with("tags", json!("a,b")), "config.tags"),
    ] {
        let Err(Error::Invalid(message)) = run("k", "create", config.clone()) else {
            panic!("{config} was accepted");
        };
        assert!(message.starts_with(field), "{message}");
        // A refused call claims nothing (the real host rolls its transaction back;
        // here the claim is made first, so forget it).
        db.borrow_mut().ledger.clear();
    }
    assert!(db.borrow().tickets.is_empty());
}

#[test]
fn update_moves_status_assigns_tags_and_comments_once() {
    let (host, db) = host();
    let _host = host.install();
    run(
        "e1/open",
        "create",
        json!({"subject": "s", "requester": "a@b.c"}),
    )
    .unwrap();
    let config = json!({"ticket": "#1", "status": "pending", "priority": "high",
                        "assignee": "ADA@acme.com", "tags": ["vip"], "comment": "Escalated by a rule"});
    let ticket = run("e1/move", "update", config.clone()).unwrap();
    assert_eq!(ticket["status"], "pending");
    assert_eq!(ticket["priority"], "high");
    assert_eq!(ticket["tags"], json!(["vip"]));
    assert_eq!(
        ticket["assignee"]["id"],
        "00000000-0000-4000-8000-00000000000a"
    );
    assert_eq!(ticket["comment"]["public"], false);
    // Re-run: nothing more, not even a second comment.
    assert_eq!(run("e1/move", "update", config).unwrap(), ticket);
    assert_eq!(db.borrow().comments.len(), 1);
    // By number, a public reply only; null unassigns.
    let ticket = run(
        "e2/reply",
        "update",
        json!({"ticket": 1, "comment": {"body": "On it", "public": true}}),
    )
    .unwrap();
    assert_eq!(ticket["comment"]["public"], true);
    assert_eq!(ticket["status"], "pending");
    let updates = |db: &Shared| {
        db.borrow()
            .statements
            .iter()
            .filter(|s| s.starts_with("UPDATE data.tickets"))
            .count()
    };
    assert_eq!(updates(&db), 1, "a comment alone changes no field");
    let ticket = run(
        "e3/unassign",
        "update",
        json!({"ticket": 1, "assignee": null}),
    )
    .unwrap();
    assert_eq!(ticket["assignee"], json!(null));
}

#[test]
fn update_refusals_name_the_field_or_pass_the_triggers_sentence() {
    let (host, db) = host();
    let _host = host.install();
    run(
        "e1/open",
        "create",
        json!({"subject": "s", "requester": "a@b.c"}),
    )
    .unwrap();
    for (config, start) in [
        (json!({"ticket": 1}), "nothing to change"),
        (json!({"ticket": "one", "status": "open"}), "config.ticket"),
        (json!({"ticket": 0, "status": "open"}), "config.ticket"),
        (json!({"ticket": 1, "status": "done"}), "config.status"),
        (json!({"ticket": 1, "comment": " "}), "config.comment"),
        (
            json!({"ticket": 1, "comment": {"body": "x", "public": "yes"}}),
            "config.comment.public",
        ),
        (json!({"ticket": 1, "assignee": 7}), "config.assignee"),
    ] {
        let Err(Error::Invalid(message)) = run("k", "update", config.clone()) else {
            panic!("{config} was accepted");
        };
        assert!(message.starts_with(start), "{message}");
        db.borrow_mut().ledger.clear();
    }
    let error = run("k", "update", json!({"ticket": 9, "status": "open"})).unwrap_err();
    assert!(
        matches!(&error, Error::NotFound(m) if m.contains("#9")),
        "{error:?}"
    );
    db.borrow_mut().ledger.clear();
    let error = run(
        "k",
        "update",
        json!({"ticket": 1, "assignee": "zed@acme.com"}),
    )
    .unwrap_err();
    assert!(
        matches!(&error, Error::NotFound(m) if m.starts_with("config.assignee")),
        "{error:?}"
    );
    db.borrow_mut().ledger.clear();
    run("k1", "update", json!({"ticket": 1, "status": "solved"})).unwrap();
    run("k2", "update", json!({"ticket": 1, "status": "closed"})).unwrap();
    let error = run("k3", "update", json!({"ticket": 1, "status": "open"})).unwrap_err();
    assert_eq!(
        error,
        Error::invalid("a ticket cannot go from closed to open")
    );
}

#[test]
fn without_a_grant_the_nodes_are_denied() {
    let _host = TestHost::new().install();
    let error = run("k", "create", json!({"subject": "s", "requester": "a@b.c"})).unwrap_err();
    assert!(matches!(error, Error::Denied(_)), "{error:?}");
}
