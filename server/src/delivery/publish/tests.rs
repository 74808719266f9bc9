//! Where the token may go: real git pushes to a loopback HTTP remote and a real listener for
//! the pull request API.

use super::*;

use std::sync::Mutex;

use axum::http::{HeaderMap, StatusCode, Uri, header};

type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// A loopback HTTP server that asks for Basic credentials on every request (as a git host
/// does) and records each request's path and `Authorization` header. Bound to `ip`.
async fn asks_for_credentials(ip: IpAddr) -> (std::net::SocketAddr, Seen) {
    let seen: Seen = Arc::default();
    let app = axum::Router::new().fallback({
        let seen = seen.clone();
        move |uri: Uri, headers: HeaderMap| async move {
            let auth = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            seen.lock().unwrap().push((uri.to_string(), auth));
            (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Basic realm=\"git\"")],
                "credentials needed",
            )
        }
    });
    let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, seen)
}

/// A repository with one commit on `feature` and `origin` at `remote`.
fn repo_with_branch(remote: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let repo = git2::Repository::init(dir.path()).unwrap();
    std::fs::write(dir.path().join("a.txt"), "a\n").unwrap();
    let mut index = repo.index().unwrap();
    index.add_path(Path::new("a.txt")).unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let who = git2::Signature::now("t", "t@example.com").unwrap();
    let commit = repo.commit(None, &who, &who, "a", &tree, &[]).unwrap();
    repo.branch("feature", &repo.find_commit(commit).unwrap(), false)
        .unwrap();
    repo.remote("origin", remote).unwrap();
    dir
}

#[test]
fn the_token_goes_only_to_https_on_the_github_host() {
    let github = GitHub::new("https://api.github.com".into(), Some("ghp_x".into()));
    let token = github.token.as_deref().unwrap();
    for url in [
        "https://github.com/acme/shop.git",
        "https://GitHub.com/acme/shop",
    ] {
        assert!(token.may_send_to(url), "{url}");
    }
    for url in [
        "http://github.com/acme/shop.git",
        "ssh://git@github.com/acme/shop.git",
        "git@github.com:acme/shop.git",
        "file:///srv/git/shop.git",
        "https://github.com.evil.example/acme/shop.git",
        "https://evil.example/acme/shop.git",
        "http://127.0.0.1:8080/acme/shop.git",
    ] {
        assert!(!token.may_send_to(url), "{url}");
    }
    // GitHub Enterprise: its own host, and not github.com.
    let ghe = GitHub::new("https://ghe.example/api/v3".into(), Some("t".into()));
    let token = ghe.token.as_deref().unwrap();
    assert!(token.may_send_to("https://ghe.example/acme/shop.git"));
    assert!(!token.may_send_to("https://github.com/acme/shop.git"));
    assert!(
        !format!("{ghe:?}").contains("\"t\""),
        "never in debug output"
    );
}

