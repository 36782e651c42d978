//! The Discrepancies page: the queues of reconciled days, filtered, sorted and paginated on the
//! server; both sides of each item with the differing fields marked; the one-click actions that
//! fit each item (alone or on a selection), Resolve with a reason, assignment, notes and history;
//! and keyboard navigation (j/k or arrows, Enter, x, and each action's letter).

use leptos::prelude::*;
use leptos_meta::Title;

use super::failure;

use crate::domain::queue::QueueAction;
use crate::server::discrepancies::{
    discrepancy_history, list_discrepancies, ActOnDiscrepancies, AddDiscrepancyNote,
    AssignDiscrepancy, DiscrepancyView, QueueFilter, ResolveDiscrepancy,
};

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

/// The queue's filters, each a signal bound to its control.
#[derive(Clone, Copy)]
struct Filters {
    vendor: RwSignal<String>,
    class: RwSignal<String>,
    state: RwSignal<String>,
    from: RwSignal<String>,
    to: RwSignal<String>,
    currency: RwSignal<String>,
    min_amount: RwSignal<String>,
    max_amount: RwSignal<String>,
    min_age_days: RwSignal<String>,
    assignee: RwSignal<String>,
    sort: RwSignal<String>,
    page: RwSignal<u32>,
}

impl Filters {
    fn new() -> Filters {
        let empty = || RwSignal::new(String::new());
        Filters {
            vendor: empty(),
            class: empty(),
            state: RwSignal::new("open".to_string()),
            from: empty(),
            to: empty(),
            currency: empty(),
            min_amount: empty(),
            max_amount: empty(),
            min_age_days: empty(),
            assignee: empty(),
            sort: empty(),
            page: RwSignal::new(0),
        }
    }

    fn get(&self) -> QueueFilter {
        QueueFilter {
            vendor: self.vendor.get(),
            class: self.class.get(),
            state: self.state.get(),
            from: self.from.get(),
            to: self.to.get(),
            currency: self.currency.get(),
            min_amount: self.min_amount.get(),
            max_amount: self.max_amount.get(),
            min_age_days: self.min_age_days.get(),
            assignee: self.assignee.get(),
            sort: self.sort.get(),
            page: self.page.get(),
        }
    }

    /// A change handler that sets `signal` and starts again at the first page.
    fn on_change(&self, signal: RwSignal<String>) -> impl Fn(leptos::ev::Event) + Copy {
        let page = self.page;
        move |ev| {
            signal.set(event_target_value(&ev));
            page.set(0);
        }
    }
}

/// What the page shares with each row: the actions and the selection.
#[derive(Clone, Copy)]
struct Queue {
    act: ServerAction<ActOnDiscrepancies>,
    resolve: ServerAction<ResolveDiscrepancy>,
    selected: RwSignal<Vec<i64>>,
    expanded: RwSignal<Option<i64>>,
    cursor: RwSignal<usize>,
}

