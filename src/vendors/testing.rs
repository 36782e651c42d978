//! Test support for the adapters: mock vendor servers on 127.0.0.1:0 and the failure matrix
//! every adapter must classify the same way.

use std::future::Future;
use std::time::Duration;

use app::domain::{Currency, Money};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use chrono::Utc;
use secrecy::SecretString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::{VendorEndpoint, VendorError};

/// Serves `router` on an ephemeral port; returns its base URL.
pub async fn serve(router: Router) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    format!("http://{addr}")
}

/// Answers every request with the same status, headers and body.
pub async fn serve_fixed(status: u16, headers: &[(&str, &str)], body: &str) -> String {
    let status = StatusCode::from_u16(status).unwrap();
    let headers: Vec<(HeaderName, HeaderValue)> = headers
        .iter()
        .map(|(k, v)| {
            (
                HeaderName::try_from(*k).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            )
        })
        .collect();
    let body = body.to_owned();
    serve(Router::new().fallback(move || {
        let headers = headers.clone();
        let body = body.clone();
        async move {
            let mut response: Response = (status, body).into_response();
            for (k, v) in headers {
                response.headers_mut().insert(k, v);
            }
            response
        }
    }))
    .await
}

/// Answers nothing for `delay` (longer than the test timeout).
pub async fn serve_slow(delay: Duration) -> String {
    serve(Router::new().fallback(move || async move {
        tokio::time::sleep(delay).await;
        StatusCode::OK
    }))
    .await
}

/// A raw TCP server that reads the request head, writes `reply` (possibly a cut-off answer or
/// nothing at all) and closes the connection.
pub async fn serve_raw(reply: &'static [u8]) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut seen = Vec::new();
                let mut buf = [0u8; 4096];
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = socket.write_all(reply).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    format!("http://{addr}")
}

/// An endpoint with a timeout generous enough for a busy test machine.
pub fn endpoint(base_url: &str) -> VendorEndpoint {
    VendorEndpoint {
        base_url: base_url.to_owned(),
        api_key: Some(SecretString::from("test-api-key")),
        timeout: Duration::from_secs(10),
    }
}

/// An endpoint whose timeout a slow server exceeds.
fn short_timeout_endpoint(base_url: &str) -> VendorEndpoint {
    VendorEndpoint {
        timeout: Duration::from_millis(300),
        ..endpoint(base_url)
    }
}

pub fn usd(amount: &str) -> Money {
    Money::parse(amount, Currency::USD).unwrap()
}

/// An IMF-fixdate `seconds` from now, for `Retry-After`.
pub fn http_date_in(seconds: i64) -> String {
    (Utc::now() + chrono::Duration::seconds(seconds))
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

/// Runs `call` against mock servers that fail in every generic way and checks the
/// classification: timeout, dropped connection, cut-off body, 500/502/504, 503 with
/// delta-seconds `Retry-After`, 429 with an HTTP-date `Retry-After`, 404 and an unreadable 2xx
/// body. `call` performs one adapter operation against the given endpoint.
pub async fn assert_failure_matrix<F, Fut, T>(call: F)
where
    F: Fn(VendorEndpoint) -> Fut,
    Fut: Future<Output = Result<T, VendorError>>,
    T: std::fmt::Debug,
{
    let unknown = |result: Result<T, VendorError>, what: &str| match result {
        Err(VendorError::Unknown { .. }) => {}
        other => panic!("{what}: expected Unknown, got {other:?}"),
    };

    let slow = serve_slow(Duration::from_secs(30)).await;
    unknown(call(short_timeout_endpoint(&slow)).await, "timeout");
    unknown(
        call(endpoint(&serve_raw(b"").await)).await,
        "connection dropped",
    );
    unknown(
        call(endpoint(&serve_raw(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 500\r\n\r\n{\"vendor_order_id\":").await)).await,
        "body cut off",
    );
    for status in [500, 502, 504] {
        unknown(
            call(endpoint(&serve_fixed(status, &[], "oops").await)).await,
            &status.to_string(),
        );
    }

    match call(endpoint(
        &serve_fixed(503, &[("retry-after", "7")], "").await,
    ))
    .await
    {
        Err(VendorError::Throttled { retry_after, .. }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(7)));
        }
        other => panic!("503: expected Throttled, got {other:?}"),
    }
    let date = http_date_in(120);
    match call(endpoint(
        &serve_fixed(429, &[("retry-after", &date)], "").await,
    ))
    .await
    {
        Err(VendorError::Throttled {
            retry_after: Some(after),
            ..
        }) => {
            assert!(
                after > Duration::from_secs(100) && after <= Duration::from_secs(120),
                "{after:?}"
            );
        }
        other => panic!("429: expected Throttled with a delay, got {other:?}"),
    }
    match call(endpoint(&serve_fixed(429, &[], "").await)).await {
        Err(VendorError::Throttled {
            retry_after: None, ..
        }) => {}
        other => panic!("429 without Retry-After: expected Throttled, got {other:?}"),
    }

    match call(endpoint(
        &serve_fixed(403, &[], r#"{"error":"forbidden"}"#).await,
    ))
    .await
    {
        Err(VendorError::Rejected { reason }) => assert!(reason.contains("403"), "{reason}"),
        other => panic!("403: expected Rejected, got {other:?}"),
    }
    for garbage in ["<html>hello</html>", "{\"unexpected\":true}", ""] {
        match call(endpoint(&serve_fixed(200, &[], garbage).await)).await {
            Err(VendorError::BadResponse { .. }) => {}
            other => panic!("garbage {garbage:?}: expected BadResponse, got {other:?}"),
        }
    }
}
