//! An in-memory host for unit-testing plugins natively (`cargo test` on your machine).
//! Host functions called outside a component use the [`TestHost`] installed on the
//! current thread.
//!
//! ```
//! use agenthost_sdk::{log, testing::{self, TestHost}};
//! let _host = TestHost::new().install();
//! log::info("hello");
//! assert_eq!(testing::logs(), vec![(log::Level::Info, "hello".to_string())]);
//! ```

use std::cell::RefCell;
use std::collections::HashMap;

use std::rc::Rc;

use crate::Error;
use crate::database::{Rows, Value};
use crate::llm::{ChatRequest, ChatResponse};
use crate::log::Level;

/// Settings, secrets and captured logs of a test.
#[derive(Debug, Default, Clone)]
pub struct TestHost {
    settings: HashMap<String, String>,
    secrets: HashMap<String, String>,
    logs: Vec<(Level, String)>,
    emails: Vec<crate::email::Message>,
    database: Option<QueryHandler>,
    chat: Option<Handler<ChatFn>>,
    embed: Option<Handler<EmbedFn>>,
    http: Option<Handler<HttpFn>>,
    vectors: vectors::Collections,
    vector_embedder: Option<Handler<VectorEmbedFn>>,
    agent: Option<Handler<AgentFn>>,
    automation: automation::Automation,
    builder: Option<(Vec<String>, Handler<AutomationFn>)>,
}

mod automation;
mod vectors;

pub use automation::{StartedWorkflow, emitted_events, started_workflows};
#[cfg_attr(target_arch = "wasm32", allow(unused_imports))]
pub(crate) use automation::{record_event, start_workflow};

type VectorEmbedFn = dyn Fn(&str) -> Vec<f32>;

type AgentFn = dyn Fn(&str, &str, Option<&str>) -> Result<serde_json::Value, Error>;

type AutomationFn = dyn Fn(&str, &serde_json::Value) -> Result<serde_json::Value, Error>;

type HttpFn = dyn Fn(&crate::http::Request) -> Result<crate::http::Response, Error>;

type ChatFn = dyn Fn(&ChatRequest) -> Result<ChatResponse, Error>;
type EmbedFn = dyn Fn(&str, &[String]) -> Result<Vec<Vec<f32>>, Error>;

struct Handler<F: ?Sized>(Rc<F>);

impl<F: ?Sized> Clone for Handler<F> {
    fn clone(&self) -> Self {
        Handler(self.0.clone())
    }
}

impl<F: ?Sized> std::fmt::Debug for Handler<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Handler")
    }
}

/// Plays the database in tests: gets each statement and its parameters.
type QueryFn = dyn Fn(&str, &[Value]) -> Result<Rows, Error>;

#[derive(Clone)]
struct QueryHandler(Rc<QueryFn>);

impl std::fmt::Debug for QueryHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("QueryHandler")
    }
}

thread_local! {
    static HOST: RefCell<Option<TestHost>> = const { RefCell::new(None) };
}

impl TestHost {
    /// An empty host: no settings, no secrets.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a setting; `json` is its value as JSON text.
    pub fn setting(mut self, key: &str, json: &str) -> Self {
        self.settings.insert(key.to_string(), json.to_string());
        self
    }

    /// Grant a secret with its value.
    pub fn secret(mut self, name: &str, value: &str) -> Self {
        self.secrets.insert(name.to_string(), value.to_string());
        self
    }

    /// Answer `database::query`/`execute` with `handler` (for `execute`, the number of
    /// rows returned is the number of rows affected). Without one, database calls are
    /// `denied`, as for a plugin not granted the capability.
    pub fn database(
        mut self,
        handler: impl Fn(&str, &[Value]) -> Result<Rows, Error> + 'static,
    ) -> Self {
        self.database = Some(QueryHandler(Rc::new(handler)));
        self
    }

    /// Answer `llm::chat` with `handler`. Without one, chat is `unavailable`, as on a
    /// host with no provider.
    pub fn llm_chat(
        mut self,
        handler: impl Fn(&ChatRequest) -> Result<ChatResponse, Error> + 'static,
    ) -> Self {
        self.chat = Some(Handler(Rc::new(handler)));
        self
    }

    /// Answer `llm::embed` with `handler` (model, texts -> one vector per text).
    pub fn llm_embed(
        mut self,
        handler: impl Fn(&str, &[String]) -> Result<Vec<Vec<f32>>, Error> + 'static,
    ) -> Self {
        self.embed = Some(Handler(Rc::new(handler)));
        self
    }

