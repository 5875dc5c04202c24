//! `wasi:http/outgoing-handler` for plugins, behind a policy: the request's origin must
//! match the grant, every address its host resolves to must be public (or inside a
//! granted network), and each plugin has a timeout, a response size cap and a cap on
//! requests in flight. The host never follows redirects itself; a guest that follows
//! one sends a new request, which is checked again.
//!
//! The address rule is enforced three times, each closing what the one before can't
//! see: on the request's host as the request's own URL parser reads it (so `127.1` is
//! 127.0.0.1), on every address a name resolves to (DNS rebinding), and on the peer
//! address of every connection once it is open, before a byte of the request is
//! written (anything else that might pick an address).

mod origin;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use tokio::sync::Semaphore;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use crate::net as address;
pub use crate::net::{Network, install_crypto_provider};
pub use origin::OriginPattern;
use origin::{Origin, Scheme};

use crate::registry::manifest::HttpCapability;

/// What a plugin's refused address needs, for the log.
const GRANT_ADVICE: &str =
    "an admin must grant its network (http.private_networks) before a plugin may reach it";

/// A client that enforces the address rule on every name it resolves and every
/// connection it opens, with `networks` allowed besides public addresses; it follows no
/// redirects and uses no proxy. Plugins get one per grant; the host's own requests to
/// addresses users chose (outbound webhooks) get one too.
pub fn checked_client(
    networks: Arc<Vec<Network>>,
    timeout: Duration,
) -> anyhow::Result<reqwest13::Client> {
    install_crypto_provider();
    Ok(reqwest13::Client::builder()
        .redirect(reqwest13::redirect::Policy::none())
        .no_proxy()
        .timeout(timeout)
        .dns_resolver(Arc::new(CheckedResolver {
            networks: networks.clone(),
        }))
        .connector_layer(peer::CheckPeerLayer::new(networks))
        .build()?)
}

