//! Tokens and browser sessions. Only SHA-256 hashes of secrets are stored; issuing, scoping and
//! revoking a token or opening a session is recorded in the event log by id, never by secret.

mod tokens;

use std::time::Duration;

use app::events::{EventData, TokenScope};
use sha2::{Digest, Sha256};

use super::now_rfc3339;
use super::{NewEvent, Store, StoreError};

pub(super) use tokens::apply;
pub use tokens::{IssuedToken, TokenError, TokenInfo};

/// Prefix of every token, so a leaked one is easy to recognise and grep for.
pub const TOKEN_PREFIX: &str = "fct_";

/// Shortest token accepted from `FACTORY_ADMIN_TOKEN`.
pub const MIN_TOKEN_CHARS: usize = 32;

/// A fresh random secret: 256 bits, hex encoded.
fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    hex::encode(bytes)
}

/// SHA-256 of a secret, hex encoded: what the database keeps.
pub fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Why a token supplied by the operator is refused.
pub fn validate_token(token: &str) -> Result<(), String> {
    if token.chars().count() < MIN_TOKEN_CHARS {
        return Err(format!(
            "FACTORY_ADMIN_TOKEN must be at least {MIN_TOKEN_CHARS} characters (a generated token \
             looks like {TOKEN_PREFIX} followed by 64 hex digits)"
        ));
    }
    if !token.chars().all(|c| c.is_ascii_graphic()) {
        return Err(
            "FACTORY_ADMIN_TOKEN may only contain printable ASCII characters without \
                    spaces"
                .into(),
        );
    }
    Ok(())
}

/// What an active token (or a session opened with it) may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub token_id: String,
    pub scope: TokenScope,
    /// Project paths the token is limited to; empty means every project.
    pub projects: Vec<String>,
}

/// A `(id, scope, projects)` row of `admin_tokens`.
type CredentialRow = (String, String, String);

fn credential(row: CredentialRow) -> Result<Credential, StoreError> {
    let (token_id, scope, projects) = row;
    let bad = |reason: String| StoreError::BadRow {
        table: "admin_tokens",
        reason: format!("token {token_id}: {reason}"),
    };
    let scope = scope.parse().map_err(|e| bad(format!("{e}")))?;
    let projects = serde_json::from_str(&projects)
        .map_err(|e| bad(format!("projects are not a JSON list: {e}")))?;
    Ok(Credential {
        token_id,
        scope,
        projects,
    })
}

impl Store {
    /// The active token with this secret.
    pub async fn credential_for(&self, secret: &str) -> Result<Option<Credential>, StoreError> {
        let row: Option<CredentialRow> = sqlx::query_as(
            "SELECT id, scope, projects FROM admin_tokens \
             WHERE token_hash = ? AND revoked_at IS NULL",
        )
        .bind(secret_hash(secret))
        .fetch_optional(self.pool())
        .await?;
        row.map(credential).transpose()
    }

    /// Opens a browser session for a token; returns the cookie secret.
    pub async fn create_session(
        &self,
        token_id: &str,
        ttl: Duration,
    ) -> Result<String, StoreError> {
        let secret = random_hex();
        let (hash, token_id) = (secret_hash(&secret), token_id.to_string());
        let ttl = chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::days(7));
        let expires =
            (chrono::Utc::now() + ttl).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                // Expired sessions are swept whenever a new one opens: the table stays small.
                sqlx::query("DELETE FROM sessions WHERE expires_at <= ?")
                    .bind(now_rfc3339())
                    .execute(&mut *conn)
                    .await?;
                sqlx::query(
                    "INSERT INTO sessions (id_hash, token_id, created_at, expires_at) \
                     VALUES (?, ?, ?, ?)",
                )
                .bind(&hash)
                .bind(&token_id)
                .bind(now_rfc3339())
                .bind(&expires)
                .execute(&mut *conn)
                .await?;
                let event = NewEvent::new("api", EventData::SessionStarted { token_id });
                Ok(((), vec![event]))
            })
        }))
        .await?;
        Ok(secret)
    }

    /// The token behind a live session cookie (sessions have their token's scope).
    pub async fn session_credential(&self, secret: &str) -> Result<Option<Credential>, StoreError> {
        let row: Option<CredentialRow> = sqlx::query_as(
            "SELECT t.id, t.scope, t.projects FROM sessions s \
             JOIN admin_tokens t ON t.id = s.token_id \
             WHERE s.id_hash = ? AND s.expires_at > ? AND t.revoked_at IS NULL",
        )
        .bind(secret_hash(secret))
        .bind(now_rfc3339())
        .fetch_optional(self.pool())
        .await?;
        row.map(credential).transpose()
    }

    /// Ends a session (sign-out). Unknown secrets are ignored.
    pub async fn delete_session(&self, secret: &str) -> Result<(), StoreError> {
        let hash = secret_hash(secret);
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                sqlx::query("DELETE FROM sessions WHERE id_hash = ?")
                    .bind(&hash)
                    .execute(&mut *conn)
                    .await?;
                Ok(((), vec![]))
            })
        }))
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_tokens_must_be_long_and_printable() {
        assert!(validate_token("short").is_err());
        assert!(validate_token(&"x".repeat(31)).is_err());
        assert!(validate_token(&format!("{}{}", "x".repeat(31), " ")).is_err());
        assert!(validate_token(&"x".repeat(32)).is_ok());
    }

    #[test]
    fn generated_secrets_carry_256_bits() {
        let a = random_hex();
        assert_eq!(a.len(), 64);
        assert_ne!(a, random_hex());
    }
}
