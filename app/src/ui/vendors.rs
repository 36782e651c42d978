//! The Vendors page: the list, and for the vendor chosen (`?vendor=ID`) its settings, poll
//! interval, webhook URL and secrets (masked), status mapping with the statuses seen but
//! unmapped, and GL accounts.
//! Admins edit; finance sees the same page read-only. The server decides; buttons only ask.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use super::failure;

mod mapping;
use crate::domain::{Role, VendorKind};
use crate::server::vendors::{
    list_vendors, vendor_detail, AddVendor, ChangeOutcome, MapVendorStatus, RotateVendorSecret,
    SaveStatusMapping, SetVendorAccounts, SetVendorPollInterval, UpdateVendor, VendorSettings,
    VendorView, MAX_OVERLAP_HOURS, MIN_SECRET_LEN,
};
use mapping::mapping_section;

/// What a change answered, as a sentence: the server's message or its refusal.
fn outcome_note(
    value: impl Get<Value = Option<Result<ChangeOutcome, ServerFnError>>> + Send + Sync + 'static,
) -> impl IntoView {
    move || match value.get() {
        Some(Ok(done)) => Some(
            view! { <p class="notice" role="status" data-testid="outcome">{done.message}</p> }
                .into_any(),
        ),
        Some(Err(err)) => {
            Some(view! { <p class="notice error" role="alert">{failure(&err)}</p> }.into_any())
        }
        None => None,
    }
}

/// Every change the page can ask for. What is shown reloads after a change that changed
/// something; a refusal keeps what was typed, beside the reason.
#[derive(Clone, Copy)]
struct Changes {
    add: ServerAction<AddVendor>,
    update: ServerAction<UpdateVendor>,
    poll: ServerAction<SetVendorPollInterval>,
    mapping: ServerAction<SaveStatusMapping>,
    map_one: ServerAction<MapVendorStatus>,
    accounts: ServerAction<SetVendorAccounts>,
    rotate: ServerAction<RotateVendorSecret>,
    saved: RwSignal<usize>,
}

/// Counts `outcome` into `saved` whenever it reports a change made.
fn count_changes(
    outcome: impl Get<Value = Option<Result<ChangeOutcome, ServerFnError>>> + Send + Sync + 'static,
    saved: RwSignal<usize>,
) {
    Effect::new(move |_| {
        if let Some(Ok(done)) = outcome.get() {
            if done.changed {
                saved.update(|n| *n += 1);
            }
        }
    });
}

impl Changes {
    fn new() -> Changes {
        let changes = Changes {
            add: ServerAction::new(),
            update: ServerAction::new(),
            poll: ServerAction::new(),
            mapping: ServerAction::new(),
            map_one: ServerAction::new(),
            accounts: ServerAction::new(),
            rotate: ServerAction::new(),
            saved: RwSignal::new(0),
        };
        count_changes(changes.add.value(), changes.saved);
        count_changes(changes.update.value(), changes.saved);
        count_changes(changes.poll.value(), changes.saved);
        count_changes(changes.mapping.value(), changes.saved);
        count_changes(changes.map_one.value(), changes.saved);
        count_changes(changes.accounts.value(), changes.saved);
        count_changes(changes.rotate.value(), changes.saved);
        changes
    }

    /// Grows with every change made (tracked).
    fn version(&self) -> usize {
        self.saved.get()
    }
}

#[component]
pub fn Vendors() -> impl IntoView {
    let query = use_query_map();
    let selected = Memo::new(move |_| query.read().get("vendor").unwrap_or_default());
    let changes = Changes::new();
    let me = Resource::new(|| (), |_| crate::server::current_user());
    let list = Resource::new(move || changes.version(), |_| list_vendors());
    let detail = Resource::new(
        move || (selected.get(), changes.version()),
        |(vendor, _)| async move {
            if vendor.is_empty() {
                None
            } else {
                Some(vendor_detail(vendor).await)
            }
        },
    );
    // The webhook URL is on this server's own origin, as the browser reached it.
    let origin = RwSignal::new(String::new());
    Effect::new(move |_| {
        if let Ok(here) = window().location().origin() {
            origin.set(here);
        }
    });
    view! {
        <Title text="Vendors"/>
        <h1>"Vendors"</h1>
        <p class="lead">
            "Each vendor's connection, webhook secrets, status mapping and GL accounts. "
            "Choose a vendor to see (and, as an admin, change) its settings."
        </p>
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                let can_edit = matches!(me.await, Ok(Some(user)) if user.role == Role::Admin);
                let listing = match list.await {
                    Ok(vendors) if vendors.is_empty() => view! {
                        <p class="empty">"No vendors yet."</p>
                    }
                    .into_any(),
                    Ok(vendors) => vendor_table(vendors, selected.get_untracked()).into_any(),
                    Err(err) => view! { <p class="notice error" role="alert">{failure(&err)}</p> }
                        .into_any(),
                };
                view! {
                    {listing}
                    {can_edit.then(|| add_vendor_form(changes.add))}
                    {match detail.await {
                        None => None,
                        Some(Err(err)) => Some(
                            view! { <p class="notice error" role="alert">{failure(&err)}</p> }
                                .into_any(),
                        ),
                        Some(Ok(vendor)) => Some(editor(vendor, can_edit, changes, origin).into_any()),
                    }}
                }
            })}
        </Transition>
    }
}

