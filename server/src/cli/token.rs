//! `factory token create`: issues an admin token and prints it once.

use std::path::Path;

use super::{Exit, open_store};

pub(super) async fn create(data_dir: &Path, label: &str) -> anyhow::Result<Exit> {
    let store = open_store(data_dir).await?;
    let issued = store.create_admin_token(label, "cli").await?;
    println!("{}", issued.secret);
    eprintln!(
        "factory: admin token {:?} created (id {}). It is shown only this once; store it safely.",
        label, issued.id
    );
    Ok(Exit::Success)
}
