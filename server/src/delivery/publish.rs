//! Publishing a delivered work order: push its branch to the project's remote (a token from the
//! environment for HTTPS remotes) and open a pull request through the GitHub REST API
//! (`POST /repos/{owner}/{repo}/pulls`; the API base is configurable for GitHub Enterprise).
//! A failure rolls the remote branch back; the caller deletes the local one.

use std::path::Path;

use serde_json::json;

/// Where pull requests go and with which token (never logged).
#[derive(Clone)]
pub struct GitHub {
    pub api_base: String,
    pub token: Option<String>,
}

impl std::fmt::Debug for GitHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHub")
            .field("api_base", &self.api_base)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl GitHub {
    /// `FACTORY_GITHUB_API` (default `https://api.github.com`) and `GITHUB_TOKEN` (or
    /// `FACTORY_GIT_TOKEN`).
    pub fn from_env() -> GitHub {
        let var = |n: &str| std::env::var(n).ok().filter(|v| !v.trim().is_empty());
        GitHub {
            api_base: var("FACTORY_GITHUB_API").unwrap_or_else(|| "https://api.github.com".into()),
            token: var("FACTORY_GIT_TOKEN").or_else(|| var("GITHUB_TOKEN")),
        }
    }
}

/// Why publishing failed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PublishError(pub String);

fn callbacks(token: Option<&str>) -> git2::RemoteCallbacks<'_> {
    let mut callbacks = git2::RemoteCallbacks::new();
    let mut tried = false;
    callbacks.credentials(move |_url, _user, _allowed| {
        if tried {
            return Err(git2::Error::from_str(
                "the remote refused the token (check GITHUB_TOKEN)",
            ));
        }
        tried = true;
        match token {
            Some(t) => git2::Cred::userpass_plaintext("x-access-token", t),
            None => Err(git2::Error::from_str(
                "the remote needs credentials: set GITHUB_TOKEN (or FACTORY_GIT_TOKEN)",
            )),
        }
    });
    callbacks
}

/// Pushes `branch` to `origin`. Refused pushes (non-fast-forward, hooks) are errors.
pub fn push(repo_path: &Path, branch: &str, token: Option<&str>) -> Result<(), PublishError> {
    let repo = git2::Repository::open(repo_path).map_err(|e| PublishError(e.message().into()))?;
    let mut remote = repo
        .find_remote("origin")
        .map_err(|_| PublishError("the repository has no `origin` remote".into()))?;
    let rejected = std::cell::RefCell::new(None);
    let mut cb = callbacks(token);
    cb.push_update_reference(|reference, status| {
        if let Some(message) = status {
            *rejected.borrow_mut() = Some(format!("the remote rejected {reference}: {message}"));
        }
        Ok(())
    });
    let mut options = git2::PushOptions::new();
    options.remote_callbacks(cb);
    let refspec = format!("refs/heads/{branch}:refs/heads/{branch}");
    remote
        .push(&[refspec.as_str()], Some(&mut options))
        .map_err(|e| PublishError(format!("push of {branch} failed: {}", e.message())))?;
    drop(options);
    match rejected.into_inner() {
        Some(message) => Err(PublishError(message)),
        None => Ok(()),
    }
}

/// Deletes `branch` on `origin` (rollback after a failed pull request).
pub fn delete_remote_branch(
    repo_path: &Path,
    branch: &str,
    token: Option<&str>,
) -> Result<(), PublishError> {
    let repo = git2::Repository::open(repo_path).map_err(|e| PublishError(e.message().into()))?;
    let mut remote = repo
        .find_remote("origin")
        .map_err(|_| PublishError("the repository has no `origin` remote".into()))?;
    let mut options = git2::PushOptions::new();
    options.remote_callbacks(callbacks(token));
    remote
        .push(
            &[format!(":refs/heads/{branch}").as_str()],
            Some(&mut options),
        )
        .map_err(|e| PublishError(e.message().into()))
}

/// The branch a pull request targets: the project's current branch.
pub fn base_branch(repo_path: &Path) -> Option<String> {
    let repo = git2::Repository::open(repo_path).ok()?;
    let head = repo.head().ok()?;
    head.shorthand().map(str::to_string)
}

/// Opens a pull request; returns its URL.
pub async fn open_pull_request(
    github: &GitHub,
    owner_repo: &str,
    head: &str,
    base: &str,
    title: &str,
    body: &str,
) -> Result<String, PublishError> {
    let Some(token) = github.token.as_deref() else {
        return Err(PublishError(
            "a pull request needs a token: set GITHUB_TOKEN (or FACTORY_GIT_TOKEN)".into(),
        ));
    };
    let url = format!(
        "{}/repos/{owner_repo}/pulls",
        github.api_base.trim_end_matches('/')
    );
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .user_agent("factory")
        .build()
        .map_err(|e| PublishError(e.to_string()))?;
    let res = client
        .post(&url)
        .bearer_auth(token)
        .header("accept", "application/vnd.github+json")
        .header("x-github-api-version", "2022-11-28")
        .json(&json!({"title": title, "head": head, "base": base, "body": body}))
        .send()
        .await
        .map_err(|e| {
            PublishError(format!(
                "the pull request API could not be reached: {}",
                e.without_url()
            ))
        })?;
    let status = res.status();
    let value: serde_json::Value = res.json().await.unwrap_or_default();
    if !status.is_success() {
        let detail = value["message"].as_str().unwrap_or("no message");
        return Err(PublishError(format!(
            "the pull request API answered {status}: {detail}"
        )));
    }
    Ok(value["html_url"].as_str().unwrap_or_default().to_string())
}
