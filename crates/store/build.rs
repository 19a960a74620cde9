fn main() {
    // Migrations are embedded by `sqlx::migrate!`: rebuild when one is added or changed, in
    // either backend's folder.
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-changed=migrations/sqlite");
    println!("cargo:rerun-if-changed=migrations/postgres");
}
