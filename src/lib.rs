//! Browser entry point: hydrates the server-rendered dashboard, nothing else.

/// Called by the generated JS glue once the WASM module is loaded. Hydrates asynchronously: a
/// page loaded on demand (see `app::pages::lazy`) is fetched before its HTML is hydrated.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_lazy(app::App);
}
