//! Issuing, listing and revoking tokens, and the projection of token events onto
//! `admin_tokens` (scope, projects, revocation, last sign-in), so a replay writes them again.

use app::events::{Event, EventData, TokenScope};
use sqlx::sqlite::SqliteConnection;

use super::{TOKEN_PREFIX, random_hex, secret_hash};
use crate::store::batch::Tx;
use crate::store::now_rfc3339;
use crate::store::{NewEvent, Store, StoreError};

/// A token just issued; `secret` is shown to the user once and then forgotten.
#[derive(Debug)]
pub struct IssuedToken {
    pub id: String,
    pub secret: String,
}

/// A token as `factory token list` shows it: never its secret or hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub id: String,
    pub label: String,
    pub scope: TokenScope,
    /// Project paths it is limited to; empty means every project.
    pub projects: Vec<String>,
    pub created_at: String,
    /// When a browser session was last opened with it (Bearer use is not recorded).
    pub last_sign_in_at: Option<String>,
    pub revoked_at: Option<String>,
    pub revoked_reason: Option<String>,
}

/// Why a token could not be issued or revoked.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("no token with id {0:?}: `factory token list` shows the ids")]
    Unknown(String),
    #[error("token {id} was revoked already, at {at}")]
    AlreadyRevoked { id: String, at: String },
    #[error(
        "an admin token cannot be limited to projects (settings and projects are shared by all of \
         them): use --scope operator or --scope viewer with --project"
    )]
    AdminWithProjects,
    #[error(transparent)]
    Store(#[from] StoreError),
}

type InfoRow = (
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn info(row: InfoRow) -> Result<TokenInfo, StoreError> {
    let (id, label, scope, projects, created_at, last_sign_in_at, revoked_at, revoked_reason) = row;
    let credential = super::credential((id, scope, projects))?;
    Ok(TokenInfo {
        id: credential.token_id,
        label,
        scope: credential.scope,
        projects: credential.projects,
        created_at,
        last_sign_in_at,
        revoked_at,
        revoked_reason,
    })
}

/// Inserts a token's row and returns the events that record it (its scope included).
async fn insert(
    conn: &mut SqliteConnection,
    secret: &str,
    label: &str,
    scope: TokenScope,
    projects: Vec<String>,
    actor: &str,
) -> Result<(String, Vec<NewEvent>), StoreError> {
    let token_id = uuid::Uuid::now_v7().to_string();
    sqlx::query("INSERT INTO admin_tokens (id, label, token_hash, created_at) VALUES (?, ?, ?, ?)")
        .bind(&token_id)
        .bind(label)
        .bind(secret_hash(secret))
        .bind(now_rfc3339())
        .execute(&mut *conn)
        .await?;
    let events = vec![
        NewEvent::new(
            actor,
            EventData::AdminTokenCreated {
                token_id: token_id.clone(),
                label: label.to_string(),
            },
        ),
        NewEvent::new(
            actor,
            EventData::TokenScoped {
                token_id: token_id.clone(),
                scope,
                projects,
            },
        ),
    ];
    Ok((token_id, events))
}

/// The revocation of token `id`, checked against its row.
async fn revocation(
    conn: &mut SqliteConnection,
    id: &str,
    reason: &str,
    actor: &str,
) -> Result<Result<NewEvent, TokenError>, StoreError> {
    let row: Option<(Option<String>,)> =
        sqlx::query_as("SELECT revoked_at FROM admin_tokens WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(match row {
        None => Err(TokenError::Unknown(id.to_string())),
        Some((Some(at),)) => Err(TokenError::AlreadyRevoked {
            id: id.to_string(),
            at,
        }),
        Some((None,)) => Ok(NewEvent::new(
            actor,
            EventData::TokenRevoked {
                token_id: id.to_string(),
                reason: reason.to_string(),
            },
        )),
    })
}

impl Store {
    /// Issues a new random admin token for every project.
    pub async fn create_admin_token(
        &self,
        label: &str,
        actor: &str,
    ) -> Result<IssuedToken, StoreError> {
        self.issue(label, TokenScope::Admin, Vec::new(), actor)
            .await
    }

    /// Issues a new random token with `scope`, limited to `projects` (paths) unless empty.
    pub async fn create_token(
        &self,
        label: &str,
        scope: TokenScope,
        projects: Vec<String>,
        actor: &str,
    ) -> Result<IssuedToken, TokenError> {
        if scope == TokenScope::Admin && !projects.is_empty() {
            return Err(TokenError::AdminWithProjects);
        }
        Ok(self.issue(label, scope, projects, actor).await?)
    }

    async fn issue(
        &self,
        label: &str,
        scope: TokenScope,
        projects: Vec<String>,
        actor: &str,
    ) -> Result<IssuedToken, StoreError> {
        let secret = format!("{TOKEN_PREFIX}{}", random_hex());
        let (label, actor, given) = (label.to_string(), actor.to_string(), secret.clone());
        let (id, _) = self
            .write(Box::new(move |conn| {
                Box::pin(async move { insert(conn, &given, &label, scope, projects, &actor).await })
            }))
            .await?;
        Ok(IssuedToken { id, secret })
    }

