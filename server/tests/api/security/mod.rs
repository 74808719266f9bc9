//! Security: one test (or a few) per hole closed, each written to fail on the code before the fix.
//! Paths and sign-in (`paths`), tokens and scopes (`tokens`), the sandbox and delivery
//! (`sandbox`), resource limits (`limits`).

mod limits;
mod paths;
mod sandbox;
mod tokens;
