//! `#[derive(Model)]`: parse (`parse`) into [`ModelIr`], then generate code (`expand`).

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Fields, Ident, LitStr, Path, Type};

pub(crate) struct ModelIr {
    ident: Ident,
    table: String,
    fields: Vec<FieldIr>,
    uniques: Vec<Vec<String>>,
    indexes: Vec<Vec<String>>,
    checks: Vec<(String, String)>,
}

struct FieldIr {
    ident: Ident,
    ty: Type,
    column: String,
    nullable: bool,
    primary_key: bool,
    identity: bool,
    server_default: Option<String>,
    unique: bool,
    index: bool,
    sql_type: Option<String>,
    references: Option<(Path, Ident)>,
    on_delete: Ident,
    version: bool,
}

pub(crate) fn parse(ast: &DeriveInput) -> syn::Result<ModelIr> {
    let Data::Struct(data) = &ast.data else {
        return Err(syn::Error::new(
            ast.ident.span(),
            "#[derive(Model)] works on structs with named fields",
        ));
    };
    let Fields::Named(named) = &data.fields else {
        return Err(syn::Error::new(
            ast.ident.span(),
            "#[derive(Model)] needs named fields",
        ));
    };
    if !ast.generics.params.is_empty() {
        return Err(syn::Error::new(
            ast.generics.span(),
            "#[derive(Model)] does not support generic structs",
        ));
    }
    let mut ir = ModelIr {
        ident: ast.ident.clone(),
        table: snake_case(&ast.ident.to_string()),
        fields: Vec::new(),
        uniques: Vec::new(),
        indexes: Vec::new(),
        checks: Vec::new(),
    };
    for attr in ast.attrs.iter().filter(|a| a.path().is_ident("aludel")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("table") {
                ir.table = meta.value()?.parse::<LitStr>()?.value();
            } else if meta.path.is_ident("unique") {
                ir.uniques.push(ident_list(&meta)?);
            } else if meta.path.is_ident("index") {
                ir.indexes.push(ident_list(&meta)?);
            } else if meta.path.is_ident("check") {
                let (mut name, mut expr) = (None, None);
                meta.parse_nested_meta(|m| {
                    if m.path.is_ident("name") {
                        name = Some(m.value()?.parse::<LitStr>()?.value());
                    } else if m.path.is_ident("expr") {
                        expr = Some(m.value()?.parse::<LitStr>()?.value());
                    } else {
                        return Err(m.error("unknown `check` key; expected `name` or `expr`"));
                    }
                    Ok(())
                })?;
                match (name, expr) {
                    (Some(n), Some(e)) => ir.checks.push((n, e)),
                    _ => return Err(meta.error("`check` needs `name = \"…\"` and `expr = \"…\"`")),
                }
            } else {
                return Err(meta.error("unknown aludel attribute; expected `table`, `unique(..)`, `index(..)` or `check(..)`"));
            }
            Ok(())
        })?;
    }
    for f in &named.named {
        ir.fields.push(parse_field(f)?);
    }
    if !ir.fields.iter().any(|f| f.primary_key) {
        return Err(syn::Error::new(
            ast.ident.span(),
            "a model needs a primary key: mark a field with #[aludel(primary_key)]",
        ));
    }
    let columns: Vec<&str> = ir.fields.iter().map(|f| f.column.as_str()).collect();
    for list in ir.uniques.iter().chain(&ir.indexes) {
        for c in list {
            if !columns.contains(&c.as_str()) {
                return Err(syn::Error::new(
                    ast.ident.span(),
                    format!("no column `{c}` in this model"),
                ));
            }
        }
    }
    Ok(ir)
}

fn ident_list(meta: &syn::meta::ParseNestedMeta<'_>) -> syn::Result<Vec<String>> {
    let mut out = Vec::new();
    meta.parse_nested_meta(|m| {
        let Some(id) = m.path.get_ident() else {
            return Err(m.error("expected a column name"));
        };
        out.push(id.to_string());
        Ok(())
    })?;
    Ok(out)
}

