//! Delivery: where Factory touches a user's code. Changes are made only in a worktree, checked
//! by the project's own gates in a sandbox, and committed on their own branch.

pub mod docker;
pub mod edits;
pub mod project;
pub mod publish;
pub mod repo_files;
pub mod sandbox;
pub mod toolchain;
pub mod worktree;