fn vendor_table(vendors: Vec<VendorView>, selected: String) -> AnyView {
    view! {
        <table class="data" data-testid="vendors">
            <thead>
                <tr>
                    <th scope="col">"Vendor"</th>
                    <th scope="col">"Kind"</th>
                    <th scope="col">"Base URL"</th>
                    <th scope="col" class="num">"Active webhook secrets"</th>
                    <th scope="col" class="num">"Mapped statuses"</th>
                    <th scope="col">"Polled"</th>
                    <th scope="col">"Added"</th>
                </tr>
            </thead>
            <tbody>
                {vendors
                    .into_iter()
                    .map(|v| {
                        let current = (v.id == selected).then_some("page");
                        view! {
                            <tr>
                                <th scope="row">
                                    <a href=format!("/vendors?vendor={}", v.id) aria-current=current>
                                        {v.id.clone()}
                                    </a>
                                </th>
                                <td>{v.kind}</td>
                                <td>{v.base_url.unwrap_or_else(|| "—".into())}</td>
                                <td class="num">{v.active_secrets}</td>
                                <td class="num">{v.mapped_statuses}</td>
                                <td>{v.polled}</td>
                                <td>{v.created_at}</td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}

fn kind_options(current: RwSignal<String>) -> impl IntoView {
    VendorKind::ALL
        .into_iter()
        .map(|k| {
            view! {
                <option value=k.as_str() selected=move || current.get() == k.as_str()>
                    {k.as_str()}
                </option>
            }
        })
        .collect_view()
}

fn add_vendor_form(add: ServerAction<AddVendor>) -> AnyView {
    let id = RwSignal::new(String::new());
    let kind = RwSignal::new(VendorKind::Generic.as_str().to_string());
    let base_url = RwSignal::new(String::new());
    let secret = RwSignal::new(String::new());
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        add.dispatch(AddVendor {
            vendor: id.get_untracked(),
            kind: kind.get_untracked(),
            base_url: base_url.get_untracked(),
            webhook_secret: secret.get_untracked(),
        });
        secret.set(String::new());
    };
    view! {
        <section class="card" aria-labelledby="add-vendor-heading">
            <h2 id="add-vendor-heading">"Add a vendor"</h2>
            {outcome_note(add.value())}
            <form class="settings" on:submit=submit>
                <label for="add-vendor-id">"Vendor id"</label>
                <input id="add-vendor-id" type="text" required placeholder="acme"
                    prop:value=id on:input=move |ev| id.set(event_target_value(&ev))/>
                <label for="add-vendor-kind">"Kind"</label>
                <select id="add-vendor-kind" on:change=move |ev| kind.set(event_target_value(&ev))>
                    {kind_options(kind)}
                </select>
                <label for="add-vendor-url">"Base URL"</label>
                <input id="add-vendor-url" type="url" placeholder="https://api.vendor.example"
                    prop:value=base_url on:input=move |ev| base_url.set(event_target_value(&ev))/>
                <label for="add-vendor-secret">"Webhook secret (optional)"</label>
                <input id="add-vendor-secret" type="password" autocomplete="new-password"
                    prop:value=secret on:input=move |ev| secret.set(event_target_value(&ev))/>
                <button type="submit" disabled=move || add.pending().get()>"Add vendor"</button>
            </form>
        </section>
    }
    .into_any()
}

/// One vendor's settings. Controls are disabled, and buttons absent, for those who only look.
fn editor(
    vendor: VendorSettings,
    can_edit: bool,
    changes: Changes,
    origin: RwSignal<String>,
) -> impl IntoView {
    let heading = format!("Vendor {}", vendor.id);
    let path = vendor.webhook_path.clone();
    let webhook_url = move || format!("{}{}", origin.get(), path);
    view! {
        <section class="card" aria-labelledby="vendor-heading" data-testid="vendor-editor">
            <h2 id="vendor-heading">{heading}</h2>
            {(!can_edit).then(|| view! {
                <p class="hint">"Only admins change vendors; this is a read-only view."</p>
            })}
            <dl class="facts">
                <dt>"Webhook URL"</dt>
                <dd><code data-testid="webhook-url">{webhook_url}</code></dd>
                <dt>"Polling"</dt>
                <dd data-testid="polled">{vendor.polled.clone()}</dd>
                <dt>"Last poll read up to"</dt>
                <dd>{vendor.last_polled.clone().unwrap_or_else(|| "Not polled yet".into())}</dd>
            </dl>
            {settings_form(&vendor, can_edit, changes.update)}
            {poll_form(&vendor, can_edit, changes.poll)}
            {secrets_section(&vendor, can_edit, changes.rotate)}
            {mapping_section(&vendor, can_edit, changes.mapping, changes.map_one)}
            {accounts_form(&vendor, can_edit, changes.accounts)}
        </section>
    }
}

fn settings_form(
    vendor: &VendorSettings,
    can_edit: bool,
    update: ServerAction<UpdateVendor>,
) -> AnyView {
    let id = vendor.id.clone();
    let kind = RwSignal::new(vendor.kind.clone());
    let base_url = RwSignal::new(vendor.base_url.clone().unwrap_or_default());
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        update.dispatch(UpdateVendor {
            vendor: id.clone(),
            kind: kind.get_untracked(),
            base_url: base_url.get_untracked(),
        });
    };
    view! {
        <h3>"Connection"</h3>
        {outcome_note(update.value())}
        <form class="settings" on:submit=submit>
            <fieldset disabled=!can_edit>
                <label for="vendor-kind">"Kind"</label>
                <select id="vendor-kind" on:change=move |ev| kind.set(event_target_value(&ev))>
                    {kind_options(kind)}
                </select>
                <label for="vendor-base-url">"Base URL"</label>
                <input id="vendor-base-url" type="text" prop:value=base_url
                    on:input=move |ev| base_url.set(event_target_value(&ev))/>
                {can_edit.then(|| view! {
                    <button type="submit" disabled=move || update.pending().get()>"Save settings"</button>
                })}
            </fieldset>
        </form>
    }
    .into_any()
}

/// The vendor's own poll interval; empty puts it back on the server's schedule.
fn poll_form(
    vendor: &VendorSettings,
    can_edit: bool,
    poll: ServerAction<SetVendorPollInterval>,
) -> AnyView {
    let id = vendor.id.clone();
    let interval = RwSignal::new(vendor.poll_interval.clone().unwrap_or_default());
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        poll.dispatch(SetVendorPollInterval {
            vendor: id.clone(),
            interval: interval.get_untracked(),
        });
    };
    view! {
        <h3>"Polling"</h3>
        <p class="hint" id="poll-interval-hint">
            "How often giftrecon reads this vendor's reconciliation API for what webhooks missed: "
            "seconds, or with a unit (90s, 5m, 1h), from 10 seconds to a day. "
            "Leave it empty for the server's schedule."
        </p>
        {outcome_note(poll.value())}
        <form class="settings" on:submit=submit>
            <fieldset disabled=!can_edit>
                <label for="vendor-poll-interval">"Poll interval"</label>
                <input id="vendor-poll-interval" type="text" placeholder="the server's schedule"
                    aria-describedby="poll-interval-hint" prop:value=interval
                    on:input=move |ev| interval.set(event_target_value(&ev))/>
                {can_edit.then(|| view! {
                    <button type="submit" disabled=move || poll.pending().get()>"Save poll interval"</button>
                })}
            </fieldset>
        </form>
    }
    .into_any()
}

fn secrets_section(
    vendor: &VendorSettings,
    can_edit: bool,
    rotate: ServerAction<RotateVendorSecret>,
) -> AnyView {
    let id = vendor.id.clone();
    let secret = RwSignal::new(String::new());
    let overlap = RwSignal::new("24".to_string());
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        // A number the server would refuse anyway; an unreadable one is sent as too large.
        let overlap_hours = overlap.get_untracked().trim().parse().unwrap_or(u32::MAX);
        rotate.dispatch(RotateVendorSecret {
            vendor: id.clone(),
            secret: secret.get_untracked(),
            overlap_hours,
        });
        secret.set(String::new());
    };
    let summary = format!(
        "{} active webhook secret{}. Secrets are never shown; only when each was added and when it stops verifying.",
        vendor.active_secrets,
        if vendor.active_secrets == 1 { "" } else { "s" }
    );
    let rows = vendor
        .secrets
        .iter()
        .map(|s| {
            let status = match (&s.retires_at, s.active) {
                (None, _) => "active".to_string(),
                (Some(at), true) => format!("active until {at}"),
                (Some(at), false) => format!("retired {at}"),
            };
            view! {
                <tr>
                    <th scope="row">{format!("Secret {}", s.number)}</th>
                    <td>"••••••••"</td>
                    <td>{s.added_at.clone()}</td>
                    <td>{status}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <h3>"Webhook secrets"</h3>
        <p class="hint" data-testid="secret-summary">{summary}</p>
        <table class="data" data-testid="secrets">
            <thead>
                <tr>
                    <th scope="col">"Secret"</th>
                    <th scope="col">"Value"</th>
                    <th scope="col">"Added"</th>
                    <th scope="col">"Status"</th>
                </tr>
            </thead>
            <tbody>{rows}</tbody>
        </table>
        {can_edit.then(|| view! {
            {outcome_note(rotate.value())}
            <form class="settings" on:submit=submit>
                <label for="new-secret">"New webhook secret"</label>
                <input id="new-secret" type="password" autocomplete="new-password" required
                    minlength=MIN_SECRET_LEN.to_string()
                    prop:value=secret on:input=move |ev| secret.set(event_target_value(&ev))/>
                <label for="secret-overlap">"Overlap (hours)"</label>
                <input id="secret-overlap" type="number" min="0" max=MAX_OVERLAP_HOURS.to_string()
                    prop:value=overlap on:input=move |ev| overlap.set(event_target_value(&ev))/>
                <p class="hint">"The oldest active secret keeps verifying for the overlap, then retires."</p>
                <button type="submit" disabled=move || rotate.pending().get()>"Rotate secret"</button>
            </form>
        })}
    }
    .into_any()
}

fn accounts_form(
    vendor: &VendorSettings,
    can_edit: bool,
    accounts: ServerAction<SetVendorAccounts>,
) -> AnyView {
    let id = vendor.id.clone();
    let field = |value: &str| RwSignal::new(value.to_string());
    let clearing = (field(&vendor.clearing.code), field(&vendor.clearing.name));
    let payable = (field(&vendor.payable.code), field(&vendor.payable.name));
    let suspense = (field(&vendor.suspense.code), field(&vendor.suspense.name));
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        accounts.dispatch(SetVendorAccounts {
            vendor: id.clone(),
            clearing_code: clearing.0.get_untracked(),
            clearing_name: clearing.1.get_untracked(),
            payable_code: payable.0.get_untracked(),
            payable_name: payable.1.get_untracked(),
            suspense_code: suspense.0.get_untracked(),
            suspense_name: suspense.1.get_untracked(),
        });
    };
    let input = |id: &'static str, label: &'static str, value: RwSignal<String>| {
        view! {
            <label for=id>{label}</label>
            <input id=id type="text" required prop:value=value
                on:input=move |ev| value.set(event_target_value(&ev))/>
        }
    };
    view! {
        <h3>"GL accounts"</h3>
        <p class="hint">"The accounts this vendor's clearing entries use."</p>
        {outcome_note(accounts.value())}
        <form class="settings" on:submit=submit>
            <fieldset disabled=!can_edit>
                {input("clearing-code", "Clearing account code", clearing.0)}
                {input("clearing-name", "Clearing account name", clearing.1)}
                {input("payable-code", "Payable account code", payable.0)}
                {input("payable-name", "Payable account name", payable.1)}
                {input("suspense-code", "Suspense account code", suspense.0)}
                {input("suspense-name", "Suspense account name", suspense.1)}
                {can_edit.then(|| view! {
                    <button type="submit" disabled=move || accounts.pending().get()>"Save accounts"</button>
                })}
            </fieldset>
        </form>
    }
    .into_any()
}
