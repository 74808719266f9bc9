//! Publishing a delivered work order: push its branch to the project's remote (a token from the
//! environment for HTTPS remotes) and open a pull request through the GitHub REST API
//! (`POST /repos/{owner}/{repo}/pulls`; the API base is configurable for GitHub Enterprise).
//! A failure rolls the remote branch back; the caller deletes the local one.
//!
//! The token goes only where it belongs: to the API base (HTTPS, or plain HTTP on a loopback
//! address for a local test server; redirects are not followed) and, for a push, to an
//! `https://` remote on the GitHub host the API base names. Any other remote gets no
//! credential at all.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use reqwest::Url;
use serde_json::json;

/// Where pull requests go and with which token (never logged).
#[derive(Clone)]
pub struct GitHub {
    pub api_base: String,
    /// Shared with the blocking tasks that push (cheap to clone).
    pub token: Option<Arc<GitToken>>,
}

impl std::fmt::Debug for GitHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHub")
            .field("api_base", &self.api_base)
            .field("token", &self.token)
            .finish()
    }
}

impl GitHub {
    /// `FACTORY_GITHUB_API` (default `https://api.github.com`) and `GITHUB_TOKEN` (or
    /// `FACTORY_GIT_TOKEN`).
    pub fn from_env() -> GitHub {
        let var = |n: &str| std::env::var(n).ok().filter(|v| !v.trim().is_empty());
        GitHub::new(
            var("FACTORY_GITHUB_API").unwrap_or_else(|| "https://api.github.com".into()),
            var("FACTORY_GIT_TOKEN").or_else(|| var("GITHUB_TOKEN")),
        )
    }

    /// The API at `api_base`; the token, if any, may be sent to it and to its GitHub host.
    pub fn new(api_base: String, token: Option<String>) -> GitHub {
        let hosts = token_hosts(&api_base);
        GitHub {
            api_base,
            token: token.map(|secret| Arc::new(GitToken { secret, hosts })),
        }
    }
}

/// A token and the hosts it may be sent to.
pub struct GitToken {
    secret: String,
    /// Lower-case host names: the API's, and the site's for `api.<site>`.
    hosts: Vec<String>,
}

impl std::fmt::Debug for GitToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitToken")
            .field("secret", &"<redacted>")
            .field("hosts", &self.hosts)
            .finish()
    }
}

impl GitToken {
    /// True when a git remote at `url` may be given the token: HTTPS, to one of its hosts.
    pub fn may_send_to(&self, url: &str) -> bool {
        let Ok(url) = Url::parse(url) else {
            return false;
        };
        url.scheme() == "https"
            && url
                .host_str()
                .is_some_and(|h| self.hosts.iter().any(|k| k.eq_ignore_ascii_case(h)))
    }
}

/// The hosts a token for the API at `api_base` belongs to: `https://api.github.com` gives
/// `api.github.com` and `github.com`; an Enterprise server's `https://ghe.example/api/v3` gives
/// `ghe.example`.
fn token_hosts(api_base: &str) -> Vec<String> {
    let Some(host) = Url::parse(api_base)
        .ok()
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
    else {
        return Vec::new();
    };
    let site = host.strip_prefix("api.").map(str::to_string);
    std::iter::once(host).chain(site).collect()
}

/// Why publishing failed.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("the repository cannot be opened: {0}")]
    Repository(String),
    #[error("the repository has no `origin` remote")]
    NoOrigin,
    #[error("push of {branch} failed: {message}")]
    Push { branch: String, message: String },
    #[error("the remote rejected {reference}: {message}")]
    Rejected { reference: String, message: String },
    #[error(
        "the remote's {branch} is at {found}, which Factory did not push{}; it is not \
         overwritten (someone else's work?): move or delete that branch, then deliver again",
        expected.as_deref().map(|e| format!(" (it pushed {e})")).unwrap_or_default()
    )]
    Lease {
        branch: String,
        found: String,
        expected: Option<String>,
    },
    #[error("deleting {branch} on the remote failed: {message}")]
    Delete { branch: String, message: String },
    #[error("a pull request needs a token: set GITHUB_TOKEN (or FACTORY_GIT_TOKEN)")]
    NoToken,
    #[error(
        "FACTORY_GITHUB_API `{base}` is not usable: {reason}; accepted: an https:// URL, or \
         http:// on a loopback address (a local test server)"
    )]
    ApiBase { base: String, reason: String },
    #[error("the pull request API could not be reached: {0}")]
    Unreachable(String),
    #[error("the pull request API answered {status}: {detail}")]
    Refused {
        status: reqwest::StatusCode,
        detail: String,
    },
}

