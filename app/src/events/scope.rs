//! What an API token may do: its scope, stored with the token and recorded in its events.

use serde::{Deserialize, Serialize};

/// What a token may do. Each scope includes the ones before it: an operator may do all a
/// viewer may, an admin all an operator may.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum TokenScope {
    /// Reads runs, approvals, costs, memory, settings and the audit log.
    Viewer,
    /// Also starts and cancels runs and decides approvals.
    Operator,
    /// Everything, including settings and projects (what every token could do before scopes).
    #[default]
    Admin,
}

impl TokenScope {
    /// Every scope, weakest first.
    pub const ALL: [TokenScope; 3] = [TokenScope::Viewer, TokenScope::Operator, TokenScope::Admin];

    /// The stored and displayed name: `viewer`, `operator` or `admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenScope::Viewer => "viewer",
            TokenScope::Operator => "operator",
            TokenScope::Admin => "admin",
        }
    }
}

impl std::fmt::Display for TokenScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A scope name that is none of `viewer`, `operator`, `admin`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown scope {0:?}: use viewer, operator or admin")]
pub struct UnknownScope(pub String);

impl std::str::FromStr for TokenScope {
    type Err = UnknownScope;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TokenScope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or_else(|| UnknownScope(s.to_string()))
    }
}
