//! Derive macros for aludel (`#[derive(Model)]`) and the `#[aludel::test]` attribute.
//!
//! Entry point → `*_inner` on `proc_macro2` → parse into a typed IR (`model::parse`, the IR
//! in `model/ir.rs`) → expand (`model::expand`). Errors are `syn::Error`s pointing at the
//! offending attribute or field. Set `ALUDEL_MACROS_DEBUG=1` to print expansions at build time.

mod enums;
mod model;
mod test_attr;

use proc_macro::TokenStream;
use quote::quote;

/// The one path generated code names aludel's items through (`aludel::__private`).
fn private() -> proc_macro2::TokenStream {
    quote!(::aludel::__private)
}

/// `UserProfile` → `user_profile` (default table and enum type names).
fn snake_case(s: &str) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if c.is_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Maps a struct to a table. See `aludel::Model` for the attributes.
#[proc_macro_derive(Model, attributes(aludel))]
pub fn derive_model(input: TokenStream) -> TokenStream {
    derive_model_inner(input.into()).into()
}

/// Maps a fieldless enum to a native PostgreSQL enum type (`CREATE TYPE … AS ENUM`).
/// Labels are the variant names unless `#[aludel(rename_all = "snake_case")]` or a
/// variant's `#[aludel(rename = "…")]` says otherwise; the type name defaults to the enum's
/// name in snake_case (`#[aludel(type_name = "…")]`).
#[proc_macro_derive(SqlEnum, attributes(aludel))]
pub fn derive_sql_enum(input: TokenStream) -> TokenStream {
    match syn::parse::<syn::DeriveInput>(input) {
        Ok(ast) => enums::expand(&ast)
            .unwrap_or_else(syn::Error::into_compile_error)
            .into(),
        Err(e) => e.into_compile_error().into(),
    }
}

/// Stores a one-field tuple struct (`struct Email(String);`) as its inner type, with the
/// same comparisons; the Rust type keeps values apart in your code.
#[proc_macro_derive(SqlNewtype)]
pub fn derive_sql_newtype(input: TokenStream) -> TokenStream {
    match syn::parse::<syn::DeriveInput>(input) {
        Ok(ast) => enums::expand_newtype(&ast)
            .unwrap_or_else(syn::Error::into_compile_error)
            .into(),
        Err(e) => e.into_compile_error().into(),
    }
}

/// An `async fn` test on a schema of its own: see `aludel::test` (feature `testing`).
#[proc_macro_attribute]
pub fn test(attr: TokenStream, item: TokenStream) -> TokenStream {
    test_attr::expand(attr.into(), item.into()).into()
}

fn derive_model_inner(input: proc_macro2::TokenStream) -> proc_macro2::TokenStream {
    let out = match syn::parse2::<syn::DeriveInput>(input) {
        Ok(ast) => model::parse(&ast)
            .map(|m| model::expand(&m))
            .unwrap_or_else(syn::Error::into_compile_error),
        Err(e) => e.into_compile_error(),
    };
    if std::env::var_os("ALUDEL_MACROS_DEBUG").is_some() {
        #[allow(clippy::print_stderr)]
        {
            eprintln!("{out}");
        }
    }
    out
}
