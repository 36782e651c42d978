//! The Daily close page: a vendor's day, totals side by side, and the clearing entries with their
//! Submit / Approve / Post / Export steps. The server decides who may do what; buttons only ask.

use leptos::prelude::*;
use leptos_meta::Title;

use super::failure;

use crate::domain::journal::EntryState;
use crate::server::close::{
    list_close, ApproveEntry, CloseView, EntryView, ExportEntry, PostEntry, ProposeClose,
    SubmitEntry,
};
use crate::server::list_vendors;

#[component]
pub fn DailyClose() -> impl IntoView {
    let vendors = Resource::new(|| (), |_| list_vendors());
    let vendor = RwSignal::new(String::new());
    let date = RwSignal::new(String::new());
    let propose = ServerAction::<ProposeClose>::new();
    let submit = ServerAction::<SubmitEntry>::new();
    let approve = ServerAction::<ApproveEntry>::new();
    let post = ServerAction::<PostEntry>::new();
    let export = ServerAction::<ExportEntry>::new();
    let day = Resource::new(
        move || {
            (
                vendor.get(),
                date.get(),
                propose.version().get(),
                submit.version().get(),
                approve.version().get(),
                post.version().get(),
            )
        },
        |(vendor, date, ..)| async move {
            if vendor.is_empty() || date.is_empty() {
                return None;
            }
            Some(list_close(vendor, date).await)
        },
    );
    let errors = move || {
        let mut messages = Vec::new();
        if let Some(Err(e)) = propose.value().get() {
            messages.push(failure(&e));
        }
        for value in [
            submit.value().get(),
            approve.value().get(),
            post.value().get(),
        ] {
            if let Some(Err(e)) = value {
                messages.push(failure(&e));
            }
        }
        if let Some(Err(e)) = export.value().get() {
            messages.push(failure(&e));
        }
        messages
            .into_iter()
            .map(|m| view! { <p class="notice error" role="alert">{m}</p> })
            .collect_view()
    };
    let exported = move || {
        export.value().get().and_then(Result::ok).map(|text| {
            view! {
                <section class="card" aria-labelledby="export-heading">
                    <h2 id="export-heading">"Exported file"</h2>
                    <pre data-testid="export">{text}</pre>
                </section>
            }
        })
    };
    let actions = EntryActions {
        submit,
        approve,
        post,
        export,
    };
    view! {
        <Title text="Daily close"/>
        <h1>"Daily close"</h1>
        <p class="lead">
            "Totals ours against the vendor's per currency, and the clearing entry to submit, approve and post."
        </p>
        <form class="login" on:submit=move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            propose.dispatch(ProposeClose { vendor: vendor.get_untracked(), date: date.get_untracked() });
        }>
            <label for="close-vendor">"Vendor"</label>
            <select id="close-vendor" on:change=move |ev| vendor.set(event_target_value(&ev))>
                <option value="">"Choose a vendor"</option>
                <Suspense fallback=|| ()>
                    {move || Suspend::new(async move {
                        vendors
                            .await
                            .unwrap_or_default()
                            .into_iter()
                            .map(|v| view! { <option value=v.id.clone()>{v.id.clone()}</option> })
                            .collect_view()
                    })}
                </Suspense>
            </select>
            <label for="close-date">"Business day"</label>
            <input id="close-date" type="date" required prop:value=date
                on:input=move |ev| date.set(event_target_value(&ev))/>
            <button type="submit">"Propose"</button>
        </form>
        {errors}
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match day.await {
                    None => view! { <p class="hint">"Choose a vendor and a day."</p> }.into_any(),
                    Some(Err(err)) => view! { <p class="notice error" role="alert">{failure(&err)}</p> }.into_any(),
                    Some(Ok(view)) => close_view(view, actions).into_any(),
                }
            })}
        </Suspense>
        {exported}
    }
}

#[derive(Clone, Copy)]
struct EntryActions {
    submit: ServerAction<SubmitEntry>,
    approve: ServerAction<ApproveEntry>,
    post: ServerAction<PostEntry>,
    export: ServerAction<ExportEntry>,
}

