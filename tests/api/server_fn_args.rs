//! Server functions answer arguments they cannot read with a 400 that says what is wrong.

use app::domain::Role;
use leptos::server_fn::ServerFn;

use crate::helpers::{TestApp, TestDb};
use crate::on_both_backends;

on_both_backends!(undecodable_arguments_get_a_400_naming_the_problem);

async fn undecodable_arguments_get_a_400_naming_the_problem(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let admin = app.signed_in(Role::Admin).await;
    let paths: Vec<String> = leptos::server_fn::axum::server_fn_paths()
        .map(|(path, _)| path.to_string())
        .collect();
    assert!(paths.len() >= 7, "{paths:?}");
    // Every server function, with a body that is not JSON, and with JSON that is not an object.
    for path in &paths {
        let name = path
            .rsplit('/')
            .next()
            .unwrap()
            .trim_end_matches(|c: char| c.is_ascii_digit());
        for body in ["this is not json", "[1, 2, 3]", ""] {
            let response = app.call_with(path, Some(&admin), body).await;
            let status = response.status();
            let text = response.text().await.unwrap();
            assert_eq!(status, 400, "{path} with {body:?}: {text}");
            assert!(
                text.contains(&format!("the arguments of {name}")),
                "{path}: {text}"
            );
        }
    }
    let add_user = app::server::admin::AddUser::PATH;
    let cases = [
        (
            r#"{"username":"bo","role":5,"password":"a long enough password"}"#,
            "`role`: invalid type: integer `5`",
        ),
        (
            r#"{"username":"bo","role":"boss","password":"a long enough password"}"#,
            "`role`: unknown role \"boss\"; valid roles are admin,",
        ),
        (
            r#"{"username":["bo"],"role":"support","password":"a long enough password"}"#,
            "`username`: invalid type: sequence",
        ),
        (
            r#"{"username":"bo","role":"support"}"#,
            "missing field `password`",
        ),
        (
            r#"{"username":"bo","role":"support","password":"a long enough password""#,
            "are not valid JSON: EOF while parsing an object at line 1 column 69",
        ),
    ];
    for (body, expected) in cases {
        let response = app.call_with(add_user, Some(&admin), body).await;
        assert_eq!(response.status(), 400, "{body}");
        let text = response.text().await.unwrap();
        assert!(
            text.contains("the arguments of add_user") && text.contains(expected),
            "{body}: {text}"
        );
    }
    // Nothing was added, and valid calls are unaffected.
    assert_eq!(app.count("users").await, 1);
    let ok = app
        .call_with(
            add_user,
            Some(&admin),
            r#"{"username":"bo","role":"support","password":"a long enough password"}"#,
        )
        .await;
    assert_eq!(ok.status(), 200);
    // Errors of the function itself keep their own status.
    let again = app
        .call_with(
            add_user,
            Some(&admin),
            r#"{"username":"bo","role":"support","password":"a long enough password"}"#,
        )
        .await;
    assert_eq!(again.status(), 400);
    assert!(again.text().await.unwrap().contains("already exists"));
}