    /// Answer `http` requests with `handler` (one call per request; redirects it
    /// returns are followed like the real host's). Without one, requests are `denied`,
    /// as for a plugin not granted the capability.
    pub fn http(
        mut self,
        handler: impl Fn(&crate::http::Request) -> Result<crate::http::Response, Error> + 'static,
    ) -> Self {
        self.http = Some(Handler(Rc::new(handler)));
        self
    }

    /// Answer `agents::run_turn` with `handler` (agent, message, conversation id ->
    /// the turn as JSON, at least `{"text": ...}`). Without one, turns are `denied`,
    /// as for a plugin not granted the capability.
    pub fn agent(
        mut self,
        handler: impl Fn(&str, &str, Option<&str>) -> Result<serde_json::Value, Error> + 'static,
    ) -> Self {
        self.agent = Some(Handler(Rc::new(handler)));
        self
    }

    /// Grant the `automation` interface with these scopes (`read`, `draft`, `run`,
    /// `publish`) and answer its calls with `handler` (the WIT function's name, such as
    /// `save-draft`, and its arguments as JSON -> the host's answer). A call beyond the
    /// scopes is `denied` before the handler runs, as on the host; without this,
    /// every call is `denied`.
    pub fn automation(
        mut self,
        scopes: &[&str],
        handler: impl Fn(&str, &serde_json::Value) -> Result<serde_json::Value, Error> + 'static,
    ) -> Self {
        let scopes = scopes.iter().map(|s| s.to_string()).collect();
        self.builder = Some((scopes, Handler(Rc::new(handler))));
        self
    }

    /// Embed vector-capability text with `embedder` instead of the default (hashed
    /// word counts, which match shared words rather than meaning).
    pub fn vector_embedder(mut self, embedder: impl Fn(&str) -> Vec<f32> + 'static) -> Self {
        self.vector_embedder = Some(Handler(Rc::new(embedder)));
        self
    }

    /// Make this the current thread's host until the guard is dropped.
    pub fn install(self) -> InstalledHost {
        HOST.with(|host| *host.borrow_mut() = Some(self));
        InstalledHost(())
    }
}

/// Keeps a [`TestHost`] installed; uninstalls it when dropped.
#[derive(Debug)]
pub struct InstalledHost(());

impl Drop for InstalledHost {
    fn drop(&mut self) {
        HOST.with(|host| *host.borrow_mut() = None);
    }
}

/// Messages "sent" so far on this thread.
pub fn sent_emails() -> Vec<crate::email::Message> {
    HOST.with(|host| {
        host.borrow()
            .as_ref()
            .map(|h| h.emails.clone())
            .unwrap_or_default()
    })
}

#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
pub(crate) fn record_email(message: &crate::email::Message) -> Result<String, Error> {
    HOST.with(|host| {
        let mut host = host.borrow_mut();
        let host = host
            .as_mut()
            .ok_or_else(|| Error::Unavailable("no TestHost installed on this thread".into()))?;
        host.emails.push(message.clone());
        Ok(format!("<test-{}@agenthost>", host.emails.len()))
    })
}

/// Log lines captured so far on this thread (level and message).
pub fn logs() -> Vec<(Level, String)> {
    HOST.with(|host| {
        host.borrow()
            .as_ref()
            .map(|h| h.logs.clone())
            .unwrap_or_default()
    })
}

#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
pub(crate) fn record_log(level: Level, message: &str, _fields: &[(&str, &str)]) {
    HOST.with(|host| {
        if let Some(host) = host.borrow_mut().as_mut() {
            host.logs.push((level, message.to_string()));
        }
    });
}

#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
pub(crate) fn setting(key: &str) -> Option<String> {
    HOST.with(|host| {
        host.borrow()
            .as_ref()
            .and_then(|h| h.settings.get(key).cloned())
    })
}

#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
pub(crate) fn secret(name: &str) -> Result<String, Error> {
    HOST.with(|host| {
        host.borrow()
            .as_ref()
            .and_then(|h| h.secrets.get(name).cloned())
            .ok_or_else(|| Error::Denied(format!("secret {name} is not granted to this plugin")))
    })
}

#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
pub(crate) fn run_query(sql: &str, params: &[Value]) -> Result<Rows, Error> {
    let handler = HOST.with(|host| host.borrow().as_ref().and_then(|h| h.database.clone()));
    match handler {
        Some(QueryHandler(handler)) => handler(sql, params),
        None => Err(Error::Denied(
            "the TestHost has no database handler (TestHost::database)".into(),
        )),
    }
}

