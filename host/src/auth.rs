//! Who is calling: the instance admin (one token per instance) or a workspace API key
//! with a role. Secrets are stored as SHA-256 only and shown once, at creation.

pub mod key_cache;
pub mod rate_limit;

use std::fmt;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use rand::Rng;
use rand::distr::Alphanumeric;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

const ADMIN_TOKEN_PREFIX: &str = "aha_";
const API_KEY_PREFIX: &str = "ahk_";
/// Characters of a key kept in clear to tell keys apart in listings.
pub const VISIBLE_PREFIX_LEN: usize = 12;

/// Roles in decreasing power. Each role can do everything the roles below it can.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Member,
    Admin,
    Owner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Member => "member",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }

    /// The role with its indefinite article, for messages: "an admin", "a member".
    pub fn with_article(self) -> &'static str {
        match self {
            Role::Viewer => "a viewer",
            Role::Member => "a member",
            Role::Admin => "an admin",
            Role::Owner => "an owner",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "viewer" => Some(Role::Viewer),
            "member" => Some(Role::Member),
            "admin" => Some(Role::Admin),
            "owner" => Some(Role::Owner),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An authenticated caller, put into the request by [`authenticate`].
#[derive(Debug, Clone)]
pub enum Principal {
    InstanceAdmin,
    Key(KeyPrincipal),
    /// The host itself (bundled plugins, the watched plugin directory).
    System(&'static str),
}

#[derive(Debug, Clone)]
pub struct KeyPrincipal {
    pub key_id: Uuid,
    pub workspace_id: Uuid,
    pub role: Role,
}

impl Principal {
    /// How the audit log names this caller.
    pub fn actor(&self) -> String {
        match self {
            Principal::InstanceAdmin => "admin".to_string(),
            Principal::Key(key) => format!("key:{}", key.key_id),
            Principal::System(what) => format!("system:{what}"),
        }
    }

    fn rate_limit_bucket(&self) -> String {
        match self {
            Principal::InstanceAdmin | Principal::System(_) => "admin".to_string(),
            Principal::Key(key) => key.key_id.to_string(),
        }
    }
}

/// A new secret: `prefix` + 32 alphanumerics (about 190 random bits).
pub fn new_secret(prefix: &str) -> String {
    let random: String = rand::rng()
        .sample_iter(Alphanumeric)
        .take(32)
        .map(char::from)
        .collect();
    format!("{prefix}{random}")
}

pub fn new_api_key() -> String {
    new_secret(API_KEY_PREFIX)
}

pub fn new_admin_token() -> String {
    new_secret(ADMIN_TOKEN_PREFIX)
}

pub fn sha256(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// Middleware for every authenticated route: resolves the bearer token, applies the
/// per-caller rate limit and stores the [`Principal`] in the request.
pub async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> ApiResult<Response> {
    let token = bearer_token(request.headers())?;
    let principal = resolve(&state, token).await?;
    if let Err(retry_after) = state.rate_limiter.check(&principal.rate_limit_bucket()) {
        return Err(ApiError::RateLimited {
            retry_after_secs: retry_after.as_secs_f64().ceil().max(1.0) as u64,
        });
    }
    tracing::Span::current().record("actor", principal.actor());
    request.extensions_mut().insert(principal);
    Ok(next.run(request).await)
}

fn bearer_token(headers: &axum::http::HeaderMap) -> ApiResult<&str> {
    let value = headers.get(AUTHORIZATION).ok_or_else(|| {
        ApiError::Unauthorized("missing credentials: send `Authorization: Bearer <key>`".into())
    })?;
    // The scheme is case-insensitive (RFC 7235 section 2.1): `bearer` works too.
    value
        .to_str()
        .ok()
        .and_then(|v| v.trim_start().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty())
        .ok_or_else(|| {
            ApiError::Unauthorized("malformed Authorization header: expected `Bearer <key>`".into())
        })
}

async fn resolve(state: &AppState, token: &str) -> ApiResult<Principal> {
    let invalid = || ApiError::Unauthorized("invalid or revoked credentials".into());
    let hash = sha256(token);
    let may_be_admin = token.starts_with(ADMIN_TOKEN_PREFIX) || state.admin_token_sha256.is_some();
    if may_be_admin && is_admin_token(state, &hash).await? {
        return Ok(Principal::InstanceAdmin);
    }
    if !token.starts_with(API_KEY_PREFIX) {
        return Err(invalid());
    }
    if let Some(key) = state.key_cache.get(&hash) {
        return Ok(Principal::Key(key));
    }
    let row: Option<(Uuid, Uuid, String, Option<chrono::DateTime<chrono::Utc>>)> = sqlx::query_as(
        "SELECT id, workspace_id, role, last_used_at FROM api_keys \
             WHERE secret_sha256 = $1 AND revoked_at IS NULL",
    )
    .bind(&hash)
    .fetch_optional(&state.pool)
    .await?;
    let (key_id, workspace_id, role, last_used_at) = row.ok_or_else(invalid)?;
    let role = Role::parse(&role)
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("unknown role {role} in api_keys")))?;
    touch_last_used(&state.pool, key_id, last_used_at);
    let key = KeyPrincipal {
        key_id,
        workspace_id,
        role,
    };
    state.key_cache.put(hash, key.clone());
    Ok(Principal::Key(key))
}

async fn is_admin_token(state: &AppState, hash: &[u8]) -> ApiResult<bool> {
    // A token from configuration replaces the stored one entirely.
    if let Some(configured) = &state.admin_token_sha256 {
        return Ok(configured.as_slice() == hash);
    }
    // Read on every admin request so `agenthost rotate-admin-token` takes effect
    // without a restart; admin requests are rare.
    let stored: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT secret_sha256 FROM instance_admin_token")
            .fetch_optional(&state.pool)
            .await?;
    Ok(stored.is_some_and(|stored| stored == hash))
}

/// Record use at most once a minute per key, off the request path.
fn touch_last_used(
    pool: &PgPool,
    key_id: Uuid,
    last_used_at: Option<chrono::DateTime<chrono::Utc>>,
) {
    let recent =
        last_used_at.is_some_and(|at| chrono::Utc::now() - at < chrono::Duration::seconds(60));
    if recent {
        return;
    }
    let pool = pool.clone();
    tokio::spawn(async move {
        let result = sqlx::query("UPDATE api_keys SET last_used_at = now() WHERE id = $1")
            .bind(key_id)
            .execute(&pool)
            .await;
        if let Err(err) = result {
            tracing::warn!(%key_id, error = %err, "could not record key use");
        }
    });
}

/// Make sure the instance has an admin token. Returns the new token when one was
/// generated (the caller prints it once); None when one exists or is configured.
pub async fn ensure_admin_token(pool: &PgPool, configured: bool) -> anyhow::Result<Option<String>> {
    if configured {
        return Ok(None);
    }
    let token = new_admin_token();
    let inserted = sqlx::query(
        "INSERT INTO instance_admin_token (secret_sha256) VALUES ($1) ON CONFLICT DO NOTHING",
    )
    .bind(sha256(&token))
    .execute(pool)
    .await?;
    Ok((inserted.rows_affected() == 1).then_some(token))
}

/// Replace the stored admin token; returns the new one.
pub async fn rotate_admin_token(pool: &PgPool) -> anyhow::Result<String> {
    let token = new_admin_token();
    sqlx::query(
        "INSERT INTO instance_admin_token (secret_sha256) VALUES ($1) \
         ON CONFLICT (singleton) DO UPDATE SET secret_sha256 = EXCLUDED.secret_sha256, \
         created_at = now()",
    )
    .bind(sha256(&token))
    .execute(pool)
    .await?;
    Ok(token)
}

/// Extractor: the caller must be the instance admin.
#[derive(Debug)]
pub struct InstanceAdmin;

impl<S: Send + Sync> FromRequestParts<S> for InstanceAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> ApiResult<Self> {
        match parts.extensions.get::<Principal>() {
            Some(Principal::InstanceAdmin) => Ok(InstanceAdmin),
            Some(Principal::Key(_) | Principal::System(_)) => Err(ApiError::Forbidden(
                "this endpoint needs the instance admin token".into(),
            )),
            None => Err(ApiError::Unauthorized("missing credentials".into())),
        }
    }
}