#[component]
pub fn Discrepancies() -> impl IntoView {
    let f = Filters::new();
    // Links (from the overview) may choose the vendor, class and day.
    let query = leptos_router::hooks::use_query_map();
    query.with_untracked(|q| {
        for (key, signal) in [
            ("vendor", f.vendor),
            ("class", f.class),
            ("from", f.from),
            ("to", f.to),
        ] {
            if let Some(value) = q.get(key) {
                signal.set(value);
            }
        }
    });
    let q = Queue {
        act: ServerAction::<ActOnDiscrepancies>::new(),
        resolve: ServerAction::<ResolveDiscrepancy>::new(),
        selected: RwSignal::new(Vec::new()),
        expanded: RwSignal::new(None),
        cursor: RwSignal::new(0),
    };
    let changed = RwSignal::new(0u32);
    let queue = Resource::new(
        move || {
            (
                f.get(),
                q.resolve.version().get(),
                q.act.version().get(),
                changed.get(),
            )
        },
        |(filter, ..)| list_discrepancies(filter),
    );
    let items = move || {
        queue
            .get()
            .and_then(Result::ok)
            .map(|v| v.items)
            .unwrap_or_default()
    };
    let resolve_error = move || {
        q.resolve
            .value()
            .get()
            .and_then(Result::err)
            .map(|e| view! { <p class="notice error" role="alert">{failure(&e)}</p> })
    };
    let on_key = move |ev: leptos::ev::KeyboardEvent| {
        // Typing in a field is typing, not a shortcut.
        let typing = ev
            .target()
            .and_then(|t| wasm_target_tag(&t))
            .is_some_and(|tag| matches!(tag.as_str(), "INPUT" | "SELECT" | "TEXTAREA"));
        if typing || ev.ctrl_key() || ev.meta_key() || ev.alt_key() {
            return;
        }
        let list = items();
        if list.is_empty() {
            return;
        }
        let at = q.cursor.get_untracked().min(list.len() - 1);
        let item = &list[at];
        let key = ev.key();
        match key.as_str() {
            "j" | "ArrowDown" => q.cursor.set((at + 1).min(list.len() - 1)),
            "k" | "ArrowUp" => q.cursor.set(at.saturating_sub(1)),
            "Enter" => q.expanded.update(|e| {
                *e = if *e == Some(item.id) {
                    None
                } else {
                    Some(item.id)
                }
            }),
            "x" => toggle(q.selected, item.id),
            other => {
                let Some(action) = item
                    .actions
                    .iter()
                    .copied()
                    .find(|a| other.len() == 1 && other.starts_with(a.shortcut()))
                else {
                    return;
                };
                if action.needs_reason() {
                    // Open the item so the reason can be written; the button does the rest.
                    q.expanded.set(Some(item.id));
                } else {
                    q.act.dispatch(ActOnDiscrepancies {
                        ids: vec![item.id],
                        action: action.as_str().to_string(),
                        reason: String::new(),
                    });
                }
            }
        }
        ev.prevent_default();
    };
    view! {
        <Title text="Discrepancies"/>
        <h1>"Discrepancies"</h1>
        <p class="lead">
            "What did not tie out when a vendor's day was reconciled: ours beside the vendor's. "
            "Keys: j/k or arrows move, Enter opens, x selects, and each action's letter does it."
        </p>
        <FilterForm f=f/>
        <super::ExportLinks table="discrepancies" filters=Signal::derive(move || super::export::queue_filters(&f.get()))/>
        {resolve_error}
        <Outcomes act=q.act/>
        <BulkBar q=q/>
        <div class="queue-keys" tabindex="0" on:keydown=on_key aria-label="Queue (keyboard: j, k, Enter, x)">
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match queue.await {
                    Err(err) => view! { <p class="notice error" role="alert">{failure(&err)}</p> }.into_any(),
                    Ok(v) if v.items.is_empty() => view! {
                        <p class="hint">"Nothing here: no discrepancy matches these filters."</p>
                    }.into_any(),
                    Ok(v) => {
                        let (has_more, current) = (v.has_more, v.page);
                        let page = f.page;
                        view! {
                            <table class="queue" data-testid="queue">
                                <thead>
                                    <tr>
                                        <th scope="col"><span class="visually-hidden">"Selected"</span></th>
                                        <th scope="col">"Day"</th>
                                        <th scope="col">"Vendor"</th>
                                        <th scope="col">"Class"</th>
                                        <th scope="col">"Key"</th>
                                        <th scope="col">"Ours"</th>
                                        <th scope="col">"Vendor's"</th>
                                        <th scope="col" class="num">"At stake"</th>
                                        <th scope="col">"Age"</th>
                                        <th scope="col">"Assignee"</th>
                                        <th scope="col">"Status"</th>
                                    </tr>
                                </thead>
                                <tbody>
                                    {v.items
                                        .into_iter()
                                        .enumerate()
                                        .map(|(i, item)| row(i, item, q, changed))
                                        .collect_view()}
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
        </div>
    }
}

/// The tag name of an event's target element (upper case), in the browser.
fn wasm_target_tag(target: &leptos::web_sys::EventTarget) -> Option<String> {
    use leptos::wasm_bindgen::JsCast;
    target
        .dyn_ref::<leptos::web_sys::Element>()
        .map(|e| e.tag_name())
}

fn toggle(selected: RwSignal<Vec<i64>>, id: i64) {
    selected.update(|s| {
        if let Some(at) = s.iter().position(|x| *x == id) {
            s.remove(at);
        } else {
            s.push(id);
        }
    });
}

#[component]
fn FilterForm(f: Filters) -> impl IntoView {
    view! {
        <form class="filters" on:submit=|ev: leptos::ev::SubmitEvent| ev.prevent_default()>
            <label for="q-vendor">"Vendor"</label>
            <input id="q-vendor" type="text" placeholder="any" prop:value=f.vendor
                on:change=f.on_change(f.vendor)/>
            <label for="q-class">"Class"</label>
            <select id="q-class" on:change=f.on_change(f.class)>
                {CLASSES
                    .iter()
                    .map(|(value, label)| {
                        let selected = *value == f.class.get_untracked();
                        view! { <option value=*value selected=selected>{*label}</option> }
                    })
                    .collect_view()}
            </select>
            <label for="q-state">"Status"</label>
            <select id="q-state" on:change=f.on_change(f.state)>
                <option value="open" selected>"Open"</option>
                <option value="resolved">"Resolved"</option>
                <option value="cleared">"Cleared"</option>
                <option value="all">"All"</option>
            </select>
            <label for="q-from">"From"</label>
            <input id="q-from" type="date" prop:value=f.from on:change=f.on_change(f.from)/>
            <label for="q-to">"To"</label>
            <input id="q-to" type="date" prop:value=f.to on:change=f.on_change(f.to)/>
            <label for="q-currency">"Currency"</label>
            <input id="q-currency" type="text" size="4" maxlength="3" placeholder="any"
                prop:value=f.currency on:change=f.on_change(f.currency)/>
            <label for="q-min">"Amount from"</label>
            <input id="q-min" type="text" inputmode="decimal" size="8" prop:value=f.min_amount
                on:change=f.on_change(f.min_amount)/>
            <label for="q-max">"Amount to"</label>
            <input id="q-max" type="text" inputmode="decimal" size="8" prop:value=f.max_amount
                on:change=f.on_change(f.max_amount)/>
            <label for="q-age">"Open at least (days)"</label>
            <input id="q-age" type="number" min="0" size="4" prop:value=f.min_age_days
                on:change=f.on_change(f.min_age_days)/>
            <label for="q-assignee">"Assigned to"</label>
            <select id="q-assignee" on:change=f.on_change(f.assignee)>
                <option value="" selected>"Anyone"</option>
                <option value="me">"Me"</option>
                <option value="nobody">"Nobody"</option>
            </select>
            <label for="q-sort">"Sort by"</label>
            <select id="q-sort" on:change=f.on_change(f.sort)>
                <option value="day" selected>"Day"</option>
                <option value="oldest">"Oldest first"</option>
                <option value="newest">"Newest first"</option>
                <option value="amount">"Largest amount"</option>
            </select>
        </form>
    }
}

/// What the last action did, item by item.
#[component]
fn Outcomes(act: ServerAction<ActOnDiscrepancies>) -> impl IntoView {
    move || {
        act.value().get().map(|result| match result {
            Err(err) => {
                view! { <p class="notice error" role="alert">{failure(&err)}</p> }.into_any()
            }
            Ok(results) => view! {
                <ul class="outcomes" role="status" data-testid="outcomes">
                    {results
                        .into_iter()
                        .map(|r| {
                            let class = if r.ok { "ok" } else { "refused" };
                            view! { <li class=class>{format!("#{}: {}", r.id, r.message)}</li> }
                        })
                        .collect_view()}
                </ul>
            }
            .into_any(),
        })
    }
}

/// Acting on every selected item at once.
#[component]
fn BulkBar(q: Queue) -> impl IntoView {
    let action = RwSignal::new(String::new());
    let reason = RwSignal::new(String::new());
    let count = move || q.selected.with(Vec::len);
    view! {
        <Show when=move || { count() > 0 }>
            <form class="bulk" aria-label="Selected items" on:submit=move |ev: leptos::ev::SubmitEvent| {
                ev.prevent_default();
                q.act.dispatch(ActOnDiscrepancies {
                    ids: q.selected.get_untracked(),
                    action: action.get_untracked(),
                    reason: reason.get_untracked(),
                });
                q.selected.set(Vec::new());
            }>
                <span>{move || format!("{} selected", count())}</span>
                <label for="bulk-action">"Action"</label>
                <select id="bulk-action" required on:change=move |ev| action.set(event_target_value(&ev))>
                    <option value="" selected disabled>"Choose…"</option>
                    {QueueAction::ALL
                        .into_iter()
                        .map(|a| view! { <option value=a.as_str()>{a.label()}</option> })
                        .collect_view()}
                </select>
                <label for="bulk-reason">"Reason"</label>
                <input id="bulk-reason" type="text" maxlength="500"
                    on:input=move |ev| reason.set(event_target_value(&ev))/>
                <button type="submit" disabled=move || q.act.pending().get()>"Apply to selected"</button>
                <button type="button" on:click=move |_| q.selected.set(Vec::new())>"Clear selection"</button>
            </form>
        </Show>
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

fn row(index: usize, item: DiscrepancyView, q: Queue, changed: RwSignal<u32>) -> AnyView {
    let how = RwSignal::new(String::new());
    let reason = RwSignal::new(String::new());
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
    let needs_reason = item.actions.iter().any(|a| a.needs_reason());
    let buttons = item
        .actions
        .iter()
        .map(|a| {
            let action = *a;
            view! {
                <button type="button" class="act" data-action=action.as_str()
                    aria-keyshortcuts=action.shortcut().to_string()
                    disabled=move || q.act.pending().get()
                    on:click=move |_| {
                        q.act.dispatch(ActOnDiscrepancies {
                            ids: vec![id],
                            action: action.as_str().to_string(),
                            reason: reason.get_untracked(),
                        });
                    }>{action.label()}</button>
            }
        })
        .collect_view();
    let write_off = item.write_off_by.clone().map(|by| {
        view! {
            <span class="pending-approval">
                {format!("Write-off requested by {by}: {}", item.write_off_reason.clone().unwrap_or_default())}
            </span>
        }
    });
    let status = if item.state == "open" {
        view! {
            <div class="actions">
                {write_off}
                {needs_reason.then(|| view! {
                    <label for=format!("reason-{id}")>"Reason"</label>
                    <input id=format!("reason-{id}") type="text" maxlength="500"
                        on:input=move |ev| reason.set(event_target_value(&ev))/>
                })}
                {buttons}
            </div>
            {item.can_resolve.then(|| view! {
            <form class="resolve" on:submit=move |ev: leptos::ev::SubmitEvent| {
                ev.prevent_default();
                q.resolve.dispatch(ResolveDiscrepancy { id, how: how.get_untracked() });
            }>
                <label for=format!("how-{id}")>"How it was resolved"</label>
                <input id=format!("how-{id}") type="text" required maxlength="500"
                    on:input=move |ev| how.set(event_target_value(&ev))/>
                <button type="submit">"Resolve"</button>
            </form>
            })}
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
    let expanded = move || q.expanded.get() == Some(id);
    view! {
        <tr data-class=item.class.clone() data-id=id
            class:cursor=move || q.cursor.get() == index
            class:selected=move || q.selected.with(|s| s.contains(&id))>
            <td>
                <input type="checkbox" aria-label=format!("Select discrepancy {id}")
                    prop:checked=move || q.selected.with(|s| s.contains(&id))
                    on:change=move |_| toggle(q.selected, id)/>
            </td>
            <td>{item.date.clone()}</td>
            <td>{item.vendor.clone()}</td>
            <td>{item.class.replace('_', " ")}</td>
            <td>
                <span class="key">{item.key.clone()}</span>
                <span class="ids">{item.vendor_order_ids.clone().unwrap_or_default()}</span>
            </td>
            <td>{ours}</td>
            <td>{theirs}</td>
            <td class="num">{item.at_stake.clone().unwrap_or_default()}</td>
            <td>{format!("{} d", item.age_days)}</td>
            <td>{item.assignee.clone().unwrap_or_else(|| "—".into())}</td>
            <td>
                {status}
                <button type="button" class="link" aria-expanded=move || expanded().to_string()
                    on:click=move |_| q.expanded.update(|e| *e = if *e == Some(id) { None } else { Some(id) })>
                    "History"
                </button>
            </td>
        </tr>
        <Show when=expanded>
            <tr class="details">
                <td colspan="11">{view! { <ItemDetails id=id changed=changed/> }.into_any()}</td>
            </tr>
        </Show>
    }
    .into_any()
}

/// An item's history, with notes and assignment.
#[component]
fn ItemDetails(id: i64, changed: RwSignal<u32>) -> impl IntoView {
    let note = ServerAction::<AddDiscrepancyNote>::new();
    let assign = ServerAction::<AssignDiscrepancy>::new();
    let history = Resource::new(
        move || (note.version().get(), assign.version().get()),
        move |_| discrepancy_history(id),
    );
    let text = RwSignal::new(String::new());
    let who = RwSignal::new(String::new());
    // An assignment shows in the queue's Assignee column.
    Effect::new(move |_| {
        if assign.value().get().is_some_and(|r| r.is_ok()) {
            changed.update(|c| *c += 1);
        }
    });
    let error = move || {
        let failed = note
            .value()
            .get()
            .and_then(Result::err)
            .or_else(|| assign.value().get().and_then(Result::err));
        failed.map(|e| view! { <p class="notice error" role="alert">{failure(&e)}</p> })
    };
    view! {
        <section class="item-details" aria-label=format!("Discrepancy {id}")>
            {error}
            <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match history.await {
                        Err(err) => view! { <p class="notice error" role="alert">{failure(&err)}</p> }.into_any(),
                        Ok(entries) => view! {
                            <ol class="history" data-testid="history">
                                {entries.into_iter().map(|e| view! {
                                    <li>
                                        <time>{e.at}</time>" "
                                        <strong>{e.kind.replace('_', " ")}</strong>" "
                                        <span class="actor">{e.actor}</span>": "
                                        <span>{e.detail}</span>
                                    </li>
                                }).collect_view()}
                            </ol>
                        }.into_any(),
                    }
                })}
            </Suspense>
            <form class="note" on:submit=move |ev: leptos::ev::SubmitEvent| {
                ev.prevent_default();
                note.dispatch(AddDiscrepancyNote { id, note: text.get_untracked() });
            }>
                <label for=format!("note-{id}")>"Note"</label>
                <input id=format!("note-{id}") type="text" required maxlength="2000"
                    on:input=move |ev| text.set(event_target_value(&ev))/>
                <button type="submit">"Add note"</button>
            </form>
            <form class="assign" on:submit=move |ev: leptos::ev::SubmitEvent| {
                ev.prevent_default();
                assign.dispatch(AssignDiscrepancy { id, assignee: who.get_untracked() });
            }>
                <label for=format!("assignee-{id}")>"Assign to"</label>
                <input id=format!("assignee-{id}") type="text" placeholder="username, empty for nobody"
                    on:input=move |ev| who.set(event_target_value(&ev))/>
                <button type="submit">"Assign"</button>
                <button type="button" on:click=move |_| {
                    assign.dispatch(AssignDiscrepancy { id, assignee: "me".into() });
                }>"Assign to me"</button>
            </form>
        </section>
    }
}