fn close_view(day: CloseView, actions: EntryActions) -> impl IntoView {
    let status = if day.locked {
        "Closed: every entry is posted; this day can no longer change."
    } else if !day.reconciled {
        "Not reconciled yet: reconcile this vendor's day first."
    } else {
        "Open"
    };
    let exports = (day.reconciled && !day.totals.is_empty()).then(|| {
        let filters = vec![("vendor", day.vendor.clone()), ("date", day.date.clone())];
        view! { <super::ExportLinks table="close" filters=Signal::stored(filters)/> }
    });
    view! {
        <p class="notice" data-testid="close-status">{status}</p>
        {exports}
        <table class="data">
            <thead>
                <tr>
                    <th scope="col">"Currency"</th>
                    <th scope="col" class="num">"Our orders"</th>
                    <th scope="col" class="num">"Our amount"</th>
                    <th scope="col" class="num">"Vendor orders"</th>
                    <th scope="col" class="num">"Vendor amount"</th>
                    <th scope="col" class="num">"Variance"</th>
                </tr>
            </thead>
            <tbody>
                {day.totals.into_iter().map(|t| view! {
                    <tr>
                        <th scope="row">{t.currency}</th>
                        <td class="num">{t.internal_count}</td>
                        <td class="num">{t.internal_amount}</td>
                        <td class="num">{t.vendor_count}</td>
                        <td class="num">{t.vendor_amount}</td>
                        <td class="num">{t.variance}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
        {day.entries.into_iter().map(|e| entry_card(e, actions)).collect_view()}
    }
}

fn entry_card(entry: EntryView, actions: EntryActions) -> impl IntoView {
    let id = entry.id;
    let hash = entry.content_hash.clone();
    let state = entry.state;
    let format = RwSignal::new("generic".to_string());
    let people = [
        Some(format!("prepared by {}", entry.prepared_by)),
        entry.submitted_by.map(|u| format!("submitted by {u}")),
        entry.approved_by.map(|u| format!("approved by {u}")),
        entry.posted_by.map(|u| format!("posted by {u}")),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(", ");
    view! {
        <section class="card">
            <h2>{format!("{} {} — {}", entry.journal_no, entry.currency, entry.state)}</h2>
            <p class="hint">{entry.memo}" · "{people}</p>
            <table class="data">
                <thead>
                    <tr>
                        <th scope="col">"Account"</th>
                        <th scope="col">"Name"</th>
                        <th scope="col" class="num">"Debit"</th>
                        <th scope="col" class="num">"Credit"</th>
                        <th scope="col">"Description"</th>
                    </tr>
                </thead>
                <tbody>
                    {entry.lines.into_iter().map(|l| view! {
                        <tr>
                            <td>{l.account_code}</td>
                            <td>{l.account_name}</td>
                            <td class="num">{l.debit.unwrap_or_default()}</td>
                            <td class="num">{l.credit.unwrap_or_default()}</td>
                            <td>{l.description}</td>
                        </tr>
                    }).collect_view()}
                    <tr>
                        <th scope="row" colspan="2">"Total"</th>
                        <td class="num">{entry.debit_total}</td>
                        <td class="num">{entry.credit_total}</td>
                        <td></td>
                    </tr>
                </tbody>
            </table>
            <p>
                {(state == EntryState::Draft).then(|| view! {
                    <button type="button" on:click=move |_| { actions.submit.dispatch(SubmitEntry { id }); }>"Submit"</button>
                })}
                {(state == EntryState::Submitted).then(|| view! {
                    <button type="button" on:click=move |_| {
                        actions.approve.dispatch(ApproveEntry { id, reviewed_hash: hash.clone() });
                    }>"Approve"</button>
                })}
                {(state == EntryState::Approved).then(|| view! {
                    <button type="button" on:click=move |_| { actions.post.dispatch(PostEntry { id }); }>"Post"</button>
                })}
                {(state == EntryState::Posted).then(|| view! {
                    <select aria-label="Export format" on:change=move |ev| format.set(event_target_value(&ev))>
                        <option value="generic">"Generic CSV"</option>
                        <option value="qbo">"QuickBooks Online CSV"</option>
                        <option value="xero">"Xero CSV"</option>
                    </select>
                    <button type="button" on:click=move |_| {
                        actions.export.dispatch(ExportEntry { id, format: format.get_untracked() });
                    }>"Export"</button>
                })}
            </p>
        </section>
    }
}
