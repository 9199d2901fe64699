//! [`ModelIr`] → the impls of `#[derive(Model)]`: column handles and relationship constants on
//! the struct, `Model`, `FromRow` and `FromRowOpt`. Every runtime item is named through
//! `::aludel::__private` ([`crate::private`]).

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::{Ident, Path};

use super::ir::{FieldIr, ModelIr, RelIr, RelKind, SlotKind};
use crate::private;

pub(crate) fn expand(m: &ModelIr) -> TokenStream {
    let ident = &m.ident;
    if m.fields.iter().filter(|f| f.deferred).count() > 64 {
        return syn::Error::new(ident.span(), "a model has at most 64 Deferred fields")
            .into_compile_error();
    }
    let Some((pk_index, pk_field)) = m
        .fields
        .iter()
        .filter(|f| !f.deferred)
        .enumerate()
        .find(|(_, f)| f.primary_key)
    else {
        return syn::Error::new(ident.span(), "a model needs a primary key").into_compile_error();
    };
    let inherent = inherent_impl(m);
    let model = model_impl(m);
    let from_row = from_row_impls(m, pk_index, &pk_field.ty);
    quote! {
        #inherent
        #model
        #from_row
    }
}

/// `impl User { pub const id: Column<…>; ALL; TABLE; alias(); relationship constants }`.
fn inherent_impl(m: &ModelIr) -> TokenStream {
    let p = private();
    let (ident, table) = (&m.ident, &m.table);
    let column_consts = m.fields.iter().map(|f| {
        let (fid, ty, col) = (&f.ident, &f.ty, &f.column);
        let doc = format!("The `{col}` column.");
        quote! {
            #[doc = #doc]
            #[allow(non_upper_case_globals)]
            pub const #fid: #p::Column<#ident, #ty> = #p::Column::new(#table, #col);
        }
    });
    let rel_consts = m.relations.iter().map(|r| expand_relation(m, r));
    let alias_doc = format!("`{table}` under another name, for self-joins.");
    let all_name = format_ident!("ALL");
    quote! {
        impl #ident {
            #(#column_consts)*
            /// Every column of the model: `select(Model::ALL)`.
            pub const #all_name: #p::All<#ident> = #p::All::new();
            /// The table's description (for `create_all`).
            pub const TABLE: &'static #p::TableDef = <#ident as #p::Model>::TABLE;
            #[doc = #alias_doc]
            pub const fn alias(name: &'static str) -> #p::Alias<#ident> {
                #p::Alias::new(name)
            }
            #(#rel_consts)*
        }
    }
}

