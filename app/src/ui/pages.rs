//! One component per page. Data comes from server functions; nothing here holds business rules.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::server::{list_vendors, system_status, InstallationSummary, VendorView};

/// Shows a server function's failure as a sentence, never as a raw error.
fn error_note(err: ServerFnError) -> impl IntoView {
    let message = match err {
        ServerFnError::ServerError(msg) => msg,
        _ => "giftrecon could not be reached; check your connection and reload".to_string(),
    };
    view! { <p class="notice error" role="alert">{message}</p> }
}

#[component]
pub fn Overview() -> impl IntoView {
    let status = Resource::new(|| (), |_| system_status());
    view! {
        <Title text="Overview"/>
        <h1>"Overview"</h1>
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match status.await {
                    Ok(status) => system_card(status).into_any(),
                    Err(err) => error_note(err).into_any(),
                }
            })}
        </Suspense>
    }
}

fn system_card(status: InstallationSummary) -> impl IntoView {
    let next_step = if status.vendors == 0 {
        view! {
            "No vendors yet: add one with "
            <code>"giftrecon vendor add ID --base-url URL"</code>
            "."
        }
        .into_any()
    } else {
        "Match rates, open discrepancies and daily totals appear here once vendor data is reconciled."
            .into_any()
    };
    view! {
        <section class="card" aria-labelledby="system-heading">
            <h2 id="system-heading">"This installation"</h2>
            <dl class="facts">
                <dt>"Database"</dt>
                <dd data-testid="database">{status.database}</dd>
                <dt>"Vendors"</dt>
                <dd data-testid="vendor-count">{status.vendors}</dd>
                <dt>"Users"</dt>
                <dd data-testid="user-count">{status.users}</dd>
                <dt>"Version"</dt>
                <dd>{status.version}</dd>
            </dl>
            <p class="hint">{next_step}</p>
        </section>
    }
}

#[component]
pub fn Vendors() -> impl IntoView {
    let vendors = Resource::new(|| (), |_| list_vendors());
    view! {
        <Title text="Vendors"/>
        <h1>"Vendors"</h1>
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match vendors.await {
                    Ok(list) if list.is_empty() => view! {
                        <p class="empty">
                            "No vendors yet. Add one with "
                            <code>"giftrecon vendor add ID --base-url URL --webhook-secret SECRET"</code>
                            "."
                        </p>
                    }
                    .into_any(),
                    Ok(list) => vendor_table(list).into_any(),
                    Err(err) => error_note(err).into_any(),
                }
            })}
        </Suspense>
    }
}

fn vendor_table(vendors: Vec<VendorView>) -> impl IntoView {
    view! {
        <table class="data">
            <thead>
                <tr>
                    <th scope="col">"Vendor"</th>
                    <th scope="col">"Kind"</th>
                    <th scope="col">"Base URL"</th>
                    <th scope="col" class="num">"Webhook secrets"</th>
                    <th scope="col" class="num">"Mapped statuses"</th>
                    <th scope="col">"Added"</th>
                </tr>
            </thead>
            <tbody>
                {vendors
                    .into_iter()
                    .map(|v| {
                        view! {
                            <tr>
                                <th scope="row">{v.id}</th>
                                <td>{v.kind}</td>
                                <td>{v.base_url.unwrap_or_else(|| "—".into())}</td>
                                <td class="num">{v.active_secrets}</td>
                                <td class="num">{v.mapped_statuses}</td>
                                <td>{v.created_at}</td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
    }
}

/// A page whose workflow is not built yet says so plainly instead of showing invented figures.
#[component]
fn NotYet(title: &'static str, purpose: &'static str) -> impl IntoView {
    view! {
        <Title text=title/>
        <h1>{title}</h1>
        <p class="lead">{purpose}</p>
        <p class="notice">"This page is not available in this version of giftrecon yet."</p>
    }
}

#[component]
pub fn Discrepancies() -> impl IntoView {
    view! {
        <NotYet
            title="Discrepancies"
            purpose="Vendor-only, internal-only, amount, currency and status mismatches, duplicates and unmapped statuses, with one-click actions."
        />
    }
}

#[component]
pub fn DailyClose() -> impl IntoView {
    view! {
        <NotYet
            title="Daily close"
            purpose="Totals ours against the vendor's per currency, and the clearing entry to submit, approve and post."
        />
    }
}

#[component]
pub fn Orders() -> impl IntoView {
    view! {
        <NotYet
            title="Orders"
            purpose="Find any order by order id, idempotency key, customer id, vendor order id or reference, and see its whole history."
        />
    }
}

#[component]
pub fn Imports() -> impl IntoView {
    view! {
        <NotYet
            title="Imports"
            purpose="Upload vendor reconciliation files and internal order files, and review past imports."
        />
    }
}

#[component]
pub fn AuditLog() -> impl IntoView {
    view! {
        <NotYet
            title="Audit log"
            purpose="Every login, action, approval and setting change, in a hash-chained trail."
        />
    }
}

/// Sign-in: a plain form posted to `/auth/login`, so it works before the WebAssembly loads.
#[component]
pub fn Login() -> impl IntoView {
    let query = leptos_router::hooks::use_query_map();
    let problem = move || {
        query.with(|q| match q.get("error").as_deref() {
            Some("invalid") => Some("Wrong username or password."),
            Some("locked") => Some("Too many failed sign-ins. Wait a few minutes and try again."),
            Some(_) => Some("Sign-in failed. Try again."),
            None => None,
        })
    };
    view! {
        <Title text="Sign in"/>
        <h1>"Sign in"</h1>
        {move || problem().map(|text| view! { <p class="notice error" role="alert">{text}</p> })}
        <form method="post" action="/auth/login" class="login">
            <label for="username">"Username"</label>
            <input id="username" name="username" type="text" autocomplete="username" required/>
            <label for="password">"Password"</label>
            <input
                id="password"
                name="password"
                type="password"
                autocomplete="current-password"
                required
            />
            <button type="submit">"Sign in"</button>
        </form>
    }
}

#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    {
        if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
            response.set_status(axum::http::StatusCode::NOT_FOUND);
        }
    }
    view! {
        <Title text="Not found"/>
        <h1>"Page not found"</h1>
        <p>"There is no page at this address. Use the navigation to find what you need."</p>
    }
}
