//! `wasi:http/outgoing-handler` for plugins, behind a policy: the request's origin must
//! match the grant, every address its host resolves to must be public (or inside a
//! granted network), and each plugin has a timeout, a response size cap and a cap on
//! requests in flight. The host never follows redirects itself; a guest that follows
//! one sends a new request, which is checked again.

mod address;
mod origin;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use tokio::sync::Semaphore;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

pub use address::Network;
pub use origin::OriginPattern;
use origin::{Origin, Scheme};

use crate::registry::manifest::HttpCapability;

/// One crypto provider (ring, which lettre brings too) is compiled in; make it the
/// process default that reqwest's rustls expects. Idempotent: an error only means a
/// provider is set already.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Host-wide limits on plugin HTTP (from the config flags).
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// Whole request, connect to last body byte.
    pub timeout: Duration,
    /// Largest response body a plugin may receive, and largest request body it may send.
    pub max_body_bytes: u64,
    /// Requests one plugin may have in flight at once; more wait for a slot.
    pub max_concurrent: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            timeout: Duration::from_secs(30),
            max_body_bytes: 10 << 20,
            max_concurrent: 8,
        }
    }
}

/// One plugin version's outbound HTTP: its grant, a client whose resolver enforces the
/// address rule, and its in-flight cap. Built when the registry loads the grant.
#[derive(Debug)]
pub struct HttpPolicy {
    plugin: String,
    origins: Vec<OriginPattern>,
    networks: Arc<Vec<Network>>,
    limits: HttpLimits,
    client: reqwest13::Client,
    slots: Arc<Semaphore>,
}

impl HttpPolicy {
    pub fn new(plugin: &str, grant: &HttpCapability, limits: HttpLimits) -> anyhow::Result<Self> {
        let origins = grant
            .origins
            .iter()
            .map(|pattern| OriginPattern::parse(pattern))
            .collect::<Result<Vec<_>, _>>()
            .map_err(anyhow::Error::msg)?;
        let networks = Arc::new(
            grant
                .private_networks
                .iter()
                .map(|network| Network::parse(network))
                .collect::<Result<Vec<_>, _>>()
                .map_err(anyhow::Error::msg)?,
        );
        install_crypto_provider();
        let client = reqwest13::Client::builder()
            .redirect(reqwest13::redirect::Policy::none())
            .no_proxy()
            .timeout(limits.timeout)
            .dns_resolver(Arc::new(CheckedResolver {
                networks: networks.clone(),
            }))
            .build()?;
        Ok(HttpPolicy {
            plugin: plugin.to_string(),
            origins,
            networks,
            limits,
            client,
            slots: Arc::new(Semaphore::new(limits.max_concurrent.max(1))),
        })
    }