fn callbacks(token: Option<&GitToken>) -> git2::RemoteCallbacks<'_> {
    let mut callbacks = git2::RemoteCallbacks::new();
    let mut tried = false;
    callbacks.credentials(move |url, _user, _allowed| {
        let Some(token) = token else {
            return Err(git2::Error::from_str(
                "the remote needs credentials: set GITHUB_TOKEN (or FACTORY_GIT_TOKEN)",
            ));
        };
        if !token.may_send_to(url) {
            return Err(git2::Error::from_str(&format!(
                "the remote {} asks for credentials, but the token is sent only over HTTPS to \
                 {}; use an https:// remote on that host (or give this remote credentials of \
                 its own)",
                origin_of(url),
                token.hosts.join(" or "),
            )));
        }
        if tried {
            return Err(git2::Error::from_str(
                "the remote refused the token (check GITHUB_TOKEN)",
            ));
        }
        tried = true;
        git2::Cred::userpass_plaintext("x-access-token", &token.secret)
    });
    callbacks
}

/// `scheme://host[:port]` of a remote URL, without any user name or password in it.
fn origin_of(url: &str) -> String {
    match Url::parse(url) {
        Ok(u) => {
            let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
            format!(
                "{}://{}{port}",
                u.scheme(),
                u.host_str().unwrap_or_default()
            )
        }
        Err(_) => "(an unparsable URL)".into(),
    }
}

fn open(repo_path: &Path) -> Result<git2::Repository, PublishError> {
    git2::Repository::open(repo_path).map_err(|e| PublishError::Repository(e.message().into()))
}

/// What the remote's branch held, read before a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pushed {
    /// The branch was made on the remote.
    Created,
    /// The branch held this commit (pushed earlier by Factory) and now holds the new one.
    Replaced(String),
    /// The remote already held the commit (a push that happened before a crash): nothing sent.
    AlreadyThere,
}

/// The commit `origin` holds for `branch`, if it has the branch: fetched into a private
/// reference, read, and dropped again (libgit2's ref listing cannot read an empty remote).
fn remote_head(
    repo: &git2::Repository,
    branch: &str,
    token: Option<&GitToken>,
) -> Result<Option<git2::Oid>, PublishError> {
    let mut remote = repo
        .find_remote("origin")
        .map_err(|_| PublishError::NoOrigin)?;
    let failed = |e: git2::Error| PublishError::Push {
        branch: branch.to_string(),
        message: format!("the remote could not be read: {}", e.message()),
    };
    let private = format!("refs/factory/remote-heads/{branch}");
    let drop_private = || {
        if let Ok(mut r) = repo.find_reference(&private) {
            let _ = r.delete();
        }
    };
    drop_private();
    let mut options = git2::FetchOptions::new();
    options
        .remote_callbacks(callbacks(token))
        .download_tags(git2::AutotagOption::None)
        .update_fetchhead(false);
    let refspec = format!("+refs/heads/{branch}:{private}");
    remote
        .fetch(&[refspec.as_str()], Some(&mut options), None)
        .map_err(failed)?;
    let head = repo.find_reference(&private).ok().and_then(|r| r.target());
    drop_private();
    Ok(head)
}

/// Pushes `branch` to `origin` with force-with-lease semantics: the remote branch may be
/// replaced only when it is missing, already at the local commit, or at `expected` (the commit
/// Factory pushed there last). Anything else is someone else's work and is refused. (libgit2
/// cannot send the expected value with the push itself, so the lease is checked just before
/// it.) Refused pushes (hooks, protection) are errors.
pub fn push(
    repo_path: &Path,
    branch: &str,
    expected: Option<&str>,
    token: Option<&GitToken>,
) -> Result<Pushed, PublishError> {
    let repo = open(repo_path)?;
    let local = repo
        .find_branch(branch, git2::BranchType::Local)
        .ok()
        .and_then(|b| b.get().target())
        .ok_or_else(|| PublishError::Push {
            branch: branch.to_string(),
            message: "there is no such local branch".into(),
        })?;
    let outcome = match remote_head(&repo, branch, token)? {
        None => Pushed::Created,
        Some(head) if head == local => return Ok(Pushed::AlreadyThere),
        Some(head) if expected.is_some_and(|e| e == head.to_string()) => {
            Pushed::Replaced(head.to_string())
        }
        Some(head) => {
            return Err(PublishError::Lease {
                branch: branch.to_string(),
                found: head.to_string(),
                expected: expected.map(str::to_string),
            });
        }
    };
    let mut remote = repo
        .find_remote("origin")
        .map_err(|_| PublishError::NoOrigin)?;
    let rejected = std::cell::RefCell::new(None);
    let mut cb = callbacks(token);
    cb.push_update_reference(|reference, status| {
        if let Some(message) = status {
            *rejected.borrow_mut() = Some(PublishError::Rejected {
                reference: reference.to_string(),
                message: message.to_string(),
            });
        }
        Ok(())
    });
    let mut options = git2::PushOptions::new();
    options.remote_callbacks(cb);
    // Forced only past the lease checked above.
    let refspec = format!("+refs/heads/{branch}:refs/heads/{branch}");
    remote
        .push(&[refspec.as_str()], Some(&mut options))
        .map_err(|e| PublishError::Push {
            branch: branch.to_string(),
            message: e.message().to_string(),
        })?;
    drop(options);
    match rejected.into_inner() {
        Some(error) => Err(error),
        None => Ok(outcome),
    }
}

