//! The Discrepancies page: the queues of a reconciled day, filtered and paginated on the server,
//! both sides of each item with the differing fields marked, and Resolve with a reason.

use leptos::prelude::*;
use leptos_meta::Title;

use super::failure;

use crate::server::discrepancies::{list_discrepancies, DiscrepancyView, ResolveDiscrepancy};

const CLASSES: [(&str, &str); 8] = [
    ("", "All classes"),
    ("vendor_only", "Vendor only"),
    ("internal_only", "Internal only"),
    ("amount_mismatch", "Amount mismatch"),
    ("currency_mismatch", "Currency mismatch"),
    ("status_mismatch", "Status mismatch"),
    ("unmapped_status", "Unmapped status"),
    ("duplicate", "Duplicate"),
];

#[component]
pub fn Discrepancies() -> impl IntoView {
    let vendor = RwSignal::new(String::new());
    let class = RwSignal::new(String::new());
    let state = RwSignal::new("open".to_string());
    let from = RwSignal::new(String::new());
    let to = RwSignal::new(String::new());
    let page = RwSignal::new(0u32);
    let resolve = ServerAction::<ResolveDiscrepancy>::new();
    let queue = Resource::new(
        move || {
            (
                vendor.get(),
                class.get(),
                state.get(),
                from.get(),
                to.get(),
                page.get(),
                resolve.version().get(),
            )
        },
        |(vendor, class, state, from, to, page, _)| {
            list_discrepancies(vendor, class, state, from, to, page)
        },
    );
    // Any filter change starts again at the first page.
    let filter = move |signal: RwSignal<String>| {
        move |ev: leptos::ev::Event| {
            signal.set(event_target_value(&ev));
            page.set(0);
        }
    };
    let resolve_error = move || {
        resolve
            .value()
            .get()
            .and_then(Result::err)
            .map(|e| view! { <p class="notice error" role="alert">{failure(&e)}</p> })
    };
    view! {
        <Title text="Discrepancies"/>
        <h1>"Discrepancies"</h1>
        <p class="lead">
            "What did not tie out when a vendor's day was reconciled: ours beside the vendor's, oldest first."
        </p>
        <form class="filters" on:submit=|ev: leptos::ev::SubmitEvent| ev.prevent_default()>
            <label for="q-vendor">"Vendor"</label>
            <input id="q-vendor" type="text" placeholder="any" prop:value=vendor
                on:change=filter(vendor)/>
            <label for="q-class">"Class"</label>
            <select id="q-class" on:change=filter(class)>
                {CLASSES
                    .iter()
                    .map(|(value, label)| view! { <option value=*value>{*label}</option> })
                    .collect_view()}
            </select>
            <label for="q-state">"Status"</label>
            <select id="q-state" on:change=filter(state)>
                <option value="open" selected>"Open"</option>
                <option value="resolved">"Resolved"</option>
                <option value="cleared">"Cleared"</option>
                <option value="all">"All"</option>
            </select>
            <label for="q-from">"From"</label>
            <input id="q-from" type="date" prop:value=from on:change=filter(from)/>
            <label for="q-to">"To"</label>
            <input id="q-to" type="date" prop:value=to on:change=filter(to)/>
        </form>
        {resolve_error}
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match queue.await {
                    Err(err) => view! { <p class="notice error" role="alert">{failure(&err)}</p> }.into_any(),
                    Ok(q) if q.items.is_empty() => view! {
                        <p class="hint">"Nothing here: no discrepancy matches these filters."</p>
                    }.into_any(),
                    Ok(q) => {
                        let (has_more, current) = (q.has_more, q.page);
                        view! {
                            <table class="queue" data-testid="queue">
                                <thead>
                                    <tr>
                                        <th scope="col">"Day"</th>
                                        <th scope="col">"Vendor"</th>
                                        <th scope="col">"Class"</th>
                                        <th scope="col">"Key"</th>
                                        <th scope="col">"Ours"</th>
                                        <th scope="col">"Vendor's"</th>
                                        <th scope="col">"Age"</th>
                                        <th scope="col">"Status"</th>
                                    </tr>
                                </thead>
                                <tbody>
                                    {q.items.into_iter().map(|item| row(item, resolve)).collect_view()}
                                </tbody>
                            </table>
                            <nav class="pager" aria-label="Pages">
                                <button type="button" disabled=current == 0
                                    on:click=move |_| page.update(|p| *p = p.saturating_sub(1))>"Previous page"</button>
                                <span>{format!("Page {}", current + 1)}</span>
                                <button type="button" disabled=!has_more
                                    on:click=move |_| page.update(|p| *p += 1)>"Next page"</button>
                            </nav>
                        }.into_any()
                    }
                }
            })}
        </Suspense>
    }
}

fn side(
    amount: Option<String>,
    currency: Option<String>,
    status: Option<String>,
    differs: &[String],
) -> impl IntoView {
    let mark = |field: &str| {
        if differs.iter().any(|d| d == field) {
            "differs"
        } else {
            ""
        }
    };
    match amount {
        None => view! { <span class="absent">"—"</span> }.into_any(),
        Some(amount) => view! {
            <span class=mark("amount")>{amount}</span>" "
            <span class=mark("currency")>{currency.unwrap_or_default()}</span>" "
            <span class=mark("status")>{status.unwrap_or_default()}</span>
        }
        .into_any(),
    }
}

fn row(item: DiscrepancyView, resolve: ServerAction<ResolveDiscrepancy>) -> impl IntoView {
    let how = RwSignal::new(String::new());
    let id = item.id;
    let ours = side(
        item.internal_amount.clone(),
        item.internal_currency.clone(),
        item.internal_gl_state.clone(),
        &item.differs,
    );
    let theirs = side(
        item.vendor_amount.clone(),
        item.vendor_currency.clone(),
        item.vendor_status.clone(),
        &item.differs,
    );
    let status = if item.state == "open" {
        view! {
            <form class="resolve" on:submit=move |ev: leptos::ev::SubmitEvent| {
                ev.prevent_default();
                resolve.dispatch(ResolveDiscrepancy { id, how: how.get_untracked() });
            }>
                <label for=format!("how-{id}")>"How it was resolved"</label>
                <input id=format!("how-{id}") type="text" required maxlength="500"
                    on:input=move |ev| how.set(event_target_value(&ev))/>
                <button type="submit">"Resolve"</button>
            </form>
        }
        .into_any()
    } else {
        let by = item
            .resolved_by
            .clone()
            .map(|b| format!(" by {b}"))
            .unwrap_or_default();
        view! {
            <span class="state">{item.state.clone()}{by}</span>
            <span class="resolution">{item.resolution.clone().unwrap_or_default()}</span>
        }
        .into_any()
    };
    view! {
        <tr data-class=item.class.clone()>
            <td>{item.date.clone()}</td>
            <td>{item.vendor.clone()}</td>
            <td>{item.class.replace('_', " ")}</td>
            <td>
                <span class="key">{item.key.clone()}</span>
                <span class="ids">{item.vendor_order_ids.clone().unwrap_or_default()}</span>
            </td>
            <td>{ours}</td>
            <td>{theirs}</td>
            <td>{format!("{} d", item.age_days)}</td>
            <td>{status}</td>
        </tr>
    }
}
