//! The Imports page: upload a vendor file or an internal orders file (with a progress bar for
//! large files), see what it did or which lines were rejected and why, and the log of every
//! import, which refreshes after each upload.

use leptos::html::{Input, Select};
use leptos::prelude::*;
use leptos_meta::Title;

use super::export::ExportLinks;
use super::failure;
use crate::server::imports::{
    list_imports, ImportView, UploadOutcome, ORDERS_UPLOAD_PATH, VENDOR_UPLOAD_PATH,
};
use crate::server::list_vendors;

/// Where an upload is. (Only the browser build sends files; the server renders `Idle`.)
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
#[derive(Clone, Debug, PartialEq)]
enum UploadState {
    Idle,
    /// Sending; the fraction of the file sent, when the browser knows it.
    Sending(Option<f64>),
    /// The server answered: imported (`true`) or refused, with what it said.
    Answered(bool, UploadOutcome),
    /// No answer to show: the network failed, or the server's answer was not one of ours.
    Failed(String),
}

#[component]
pub fn Imports() -> impl IntoView {
    let uploads = RwSignal::new(0u32);
    let imports = Resource::new(move || uploads.get(), |_| list_imports());
    view! {
        <Title text="Imports"/>
        <h1>"Imports"</h1>
        <p class="lead">
            "Upload a vendor's reconciliation file or a file of internal orders. A file with any bad line is refused whole, "
            "naming each line; nothing is stored until every line is good. Below: every file imported, newest first. "
            "Scripts import with " <code>"giftrecon import vendor FILE --vendor V"</code> " or "
            <code>"POST /api/v1/vendors/{V}/files"</code> "."
        </p>
        <Upload on_imported=move || uploads.update(|n| *n += 1)/>
        <h2>"Import log"</h2>
        <ExportLinks table="imports" filters=Signal::stored(Vec::new())/>
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match imports.await {
                    Err(err) => view! { <p class="notice error" role="alert">{failure(&err)}</p> }.into_any(),
                    Ok(list) if list.is_empty() => view! { <p class="hint">"No imports yet."</p> }.into_any(),
                    Ok(list) => import_table(list).into_any(),
                }
            })}
        </Suspense>
    }
}

