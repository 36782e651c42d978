//! The Orders page (support's): find an order by any id and read its whole history.

use leptos::prelude::*;
use leptos_meta::Title;

use super::failure;

use crate::server::lookup::{LookupOrder, LookupView};

#[component]
pub fn Orders() -> impl IntoView {
    let query = RwSignal::new(String::new());
    let lookup = ServerAction::<LookupOrder>::new();
    let result = move || {
        lookup.value().get().map(|r| match r {
            Err(e) => view! { <p class="notice error" role="alert">{failure(&e)}</p> }.into_any(),
            Ok(view) => results(view).into_any(),
        })
    };
    view! {
        <Title text="Orders"/>
        <h1>"Orders"</h1>
        <p class="lead">
            "Find any order by order id, idempotency key, customer id or vendor order id, and see its whole history."
        </p>
        <form class="search" on:submit=move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            lookup.dispatch(LookupOrder { query: query.get_untracked() });
        }>
            <label for="order-search">"Search"</label>
            <input id="order-search" type="search" required maxlength="200"
                on:input=move |ev| query.set(event_target_value(&ev))/>
            <button type="submit">"Find"</button>
        </form>
        {result}
    }
}

fn results(view: LookupView) -> impl IntoView {
    if view.orders.is_empty() {
        return view! { <p class="hint">{format!("No order matches {:?}.", view.query)}</p> }
            .into_any();
    }
    let timeline = (!view.timeline.is_empty()).then(|| {
        view! {
            <section class="card" aria-labelledby="timeline-heading">
                <h2 id="timeline-heading">"History"</h2>
                <ol class="timeline" data-testid="timeline">
                    {view.timeline.into_iter().map(|e| view! {
                        <li>
                            <time>{e.at}</time>" "
                            <strong>{e.what}</strong>" "
                            <span class="detail">{e.detail}</span>
                            {e.who.map(|w| view! { <span class="who">{format!(" — {w}")}</span> })}
                        </li>
                    }).collect_view()}
                </ol>
            </section>
        }
    });
    let filters = vec![("q", view.query.clone())];
    view! {
        <super::ExportLinks table="orders" filters=Signal::stored(filters)/>
        <table class="data" data-testid="orders">
            <thead>
                <tr>
                    <th scope="col">"Order"</th>
                    <th scope="col">"Idempotency key"</th>
                    <th scope="col">"Vendor"</th>
                    <th scope="col">"Customer"</th>
                    <th scope="col" class="num">"Amount"</th>
                    <th scope="col">"Status"</th>
                    <th scope="col">"GL state"</th>
                    <th scope="col">"Vendor order"</th>
                    <th scope="col">"Created"</th>
                </tr>
            </thead>
            <tbody>
                {view.orders.into_iter().map(|o| view! {
                    <tr>
                        <th scope="row">{o.id}</th>
                        <td>{o.idempotency_key}</td>
                        <td>{o.vendor}</td>
                        <td>{o.customer_id}</td>
                        <td class="num">{format!("{} {}", o.amount, o.currency)}</td>
                        <td>{o.status}</td>
                        <td>{o.gl_state}</td>
                        <td>{o.vendor_order_id.unwrap_or_default()}</td>
                        <td>{o.created_at}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
        {timeline}
    }
    .into_any()
}
