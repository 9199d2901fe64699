//! Derive macros for aludel (`#[derive(Model)]`).
