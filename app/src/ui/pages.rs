//! One component per page. Data comes from server functions; nothing here holds business rules.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::domain::Role;
use crate::server::admin::{list_users, AddUser, DisableUser};
use crate::server::{system_status, InstallationSummary};

/// Shows a server function's failure as a sentence, never as a raw error.
fn error_note(err: ServerFnError) -> impl IntoView {
    view! { <p class="notice error" role="alert">{super::failure(&err)}</p> }
}

#[component]
pub fn Overview() -> impl IntoView {
    let status = Resource::new(|| (), |_| system_status());
    let overview = Resource::new(
        || (),
        |_| crate::server::overview::reconciliation_overview(),
    );
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
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                overview.await.ok().map(|vendors| {
                    let choices: Vec<(String, Option<String>)> = vendors
                        .iter()
                        .map(|v| (v.vendor.clone(), v.days.first().map(|d| d.date.clone())))
                        .collect();
                    let glance = (!choices.is_empty()).then(|| view! { <DayAtAGlance choices/> });
                    let cards = vendors
                        .into_iter()
                        .filter(|v| !v.days.is_empty() || v.polled_to.is_some() || v.last_webhook_at.is_some())
                        .map(vendor_days)
                        .collect_view();
                    view! { {glance} {cards} }
                })
            })}
        </Suspense>
    }
}

