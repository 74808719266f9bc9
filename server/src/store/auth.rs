//! Admin tokens and browser sessions. Only SHA-256 hashes of secrets are stored; issuing a
//! token or opening a session is recorded in the event log by id, never by secret.

use std::time::Duration;

use app::events::EventData;
use sha2::{Digest, Sha256};

use super::append::now_rfc3339;
use super::{NewEvent, Store, StoreError};

/// Prefix of every admin token, so a leaked one is easy to recognise and grep for.
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

/// An admin token just issued; `secret` is shown to the user once and then forgotten.
#[derive(Debug)]
pub struct IssuedToken {
    pub id: String,
    pub secret: String,
}

impl Store {
    /// Issues a new random admin token.
    pub async fn create_admin_token(
        &self,
        label: &str,
        actor: &str,
    ) -> Result<IssuedToken, StoreError> {
        let secret = format!("{TOKEN_PREFIX}{}", random_hex());
        let id = self.insert_token(&secret, label, actor).await?;
        Ok(IssuedToken { id, secret })
    }

    /// Makes sure `secret` is an admin token (used for `FACTORY_ADMIN_TOKEN`). Returns true if it
    /// was added now.
    pub async fn ensure_admin_token(
        &self,
        secret: &str,
        label: &str,
        actor: &str,
    ) -> Result<bool, StoreError> {
        if self.token_id_for(secret).await?.is_some() {
            return Ok(false);
        }
        self.insert_token(secret, label, actor).await?;
        Ok(true)
    }

    /// True when at least one admin token can still be used.
    pub async fn has_admin_token(&self) -> Result<bool, StoreError> {
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM admin_tokens WHERE revoked_at IS NULL")
                .fetch_one(self.pool())
                .await?;
        Ok(n > 0)
    }

    async fn insert_token(
        &self,
        secret: &str,
        label: &str,
        actor: &str,
    ) -> Result<String, StoreError> {
        let id = uuid::Uuid::now_v7().to_string();
        let (hash, label, actor) = (secret_hash(secret), label.to_string(), actor.to_string());
        let token_id = id.clone();
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO admin_tokens (id, label, token_hash, created_at) \
                     VALUES (?, ?, ?, ?)",
                )
                .bind(&token_id)
                .bind(&label)
                .bind(&hash)
                .bind(now_rfc3339())
                .execute(&mut *conn)
                .await?;
                let event = NewEvent::new(actor, EventData::AdminTokenCreated { token_id, label });
                Ok(((), vec![event]))
            })
        }))
        .await?;
        Ok(id)
    }

    /// The id of the active admin token with this secret.
    pub async fn token_id_for(&self, secret: &str) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM admin_tokens WHERE token_hash = ? AND revoked_at IS NULL",
        )
        .bind(secret_hash(secret))
        .fetch_optional(self.pool())
        .await?)
    }

    /// Opens a browser session for an admin token; returns the cookie secret.
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

    /// The admin token behind a live session cookie.
    pub async fn session_token_id(&self, secret: &str) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT s.token_id FROM sessions s JOIN admin_tokens t ON t.id = s.token_id \
             WHERE s.id_hash = ? AND s.expires_at > ? AND t.revoked_at IS NULL",
        )
        .bind(secret_hash(secret))
        .bind(now_rfc3339())
        .fetch_optional(self.pool())
        .await?)
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
