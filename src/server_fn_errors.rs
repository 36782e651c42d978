//! Server-function calls whose arguments cannot be read get a 400 that says what is wrong.
//!
//! Leptos decodes a server function's arguments before its body runs and answers a failure
//! with a 500, as if the server were at fault. This layer turns that answer into a 400 naming
//! the function and, for a value of the wrong type, the argument. The body keeps the server
//! function error encoding (`ServerError|message`) so the browser's stubs still read it.

use std::collections::HashSet;
use std::sync::Arc;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Arguments larger than this are refused before decoding (they are a few fields of JSON).
const MAX_ARGUMENTS_BYTES: usize = 2 * 1024 * 1024;
/// An error answer larger than this is not a decoding error: passed through untouched.
const MAX_ERROR_BYTES: usize = 64 * 1024;

/// The paths of the application's server functions.
#[derive(Clone)]
pub struct ServerFnPaths(Arc<HashSet<String>>);

impl ServerFnPaths {
    pub fn of_this_app() -> ServerFnPaths {
        ServerFnPaths(Arc::new(
            leptos::server_fn::axum::server_fn_paths()
                .map(|(path, _)| path.to_string())
                .collect(),
        ))
    }
}

pub async fn readable_argument_errors(
    State(paths): State<ServerFnPaths>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_string();
    if request.method() != Method::POST || !paths.0.contains(&path) {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let Ok(arguments) = to_bytes(body, MAX_ARGUMENTS_BYTES).await else {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            "ServerError|the arguments are too large",
        )
            .into_response();
    };
    let response = next
        .run(Request::from_parts(parts, Body::from(arguments.clone())))
        .await;
    if response.status() != StatusCode::INTERNAL_SERVER_ERROR {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(error) = to_bytes(body, MAX_ERROR_BYTES).await else {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "ServerError|internal error",
        )
            .into_response();
    };
    let Some(message) = argument_error(&path, &arguments, &error) else {
        return Response::from_parts(parts, Body::from(error));
    };
    tracing::info!(%path, %message, "server function arguments refused");
    parts.status = StatusCode::BAD_REQUEST;
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(format!("ServerError|{message}")))
}

/// The message for the caller if `error` (a server function's encoded error) says its
/// arguments could not be decoded.
fn argument_error(path: &str, arguments: &[u8], error: &[u8]) -> Option<String> {
    let error = std::str::from_utf8(error).ok()?;
    let (kind, detail) = error.split_once('|')?;
    if !matches!(kind, "Deserialization" | "Args" | "MissingArg") {
        return None;
    }
    let function = path.rsplit('/').next().unwrap_or(path);
    let function = function.trim_end_matches(|c: char| c.is_ascii_digit());
    if arguments.iter().all(u8::is_ascii_whitespace) {
        return Some(format!(
            "the arguments of {function} are missing: send a JSON object"
        ));
    }
    // serde_json says where: "… at line L column C".
    let (what, position) = match detail.rsplit_once(" at line ") {
        Some((what, position)) => (what, Some(position)),
        None => (detail, None),
    };
    if serde_json::from_slice::<serde_json::Value>(arguments).is_err() {
        // Not JSON at all: where the parser gave up is the useful part.
        return Some(format!(
            "the arguments of {function} are not valid JSON: {detail}"
        ));
    }
    // A value the function cannot take: name the argument it belongs to (a missing, unknown or
    // repeated one is named by the message already).
    let names_field = ["missing field", "unknown field", "duplicate field"]
        .iter()
        .any(|prefix| what.starts_with(prefix));
    let field = position.filter(|_| !names_field).and_then(|p| {
        let (line, column) = p.split_once(" column ")?;
        field_at(
            arguments,
            line.trim().parse().ok()?,
            column.trim().parse().ok()?,
        )
    });
    Some(match field {
        Some(field) => format!("the arguments of {function} cannot be read: `{field}`: {what}"),
        None => format!("the arguments of {function} cannot be read: {what}"),
    })
}

/// The top-level key of the JSON object `text` whose value contains line `line`, column
/// `column` (1-based, as serde_json reports them).
fn field_at(text: &[u8], line: usize, column: usize) -> Option<String> {
    let (mut at_line, mut at_column) = (1, 0);
    let mut depth = 0usize;
    let mut key: Option<String> = None;
    let mut i = 0;
    while i < text.len() {
        let byte = text[i];
        at_column += 1;
        if at_line == line && at_column >= column {
            return key;
        }
        match byte {
            b'\n' => {
                at_line += 1;
                at_column = 0;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth = depth.saturating_sub(1),
            b'"' => {
                let start = i + 1;
                i += 1;
                while i < text.len() && text[i] != b'"' {
                    i += if text[i] == b'\\' { 2 } else { 1 };
                }
                let string = String::from_utf8_lossy(&text[start..i.min(text.len())]);
                at_column += i.min(text.len()) - start + 1;
                if at_line == line && at_column >= column {
                    return key;
                }
                // A string directly inside the top-level object followed by ':' is a key.
                let rest = text.get(i + 1..).unwrap_or_default();
                let is_key = rest.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b':');
                if depth == 1 && is_key {
                    key = Some(string.into_owned());
                }
            }
            _ => {}
        }
        i += 1;
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_argument_of_a_bad_value_is_named() {
        let body = br#"{"username":"ana","role":5,"password":"x"}"#;
        let error = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(body)
            .map(|_| ())
            .and_then(|_| {
                #[derive(serde::Deserialize, Debug)]
                #[allow(dead_code)]
                struct Args {
                    username: String,
                    role: String,
                    password: String,
                }
                serde_json::from_slice::<Args>(body).map(|_| ())
            })
            .unwrap_err();
        let encoded = format!("Deserialization|{error}");
        let message = argument_error("/api/add_user", body, encoded.as_bytes()).unwrap();
        assert_eq!(
            message,
            "the arguments of add_user cannot be read: `role`: invalid type: integer `5`, expected a string"
        );
    }

    #[test]
    fn keys_are_found_across_lines_and_nesting() {
        let body = b"{\n  \"a\": {\"b\": 1},\n  \"c\": [1, 2, \"x\"]\n}";
        assert_eq!(field_at(body, 2, 13).as_deref(), Some("a"));
        assert_eq!(field_at(body, 3, 16).as_deref(), Some("c"));
        assert_eq!(
            field_at(b"{\"k\\\"ey\": 1}", 1, 11).as_deref(),
            Some("k\\\"ey")
        );
    }

    #[test]
    fn other_errors_pass_through() {
        assert_eq!(argument_error("/api/x", b"{}", b"ServerError|boom"), None);
        assert_eq!(argument_error("/api/x", b"{}", b"not encoded"), None);
        assert_eq!(
            argument_error(
                "/api/list_users",
                b"",
                b"Deserialization|EOF while parsing a value at line 1 column 0"
            )
            .unwrap(),
            "the arguments of list_users are missing: send a JSON object"
        );
    }
}
