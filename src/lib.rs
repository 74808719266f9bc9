//! Browser entry point: the dashboard's islands, nothing else. Pages are rendered on the
//! server; the islands in them (see `app`) are hydrated by Leptos's island script, which calls
//! this first.

/// Called by the island script once the WASM module is loaded, before it hydrates the page's
/// islands.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_islands();
}

// The islands are exported from the `app` crate; linking it is what puts them in this module.
#[cfg(feature = "hydrate")]
pub use app::live::LiveLink;