/// Deletes `branch` on `origin` (rollback after a failed pull request).
pub fn delete_remote_branch(
    repo_path: &Path,
    branch: &str,
    token: Option<&GitToken>,
) -> Result<(), PublishError> {
    let repo = open(repo_path)?;
    let mut remote = repo
        .find_remote("origin")
        .map_err(|_| PublishError::NoOrigin)?;
    let mut options = git2::PushOptions::new();
    options.remote_callbacks(callbacks(token));
    remote
        .push(
            &[format!(":refs/heads/{branch}").as_str()],
            Some(&mut options),
        )
        .map_err(|e| PublishError::Delete {
            branch: branch.to_string(),
            message: e.message().to_string(),
        })
}

/// The branch a pull request targets: the project's current branch.
pub fn base_branch(repo_path: &Path) -> Option<String> {
    let repo = git2::Repository::open(repo_path).ok()?;
    let head = repo.head().ok()?;
    head.shorthand().map(str::to_string)
}

/// Whether the token may be sent to the API at `base`: HTTPS, or HTTP to a loopback address.
fn check_api_base(base: &str) -> Result<(), PublishError> {
    let refuse = |reason: &str| PublishError::ApiBase {
        base: base.to_string(),
        reason: reason.to_string(),
    };
    let url = Url::parse(base).map_err(|e| refuse(&e.to_string()))?;
    let host = url.host_str().unwrap_or_default();
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        "http" => Err(refuse(
            "plain http would send the token unencrypted to a host that is not this machine",
        )),
        _ => Err(refuse("it is not an http(s) URL")),
    }
}

/// A pull request as the API reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequest {
    pub number: u64,
    pub url: String,
    /// True when an existing pull request was updated rather than a new one opened.
    pub updated: bool,
}

/// One call to the pull request API: the JSON answer of a successful status, else why not.
async fn call_api(
    github: &GitHub,
    method: reqwest::Method,
    path: &str,
    query: &[(&str, &str)],
    body: Option<serde_json::Value>,
) -> Result<serde_json::Value, PublishError> {
    let token = github.token.as_deref().ok_or(PublishError::NoToken)?;
    check_api_base(&github.api_base)?;
    let url = format!("{}{path}", github.api_base.trim_end_matches('/'));
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .user_agent("factory")
        // A redirect could carry the token somewhere else.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| PublishError::Unreachable(e.to_string()))?;
    let mut request = client
        .request(method, &url)
        .bearer_auth(&token.secret)
        .header("accept", "application/vnd.github+json")
        .header("x-github-api-version", "2022-11-28")
        .query(query);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let res = request
        .send()
        .await
        .map_err(|e| PublishError::Unreachable(e.without_url().to_string()))?;
    let status = res.status();
    let value: serde_json::Value = res.json().await.unwrap_or_default();
    if !status.is_success() {
        return Err(PublishError::Refused {
            status,
            detail: value["message"]
                .as_str()
                .unwrap_or("no message")
                .to_string(),
        });
    }
    Ok(value)
}

fn pull_request_of(value: &serde_json::Value, updated: bool) -> PullRequest {
    PullRequest {
        number: value["number"].as_u64().unwrap_or_default(),
        url: value["html_url"].as_str().unwrap_or_default().to_string(),
        updated,
    }
}

/// Opens the pull request of `head` into `base` — or, when `head` already has an open one
/// (`known`, recorded by Factory, or found on the API: a crash may have come between opening
/// it and recording it), updates its title, body and base instead of opening a second.
pub async fn upsert_pull_request(
    github: &GitHub,
    owner_repo: &str,
    head: &str,
    base: &str,
    title: &str,
    body: &str,
    known: Option<u64>,
) -> Result<PullRequest, PublishError> {
    let existing = match known {
        Some(number) => Some(number),
        None => {
            let owner = owner_repo.split('/').next().unwrap_or_default();
            let path = format!("/repos/{owner_repo}/pulls");
            let head_of = format!("{owner}:{head}");
            let query = [("state", "open"), ("head", head_of.as_str())];
            let found = call_api(github, reqwest::Method::GET, &path, &query, None).await?;
            found
                .as_array()
                .and_then(|list| list.iter().find(|pr| pr["head"]["ref"] == head))
                .and_then(|pr| pr["number"].as_u64())
        }
    };
    let fields = json!({"title": title, "base": base, "body": body});
    match existing {
        Some(number) => {
            let mut fields = fields;
            fields["state"] = "open".into();
            let path = format!("/repos/{owner_repo}/pulls/{number}");
            let value = call_api(github, reqwest::Method::PATCH, &path, &[], Some(fields)).await?;
            Ok(pull_request_of(&value, true))
        }
        None => {
            let mut fields = fields;
            fields["head"] = head.into();
            let path = format!("/repos/{owner_repo}/pulls");
            let value = call_api(github, reqwest::Method::POST, &path, &[], Some(fields)).await?;
            Ok(pull_request_of(&value, false))
        }
    }
}

#[cfg(test)]
mod tests;
