//! Rebuilds the app when a file is added to (or removed from) `migrations/`:
//! `embed_migrations!` sees edits of existing files by itself, not new ones.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
