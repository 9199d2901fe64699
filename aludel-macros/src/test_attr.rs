//! `#[aludel::test]`: an `async fn` test on a schema of its own, with the given models created.
//!
//! ```text
//! #[aludel::test(models(User, Post))]
//! async fn name(mut s: AsyncSession, db: &TestDb) -> R { body }
//! ```
//! expands to a `#[test] fn name() -> R` (a plain function outside `cfg(test)`, so a doctest
//! can call it) that keeps the original function inside it, builds a
//! current-thread Tokio runtime, sets up a `TestDb` (schema + `create_all`), makes each argument
//! from it by type (`aludel::testing::TestArg`) and awaits the body. The `TestDb` lives in the
//! future `block_on` drives, so a panic unwinds through its `Drop`: the schema goes either way.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, Path};

/// The attribute's arguments: `models(A, B, …)`.
#[derive(Default)]
struct Args {
    models: Vec<Path>,
}

fn parse_args(attr: TokenStream) -> syn::Result<Args> {
    let mut args = Args::default();
    if attr.is_empty() {
        return Ok(args);
    }
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("models") {
            let content;
            syn::parenthesized!(content in meta.input);
            let list = content.parse_terminated(Path::parse_mod_style, syn::Token![,])?;
            args.models.extend(list);
            Ok(())
        } else {
            Err(meta.error("unknown argument: expected `models(Model, …)`"))
        }
    });
    syn::parse::Parser::parse2(parser, attr)?;
    Ok(args)
}

pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    match expand_inner(attr, item) {
        Ok(out) => out,
        Err(e) => e.into_compile_error(),
    }
}

fn expand_inner(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let args = parse_args(attr)?;
    let mut f: ItemFn = syn::parse2(item)?;
    let sig = &f.sig;
    if sig.asyncness.is_none() {
        return Err(syn::Error::new(
            sig.fn_token.span(),
            "#[aludel::test] needs an `async fn`",
        ));
    }
    if !sig.generics.params.is_empty() {
        return Err(syn::Error::new(
            sig.generics.span(),
            "#[aludel::test] functions cannot be generic",
        ));
    }
    let mut calls = Vec::new();
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(r) => {
                return Err(syn::Error::new(
                    r.span(),
                    "#[aludel::test] functions take no `self`",
                ));
            }
            FnArg::Typed(t) => {
                let ty = &t.ty;
                calls.push(quote_spanned! {ty.span()=>
                    <#ty as ::aludel::testing::TestArg<'_>>::from_test_db(&__aludel_db)
                });
            }
        }
    }
    // The test harness sees the outer function; the original lives on inside it.
    let attrs = std::mem::take(&mut f.attrs);
    let vis = f.vis.clone();
    let name = f.sig.ident.clone();
    let output = f.sig.output.clone();
    let inner = syn::Ident::new("__aludel_test_body", name.span());
    f.sig.ident = inner.clone();
    let models = &args.models;
    Ok(quote! {
        // Under `cfg(test)` a test; elsewhere (doctests, examples) a plain function to call.
        #[cfg_attr(test, ::core::prelude::v1::test)]
        #[cfg_attr(not(test), allow(dead_code))]
        #(#attrs)*
        #vis fn #name() #output {
            #f
            ::aludel::testing::__runtime().block_on(async {
                let __aludel_db = ::aludel::testing::__setup(&[
                    #(<#models as ::aludel::Model>::TABLE),*
                ]).await;
                #inner(#(#calls),*).await
            })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(attr: &str, item: &str) -> String {
        let out = expand(attr.parse().unwrap(), item.parse().unwrap()).to_string();
        assert!(out.contains("compile_error"), "{out}");
        out
    }

    #[test]
    fn rejects_misuse() {
        assert!(err("", "fn t() {}").contains("needs an `async fn`"));
        assert!(err("tables(A)", "async fn t() {}").contains("unknown argument"));
        assert!(err("", "async fn t<T>() {}").contains("cannot be generic"));
    }

    #[test]
    fn keeps_attributes_and_return_type() {
        let out = expand(
            "models(User, crate::Post)".parse().unwrap(),
            "#[should_panic] async fn t(s: AsyncSession) -> aludel::Result<()> { Ok(()) }"
                .parse()
                .unwrap(),
        )
        .to_string();
        assert!(out.contains("should_panic"), "{out}");
        assert!(out.contains("fn t () -> aludel :: Result < () >"), "{out}");
        assert!(
            out.contains("< crate :: Post as :: aludel :: Model > :: TABLE"),
            "{out}"
        );
    }
}