    /// Makes sure `secret` is an active admin token labelled `label` (`FACTORY_ADMIN_TOKEN`),
    /// and revokes every other active token with that label: the one it replaced. A secret that
    /// was revoked stays revoked (logged). Returns true if the token was added now.
    pub async fn ensure_admin_token(
        &self,
        secret: &str,
        label: &str,
        actor: &str,
    ) -> Result<bool, StoreError> {
        let (given, label, actor) = (secret.to_string(), label.to_string(), actor.to_string());
        let (added, _) = self
            .write(Box::new(move |conn| {
                Box::pin(async move {
                    let known: Option<(String, Option<String>)> = sqlx::query_as(
                        "SELECT id, revoked_at FROM admin_tokens WHERE token_hash = ?",
                    )
                    .bind(secret_hash(&given))
                    .fetch_optional(&mut *conn)
                    .await?;
                    let (id, added, mut events) = match known {
                        Some((id, Some(at))) => {
                            tracing::warn!(
                                token_id = %id,
                                revoked_at = %at,
                                "the token in {label} was revoked and is not accepted: set a new one"
                            );
                            return Ok((false, vec![]));
                        }
                        Some((id, None)) => (id, false, vec![]),
                        None => {
                            let (id, events) =
                                insert(conn, &given, &label, TokenScope::Admin, vec![], &actor)
                                    .await?;
                            (id, true, events)
                        }
                    };
                    let replaced: Vec<String> = sqlx::query_scalar(
                        "SELECT id FROM admin_tokens \
                         WHERE label = ? AND id != ? AND revoked_at IS NULL",
                    )
                    .bind(&label)
                    .bind(&id)
                    .fetch_all(&mut *conn)
                    .await?;
                    let reason = format!("replaced by a new {label}");
                    for old in replaced {
                        tracing::info!(token_id = %old, "revoking the replaced {label}");
                        if let Ok(event) = revocation(conn, &old, &reason, &actor).await? {
                            events.push(event);
                        }
                    }
                    Ok((added, events))
                })
            }))
            .await?;
        Ok(added)
    }

    /// True when at least one admin token can still be used.
    pub async fn has_admin_token(&self) -> Result<bool, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM admin_tokens WHERE revoked_at IS NULL AND scope = 'admin'",
        )
        .fetch_one(self.pool())
        .await?;
        Ok(n > 0)
    }

    /// Every token, oldest first, revoked ones included.
    pub async fn list_tokens(&self) -> Result<Vec<TokenInfo>, StoreError> {
        let rows: Vec<InfoRow> = sqlx::query_as(
            "SELECT id, label, scope, projects, created_at, last_sign_in_at, revoked_at, \
             revoked_reason FROM admin_tokens ORDER BY created_at, id",
        )
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(info).collect()
    }

    /// Revokes token `id`: it and every session opened with it stop working at once.
    pub async fn revoke_token(
        &self,
        id: &str,
        reason: &str,
        actor: &str,
    ) -> Result<(), TokenError> {
        let (id, reason, actor) = (id.to_string(), reason.to_string(), actor.to_string());
        let (outcome, _) = self
            .write(Box::new(move |conn| {
                Box::pin(async move {
                    Ok(match revocation(conn, &id, &reason, &actor).await? {
                        Ok(event) => (Ok(()), vec![event]),
                        Err(refused) => (Err(refused), vec![]),
                    })
                })
            }))
            .await?;
        outcome
    }
}

/// Folds a token event into `admin_tokens` (the row itself is written when the token is issued:
/// its hash is never in the log). Idempotent, so a rebuild may replay it.
pub(in crate::store) fn apply(tx: &mut Tx<'_>, event: &Event) -> Result<(), StoreError> {
    match &event.data {
        EventData::TokenScoped {
            token_id,
            scope,
            projects,
        } => {
            tx.push("UPDATE admin_tokens SET scope = ?, projects = ? WHERE id = ?")
                .bind(scope.as_str())
                .bind(serde_json::to_string(projects)?)
                .bind(token_id);
        }
        EventData::TokenRevoked { token_id, reason } => {
            tx.push("UPDATE admin_tokens SET revoked_at = ?, revoked_reason = ? WHERE id = ?")
                .bind(&event.ts)
                .bind(reason)
                .bind(token_id);
            tx.push("DELETE FROM sessions WHERE token_id = ?")
                .bind(token_id);
        }
        EventData::SessionStarted { token_id } => {
            tx.push("UPDATE admin_tokens SET last_sign_in_at = ? WHERE id = ?")
                .bind(&event.ts)
                .bind(token_id);
        }
        _ => {}
    }
    Ok(())
}
