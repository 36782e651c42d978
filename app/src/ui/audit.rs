//! The Audit log page: whether the hash chain is intact, then the trail, filtered and paged on
//! the server, newest first.

use leptos::prelude::*;
use leptos_meta::Title;

use super::failure;
use crate::server::audit::{audit_chain_status, list_audit_log, AuditPage, ChainStatus};

/// The filters as applied (the form's fields until "Apply filters").
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Filters {
    actor: String,
    action: String,
    subject: String,
    from: String,
    to: String,
}

#[component]
pub fn AuditLog() -> impl IntoView {
    let chain = Resource::new(|| (), |_| audit_chain_status());
    let applied = RwSignal::new(Filters::default());
    let page = RwSignal::new(0u32);
    let rows = Resource::new(
        move || (applied.get(), page.get()),
        |(f, page)| list_audit_log(f.actor, f.action, f.subject, f.from, f.to, page),
    );
    let [actor, action, subject, from, to] = std::array::from_fn(|_| RwSignal::new(String::new()));
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        applied.set(Filters {
            actor: actor.get_untracked(),
            action: action.get_untracked(),
            subject: subject.get_untracked(),
            from: from.get_untracked(),
            to: to.get_untracked(),
        });
        page.set(0);
    };
    let clear = move |_: leptos::ev::MouseEvent| {
        for field in [actor, action, subject, from, to] {
            field.set(String::new());
        }
        applied.set(Filters::default());
        page.set(0);
    };
    let field = |id: &'static str,
                 label: &'static str,
                 kind: &'static str,
                 value: RwSignal<String>| {
        view! {
            <label for=id>{label}</label>
            <input id=id type=kind prop:value=value on:input=move |ev| value.set(event_target_value(&ev))/>
        }
    };
    let export = Signal::derive(move || {
        let f = applied.get();
        vec![
            ("actor", f.actor),
            ("action", f.action),
            ("subject", f.subject),
            ("from", f.from),
            ("to", f.to),
        ]
    });
    view! {
        <Title text="Audit log"/>
        <h1>"Audit log"</h1>
        <Suspense fallback=|| view! { <p class="loading">"Verifying the chain…"</p> }>
            {move || Suspend::new(async move {
                match chain.await {
                    Ok(status) => {
                        let class = match status {
                            ChainStatus::Intact { .. } => "notice",
                            ChainStatus::Broken { .. } => "notice error",
                        };
                        view! { <p class=class role="status" data-testid="chain-status">{status.sentence()}</p> }
                            .into_any()
                    }
                    Err(err) => view! { <p class="notice error" role="alert">{failure(&err)}</p> }.into_any(),
                }
            })}
        </Suspense>
        <p class="lead">
            "Every sign-in, denied action and change, newest first. Each row is hash-chained to the one before, "
            "so an edited or removed row breaks the chain at that point."
        </p>
        <form class="filters" on:submit=submit aria-label="Filter the audit log">
            {field("audit-actor", "Actor", "text", actor)}
            {field("audit-action", "Action", "text", action)}
            {field("audit-subject", "Subject contains", "text", subject)}
            {field("audit-from", "From", "date", from)}
            {field("audit-to", "To", "date", to)}
            <button type="submit">"Apply filters"</button>
            <button type="button" on:click=clear>"Clear filters"</button>
        </form>
        <super::ExportLinks table="audit" filters=export/>
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match rows.await {
                    Ok(found) => audit_page(found, page).into_any(),
                    Err(err) => view! { <p class="notice error" role="alert">{failure(&err)}</p> }.into_any(),
                }
            })}
        </Transition>
    }
}

fn audit_page(found: AuditPage, page: RwSignal<u32>) -> impl IntoView {
    let current = found.page;
    let pager = view! {
        <nav class="pager" aria-label="Audit log pages">
            <button type="button" disabled={current == 0}
                on:click=move |_| page.set(current.saturating_sub(1))>"Previous page"</button>
            <span>{format!("Page {}", current + 1)}</span>
            <button type="button" disabled={!found.has_more}
                on:click=move |_| page.set(current + 1)>"Next page"</button>
        </nav>
    };
    if found.rows.is_empty() {
        return view! { <p class="empty">"No rows match these filters."</p> {pager} }.into_any();
    }
    view! {
        <table class="data" data-testid="audit-log">
            <thead>
                <tr>
                    <th scope="col" class="num">"#"</th>
                    <th scope="col">"When"</th>
                    <th scope="col">"Who"</th>
                    <th scope="col">"Action"</th>
                    <th scope="col">"Subject"</th>
                    <th scope="col">"Before"</th>
                    <th scope="col">"After"</th>
                </tr>
            </thead>
            <tbody>
                {found
                    .rows
                    .into_iter()
                    .map(|r| {
                        view! {
                            <tr>
                                <td class="num">{r.id}</td>
                                <td>{r.at}</td>
                                <td>{r.actor}</td>
                                <td>{r.action}</td>
                                <td>{r.subject}</td>
                                <td><code>{r.before.unwrap_or_default()}</code></td>
                                <td><code>{r.after.unwrap_or_default()}</code></td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
        {pager}
    }
    .into_any()
}
