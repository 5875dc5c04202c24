//! Sends the HTTP requests it is given: `fetch` takes `{method?, url, headers?, body?,
//! max_redirects?}` and returns `{status, url, body}`; `fetch_all` takes
//! `{"requests": [...]}` and sends them at once, returning one result each.

use agenthost_sdk::http::{self, Method, Request};
use agenthost_sdk::serde_json::{Value, json};
use agenthost_sdk::{CallContext, Error, ToolPlugin, ToolSpec, typed};

struct HttpProbe;

#[derive(agenthost_sdk::serde::Deserialize)]
#[serde(crate = "agenthost_sdk::serde")]
struct Fetch {
    #[serde(default)]
    method: Option<String>,
    url: String,
    #[serde(default)]
    headers: Vec<(String, String)>,
    #[serde(default)]
    body: String,
    #[serde(default)]
    max_redirects: Option<u8>,
}

#[derive(agenthost_sdk::serde::Deserialize)]
#[serde(crate = "agenthost_sdk::serde")]
struct FetchAll {
    requests: Vec<Fetch>,
}

impl Fetch {
    fn request(self) -> Result<Request, Error> {
        let method = match self.method.as_deref().unwrap_or("GET") {
            "GET" => Method::Get,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            other => return Err(Error::Invalid(format!("unsupported method {other}"))),
        };
        let mut request = Request::new(method, &self.url).body(self.body);
        request.headers = self.headers;
        if let Some(max) = self.max_redirects {
            request = request.max_redirects(max);
        }
        Ok(request)
    }
}

fn summary(response: http::Response) -> Value {
    json!({
        "status": response.status,
        "url": response.url,
        "body": String::from_utf8_lossy(&response.body),
    })
}

impl ToolPlugin for HttpProbe {
    fn tools() -> Vec<ToolSpec> {
        let any = json!({"type": "object"});
        vec![
            ToolSpec::new("fetch", "Send one request.", any.clone(), any.clone()),
            ToolSpec::new("fetch_all", "Send requests at once.", any.clone(), any),
        ]
    }

    fn invoke(_: &CallContext, tool: &str, input: Value) -> Result<Value, Error> {
        match tool {
            "fetch" => typed(input, |fetch: Fetch| Ok(summary(fetch.request()?.send()?))),
            "fetch_all" => typed(input, |all: FetchAll| {
                let requests = all
                    .requests
                    .into_iter()
                    .map(Fetch::request)
                    .collect::<Result<Vec<_>, _>>()?;
                let results: Vec<Value> = http::send_all(&requests)
                    .into_iter()
                    .map(|result| match result {
                        Ok(response) => summary(response),
                        Err(error) => json!({ "error": error.to_string() }),
                    })
                    .collect();
                Ok(json!({ "results": results }))
            }),
            other => Err(Error::NotFound(format!("no tool named {other}"))),
        }
    }
}

agenthost_sdk::export_tool_plugin!(HttpProbe);
