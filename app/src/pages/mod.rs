//! The dashboard's pages and the frame they share.

mod approvals;
mod audit;
mod chart;
mod costs;
mod gym;
mod layout;
mod login;
mod memory;
mod run;
mod runs;
mod settings;

pub use approvals::ApprovalsPage;
pub use audit::AuditPage;
pub use costs::{CostPanel, CostsPage};
pub use gym::{GymChangedPage, GymPage};
pub use layout::{ErrorBox, Frame, NotFound};
pub use login::LoginPage;
pub use memory::MemoryPage;
pub use run::RunPage;
pub use runs::RunsPage;
pub use settings::SettingsPage;