/// `impl Model for User`.
fn model_impl(m: &ModelIr) -> TokenStream {
    let p = private();
    let (ident, table) = (&m.ident, &m.table);
    let column_defs = m.fields.iter().map(column_def);
    let uniques = m.uniques.iter().map(|cols| quote!(&[#(#cols),*]));
    let indexes = m
        .indexes
        .iter()
        .map(|cols| quote!(#p::IndexDef::new(&[#(#cols),*], false)));
    let checks = m
        .checks
        .iter()
        .map(|(n, e)| quote!(#p::CheckDef::new(#n, #e)));
    let (inserts, values) = bind_arms(m);
    let key_parts = m.fields.iter().filter(|f| f.primary_key).map(|f| {
        let fid = &f.ident;
        if f.generated {
            quote!(out.part_generated(&self.#fid);)
        } else {
            quote!(out.part(&self.#fid);)
        }
    });
    let sets = m.fields.iter().enumerate().map(|(i, f)| {
        let (fid, ty, col) = (&f.ident, &f.ty, &f.column);
        let mut value = quote!(#p::decode_column::<#ty>(raw, #col)?);
        if f.generated {
            value = quote!(#p::Generated::new(#value));
        }
        if f.deferred {
            value = quote!(#p::Deferred::new(#value));
        }
        quote!(#i => self.#fid = #value,)
    });
    let clear_column = clear_column(m);
    let rel_visits = m.relations.iter().map(|r| {
        let fid = &r.ident;
        quote!(v.visit(#ident::#fid);)
    });
    quote! {
        impl #p::Model for #ident {
            const TABLE: &'static #p::TableDef = &#p::TableDef::new(
                #table,
                &[#(#column_defs),*],
                &[#(#uniques),*],
                &[#(#indexes),*],
                &[#(#checks),*],
            );

            fn insert_values(&self, out: &mut ::std::vec::Vec<::core::option::Option<#p::Bind>>) {
                #(#inserts)*
            }

            fn write_identity(&self, out: &mut #p::KeyWriter<'_>) {
                #(#key_parts)*
            }

            fn column_value(&self, idx: usize) -> ::core::option::Option<#p::Bind> {
                match idx {
                    #(#values)*
                    _ => ::core::option::Option::None,
                }
            }

            fn set_column(&mut self, idx: usize, raw: ::core::option::Option<&[u8]>) -> #p::Result<()> {
                match idx {
                    #(#sets)*
                    _ => {}
                }
                ::core::result::Result::Ok(())
            }

            #clear_column

            fn visit_relations<V: #p::RelVisitor<Self>>(v: &mut V) {
                let _ = &v;
                #(#rel_visits)*
            }

        }
    }
}

/// The statements of `insert_values` and the match arms of `column_value`: how each field
/// becomes a `Bind` (an unset `Generated` or not-loaded `Deferred` one becomes `None`).
fn bind_arms(m: &ModelIr) -> (Vec<TokenStream>, Vec<TokenStream>) {
    let p = private();
    let inserts = m
        .fields
        .iter()
        .filter(|f| !f.identity_always() && f.generated_expr.is_none())
        .map(|f| {
            let fid = &f.ident;
            match (f.deferred, f.generated) {
                (true, true) => quote!(out.push(#p::deferred_generated_bind(&self.#fid));),
                (true, false) => quote!(out.push(::core::option::Option::Some(
                    #p::deferred_bind(&self.#fid)
                ));),
                (false, true) => quote!(out.push(#p::Generated::bind(&self.#fid));),
                (false, false) => quote!(out.push(::core::option::Option::Some(
                    #p::Bind::new(::core::clone::Clone::clone(&self.#fid))
                ));),
            }
        })
        .collect();
    let values = m.fields.iter().enumerate().map(|(i, f)| {
        let fid = &f.ident;
        match (f.deferred, f.generated) {
            (true, true) => quote!(#i => #p::deferred_generated_bind(&self.#fid),),
            (true, false) => quote!(#i => self.#fid.loaded().map(|v| #p::Bind::new(::core::clone::Clone::clone(v))),),
            (false, true) => quote!(#i => #p::Generated::bind(&self.#fid),),
            (false, false) => quote!(#i => ::core::option::Option::Some(#p::Bind::new(::core::clone::Clone::clone(&self.#fid))),),
        }
    })
    .collect();
    (inserts, values)
}

/// One `ColumnDef` of the table's description.
fn column_def(f: &FieldIr) -> TokenStream {
    let p = private();
    let (ty, col) = (&f.ty, &f.column);
    let field = f.ident.to_string();
    let (nullable, pk, identity, unique, index) = (
        f.nullable,
        f.primary_key,
        f.identity.is_some(),
        f.unique,
        f.index,
    );
    let ddl = opt_str(&f.sql_type);
    let default = opt_str(&f.server_default);
    let fk = match &f.references {
        Some((model, col_ident)) => {
            let on_delete = f.on_delete.variant();
            quote! {
                ::core::option::Option::Some(#p::ForeignKeyDef::new(
                    || <#model as #p::Model>::TABLE,
                    #model::#col_ident.name(),
                    #p::OnDelete::#on_delete,
                ))
            }
        }
        None => quote!(::core::option::Option::None),
    };
    let versioned = f.version.then(|| quote!(.versioned()));
    let deferred = f.deferred.then(|| {
        let group = opt_str(&f.group);
        quote!(.deferred(#group))
    });
    let always = f.identity_always().then(|| quote!(.always()));
    let generated = f.generated_expr.as_ref().map(|e| quote!(.generated_as(#e)));
    quote! {
        #p::ColumnDef::new(#col, #field, <#ty as #p::SqlType>::sql_type)
            .with(#ddl, #nullable, #pk, #identity, #default, #unique, #index, #fk)
            #versioned
            #deferred
            #always
            #generated
    }
}

/// `clear_column` for the `Generated` fields (none: the trait's default).
fn clear_column(m: &ModelIr) -> TokenStream {
    let clears: Vec<TokenStream> = m
        .fields
        .iter()
        .enumerate()
        .filter(|(_, f)| f.generated)
        .map(|(i, f)| {
            let fid = &f.ident;
            if f.deferred {
                quote!(#i => {
                    if let ::core::result::Result::Ok(g) = self.#fid.get_mut() {
                        g.clear();
                    }
                })
            } else {
                quote!(#i => self.#fid.clear(),)
            }
        })
        .collect();
    if clears.is_empty() {
        return quote!();
    }
    quote! {
        fn clear_column(&mut self, idx: usize) {
            match idx {
                #(#clears)*
                _ => {}
            }
        }
    }
}

/// `FromRowOpt` and `FromRow` (with `from_row_columns` when a field is `Deferred`).
fn from_row_impls(m: &ModelIr, pk_index: usize, pk_ty: &syn::Type) -> TokenStream {
    let p = private();
    let (ident, table) = (&m.ident, &m.table);
    let n_cols = m.fields.iter().filter(|f| !f.deferred).count();
    let mut pos = 0usize;
    let reads: Vec<TokenStream> = m
        .fields
        .iter()
        .map(|f| {
            let fid = &f.ident;
            if f.deferred {
                let path = format!("{table}.{}", f.column);
                quote!(#fid: #p::Deferred::not_loaded(#path, false))
            } else {
                let i = pos;
                pos += 1;
                quote!(#fid: row.get(offset + #i)?)
            }
        })
        .collect();
    let rel_inits: Vec<TokenStream> = m
        .relations
        .iter()
        .map(|r| {
            let fid = &r.ident;
            let slot = r.slot.ident();
            let path = format!("{table}.{}", r.ident);
            if r.slot == SlotKind::WriteOnly {
                quote!(#fid: #p::WriteOnly::named(#path))
            } else {
                quote!(#fid: #p::#slot::not_loaded(#path))
            }
        })
        .collect();
    let from_row_columns = from_row_columns(m, &rel_inits);
    quote! {
        impl #p::FromRowOpt for #ident {
            fn from_row_opt_at(row: &#p::Row, offset: usize) -> #p::Result<::core::option::Option<Self>> {
                let pk: ::core::option::Option<#pk_ty> = row.get(offset + #pk_index)?;
                if pk.is_none() {
                    return ::core::result::Result::Ok(::core::option::Option::None);
                }
                <Self as #p::FromRow>::from_row_at(row, offset).map(::core::option::Option::Some)
            }
            fn opt_column_count() -> usize {
                #n_cols
            }
        }

        impl #p::FromRow for #ident {
            #[inline]
            fn from_row_at(row: &#p::Row, offset: usize) -> #p::Result<Self> {
                ::core::result::Result::Ok(#ident { #(#reads,)* #(#rel_inits,)* })
            }
            fn column_count() -> usize {
                #n_cols
            }

            #from_row_columns
        }
    }
}

/// `FromRow::from_row_columns`: reads the columns a statement selected (`cols`), the
/// `Deferred` ones by bit; nothing when no field is `Deferred` (the trait's default).
fn from_row_columns(m: &ModelIr, rel_inits: &[TokenStream]) -> TokenStream {
    if !m.fields.iter().any(|f| f.deferred) {
        return quote!();
    }
    let p = private();
    let (ident, table) = (&m.ident, &m.table);
    let mut k = 0usize;
    let masked_reads = m.fields.iter().map(|f| {
        let fid = &f.ident;
        if f.deferred {
            let path = format!("{table}.{}", f.column);
            let bit = k;
            k += 1;
            quote!(#fid: if cols.has(#bit) {
                let v = row.get(at)?;
                at += 1;
                #p::Deferred::new(v)
            } else {
                #p::Deferred::not_loaded(#path, cols.raises(#bit))
            })
        } else {
            quote!(#fid: {
                let v = row.get(at)?;
                at += 1;
                v
            })
        }
    });
    quote! {
        #[allow(unused_assignments)]
        fn from_row_columns(
            row: &#p::Row,
            offset: usize,
            cols: #p::Columns,
        ) -> #p::Result<Self> {
            let mut at = offset;
            ::core::result::Result::Ok(#ident { #(#masked_reads,)* #(#rel_inits,)* })
        }
    }
}

fn opt_str(s: &Option<String>) -> TokenStream {
    match s {
        Some(v) => quote!(::core::option::Option::Some(#v)),
        None => quote!(::core::option::Option::None),
    }
}

/// `Model::field` → `field`.
fn last_segment(p: &Path) -> Option<Ident> {
    p.segments.last().map(|s| s.ident.clone())
}

/// The `pub const posts: Rel<User, Post>` of one relationship field.
fn expand_relation(m: &ModelIr, r: &RelIr) -> TokenStream {
    let p = private();
    let ident = &m.ident;
    let (fid, target) = (&r.ident, &r.target);
    let slot = r.slot.ident();
    let name = fid.to_string();
    let path = format!("{}.{}", m.table, fid);
    let alias = format!("{}__{}", m.table, fid);
    let col_of = |id: &Ident| -> String {
        m.fields
            .iter()
            .find(|f| &f.ident == id)
            .map(|f| f.column.clone())
            .unwrap_or_else(|| id.to_string())
    };
    let kind = r.kind.variant();
    let none = quote!(::core::option::Option::None);
    let key_cols = if r.key.is_empty() {
        none.clone()
    } else {
        let cols = r.key.iter().map(col_of);
        quote!(::core::option::Option::Some(&[#(#cols),*]))
    };
    let (local, remote) = match &r.kind {
        RelKind::ManyToOne => {
            let cols = r.fk.iter().filter_map(|p| p.get_ident()).map(col_of);
            (
                quote!(::core::option::Option::Some(&[#(#cols),*])),
                none.clone(),
            )
        }
        RelKind::ManyToMany(_) => (key_cols, none.clone()),
        RelKind::OneToMany | RelKind::OneToOne => {
            let cols = r.fk.iter().map(|fk| quote!(#fk.name()));
            (
                key_cols,
                quote!(::core::option::Option::Some(&[#(#cols),*])),
            )
        }
    };
    let secondary = match &r.kind {
        RelKind::ManyToMany(sec) => {
            let (table, lf, rf) = (
                &sec.table,
                last_segment(&sec.local),
                last_segment(&sec.remote),
            );
            quote!(::core::option::Option::Some(#p::Secondary {
                table: || <#table as #p::Model>::TABLE,
                local: &[#table::#lf.name()],
                remote: &[#table::#rf.name()],
            }))
        }
        _ => none.clone(),
    };
    let back = match &r.back {
        Some(b) => quote!(::core::option::Option::Some({
            fn back() -> #p::Rel<#target, #ident> { <#target>::#b }
            back
        })),
        None => none.clone(),
    };
    let (su, del, orphan) = (
        r.cascade.save_update,
        r.cascade.delete,
        r.cascade.delete_orphan,
    );
    let passive = r.passive_deletes;
    let order = r.order_by.iter().map(|(c, d)| quote!((#c, #d)));
    let lazy = r.lazy.variant();
    let doc = format!(
        "The `{name}` relationship ({}).",
        r.kind.attr().replace('_', "-")
    );
    quote! {
        #[doc = #doc]
        #[allow(non_upper_case_globals)]
        pub const #fid: #p::Rel<#ident, #target> = #p::Rel::new(&#p::RelDef {
            name: #name,
            path: #path,
            kind: #p::RelKind::#kind,
            local: #local,
            remote: #remote,
            secondary: #secondary,
            back: #back,
            cascade: #p::Cascade { save_update: #su, delete: #del, delete_orphan: #orphan },
            passive_deletes: #passive,
            order_by: &[#(#order),*],
            lazy: #p::Lazy::#lazy,
            alias: #alias,
            slot: #p::Slot::#slot({
                fn slot(m: &mut #ident) -> &mut #p::#slot<#target> { &mut m.#fid }
                slot
            }),
        });
    }
}