#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
pub(crate) fn run_agent(
    agent: &str,
    message: &str,
    conversation: Option<&str>,
) -> Result<serde_json::Value, Error> {
    let handler = HOST.with(|host| host.borrow().as_ref().and_then(|h| h.agent.clone()));
    match handler {
        Some(Handler(handler)) => handler(agent, message, conversation),
        None => Err(Error::Denied(
            "the TestHost has no agent handler (TestHost::agent)".into(),
        )),
    }
}

#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
pub(crate) fn run_automation(
    function: &str,
    args: &serde_json::Value,
) -> Result<serde_json::Value, Error> {
    let builder = HOST.with(|host| host.borrow().as_ref().and_then(|h| h.builder.clone()));
    let Some((scopes, Handler(handler))) = builder else {
        return Err(Error::Denied(
            "the automation capability is not granted (TestHost::automation)".into(),
        ));
    };
    let scope = crate::automation::scope_of(function, args);
    if !scopes.iter().any(|s| s == scope) {
        return Err(Error::Denied(format!(
            "{function} needs the automation scope {scope:?} (granted: {})",
            scopes.join(", ")
        )));
    }
    handler(function, args)
}

#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
pub(crate) fn run_chat(request: &ChatRequest) -> Result<ChatResponse, Error> {
    let handler = HOST.with(|host| host.borrow().as_ref().and_then(|h| h.chat.clone()));
    match handler {
        Some(Handler(handler)) => handler(request),
        None => Err(Error::Unavailable(
            "the TestHost has no chat handler (TestHost::llm_chat)".into(),
        )),
    }
}

#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
pub(crate) fn run_embed(model: &str, texts: &[String]) -> Result<Vec<Vec<f32>>, Error> {
    let handler = HOST.with(|host| host.borrow().as_ref().and_then(|h| h.embed.clone()));
    match handler {
        Some(Handler(handler)) => handler(model, texts),
        None => Err(Error::Unavailable(
            "the TestHost has no embedding handler (TestHost::llm_embed)".into(),
        )),
    }
}

#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
pub(crate) fn run_http(request: &crate::http::Request) -> Result<crate::http::Response, Error> {
    let handler = HOST.with(|host| host.borrow().as_ref().and_then(|h| h.http.clone()));
    match handler {
        Some(Handler(handler)) => handler(request).map(|mut response| {
            if response.url.is_empty() {
                response.url = request.url.clone();
            }
            response
        }),
        None => Err(Error::Denied(
            "the TestHost has no http handler (TestHost::http)".into(),
        )),
    }
}

/// Run `f` on the installed host's collections and embedder.
#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
fn with_vectors<R>(
    f: impl FnOnce(&mut vectors::Collections, &dyn Fn(&str) -> Vec<f32>) -> Result<R, Error>,
) -> Result<R, Error> {
    HOST.with(|host| {
        let mut host = host.borrow_mut();
        let host = host.as_mut().ok_or_else(|| {
            Error::Denied("no TestHost is installed on this thread (TestHost::install)".into())
        })?;
        let embedder = host.vector_embedder.clone();
        let embed = |text: &str| match &embedder {
            Some(Handler(embed)) => embed(text),
            None => vectors::bag_of_words(text),
        };
        f(&mut host.vectors, &embed)
    })
}

#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
pub(crate) fn vector_upsert(
    collection: &str,
    documents: &[crate::vector::Document],
) -> Result<u32, Error> {
    with_vectors(|collections, embed| vectors::upsert(collections, embed, collection, documents))
}

#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
pub(crate) fn vector_search(
    collection: &str,
    query: &crate::vector::Query,
) -> Result<Vec<crate::vector::Match>, Error> {
    with_vectors(|collections, embed| vectors::search(collections, embed, collection, query))
}

#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
pub(crate) fn vector_search_text(
    collection: &str,
    query: &crate::vector::TextQuery,
) -> Result<Vec<crate::vector::TextMatch>, Error> {
    with_vectors(|collections, embed| vectors::search_text(collections, embed, collection, query))
}

#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
pub(crate) fn vector_delete(collection: &str, ids: &[String]) -> Result<u32, Error> {
    with_vectors(|collections, _| Ok(vectors::delete(collections, collection, ids)))
}

#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
pub(crate) fn vector_drop(collection: &str) -> Result<bool, Error> {
    with_vectors(|collections, _| Ok(collections.remove(collection).is_some()))
}