#[test]
fn plain_http_api_bases_are_accepted_only_on_loopback() {
    for base in [
        "https://api.github.com",
        "https://ghe.example/api/v3",
        "http://127.0.0.1:8080",
        "http://localhost:8080/api",
        "http://[::1]:8080",
    ] {
        assert!(check_api_base(base).is_ok(), "{base}");
    }
    for base in [
        "http://api.github.com",
        "http://10.0.0.5:8080",
        "ftp://x.example",
        "nope",
    ] {
        let err = check_api_base(base).unwrap_err().to_string();
        assert!(err.contains(base) && err.contains("https://"), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_http_remote_gets_no_credentials() {
    let (addr, seen) = asks_for_credentials(IpAddr::from([127, 0, 0, 1])).await;
    let repo = repo_with_branch(&format!("http://{addr}/acme/shop.git"));
    let github = GitHub::new("https://api.github.com".into(), Some("ghp_secret".into()));
    let (path, token) = (repo.path().to_path_buf(), github.token.clone());
    let pushed =
        tokio::task::spawn_blocking(move || push(&path, "feature", None, token.as_deref()))
            .await
            .unwrap();
    let err = pushed.unwrap_err().to_string();
    let seen = seen.lock().unwrap().clone();
    assert!(!seen.is_empty(), "the push reached the remote");
    assert!(
        seen.iter().all(|(_, auth)| auth.is_none()),
        "no credential was sent: {seen:?}"
    );
    assert!(err.contains("only over HTTPS"), "{err}");
    assert!(!err.contains("ghp_secret"), "{err}");
}

/// This machine's address on its default route, if it has one (no packet is sent).
fn non_loopback_ip() -> Option<IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:9").ok()?;
    Some(socket.local_addr().ok()?.ip()).filter(|ip| !ip.is_loopback())
}

#[tokio::test]
async fn a_plain_http_api_off_this_machine_is_refused_before_sending() {
    // A listener on a real interface, so a request would arrive if one were sent.
    let (base, seen) = match non_loopback_ip() {
        Some(ip) => {
            let (addr, seen) = asks_for_credentials(ip).await;
            (format!("http://{addr}"), Some(seen))
        }
        None => ("http://api.github.example".to_string(), None),
    };
    let github = GitHub::new(base.clone(), Some("ghp_secret".into()));
    let err = upsert_pull_request(&github, "acme/shop", "feature", "main", "t", "b", None)
        .await
        .unwrap_err();
    assert!(matches!(err, PublishError::ApiBase { .. }), "{err}");
    assert!(err.to_string().contains(&base), "{err}");
    if let Some(seen) = seen {
        assert!(seen.lock().unwrap().is_empty(), "nothing was sent");
    }
}

/// A commit on `feature` of `repo` with `file` holding `text`, its parent the branch's tip.
fn commit_on_feature(repo: &git2::Repository, text: &str) -> git2::Oid {
    let parent = repo
        .find_branch("feature", git2::BranchType::Local)
        .unwrap()
        .get()
        .peel_to_commit()
        .unwrap();
    let mut builder = repo.treebuilder(Some(&parent.tree().unwrap())).unwrap();
    let blob = repo.blob(text.as_bytes()).unwrap();
    builder.insert("a.txt", blob, 0o100644).unwrap();
    let tree = repo.find_tree(builder.write().unwrap()).unwrap();
    let who = git2::Signature::now("t", "t@example.com").unwrap();
    repo.commit(None, &who, &who, text, &tree, &[&parent])
        .unwrap()
}

fn set_feature(repo: &git2::Repository, to: git2::Oid) {
    repo.find_branch("feature", git2::BranchType::Local)
        .unwrap()
        .into_reference()
        .set_target(to, "test")
        .unwrap();
}

fn remote_feature(bare: &Path) -> String {
    git2::Repository::open_bare(bare)
        .unwrap()
        .find_reference("refs/heads/feature")
        .unwrap()
        .target()
        .unwrap()
        .to_string()
}

#[test]
fn a_push_replaces_only_what_factory_pushed_there() {
    let bare = tempfile::tempdir().unwrap();
    git2::Repository::init_bare(bare.path()).unwrap();
    let dir = repo_with_branch(bare.path().to_str().unwrap());
    let repo = git2::Repository::open(dir.path()).unwrap();
    let first = repo
        .find_branch("feature", git2::BranchType::Local)
        .unwrap()
        .get()
        .target()
        .unwrap()
        .to_string();
    assert_eq!(
        push(dir.path(), "feature", None, None).unwrap(),
        Pushed::Created
    );
    // Pushed before a crash, pushed again after it: nothing to do.
    assert_eq!(
        push(dir.path(), "feature", None, None).unwrap(),
        Pushed::AlreadyThere
    );
    // Re-delivered from the base: not a fast-forward, but the remote holds what Factory
    // pushed, so it is replaced.
    let root = repo
        .find_commit(git2::Oid::from_str(&first).unwrap())
        .unwrap();
    let again = {
        let who = git2::Signature::now("t", "t@example.com").unwrap();
        repo.commit(None, &who, &who, "again", &root.tree().unwrap(), &[])
            .unwrap()
    };
    set_feature(&repo, again);
    assert_eq!(
        push(dir.path(), "feature", Some(&first), None).unwrap(),
        Pushed::Replaced(first.clone())
    );
    assert_eq!(remote_feature(bare.path()), again.to_string());
    // Someone else pushes on top; Factory's next delivery does not overwrite it.
    let theirs = commit_on_feature(&repo, "theirs");
    set_feature(&repo, theirs);
    push(dir.path(), "feature", Some(&again.to_string()), None).unwrap();
    let ours = {
        let who = git2::Signature::now("t", "t@example.com").unwrap();
        repo.commit(None, &who, &who, "ours", &root.tree().unwrap(), &[])
            .unwrap()
    };
    set_feature(&repo, ours);
    let err = push(dir.path(), "feature", Some(&again.to_string()), None).unwrap_err();
    assert!(matches!(err, PublishError::Lease { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains(&theirs.to_string()), "{message}");
    assert!(message.contains("not overwritten"), "{message}");
    assert_eq!(remote_feature(bare.path()), theirs.to_string(), "untouched");
}