/// One vendor's day, chosen: match rate, open discrepancies by class with what they put at
/// stake, and the daily totals side by side.
#[component]
fn DayAtAGlance(choices: Vec<(String, Option<String>)>) -> impl IntoView {
    use crate::server::overview::day_overview;
    let first = choices.first().cloned().unwrap_or_default();
    let vendor = RwSignal::new(first.0);
    let date = RwSignal::new(first.1.unwrap_or_default());
    let latest: Vec<(String, String)> = choices
        .iter()
        .filter_map(|(v, d)| d.clone().map(|d| (v.clone(), d)))
        .collect();
    let day = Resource::new(
        move || (vendor.get(), date.get()),
        |(vendor, date)| async move {
            if date.is_empty() {
                Ok(None)
            } else {
                day_overview(vendor, date).await.map(Some)
            }
        },
    );
    view! {
        <section class="card" aria-labelledby="day-heading" data-testid="day-overview">
            <h2 id="day-heading">"Day at a glance"</h2>
            <form class="filters" on:submit=|ev: leptos::ev::SubmitEvent| ev.prevent_default()>
                <label for="day-vendor">"Vendor"</label>
                <select id="day-vendor" on:change=move |ev| {
                    let v = event_target_value(&ev);
                    // A vendor's own latest reconciled day is the natural start.
                    if let Some((_, d)) = latest.iter().find(|(id, _)| *id == v) {
                        date.set(d.clone());
                    }
                    vendor.set(v);
                }>
                    {choices.iter().map(|(v, _)| {
                        let selected = *v == vendor.get_untracked();
                        view! { <option value=v.clone() selected=selected>{v.clone()}</option> }
                    }).collect_view()}
                </select>
                <label for="day-date">"Day"</label>
                <input id="day-date" type="date" prop:value=date
                    on:change=move |ev| date.set(event_target_value(&ev))/>
            </form>
            <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match day.await {
                        Err(err) => error_note(err).into_any(),
                        Ok(None) => view! { <p class="hint">"Choose a day."</p> }.into_any(),
                        Ok(Some(d)) => day_glance(d).into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}

fn day_glance(d: crate::server::overview::DayFigures) -> impl IntoView {
    if !d.reconciled {
        return view! {
            <p class="hint">{format!("{} has not been reconciled for {} yet.", d.date, d.vendor)}</p>
        }
        .into_any();
    }
    let rate = format!(
        "{}.{:02}%",
        d.match_basis_points / 100,
        d.match_basis_points % 100
    );
    view! {
        <p class="facts">"Match rate " <strong data-testid="match-rate">{rate}</strong></p>
        <div class="glance">
            <table class="data" data-testid="day-counts">
                <caption>"Last run, by class"</caption>
                <tbody>
                    {d.counts.into_iter().map(|(class, n)| view! {
                        <tr data-class=class.clone()>
                            <th scope="row">{class.replace('_', " ")}</th>
                            <td class="num">{n}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
            <table class="data" data-testid="day-open">
                <caption>"Open now"</caption>
                <thead>
                    <tr>
                        <th scope="col">"Class"</th>
                        <th scope="col" class="num">"Items"</th>
                        <th scope="col" class="num">"At stake"</th>
                    </tr>
                </thead>
                <tbody>
                    {d.open.is_empty().then(|| view! { <tr><td colspan="3">"Nothing open."</td></tr> })}
                    {d.open.into_iter().map(|o| view! {
                        <tr data-class=o.class.clone()>
                            <th scope="row">
                                <a href=format!("/discrepancies?vendor={}&class={}&from={}&to={}", d.vendor, o.class, d.date, d.date)>{o.class.replace('_', " ")}</a>
                            </th>
                            <td class="num">{o.count}</td>
                            <td class="num">{format!("{} {}", o.amount, o.currency)}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
            <table class="data" data-testid="day-totals">
                <caption>"Fulfilled totals"</caption>
                <thead>
                    <tr>
                        <th scope="col">"Currency"</th>
                        <th scope="col" class="num">"Ours"</th>
                        <th scope="col" class="num">"Vendor's"</th>
                        <th scope="col" class="num">"Variance"</th>
                    </tr>
                </thead>
                <tbody>
                    {d.totals.into_iter().map(|t| view! {
                        <tr data-currency=t.currency.clone()>
                            <th scope="row">{t.currency.clone()}</th>
                            <td class="num">{format!("{} ({})", t.internal_amount, t.internal_count)}</td>
                            <td class="num">{format!("{} ({})", t.vendor_amount, t.vendor_count)}</td>
                            <td class="num">{t.variance}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
    .into_any()
}

/// A vendor's recent days: a match-rate line (server-rendered SVG) and the figures behind it.
fn vendor_days(v: crate::server::overview::VendorDays) -> impl IntoView {
    let heading = format!("recon-{}", v.vendor);
    let labelled = heading.clone();
    // Oldest on the left; x by position, y by match rate (100% at the top).
    let points: Vec<String> = v
        .days
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| format!("{},{}", i * 10, 100 - d.match_basis_points / 100))
        .collect();
    let width = (points.len().max(2) - 1) * 10;
    // Open discrepancies on the same axis, scaled to the busiest day.
    let most_open = v.days.iter().map(|d| d.open).max().unwrap_or(0).max(1);
    let open_points: Vec<String> = v
        .days
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| format!("{},{}", i * 10, 100 - d.open * 100 / most_open))
        .collect();
    let latest = v.days.first().cloned();
    let feeds = format!(
        "Poller: {}. Last webhook: {}.",
        match (&v.polled_to, v.poll_lag_minutes) {
            (Some(to), Some(lag)) => format!("read to {to} ({lag} min behind)"),
            _ => "not run yet".to_string(),
        },
        v.last_webhook_at
            .clone()
            .unwrap_or_else(|| "none yet".to_string())
    );
    view! {
        <section class="card" aria-labelledby=labelled>
            <h2 id=heading>{format!("Reconciliation: {}", v.vendor)}</h2>
            <p class="facts" data-testid="feeds">{feeds}</p>
            {latest.map(|d| view! {
                <p class="facts" data-testid="latest-day">
                    {format!(
                        "{}: {}.{:02}% matched, {} discrepancies{}",
                        d.date,
                        d.match_basis_points / 100,
                        d.match_basis_points % 100,
                        d.discrepancies,
                        if d.variances.is_empty() { String::new() } else { format!("; variance {}", d.variances.join(", ")) }
                    )}
                </p>
            })}
            <svg class="chart" role="img" viewBox=format!("0 0 {width} 100") preserveAspectRatio="none"
                width="300" height="80">
                <title>{format!(
                    "Match rate (solid) and open discrepancies (dashed, up to {most_open}) over the last {} reconciled days",
                    v.days.len()
                )}</title>
                <polyline fill="none" stroke="currentColor" stroke-width="2" points=points.join(" ")/>
                <polyline class="open-line" fill="none" stroke="currentColor" stroke-width="1"
                    stroke-dasharray="4 2" points=open_points.join(" ")/>
            </svg>
            <table class="data">
                <thead>
                    <tr>
                        <th scope="col">"Day"</th>
                        <th scope="col" class="num">"Matched"</th>
                        <th scope="col" class="num">"Discrepancies"</th>
                        <th scope="col" class="num">"Open"</th>
                        <th scope="col">"Variance"</th>
                    </tr>
                </thead>
                <tbody>
                    {v.days.into_iter().map(|d| view! {
                        <tr>
                            <th scope="row">{d.date}</th>
                            <td class="num">{format!("{} of {}", d.matched, d.outcomes)}</td>
                            <td class="num">{d.discrepancies}</td>
                            <td class="num">{d.open}</td>
                            <td>{d.variances.join(", ")}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </section>
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
pub fn Users() -> impl IntoView {
    let add = ServerAction::<AddUser>::new();
    let disable = ServerAction::<DisableUser>::new();
    let users = Resource::new(
        move || (add.version().get(), disable.version().get()),
        |_| list_users(),
    );
    let username = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let role = RwSignal::new(Role::Support.as_str().to_string());
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Ok(role) = Role::parse(&role.get_untracked()) else {
            return;
        };
        add.dispatch(AddUser {
            username: username.get_untracked(),
            role,
            password: password.get_untracked(),
        });
        password.set(String::new());
    };
    let outcome = move || {
        let failed = |r: Option<Result<(), ServerFnError>>| match r {
            Some(Err(err)) => Some(error_note(err)),
            _ => None,
        };
        (failed(add.value().get()), failed(disable.value().get()))
    };
    view! {
        <Title text="Users"/>
        <h1>"Users"</h1>
        {outcome}
        <form class="login" on:submit=submit>
            <label for="new-username">"Username"</label>
            <input
                id="new-username"
                type="text"
                required
                prop:value=username
                on:input=move |ev| username.set(event_target_value(&ev))
            />
            <label for="new-role">"Role"</label>
            <select id="new-role" on:change=move |ev| role.set(event_target_value(&ev))>
                {Role::ALL
                    .into_iter()
                    .map(|r| {
                        view! {
                            <option value=r.as_str() selected=move || role.get() == r.as_str()>
                                {r.label()}
                            </option>
                        }
                    })
                    .collect_view()}
            </select>
            <label for="new-password">"Password (at least 12 characters)"</label>
            <input
                id="new-password"
                type="password"
                autocomplete="new-password"
                required
                prop:value=password
                on:input=move |ev| password.set(event_target_value(&ev))
            />
            <button type="submit">"Add user"</button>
        </form>
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match users.await {
                    Ok(list) => {
                        view! {
                            <table class="data">
                                <thead>
                                    <tr>
                                        <th scope="col">"User"</th>
                                        <th scope="col">"Role"</th>
                                        <th scope="col">"Status"</th>
                                        <th scope="col">"Added"</th>
                                        <th scope="col"></th>
                                    </tr>
                                </thead>
                                <tbody>
                                    {list
                                        .into_iter()
                                        .map(|u| {
                                            let name = u.username.clone();
                                            view! {
                                                <tr>
                                                    <th scope="row">{u.username}</th>
                                                    <td>{u.role.label()}</td>
                                                    <td>{if u.disabled { "disabled" } else { "active" }}</td>
                                                    <td>{u.created_at}</td>
                                                    <td>
                                                        {(!u.disabled)
                                                            .then(|| {
                                                                view! {
                                                                    <button
                                                                        type="button"
                                                                        on:click=move |_| {
                                                                            disable
                                                                                .dispatch(DisableUser {
                                                                                    username: name.clone(),
                                                                                });
                                                                        }
                                                                    >
                                                                        "Disable"
                                                                    </button>
                                                                }
                                                            })}
                                                    </td>
                                                </tr>
                                            }
                                        })
                                        .collect_view()}
                                </tbody>
                            </table>
                        }
                            .into_any()
                    }
                    Err(err) => error_note(err).into_any(),
                }
            })}
        </Suspense>
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