fn parse_field(f: &syn::Field) -> syn::Result<FieldIr> {
    let ident = f
        .ident
        .clone()
        .ok_or_else(|| syn::Error::new(f.span(), "named field expected"))?;
    let mut ir = FieldIr {
        column: ident.to_string(),
        ident,
        ty: f.ty.clone(),
        nullable: is_option(&f.ty),
        primary_key: false,
        identity: false,
        server_default: None,
        unique: false,
        index: false,
        sql_type: None,
        references: None,
        on_delete: Ident::new("NoAction", Span::call_site()),
        version: false,
    };
    for attr in f.attrs.iter().filter(|a| a.path().is_ident("aludel")) {
        attr.parse_nested_meta(|meta| {
            let p = &meta.path;
            if p.is_ident("primary_key") {
                ir.primary_key = true;
            } else if p.is_ident("identity") {
                ir.identity = true;
            } else if p.is_ident("unique") {
                ir.unique = true;
            } else if p.is_ident("index") {
                ir.index = true;
            } else if p.is_ident("version") {
                ir.version = true;
            } else if p.is_ident("column") {
                ir.column = meta.value()?.parse::<LitStr>()?.value();
            } else if p.is_ident("server_default") {
                ir.server_default = Some(meta.value()?.parse::<LitStr>()?.value());
            } else if p.is_ident("sql_type") {
                ir.sql_type = Some(meta.value()?.parse::<LitStr>()?.value());
            } else if p.is_ident("references") {
                let lit = meta.value()?.parse::<LitStr>()?;
                let path: Path = lit.parse()?;
                let mut model = path.clone();
                let Some(last) = model.segments.pop() else {
                    return Err(syn::Error::new(lit.span(), "expected `Model::field`"));
                };
                if model.segments.is_empty() {
                    return Err(syn::Error::new(lit.span(), "expected `Model::field`"));
                }
                let model_path = Path {
                    leading_colon: model.leading_colon,
                    segments: model.segments.into_iter().collect(),
                };
                ir.references = Some((model_path, last.into_value().ident));
            } else if p.is_ident("on_delete") {
                let lit = meta.value()?.parse::<LitStr>()?;
                let v = match lit.value().to_ascii_lowercase().as_str() {
                    "cascade" => "Cascade",
                    "restrict" => "Restrict",
                    "set null" | "set_null" => "SetNull",
                    "set default" | "set_default" => "SetDefault",
                    "no action" | "no_action" => "NoAction",
                    _ => {
                        return Err(syn::Error::new(
                            lit.span(),
                            "expected \"cascade\", \"restrict\", \"set null\", \"set default\" or \"no action\"",
                        ));
                    }
                };
                ir.on_delete = Ident::new(v, lit.span());
            } else {
                return Err(meta.error(
                    "unknown aludel field attribute; expected one of `primary_key`, `identity`, `column`, \
                     `server_default`, `unique`, `index`, `sql_type`, `references`, `on_delete`, `version`",
                ));
            }
            Ok(())
        })?;
    }
    if ir.primary_key && ir.nullable {
        return Err(syn::Error::new(
            f.ty.span(),
            "a primary-key field cannot be an Option",
        ));
    }
    Ok(ir)
}

fn is_option(ty: &Type) -> bool {
    match ty {
        Type::Path(p) => {
            p.qself.is_none() && p.path.segments.last().is_some_and(|s| s.ident == "Option")
        }
        _ => false,
    }
}

