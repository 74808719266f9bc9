//! Cross-site request forgery: a state change riding on the session cookie must come from this
//! server's own pages (its Origin, one from `FACTORY_ALLOWED_ORIGINS`, or `Sec-Fetch-Site:
//! same-origin`). Also the headers that keep every response out of other sites' frames.

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, header};

use crate::api::ApiError;

/// No framing, no `<base>` or plugin tricks, forms post only here. No `script-src`: the
/// dashboard's hydration scripts are inline.
const CONTENT_SECURITY_POLICY: &str =
    "frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'";

/// Adds the security headers a handler did not set itself.
pub fn secure_headers(headers: &mut HeaderMap) {
    let fixed: [(HeaderName, &'static str); 4] = [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
    ];
    for (name, value) in fixed {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    }
}

/// True for methods that may change state (everything but GET, HEAD and OPTIONS).
pub fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The server's own origin (scheme and the `Host` header) or one from the allowlist: the rule
/// `/ws` applies to its Origin header too.
pub(crate) fn trusted(origin: &str, headers: &HeaderMap, allowed: &[String]) -> bool {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let own = !host.is_empty()
        && (origin == format!("http://{host}") || origin == format!("https://{host}"));
    own || allowed.iter().any(|a| a == origin)
}

/// What the browser says about where the request came from.
fn fetch_site(headers: &HeaderMap) -> Option<&str> {
    headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
}

fn origin(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::ORIGIN)
        .map(|o| o.to_str().unwrap_or("(not text)"))
}

/// A state change authenticated by the session cookie: the browser must show it came from this
/// server's pages. Bearer requests are not checked (a browser never adds that header itself).
pub fn check_session_request(headers: &HeaderMap, allowed: &[String]) -> Result<(), ApiError> {
    if fetch_site(headers) == Some("same-origin") {
        return Ok(());
    }
    match origin(headers) {
        Some(o) if trusted(o, headers, allowed) => Ok(()),
        Some(o) => Err(ApiError::Forbidden(format!(
            "cross-site request refused: Origin {o:?} is neither this server nor in \
             FACTORY_ALLOWED_ORIGINS, and a change signed in with the session cookie must come \
             from this server's own pages"
        ))),
        None => Err(ApiError::Forbidden(
            "request refused: a change signed in with the session cookie needs an Origin header \
             naming this server (browsers send it); other clients should send \
             `Authorization: Bearer <token>` instead of the cookie"
                .into(),
        )),
    }
}

/// Sign-in and sign-out (no session yet, so nothing to ride on, but a foreign form could sign
/// a browser in as someone else): refused only when the browser says another site sent it.
pub fn check_sign_in(headers: &HeaderMap, allowed: &[String]) -> Result<(), ApiError> {
    if fetch_site(headers) == Some("same-origin") {
        return Ok(());
    }
    let foreign = match origin(headers) {
        Some(o) => !trusted(o, headers, allowed),
        None => matches!(fetch_site(headers), Some("cross-site" | "same-site")),
    };
    if foreign {
        Err(ApiError::Forbidden(format!(
            "cross-site sign-in refused: the form was sent from {}, not from this server's \
             /login page",
            origin(headers).unwrap_or("another site")
        )))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:3000"));
        for (name, value) in pairs {
            h.insert(*name, HeaderValue::from_static(value));
        }
        h
    }

    #[test]
    fn session_changes_need_this_origin_or_a_same_origin_fetch() {
        let allow = vec!["https://factory.example".to_string()];
        let ok = |pairs| check_session_request(&headers(pairs), &allow).is_ok();
        assert!(ok(&[("origin", "http://127.0.0.1:3000")]));
        assert!(ok(&[("origin", "https://factory.example")]));
        assert!(ok(&[("sec-fetch-site", "same-origin")]));
        // Behind a proxy that rewrites Host, the browser's own word still counts.
        assert!(ok(&[
            ("origin", "https://proxy.example"),
            ("sec-fetch-site", "same-origin")
        ]));
        assert!(!ok(&[]));
        assert!(!ok(&[("origin", "http://evil.example")]));
        assert!(!ok(&[("origin", "null")]));
        assert!(!ok(&[("origin", "http://127.0.0.1:3001")]));
        assert!(!ok(&[("sec-fetch-site", "same-site")]));
    }

    #[test]
    fn sign_in_is_refused_only_from_another_site() {
        let ok = |pairs| check_sign_in(&headers(pairs), &[]).is_ok();
        assert!(ok(&[]), "curl and old browsers send neither header");
        assert!(ok(&[("origin", "http://127.0.0.1:3000")]));
        assert!(!ok(&[("origin", "http://evil.example")]));
        assert!(!ok(&[("sec-fetch-site", "cross-site")]));
    }

    #[test]
    fn handlers_keep_their_own_headers() {
        let mut h = HeaderMap::new();
        h.insert(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("SAMEORIGIN"),
        );
        secure_headers(&mut h);
        assert_eq!(h[header::X_FRAME_OPTIONS], "SAMEORIGIN");
        assert!(
            h[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'")
        );
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    }
}
