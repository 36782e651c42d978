//! giftrecon's application: the pure domain, storage (`ssr`), server functions and the Leptos UI.
//!
//! The domain compiles everywhere (server and browser). Storage and everything that touches the
//! database exists only with the `ssr` feature; the browser bundle is built with `hydrate`.

// Leptos views are nested types; the queue page's row view outgrows the default depth (128)
// when the browser bundle is compiled (`cargo leptos build` failed with "queries overflow the
// depth limit" in ui/discrepancies.rs).
#![recursion_limit = "256"]

pub mod domain;
pub mod server;
pub mod ui;

#[cfg(feature = "ssr")]
pub mod storage;

pub use ui::{shell, App};

/// Entry point of the browser bundle: attaches the Leptos runtime to the server-rendered page.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(App);
}
