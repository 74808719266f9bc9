//! Server functions the dashboard calls. Each one runs on the server behind the same
//! authentication as the REST API (they live under `/api/`). One module per area; each area's
//! port trait (what its server functions may ask of the server, hexagonal style) lives beside
//! its functions. `app` defines the ports, the server implements them and provides them as
//! Leptos context (`server/src/dashboard/`), so no server crate (sqlx, axum, …) is ever linked
//! into the browser build.

pub mod approvals;
pub mod artifacts;
pub mod audit;
pub mod costs;
pub mod gym;
pub mod memory;
pub mod runs;
pub mod settings;

use leptos::prelude::*;

pub use approvals::{decide_approval, pending_approvals};
pub use runs::list_runs;

/// A port's failure the dashboard can show. Internal causes are logged by the server and not
/// repeated to the browser.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    #[error("internal error: the server log has the details")]
    Internal,
    /// The request was refused; the message says why and what is accepted.
    #[error("{0}")]
    Refused(String),
}

/// The port of type `T` the server provided as context (`Arc<dyn SomePort>`).
#[cfg(feature = "ssr")]
pub(crate) fn port<T: ?Sized + Send + Sync + 'static>() -> Result<std::sync::Arc<T>, ServerFnError>
{
    use_context::<std::sync::Arc<T>>()
        .ok_or_else(|| ServerFnError::new("server misconfigured: a port is missing from context"))
}

/// A port's failure as the browser sees it: the server's clear message, or an opaque internal
/// error (the cause is in the server log).
#[cfg(feature = "ssr")]
pub(crate) fn refused(e: PortError) -> ServerFnError {
    ServerFnError::new(e.to_string())
}

/// The message of a failed server function without the transport's prefix, for display.
pub fn error_text(e: &ServerFnError) -> String {
    e.to_string()
        .trim_start_matches("error running server function: ")
        .to_string()
}

/// A form field that was left empty counts as not given.
pub(crate) fn given(value: Option<String>) -> Option<String> {
    value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// `limit` (or `default`) when it lies in `1..=max`.
pub fn check_limit(limit: Option<u32>, default: u32, max: u32) -> Result<u32, String> {
    match limit.unwrap_or(default) {
        n @ 1.. if n <= max => Ok(n),
        n => Err(format!("limit {n} is out of range: give 1 to {max}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_bounded() {
        assert_eq!(check_limit(None, 50, 200), Ok(50));
        assert_eq!(check_limit(Some(200), 50, 200), Ok(200));
        assert!(
            check_limit(Some(0), 50, 200)
                .unwrap_err()
                .contains("1 to 200")
        );
        assert!(check_limit(Some(201), 50, 200).is_err());
    }
}
