//! `embed_migrations!("folder")`: the `*.sql` files of a folder (relative to the invoking
//! crate's `Cargo.toml`) as a `&'static [aludel_migrate::EmbeddedFile]`, each file's text
//! brought in with `include_str!` so editing a file rebuilds the binary.
//!
//! A file *added* to the folder is not seen until the crate rebuilds: add a `build.rs` with
//! `println!("cargo:rerun-if-changed=migrations");` to rebuild when the folder changes.

use proc_macro::TokenStream;
use quote::quote;
use syn::LitStr;

/// Embeds a migrations folder; see the crate documentation.
#[proc_macro]
pub fn embed_migrations(input: TokenStream) -> TokenStream {
    let lit = match syn::parse::<LitStr>(input) {
        Ok(l) => l,
        Err(e) => return e.into_compile_error().into(),
    };
    match expand(&lit) {
        Ok(ts) => ts.into(),
        Err(e) => e.into_compile_error().into(),
    }
}

fn expand(lit: &LitStr) -> syn::Result<proc_macro2::TokenStream> {
    let root = std::env::var("CARGO_MANIFEST_DIR")
        .map_err(|_| syn::Error::new(lit.span(), "CARGO_MANIFEST_DIR is not set"))?;
    let dir = std::path::Path::new(&root).join(lit.value());
    let entries = std::fs::read_dir(&dir)
        .map_err(|e| syn::Error::new(lit.span(), format!("cannot read {}: {e}", dir.display())))?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|e| syn::Error::new(lit.span(), e.to_string()))?
            .path();
        if path.extension().is_some_and(|x| x == "sql") {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            files.push((name, path.to_string_lossy().into_owned()));
        }
    }
    files.sort();
    let items = files.iter().map(|(name, path)| {
        quote! {
            ::aludel_migrate::EmbeddedFile { name: #name, contents: ::core::include_str!(#path) }
        }
    });
    Ok(quote! {
        &[#(#items),*]
    })
}
