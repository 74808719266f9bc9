//! The dashboard's pages and the frame they share.

mod approvals;
mod layout;
mod login;
mod runs;

pub use approvals::ApprovalsPage;
pub use layout::{Frame, NotFound};
pub use login::LoginPage;
pub use runs::RunsPage;