pub(crate) fn snake_case(s: &str) -> String {
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

fn opt_str(s: &Option<String>) -> TokenStream {
    match s {
        Some(v) => quote!(::core::option::Option::Some(#v)),
        None => quote!(::core::option::Option::None),
    }
}

pub(crate) fn expand(m: &ModelIr) -> TokenStream {
    let ident = &m.ident;
    let table = &m.table;
    let n_cols = m.fields.len();

    let column_consts = m.fields.iter().map(|f| {
        let (fid, ty, col) = (&f.ident, &f.ty, &f.column);
        let doc = format!("The `{col}` column.");
        quote! {
            #[doc = #doc]
            #[allow(non_upper_case_globals)]
            pub const #fid: ::aludel::Column<#ident, #ty> = ::aludel::Column::new(#table, #col);
        }
    });

    let column_defs = m.fields.iter().map(|f| {
        let (ty, col) = (&f.ty, &f.column);
        let field = f.ident.to_string();
        let (nullable, pk, identity, unique, index) =
            (f.nullable, f.primary_key, f.identity, f.unique, f.index);
        let ddl = opt_str(&f.sql_type);
        let default = opt_str(&f.server_default);
        let fk = match &f.references {
            Some((model, col_ident)) => {
                let on_delete = &f.on_delete;
                quote! {
                    ::core::option::Option::Some(::aludel::ForeignKeyDef::new(
                        || <#model as ::aludel::Model>::TABLE,
                        #model::#col_ident.name(),
                        ::aludel::OnDelete::#on_delete,
                    ))
                }
            }
            None => quote!(::core::option::Option::None),
        };
        let versioned = if f.version {
            quote!(.versioned())
        } else {
            quote!()
        };
        quote! {
            ::aludel::ColumnDef::new(#col, #field, <#ty as ::aludel::SqlType>::sql_type)
                .with(#ddl, #nullable, #pk, #identity, #default, #unique, #index, #fk)
                #versioned
        }
    });

    let uniques = m.uniques.iter().map(|cols| quote!(&[#(#cols),*]));
    let indexes = m
        .indexes
        .iter()
        .map(|cols| quote!(::aludel::IndexDef::new(&[#(#cols),*], false)));
    let checks = m
        .checks
        .iter()
        .map(|(n, e)| quote!(::aludel::CheckDef::new(#n, #e)));

    let inserts = m
        .fields
        .iter()
        .filter(|f| !f.identity && f.server_default.is_none())
        .map(|f| {
            let fid = &f.ident;
            quote!(out.push(::aludel::Bind::new(::core::clone::Clone::clone(&self.#fid)));)
        });

    let values = m.fields.iter().enumerate().map(|(i, f)| {
        let fid = &f.ident;
        quote!(#i => ::core::option::Option::Some(::aludel::Bind::new(::core::clone::Clone::clone(&self.#fid))),)
    });

    let key_parts = m.fields.iter().filter(|f| f.primary_key).map(|f| {
        let fid = &f.ident;
        quote!(::aludel::__private::key_part(&self.#fid, out);)
    });

    let reads = m.fields.iter().enumerate().map(|(i, f)| {
        let fid = &f.ident;
        quote!(#fid: row.get(offset + #i)?)
    });

    let Some((pk_index, pk_field)) = m.fields.iter().enumerate().find(|(_, f)| f.primary_key)
    else {
        return syn::Error::new(ident.span(), "a model needs a primary key").into_compile_error();
    };
    let pk_ty = &pk_field.ty;
    let alias_doc = format!("`{table}` under another name, for self-joins.");
    let all_name = format_ident!("ALL");

    quote! {
        impl #ident {
            #(#column_consts)*
            /// Every column of the model: `select(Model::ALL)`.
            pub const #all_name: ::aludel::All<#ident> = ::aludel::All::new();
            /// The table's description (for `create_all`).
            pub const TABLE: &'static ::aludel::TableDef = <#ident as ::aludel::Model>::TABLE;
            #[doc = #alias_doc]
            pub const fn alias(name: &'static str) -> ::aludel::Alias<#ident> {
                ::aludel::Alias::new(name)
            }
        }

        impl ::aludel::Model for #ident {
            const TABLE: &'static ::aludel::TableDef = &::aludel::TableDef::new(
                #table,
                &[#(#column_defs),*],
                &[#(#uniques),*],
                &[#(#indexes),*],
                &[#(#checks),*],
            );

            fn insert_values(&self, out: &mut ::std::vec::Vec<::aludel::Bind>) {
                #(#inserts)*
            }

            fn write_identity(&self, out: &mut ::aludel::__private::BytesMut) {
                #(#key_parts)*
            }

            fn column_value(&self, idx: usize) -> ::core::option::Option<::aludel::Bind> {
                match idx {
                    #(#values)*
                    _ => ::core::option::Option::None,
                }
            }

        }

        impl ::aludel::__private::FromRowOpt for #ident {
            fn from_row_opt_at(row: &::aludel::Row, offset: usize) -> ::aludel::Result<::core::option::Option<Self>> {
                let pk: ::core::option::Option<#pk_ty> = row.get(offset + #pk_index)?;
                if pk.is_none() {
                    return ::core::result::Result::Ok(::core::option::Option::None);
                }
                <Self as ::aludel::FromRow>::from_row_at(row, offset).map(::core::option::Option::Some)
            }
            fn opt_column_count() -> usize {
                #n_cols
            }
        }

        impl ::aludel::FromRow for #ident {
            #[inline]
            fn from_row_at(row: &::aludel::Row, offset: usize) -> ::aludel::Result<Self> {
                ::core::result::Result::Ok(#ident { #(#reads),* })
            }
            fn column_count() -> usize {
                #n_cols
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand_src(src: &str) -> Result<String, String> {
        let ast: DeriveInput = syn::parse_str(src).map_err(|e| e.to_string())?;
        parse(&ast)
            .map(|m| expand(&m).to_string())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn expansion_names_columns_and_table() {
        let out = expand_src(
            "#[aludel(table = \"users\")] struct User { #[aludel(primary_key, identity)] id: i32, \
             #[aludel(column = \"full_name\")] name: String, hair: Option<String> }",
        )
        .unwrap();
        assert!(out.contains("pub const id : :: aludel :: Column < User , i32 > = :: aludel :: Column :: new (\"users\" , \"id\")"), "{out}");
        assert!(out.contains("\"full_name\""), "{out}");
        // identity columns are not part of INSERT
        let insert =
            &out[out.find("fn insert_values").unwrap()..out.find("fn write_identity").unwrap()];
        assert!(!insert.contains("self . id"), "{insert}");
        assert!(insert.contains("self . name"), "{insert}");
    }

    fn pretty(src: &str) -> String {
        let out = expand_src(src).unwrap();
        let file: syn::File = syn::parse_str(&out).unwrap();
        prettyplease::unparse(&file)
    }

    #[test]
    fn expansion_snapshot_model() {
        insta::assert_snapshot!(pretty(
            "#[aludel(table = \"posts\", index(user_id, title), check(name = \"title_not_blank\", expr = \"title <> ''\"))] \
             struct Post { #[aludel(primary_key, identity)] id: i32, \
             #[aludel(references = \"User::id\", on_delete = \"cascade\")] user_id: i32, \
             #[aludel(unique)] title: String, body: Option<String>, \
             #[aludel(server_default = \"now()\", sql_type = \"timestamptz\")] created_at: i64 }"
        ));
    }

    #[test]
    fn expansion_snapshot_enum() {
        let ast: DeriveInput = syn::parse_str(
            "#[aludel(type_name = \"mood\", rename_all = \"snake_case\")] enum Mood { Happy, #[aludel(rename = \"meh\")] SoSo }",
        )
        .unwrap();
        let file: syn::File = syn::parse2(crate::enums::expand(&ast).unwrap()).unwrap();
        insta::assert_snapshot!(prettyplease::unparse(&file));
    }

    #[test]
    fn misuse_is_reported() {
        assert!(
            expand_src("struct A { id: i32 }")
                .unwrap_err()
                .contains("primary key")
        );
        assert!(
            expand_src("struct A { #[aludel(primry_key)] id: i32 }")
                .unwrap_err()
                .contains("unknown aludel field attribute")
        );
        assert!(
            expand_src("#[aludel(tabel = \"x\")] struct A { #[aludel(primary_key)] id: i32 }")
                .unwrap_err()
                .contains("unknown aludel attribute")
        );
        assert!(
            expand_src("struct A { #[aludel(primary_key)] id: Option<i32> }")
                .unwrap_err()
                .contains("cannot be an Option")
        );
        assert_eq!(snake_case("UserProfile"), "user_profile");
    }
}