fn import_table(list: Vec<ImportView>) -> impl IntoView {
    view! {
        <table class="data" data-testid="imports">
            <thead>
                <tr>
                    <th scope="col">"When"</th>
                    <th scope="col">"Kind"</th>
                    <th scope="col">"Vendor"</th>
                    <th scope="col">"File"</th>
                    <th scope="col" class="num">"Rows"</th>
                    <th scope="col" class="num">"New"</th>
                    <th scope="col" class="num">"Updated"</th>
                    <th scope="col" class="num">"Unchanged"</th>
                    <th scope="col">"By"</th>
                </tr>
            </thead>
            <tbody>
                {list.into_iter().map(|i| view! {
                    <tr>
                        <td>{i.at}</td>
                        <td>{i.kind}</td>
                        <td>{i.vendor}</td>
                        <td title=format!("SHA-256 {}", i.sha256)>{i.file_name}</td>
                        <td class="num">{i.rows}</td>
                        <td class="num">{i.inserted}</td>
                        <td class="num">{i.updated}</td>
                        <td class="num">{i.unchanged}</td>
                        <td>{i.actor}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
    }
}

/// The upload form: which kind of file, for which vendor, the file; then progress and outcome.
#[component]
fn Upload(on_imported: impl Fn() + Copy + Send + Sync + 'static) -> impl IntoView {
    let vendors = Resource::new(|| (), |_| list_vendors());
    let kind = RwSignal::new("vendor".to_string());
    let vendor_select = NodeRef::<Select>::new();
    let state = RwSignal::new(UploadState::Idle);
    let file_input = NodeRef::<Input>::new();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if matches!(state.get_untracked(), UploadState::Sending(_)) {
            return;
        }
        let Some(input) = file_input.get_untracked() else {
            return;
        };
        let path = if kind.get_untracked() == "orders" {
            ORDERS_UPLOAD_PATH
        } else {
            VENDOR_UPLOAD_PATH
        };
        let vendor = vendor_select
            .get_untracked()
            .map(|select| select.value())
            .unwrap_or_default();
        start_upload(path, vendor, input, state, on_imported);
    };
    view! {
        <section class="card" aria-labelledby="upload-heading">
            <h2 id="upload-heading">"Upload a file"</h2>
            <form class="upload" on:submit=submit>
                <label for="upload-kind">"File kind"</label>
                <select id="upload-kind" on:change=move |ev| kind.set(event_target_value(&ev))>
                    <option value="vendor" selected>"Vendor reconciliation file (CSV or JSON)"</option>
                    <option value="orders">"Internal orders file (CSV)"</option>
                </select>
                <label for="upload-vendor">"Vendor"</label>
                <Suspense fallback=|| view! { <select id="upload-vendor" disabled></select> }>
                    {move || Suspend::new(async move {
                        match vendors.await {
                            Err(err) => view! { <p class="notice error" role="alert">{failure(&err)}</p> }.into_any(),
                            Ok(list) if list.is_empty() => view! {
                                <p class="hint">"No vendors yet: add one with " <code>"giftrecon vendor add ID"</code> "."</p>
                            }.into_any(),
                            Ok(list) => view! {
                                <select id="upload-vendor" required node_ref=vendor_select>
                                    {list.into_iter().map(|v| { let id = v.id.clone(); view! { <option value=id>{v.id}</option> } })
                                        .collect_view()}
                                </select>
                            }.into_any(),
                        }
                    })}
                </Suspense>
                <label for="upload-file">"File"</label>
                <input id="upload-file" type="file" required accept=".csv,.json,text/csv,application/json"
                    node_ref=file_input/>
                <button type="submit" disabled=move || matches!(state.get(), UploadState::Sending(_))>
                    "Upload"
                </button>
            </form>
            {move || upload_status(state.get())}
        </section>
    }
}

fn upload_status(state: UploadState) -> impl IntoView {
    match state {
        UploadState::Idle => ().into_any(),
        UploadState::Sending(fraction) => {
            let percent = fraction.map(|f| (f * 100.0).round().clamp(0.0, 100.0));
            view! {
                <div class="upload-progress" data-testid="upload-progress">
                    <label for="upload-progress-bar">"Upload progress"</label>
                    <progress id="upload-progress-bar" max="100"
                        value=percent.map(|p| p.to_string())>
                    </progress>
                    <span role="status">
                        {match percent {
                            Some(p) if p >= 100.0 => "Sent; importing…".to_string(),
                            Some(p) => format!("{p}% sent"),
                            None => "Sending…".to_string(),
                        }}
                    </span>
                </div>
            }
            .into_any()
        }
        UploadState::Answered(true, outcome) => {
            let counts = outcome.imported.clone();
            view! {
                <div class="notice ok" role="status" data-testid="upload-result">
                    <p>{outcome.message}</p>
                    {counts.map(|c| view! {
                        <dl class="facts">
                            <dt>"Rows"</dt><dd data-testid="upload-rows">{c.rows}</dd>
                            <dt>"New"</dt><dd data-testid="upload-inserted">{c.inserted}</dd>
                            <dt>"Updated"</dt><dd data-testid="upload-updated">{c.updated}</dd>
                            <dt>"Unchanged"</dt><dd data-testid="upload-unchanged">{c.unchanged}</dd>
                        </dl>
                    })}
                </div>
            }
            .into_any()
        }
        UploadState::Answered(false, outcome) => {
            let more = (outcome.more_rejected > 0).then(
                || view! { <p>{format!("…and {} more bad lines.", outcome.more_rejected)}</p> },
            );
            let lines = (!outcome.rejected.is_empty()).then(|| {
                view! {
                    <ul data-testid="rejected-lines">
                        {outcome.rejected.into_iter().map(|l| view! {
                            <li>{format!("Line {}: {}", l.line, l.reason)}</li>
                        }).collect_view()}
                    </ul>
                }
            });
            view! {
                <div class="notice error" role="alert" data-testid="upload-result">
                    <p>"Nothing was imported."</p>
                    <p>{outcome.message}</p>
                    {lines}
                    {more}
                </div>
            }
            .into_any()
        }
        UploadState::Failed(message) => view! {
            <p class="notice error" role="alert" data-testid="upload-result">{message}</p>
        }
        .into_any(),
    }
}

#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
/// The sentence for an answer that is not an [`UploadOutcome`] (a proxy's error page, say).
fn unexpected_answer(status: u16) -> String {
    match status {
        0 => "giftrecon could not be reached; check your connection and upload again".into(),
        401 => "your session has ended; sign in again and upload the file again".into(),
        403 => "your role does not allow uploading files".into(),
        413 => "the file is too large to upload; import it with the giftrecon CLI".into(),
        _ => format!("the upload failed (HTTP {status}); try again"),
    }
}

#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
/// What the server's answer means for the page.
fn answered(status: u16, body: &str) -> UploadState {
    match serde_json::from_str::<UploadOutcome>(body) {
        Ok(outcome) if !outcome.message.is_empty() => {
            UploadState::Answered((200..300).contains(&status), outcome)
        }
        _ => UploadState::Failed(unexpected_answer(status)),
    }
}

/// Sends the chosen file with `XMLHttpRequest` (whose upload progress events fetch lacks), as
/// the request body, to `path?vendor=…&name=…`.
#[cfg(feature = "hydrate")]
fn start_upload(
    path: &'static str,
    vendor: String,
    input: web_sys::HtmlInputElement,
    state: RwSignal<UploadState>,
    on_imported: impl Fn() + 'static,
) {
    use wasm_bindgen::closure::Closure;
    use wasm_bindgen::JsCast;

    use super::export::query_encode;

    let Some(file) = input.files().and_then(|files| files.get(0)) else {
        state.set(UploadState::Failed("choose a file to upload".into()));
        return;
    };
    if vendor.trim().is_empty() {
        state.set(UploadState::Failed("choose the file's vendor".into()));
        return;
    }
    let url = format!(
        "{path}?vendor={}&name={}",
        query_encode(&vendor),
        query_encode(&file.name())
    );
    let Ok(xhr) = web_sys::XmlHttpRequest::new() else {
        state.set(UploadState::Failed(unexpected_answer(0)));
        return;
    };
    let opened = xhr
        .open_with_async("POST", &url, true)
        .and_then(|_| xhr.set_request_header("X-Requested-With", "giftrecon"))
        .and_then(|_| xhr.set_request_header("Content-Type", "application/octet-stream"));
    if opened.is_err() {
        state.set(UploadState::Failed(unexpected_answer(0)));
        return;
    }
    let progress =
        Closure::<dyn FnMut(web_sys::ProgressEvent)>::new(move |event: web_sys::ProgressEvent| {
            let fraction = (event.length_computable() && event.total() > 0.0)
                .then(|| event.loaded() / event.total());
            state.set(UploadState::Sending(fraction));
        });
    if let Ok(upload) = xhr.upload() {
        upload.set_onprogress(Some(progress.as_ref().unchecked_ref()));
    }
    let finished = xhr.clone();
    // Runs once when the request ends, however it ends; then frees the progress handler.
    let done = Closure::once_into_js(move || {
        drop(progress);
        let status = finished.status().unwrap_or(0);
        let body = finished.response_text().ok().flatten().unwrap_or_default();
        let outcome = answered(status, &body);
        let imported = matches!(outcome, UploadState::Answered(true, _));
        state.set(outcome);
        if imported {
            on_imported();
        }
    });
    xhr.set_onloadend(Some(done.unchecked_ref()));
    state.set(UploadState::Sending(Some(0.0)));
    let blob: &web_sys::Blob = &file;
    if xhr.send_with_opt_blob(Some(blob)).is_err() {
        state.set(UploadState::Failed(unexpected_answer(0)));
    }
}

/// Uploads only happen in the browser; the server renders the form.
#[cfg(not(feature = "hydrate"))]
fn start_upload(
    _path: &'static str,
    _vendor: String,
    _input: leptos::web_sys::HtmlInputElement,
    _state: RwSignal<UploadState>,
    _on_imported: impl Fn() + 'static,
) {
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_become_states_never_raw_text() {
        let refused = r#"{"message":"f.csv: 1 invalid row(s)","imported":null,"rejected":[{"line":3,"reason":"amount: bad"}],"more_rejected":0}"#;
        match answered(422, refused) {
            UploadState::Answered(false, o) => assert_eq!(o.rejected[0].line, 3),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            answered(403, "cross-site request refused\n"),
            UploadState::Failed("your role does not allow uploading files".into())
        );
        assert!(matches!(answered(502, "<html>"), UploadState::Failed(m) if m.contains("502")));
    }
}
