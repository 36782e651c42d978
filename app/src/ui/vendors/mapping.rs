//! The status mapping editor of the Vendors page, and the statuses seen but unmapped, each one
//! click from mapped.

use leptos::prelude::*;

use super::outcome_note;
use crate::domain::GlState;
use crate::server::vendors::{MapVendorStatus, MappingRow, SaveStatusMapping, VendorSettings};

/// A line of the mapping editor; `key` only tells rows apart while editing.
#[derive(Clone, Copy)]
struct EditRow {
    key: usize,
    status: RwSignal<String>,
    state: RwSignal<String>,
}

fn state_options(current: RwSignal<String>) -> impl IntoView {
    GlState::ALL
        .into_iter()
        .map(|s| {
            view! {
                <option value=s.as_str() selected=move || current.get() == s.as_str()>
                    {s.as_str()}
                </option>
            }
        })
        .collect_view()
}

pub(super) fn mapping_section(
    vendor: &VendorSettings,
    can_edit: bool,
    save: ServerAction<SaveStatusMapping>,
    map_one: ServerAction<MapVendorStatus>,
) -> AnyView {
    let id = vendor.id.clone();
    let next_key = StoredValue::new(vendor.mapping.len());
    let rows = RwSignal::new(
        vendor
            .mapping
            .iter()
            .enumerate()
            .map(|(key, row)| EditRow {
                key,
                status: RwSignal::new(row.status.clone()),
                state: RwSignal::new(row.state.clone()),
            })
            .collect::<Vec<_>>(),
    );
    let add_row = move |_: leptos::ev::MouseEvent| {
        let key = next_key.get_value();
        next_key.set_value(key + 1);
        rows.update(|r| {
            r.push(EditRow {
                key,
                status: RwSignal::new(String::new()),
                state: RwSignal::new(GlState::Pending.as_str().to_string()),
            })
        });
    };
    let save_id = id.clone();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let mapping = rows
            .get_untracked()
            .iter()
            .map(|r| MappingRow {
                status: r.status.get_untracked(),
                state: r.state.get_untracked(),
            })
            .collect();
        save.dispatch(SaveStatusMapping {
            vendor: save_id.clone(),
            mapping,
        });
    };
    let unmapped = vendor.unmapped.clone();
    let unmapped_view = if unmapped.is_empty() {
        view! { <p class="hint" data-testid="unmapped-none">"Every status seen in this vendor's records is mapped."</p> }
            .into_any()
    } else {
        let rows = unmapped
            .into_iter()
            .map(|u| {
                let choice = RwSignal::new(GlState::Pending.as_str().to_string());
                let vendor = id.clone();
                let status = u.status.clone();
                let select_label = format!("GL state for {}", u.status);
                let button_label = format!("Map {}", u.status);
                view! {
                    <tr>
                        <th scope="row"><code>{u.status.clone()}</code></th>
                        <td class="num">{u.records}</td>
                        <td>
                            <select aria-label=select_label disabled=!can_edit
                                on:change=move |ev| choice.set(event_target_value(&ev))>
                                {state_options(choice)}
                            </select>
                            {can_edit.then(|| view! {
                                <button type="button" aria-label=button_label
                                    disabled=move || map_one.pending().get()
                                    on:click=move |_| {
                                        map_one.dispatch(MapVendorStatus {
                                            vendor: vendor.clone(),
                                            status: status.clone(),
                                            state: choice.get_untracked(),
                                        });
                                    }>"Map"</button>
                            })}
                        </td>
                    </tr>
                }
            })
            .collect_view();
        view! {
            <table class="data" data-testid="unmapped">
                <thead>
                    <tr>
                        <th scope="col">"Vendor status"</th>
                        <th scope="col" class="num">"Records"</th>
                        <th scope="col">"Map to"</th>
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        }
        .into_any()
    };
    let form = view! {
        <form class="mapping" on:submit=submit>
            <fieldset disabled=!can_edit>
                <table class="data" data-testid="mapping">
                    <thead>
                        <tr>
                            <th scope="col">"Vendor status"</th>
                            <th scope="col">"GL state"</th>
                            <th scope="col"><span class="visually-hidden">"Remove"</span></th>
                        </tr>
                    </thead>
                    <tbody>
                        <For
                            each=move || rows.get()
                            key=|row| row.key
                            children=move |row| {
                                let number = move || {
                                    rows.with(|r| r.iter().position(|x| x.key == row.key).unwrap_or(0) + 1)
                                };
                                view! {
                                    <tr>
                                        <td>
                                            <input type="text"
                                                aria-label=move || format!("Vendor status, row {}", number())
                                                prop:value=row.status
                                                on:input=move |ev| row.status.set(event_target_value(&ev))/>
                                        </td>
                                        <td>
                                            <select
                                                aria-label=move || format!("GL state, row {}", number())
                                                on:change=move |ev| row.state.set(event_target_value(&ev))>
                                                {state_options(row.state)}
                                            </select>
                                        </td>
                                        <td>
                                            {can_edit.then(|| view! {
                                                <button type="button"
                                                    aria-label=move || format!("Remove row {}", number())
                                                    on:click=move |_| rows.update(|r| r.retain(|x| x.key != row.key))>
                                                    "Remove"
                                                </button>
                                            })}
                                        </td>
                                    </tr>
                                }
                                .into_any()
                            }
                        />
                    </tbody>
                </table>
                {can_edit.then(|| view! {
                    <button type="button" on:click=add_row>"Add status"</button>
                    <button type="submit" disabled=move || save.pending().get()>"Save mapping"</button>
                })}
            </fieldset>
        </form>
    }
    .into_any();
    view! {
        <h3>"Status mapping"</h3>
        <p class="hint">
            "How this vendor's order statuses count in the GL. A status not listed is unmapped: "
            "never guessed, its records land in the unmapped-status queue."
        </p>
        {outcome_note(save.value()).into_any()}
        {form}
        <h3>"Unmapped statuses seen"</h3>
        {outcome_note(map_one.value()).into_any()}
        {unmapped_view}
    }
    .into_any()
}
