//! Raw request paths that a router would normalise must never reach a page without a token.
