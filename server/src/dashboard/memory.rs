//! The server's side of the memory port: the banks (one per team, then the shared one) and
//! ranked search (see `app::server_fns::memory`).

use std::sync::Arc;

use app::server_fns::PortError;
use app::server_fns::memory::{MemoryPort, MemoryResult};

use super::failure::Failure;
use crate::engine::Catalogue;
use crate::gateway::Gateway;
use crate::startup::AppState;
use crate::store::Store;
use crate::store::memory::{RecallScope, SHARED_BANK};

/// The port, with the handles it needs.
struct Memory {
    store: Store,
    gateway: Arc<Gateway>,
}

/// The memory port for the dashboard's context.
pub(super) fn port(state: &AppState) -> Arc<dyn MemoryPort> {
    Arc::new(Memory {
        store: state.store.clone(),
        gateway: state.gateway.clone(),
    })
}

impl Memory {
    fn banks() -> Result<Vec<String>, Failure> {
        let catalogue = Catalogue::builtin().map_err(|e| Failure::Catalogue(e.to_string()))?;
        let mut banks: Vec<String> = catalogue.names().into_iter().map(String::from).collect();
        banks.push(SHARED_BANK.to_string());
        Ok(banks)
    }

    async fn search(
        &self,
        q: String,
        bank: Option<String>,
        limit: u32,
    ) -> Result<Vec<MemoryResult>, Failure> {
        if let Some(bank) = &bank {
            let banks = Memory::banks()?;
            if !banks.contains(bank) {
                return Err(Failure::Refused(format!(
                    "there is no memory bank {bank:?}; the banks are {}",
                    banks.join(", ")
                )));
            }
        }
        let banks: Vec<&str> = bank.as_deref().into_iter().collect();
        let scope = RecallScope {
            banks: &banks,
            ..RecallScope::default()
        };
        let hits =
            crate::engine::memory::recall(&self.store, &self.gateway, &q, &scope, limit).await?;
        Ok(hits
            .into_iter()
            .map(|h| MemoryResult {
                item_id: h.item_id,
                bank: h.bank,
                kind: h.kind,
                text: h.text,
                project: h.project,
                run_id: h.run_id,
                created_at: h.created_at,
                score: h.score,
            })
            .collect())
    }
}

#[async_trait::async_trait]
impl MemoryPort for Memory {
    async fn memory_banks(&self) -> Result<Vec<String>, PortError> {
        Memory::banks().map_err(|e| e.into_port("memory_banks"))
    }

    async fn search_memory(
        &self,
        q: String,
        bank: Option<String>,
        limit: u32,
    ) -> Result<Vec<MemoryResult>, PortError> {
        self.search(q, bank, limit)
            .await
            .map_err(|e| e.into_port("search_memory"))
    }
}