    /// Check and send one request; the response body is read in full, up to the size cap.
    async fn send(
        self: Arc<Self>,
        request: http::Request<WasiBody>,
    ) -> Result<http::Response<WasiBody>, HttpError> {
        let origin = self.admit(request.uri())?;
        let slot = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| HttpError::ConnectionLimitReached)?;
        let (parts, body) = request.into_parts();
        let body = http_body_util::Limited::new(body, self.limits.max_body_bytes as usize)
            .collect()
            .await
            .map_err(|_| HttpError::HttpRequestBodySize(Some(self.limits.max_body_bytes)))?
            .to_bytes();
        let mut headers = parts.headers;
        // The host connects to the URI's authority; Host is always derived from it.
        headers.remove(http::header::HOST);
        let sent = self
            .client
            .request(parts.method.clone(), parts.uri.to_string())
            .headers(headers)
            .body(body)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(error) => return Err(self.refusal(&origin, &error)),
        };
        tracing::info!(plugin = %self.plugin, method = %parts.method, %origin,
            status = response.status().as_u16(), "plugin http request");
        let cap = self.limits.max_body_bytes;
        if response.content_length().is_some_and(|length| length > cap) {
            tracing::warn!(plugin = %self.plugin, %origin, cap, "response over the size cap");
            return Err(HttpError::HttpResponseBodySize(Some(cap)));
        }
        let status = response.status();
        let headers = response.headers().clone();
        let body = self.read_capped(&origin, response).await?;
        drop(slot);
        let mut reply = http::Response::new(
            http_body_util::Full::new(body)
                .map_err(|never| match never {})
                .boxed_unsync(),
        );
        *reply.status_mut() = status;
        *reply.headers_mut() = headers;
        Ok(reply)
    }

    /// The whole body, or an error as soon as it passes the cap. Reading it here
    /// (rather than streaming it to the guest) is what lets the guest see *why* a
    /// response failed: wasi:http p2 only carries an error code for the response as a
    /// whole, not for a body stream cut short.
    async fn read_capped(
        &self,
        origin: &Origin,
        mut response: reqwest13::Response,
    ) -> Result<Bytes, HttpError> {
        let cap = self.limits.max_body_bytes;
        let mut body = bytes::BytesMut::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if (body.len() + chunk.len()) as u64 > cap {
                        tracing::warn!(plugin = %self.plugin, %origin, cap, "response over the size cap");
                        return Err(HttpError::HttpResponseBodySize(Some(cap)));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => return Ok(body.freeze()),
                Err(error) if error.is_timeout() => return Err(HttpError::ConnectionReadTimeout),
                Err(_) => return Err(HttpError::HttpResponseIncomplete),
            }
        }
    }

    /// The request's origin, if the grant allows it.
    fn admit(&self, uri: &http::Uri) -> Result<Origin, HttpError> {
        let origin = origin_of(uri).ok_or(HttpError::HttpRequestUriInvalid)?;
        if !self.origins.iter().any(|pattern| pattern.matches(&origin)) {
            tracing::warn!(plugin = %self.plugin, %origin, "http request denied: origin not granted");
            return Err(HttpError::HttpRequestDenied);
        }
        // An IP literal never reaches the resolver, so its address is checked here.
        if let Ok(ip) = origin.host.parse::<IpAddr>()
            && let Err(why) = address::check(ip, &self.networks)
        {
            tracing::warn!(plugin = %self.plugin, %origin, "http request denied: {why}");
            return Err(HttpError::DestinationIpProhibited);
        }
        Ok(origin)
    }

    fn refusal(&self, origin: &Origin, error: &reqwest13::Error) -> HttpError {
        let prohibited =
            std::iter::successors(Some(error as &(dyn std::error::Error + 'static)), |error| {
                error.source()
            })
            .find_map(|error| error.downcast_ref::<AddressProhibited>());
        if let Some(prohibited) = prohibited {
            tracing::warn!(plugin = %self.plugin, %origin, "http request denied: {prohibited}");
            return HttpError::DestinationIpProhibited;
        }
        tracing::info!(plugin = %self.plugin, %origin, "plugin http request failed: {error}");
        if error.is_timeout() {
            HttpError::ConnectionReadTimeout
        } else if error.is_connect() {
            HttpError::ConnectionRefused
        } else {
            HttpError::HttpProtocolError
        }
    }
}

/// Scheme, host and effective port of an absolute URI without user info.
fn origin_of(uri: &http::Uri) -> Option<Origin> {
    let authority = uri.authority()?;
    if authority.as_str().contains('@') {
        return None;
    }
    let scheme = Scheme::parse(uri.scheme_str()?)?;
    let host = authority.host();
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    Some(Origin {
        scheme,
        host: origin::normalize_host(host),
        port: authority.port_u16().unwrap_or(scheme.default_port()),
    })
}

/// Resolves names with the system resolver, then refuses the lookup unless every
/// address is allowed. Checking the addresses actually connected to (not a separate,
/// earlier lookup) is what closes the DNS-rebinding gap.
struct CheckedResolver {
    networks: Arc<Vec<Network>>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct AddressProhibited(String);

impl reqwest13::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest13::dns::Name) -> reqwest13::dns::Resolving {
        let networks = self.networks.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addresses: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            for address in &addresses {
                address::check(address.ip(), &networks)
                    .map_err(|why| AddressProhibited(format!("{host} resolves to {why}")))?;
            }
            Ok(Box::new(addresses.into_iter()) as reqwest13::dns::Addrs)
        })
    }
}

/// The per-call http state: the plugin's policy, or none when http isn't granted.
#[derive(Debug, Clone, Default)]
pub struct HttpCtx {
    pub policy: Option<Arc<HttpPolicy>>,
}

type SendFuture = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), HttpError>> + Send>,
                ),
                HttpError,
            >,
        > + Send,
>;

impl WasiHttpHooks for HttpCtx {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _io: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> SendFuture {
        let policy = self.policy.clone();
        Box::new(async move {
            let Some(policy) = policy else {
                tracing::warn!(uri = %request.uri(), "http request denied: http is not granted");
                return Err(HttpError::HttpRequestDenied);
            };
            let response = policy.send(request).await?;
            let done: Box<dyn Future<Output = Result<(), HttpError>> + Send> =
                Box::new(async { Ok(()) });
            Ok((response, done))
        })
    }
}
