//! Rules every migration must follow, checked on the files themselves.

use std::path::Path;

fn migrations(backend: &str) -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend);
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&path).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn no_floating_point_or_decimal_columns_anywhere() {
    for backend in ["sqlite", "postgres"] {
        for (name, sql) in migrations(backend) {
            let code: String = sql
                .lines()
                .map(|l| l.split("--").next().unwrap_or_default())
                .collect::<Vec<_>>()
                .join("\n")
                .to_uppercase();
            for word in code.split(|c: char| !c.is_ascii_alphanumeric() && c != '_') {
                assert!(
                    ![
                        "REAL", "FLOAT", "FLOAT4", "FLOAT8", "DOUBLE", "NUMERIC", "DECIMAL",
                        "MONEY"
                    ]
                    .contains(&word),
                    "{backend}/{name} uses {word}: money is BIGINT minor units"
                );
            }
        }
    }
}

#[test]
fn both_backends_have_the_same_migrations() {
    let names = |b| {
        migrations(b)
            .into_iter()
            .map(|(n, _)| n)
            .collect::<Vec<_>>()
    };
    assert_eq!(names("sqlite"), names("postgres"));
    for name in names("sqlite") {
        let version = name.split('_').next().unwrap();
        assert!(
            version.len() == 14 && version.bytes().all(|b| b.is_ascii_digit()),
            "{name}: migrations are named YYYYMMDDhhmmss_description.sql"
        );
    }
}
