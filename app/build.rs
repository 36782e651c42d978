// `sqlx::migrate!` embeds the migrations at compile time, and stable Rust cannot tell the
// compiler which files a macro read: rebuild when a migration is added or changed.
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
