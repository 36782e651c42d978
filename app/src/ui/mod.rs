//! The dashboard: a server-rendered, hydrated shell with one page per finance task.

mod audit;
mod close;
mod discrepancies;
pub mod export;
mod imports;
mod orders;
mod pages;
mod vendors;

pub use export::ExportLinks;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::components::{Route, Router, Routes, A};
use leptos_router::path;

/// The HTML document around the app, rendered on the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    // The Content-Security-Policy of this response allows inline scripts only with the nonce the
    // server chose for it; Leptos puts `use_nonce()` on its hydration and streaming scripts.
    #[cfg(feature = "ssr")]
    if let Some(nonce) = use_context::<axum::http::request::Parts>().and_then(|parts| {
        parts
            .extensions
            .get::<crate::server::auth::CspNonce>()
            .cloned()
    }) {
        provide_context(leptos::nonce::Nonce::from_value(nonce.0));
    }
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// The pages finance, support and admins work in, in the order of a working day.
const NAVIGATION: [(&str, &str); 8] = [
    ("/", "Overview"),
    ("/discrepancies", "Discrepancies"),
    ("/close", "Daily close"),
    ("/orders", "Orders"),
    ("/imports", "Imports"),
    ("/vendors", "Vendors"),
    ("/audit", "Audit log"),
    ("/users", "Users"),
];

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();

    // Effects run only in the browser, so this flips once the WebAssembly has taken over: tests
    // (and people) can tell a live page from server-rendered markup.
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    let nav_open = RwSignal::new(true);

    view! {
        <Stylesheet id="giftrecon" href="/pkg/giftrecon.css"/>
        <Title formatter=|page: String| format!("{page} · giftrecon")/>
        <Router>
            <div
                class="layout"
                class:nav-collapsed=move || !nav_open.get()
                data-hydrated=move || if hydrated.get() { "true" } else { "false" }
            >
                <header class="topbar">
                    <button
                        type="button"
                        class="nav-toggle"
                        aria-controls="primary-nav"
                        aria-expanded=move || nav_open.get().to_string()
                        aria-label=move || {
                            if nav_open.get() { "Hide navigation" } else { "Show navigation" }
                        }
                        on:click=move |_| nav_open.update(|open| *open = !*open)
                    >
                        <span aria-hidden="true">"☰"</span>
                    </button>
                    <a href="/" class="brand">"giftrecon"</a>
                    <UserMenu/>
                </header>
                <nav id="primary-nav" class="sidebar" aria-label="Primary">
                    <ul>
                        {NAVIGATION
                            .into_iter()
                            .map(|(href, label)| view! { <li><A href=href exact=true>{label}</A></li> })
                            .collect_view()}
                    </ul>
                </nav>
                <main class="content">
                    <Routes fallback=|| view! { <pages::NotFound/> }>
                        <Route path=path!("") view=pages::Overview/>
                        <Route path=path!("discrepancies") view=discrepancies::Discrepancies/>
                        <Route path=path!("close") view=close::DailyClose/>
                        <Route path=path!("orders") view=orders::Orders/>
                        <Route path=path!("imports") view=imports::Imports/>
                        <Route path=path!("vendors") view=vendors::Vendors/>
                        <Route path=path!("audit") view=audit::AuditLog/>
                        <Route path=path!("users") view=pages::Users/>
                        <Route path=path!("login") view=pages::Login/>
                    </Routes>
                </main>
            </div>
        </Router>
    }
}

/// Who is signed in, and the way out. Signing out is a POST (a link could be forged by any page).
#[component]
fn UserMenu() -> impl IntoView {
    let me = Resource::new(|| (), |_| crate::server::current_user());
    view! {
        <div class="user-menu">
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    match me.await {
                        Ok(Some(user)) => view! {
                            <span class="whoami" data-testid="whoami">
                                {user.username} " · " {user.role.label()}
                            </span>
                            <form method="post" action="/auth/logout" class="sign-out">
                                <button type="submit">"Sign out"</button>
                            </form>
                        }
                        .into_any(),
                        _ => view! { <a href="/login">"Sign in"</a> }.into_any(),
                    }
                })}
            </Suspense>
        </div>
    }
}

/// A server function's failure as a sentence (the server's message), never a raw error.
pub(crate) fn failure(err: &ServerFnError) -> String {
    match err {
        ServerFnError::ServerError(msg) => msg.clone(),
        _ => "giftrecon could not be reached; check your connection and reload".to_string(),
    }
}