/// Why a [`checked_client`] refused a request, when the address rule did
/// (`example.internal resolves to 10.0.0.5 (private address)`).
pub fn refused_address(error: &reqwest13::Error) -> Option<String> {
    std::iter::successors(Some(error as &(dyn std::error::Error + 'static)), |error| {
        error.source()
    })
    .find_map(|error| error.downcast_ref::<AddressProhibited>())
    .map(|prohibited| prohibited.0.clone())
}

/// Whether a connection to `ip` is allowed with `networks` allowed besides public
/// addresses; the error says what kind of address it is.
pub fn check_address(ip: IpAddr, networks: &[Network]) -> Result<(), String> {
    address::check(ip, networks)
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
        let client = checked_client(networks.clone(), limits.timeout)?;
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
        let (origin, url) = self.admit(request.uri())?;
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
            .request(parts.method.clone(), url)
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

    /// The request's origin and the URL that will be sent, if the grant allows it.
    fn admit(&self, uri: &http::Uri) -> Result<(Origin, url::Url), HttpError> {
        let (origin, url, ip) = origin_of(uri).ok_or(HttpError::HttpRequestUriInvalid)?;
        if !self.origins.iter().any(|pattern| pattern.matches(&origin)) {
            tracing::warn!(plugin = %self.plugin, %origin, "http request denied: origin not granted");
            return Err(HttpError::HttpRequestDenied);
        }
        // An IP literal never reaches the resolver, so its address is checked here.
        if let Some(ip) = ip
            && let Err(why) = address::check(ip, &self.networks)
        {
            tracing::warn!(plugin = %self.plugin, %origin, "http request denied: {why}; {GRANT_ADVICE}");
            return Err(HttpError::DestinationIpProhibited);
        }
        Ok((origin, url))
    }

    fn refusal(&self, origin: &Origin, error: &reqwest13::Error) -> HttpError {
        if let Some(prohibited) = refused_address(error) {
            tracing::warn!(plugin = %self.plugin, %origin, "http request denied: {prohibited}; {GRANT_ADVICE}");
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

/// Scheme, host and effective port of an absolute URI without user info, read by the
/// same parser (WHATWG, the `url` crate) that reqwest uses for the request, so the host
/// checked is the host dialled; the parsed URL is what gets sent. The third part is the
/// host's address when it is an IP literal in any spelling.
fn origin_of(uri: &http::Uri) -> Option<(Origin, url::Url, Option<IpAddr>)> {
    if uri.authority()?.as_str().contains('@') {
        return None;
    }
    let url = url::Url::parse(&uri.to_string()).ok()?;
    let scheme = Scheme::parse(url.scheme())?;
    let (host, ip) = match url.host()? {
        url::Host::Domain(name) => (origin::normalize_host(name), None),
        url::Host::Ipv4(ip) => (ip.to_string(), Some(IpAddr::V4(ip))),
        url::Host::Ipv6(ip) => (ip.to_string(), Some(IpAddr::V6(ip))),
    };
    let port = url.port_or_known_default()?;
    Some((Origin { scheme, host, port }, url, ip))
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

/// The last check: the peer address of every connection the client opens.
mod peer {
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::Arc;
    use std::task::{Context, Poll};

    use hyper_util::client::legacy::connect::{Connection, HttpInfo};

    use super::{AddressProhibited, Network, address};

    type BoxError = Box<dyn std::error::Error + Send + Sync>;

    /// Wraps reqwest's connector: once a connection is open (TCP, and TLS for https)
    /// and before the request is written on it, its peer address must pass the
    /// address rule. A connection whose peer can't be read is refused (fail closed).
    #[derive(Clone)]
    pub struct CheckPeerLayer {
        networks: Arc<Vec<Network>>,
    }

    impl CheckPeerLayer {
        pub fn new(networks: Arc<Vec<Network>>) -> Self {
            CheckPeerLayer { networks }
        }
    }

    impl<S> tower::Layer<S> for CheckPeerLayer {
        type Service = CheckPeer<S>;

        fn layer(&self, inner: S) -> CheckPeer<S> {
            CheckPeer {
                inner,
                networks: self.networks.clone(),
            }
        }
    }

    #[derive(Clone)]
    pub struct CheckPeer<S> {
        inner: S,
        networks: Arc<Vec<Network>>,
    }

    impl<S, R> tower::Service<R> for CheckPeer<S>
    where
        S: tower::Service<R, Error = BoxError>,
        S::Response: Connection + Send + 'static,
        S::Future: Send + 'static,
    {
        type Response = S::Response;
        type Error = BoxError;
        type Future = Pin<Box<dyn Future<Output = Result<S::Response, BoxError>> + Send>>;

        fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
            self.inner.poll_ready(cx)
        }

        fn call(&mut self, request: R) -> Self::Future {
            let connecting = self.inner.call(request);
            let networks = self.networks.clone();
            Box::pin(async move {
                let connection = connecting.await?;
                let mut extras = http::Extensions::new();
                connection.connected().get_extras(&mut extras);
                let Some(peer) = extras.get::<HttpInfo>().map(HttpInfo::remote_addr) else {
                    return Err(AddressProhibited(
                        "the connection's peer address is unknown".into(),
                    )
                    .into());
                };
                address::check(peer.ip(), &networks)
                    .map_err(|why| AddressProhibited(format!("connected to {why}")))?;
                Ok(connection)
            })
        }
    }

    #[cfg(test)]
    mod tests {
        use tower::{Layer, ServiceExt};

        use super::*;

        /// A connector that dials a fixed loopback address, whatever it is asked for:
        /// only the peer check stands between it and the connection being used.
        async fn dial_loopback(networks: Vec<Network>) -> Result<(), BoxError> {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let address = listener.local_addr()?;
            let connector = tower::service_fn(move |_: ()| async move {
                let stream = tokio::net::TcpStream::connect(address).await?;
                Ok::<_, BoxError>(stream)
            });
            CheckPeerLayer::new(Arc::new(networks))
                .layer(connector)
                .oneshot(())
                .await
                .map(drop)
        }

        #[tokio::test]
        async fn a_connection_to_a_refused_address_is_not_used() {
            let error = dial_loopback(Vec::new()).await.unwrap_err();
            assert!(error.to_string().contains("127.0.0.1"), "{error}");
            assert!(error.is::<AddressProhibited>());
            let loopback = Network::parse("127.0.0.0/8").unwrap();
            dial_loopback(vec![loopback]).await.unwrap();
        }
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
