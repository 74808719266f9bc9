//! `factory token create|list|revoke`: issues a token (printed once), lists tokens without
//! their secrets, revokes one (its sessions end with it).

use std::path::Path;

use app::events::{TokenScope, UnknownScope};
use clap::Subcommand;

use super::{Exit, UsageError, open_store};
use crate::store::Store;
use crate::store::auth::{TokenError, TokenInfo};

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a new token and print it once.
    Create {
        /// A note saying who or what the token is for.
        #[arg(long, default_value = "cli")]
        label: String,
        /// What it may do: viewer (read only), operator (also start and cancel runs and decide
        /// approvals) or admin (everything, including settings and projects).
        #[arg(
            long,
            default_value = "admin",
            value_name = "viewer|operator|admin",
            value_parser = parse_scope
        )]
        scope: TokenScope,
        /// Limit it to this project: a registered project's name or path, or a directory
        /// (repeatable; not with the admin scope).
        #[arg(long = "project", value_name = "PATH")]
        projects: Vec<String>,
    },
    /// List every token: id, scope, projects, label, creation, last sign-in and whether it is
    /// revoked (never its secret).
    List,
    /// Revoke a token by id: it and every session opened with it stop working at once.
    Revoke {
        /// The token's id, as `factory token list` shows it.
        id: String,
        /// Why, recorded with the revocation.
        #[arg(long, default_value = "revoked with `factory token revoke`")]
        reason: String,
    },
}

fn parse_scope(text: &str) -> Result<TokenScope, UnknownScope> {
    text.parse()
}

/// Runs one `factory token` subcommand.
pub(super) async fn run(data_dir: &Path, command: TokenCommand) -> anyhow::Result<Exit> {
    let store = open_store(data_dir).await?;
    match command {
        TokenCommand::Create {
            label,
            scope,
            projects,
        } => create(&store, &label, scope, &projects).await,
        TokenCommand::List => list(&store).await,
        TokenCommand::Revoke { id, reason } => revoke(&store, &id, &reason).await,
    }
}

async fn create(
    store: &Store,
    label: &str,
    scope: TokenScope,
    given: &[String],
) -> anyhow::Result<Exit> {
    let mut projects = Vec::with_capacity(given.len());
    for project in given {
        projects.push(resolve_project(store, project).await?);
    }
    let issued = match store
        .create_token(label, scope, projects.clone(), "cli")
        .await
    {
        Ok(issued) => issued,
        Err(TokenError::Store(e)) => return Err(e.into()),
        Err(refused) => return Err(UsageError(refused.to_string()).into()),
    };
    println!("{}", issued.secret);
    let limit = if projects.is_empty() {
        String::new()
    } else {
        format!(", limited to {}", projects.join(", "))
    };
    eprintln!(
        "factory: {scope} token {label:?} created (id {}){limit}. It is shown only this once; \
         store it safely.",
        issued.id
    );
    Ok(Exit::Success)
}

/// A `--project` as runs record it: a registered project's path, else the canonical path of an
/// existing directory.
async fn resolve_project(store: &Store, given: &str) -> anyhow::Result<String> {
    if let Some(project) = store.find_project(given).await? {
        return Ok(project.path);
    }
    match std::fs::canonicalize(given) {
        Ok(path) if path.is_dir() => Ok(path.display().to_string()),
        _ => Err(UsageError(format!(
            "--project {given:?} is neither a registered project (`factory project list`) nor a \
             directory"
        ))
        .into()),
    }
}

async fn list(store: &Store) -> anyhow::Result<Exit> {
    let tokens = store.list_tokens().await?;
    if tokens.is_empty() {
        println!("no tokens (`factory token create` issues one)");
        return Ok(Exit::Success);
    }
    println!(
        "{:<36}  {:<8}  {:<20}  {:<24}  {:<24}  {:<30}  PROJECTS",
        "ID", "SCOPE", "LABEL", "CREATED", "LAST SIGN-IN", "STATUS"
    );
    for token in &tokens {
        println!("{}", row(token));
    }
    Ok(Exit::Success)
}

/// One line of `token list`.
fn row(token: &TokenInfo) -> String {
    let status = match (&token.revoked_at, &token.revoked_reason) {
        (None, _) => "active".to_string(),
        (Some(at), reason) => format!("revoked {at}: {}", reason.as_deref().unwrap_or("")),
    };
    let projects = if token.projects.is_empty() {
        "all".to_string()
    } else {
        token.projects.join(", ")
    };
    format!(
        "{:<36}  {:<8}  {:<20}  {:<24}  {:<24}  {:<30}  {projects}",
        token.id,
        token.scope.as_str(),
        token.label,
        token.created_at,
        token.last_sign_in_at.as_deref().unwrap_or("never"),
        status,
    )
}

async fn revoke(store: &Store, id: &str, reason: &str) -> anyhow::Result<Exit> {
    match store.revoke_token(id, reason, "cli").await {
        Ok(()) => {}
        Err(TokenError::Store(e)) => return Err(e.into()),
        Err(refused) => return Err(UsageError(refused.to_string()).into()),
    }
    eprintln!("factory: token {id} revoked; its sessions are ended");
    if !store.has_admin_token().await? {
        eprintln!(
            "factory: no active admin token remains: the next `factory serve` without \
             FACTORY_ADMIN_TOKEN prints a new one, or run `factory token create`"
        );
    }
    Ok(Exit::Success)
}