/// Extractor: the caller is a workspace API key. Check its role with [`WorkspaceCaller::require`].
#[derive(Debug, Clone)]
pub struct WorkspaceCaller(pub KeyPrincipal);

impl WorkspaceCaller {
    /// How the audit log and events name this caller (`key:<id>`).
    pub fn actor(&self) -> String {
        format!("key:{}", self.0.key_id)
    }

    pub fn require(&self, needed: Role) -> ApiResult<()> {
        if self.0.role >= needed {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "this needs the {needed} role or higher; this key is {} key",
                self.0.role.with_article()
            )))
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for WorkspaceCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> ApiResult<Self> {
        match parts.extensions.get::<Principal>() {
            Some(Principal::Key(key)) => Ok(WorkspaceCaller(key.clone())),
            Some(Principal::InstanceAdmin | Principal::System(_)) => Err(ApiError::Forbidden(
                "this endpoint needs a workspace API key; the admin token manages workspaces \
                 under /api/admin"
                    .into(),
            )),
            None => Err(ApiError::Unauthorized("missing credentials".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_by_power() {
        assert!(Role::Owner > Role::Admin);
        assert!(Role::Admin > Role::Member);
        assert!(Role::Member > Role::Viewer);
        for role in [Role::Viewer, Role::Member, Role::Admin, Role::Owner] {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("root"), None);
        assert_eq!(Role::Admin.with_article(), "an admin");
        assert_eq!(Role::Owner.with_article(), "an owner");
        assert_eq!(Role::Member.with_article(), "a member");
    }

    #[test]
    fn require_allows_equal_or_higher_roles_only() {
        let caller = |role| {
            WorkspaceCaller(KeyPrincipal {
                key_id: Uuid::nil(),
                workspace_id: Uuid::nil(),
                role,
            })
        };
        assert!(caller(Role::Admin).require(Role::Admin).is_ok());
        assert!(caller(Role::Owner).require(Role::Admin).is_ok());
        assert!(matches!(
            caller(Role::Member).require(Role::Admin),
            Err(ApiError::Forbidden(_))
        ));
    }

    #[test]
    fn secrets_are_distinct_and_prefixed() {
        let a = new_api_key();
        let b = new_api_key();
        assert_ne!(a, b);
        assert!(a.starts_with(API_KEY_PREFIX) && a.len() == API_KEY_PREFIX.len() + 32);
        assert!(new_admin_token().starts_with(ADMIN_TOKEN_PREFIX));
        assert_eq!(sha256(&a).len(), 32);
    }
}
