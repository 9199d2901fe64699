//! Misuse that must not compile, with the error each one gives (`tests/ui/*.stderr`).
//! Regenerate the expected output with `TRYBUILD=overwrite cargo test --test compile_fail`.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
