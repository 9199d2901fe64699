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
    relations: Vec<RelIr>,
}

/// A relationship field (`Many<T>`, `One<T>`, `WriteOnly<T>`): not a column.
struct RelIr {
    ident: Ident,
    /// `Many`, `One` or `WriteOnly`.
    slot: Ident,
    target: Type,
    kind: &'static str,
    /// many_to_one: own FK fields; one_to_many/one_to_one: `Target::field` paths.
    fk: Vec<Path>,
    key: Vec<Ident>,
    secondary: Option<(Path, Path, Path)>,
    back: Option<Ident>,
    cascade: (bool, bool, bool),
    passive_deletes: bool,
    order_by: Vec<(String, bool)>,
    lazy: String,
}

struct FieldIr {
    ident: Ident,
    ty: Type,
    column: String,
    nullable: bool,
    primary_key: bool,
    identity: bool,
    /// `identity = "always"`: GENERATED ALWAYS, the server refuses a value.
    identity_always: bool,
    server_default: Option<String>,
    /// `generated = "expr"`: GENERATED ALWAYS AS (expr) STORED.
    generated_expr: Option<String>,
    /// A `Generated<T>` field (`ty` is then `T`).
    generated: bool,
    unique: bool,
    index: bool,
    sql_type: Option<String>,
    references: Option<(Path, Ident)>,
    on_delete: Ident,
    version: bool,
    /// A `Deferred<T>` field (`ty` is then `T`).
    deferred: bool,
    group: Option<String>,
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
        relations: Vec::new(),
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
        if let Some(rel) = parse_relation(f)? {
            ir.relations.push(rel);
        } else {
            ir.fields.push(parse_field(f)?);
        }
    }
    for r in &ir.relations {
        if r.kind == "many_to_one" {
            for fk in &r.fk {
                let ok = fk
                    .get_ident()
                    .is_some_and(|id| ir.fields.iter().any(|f| &f.ident == id && !f.deferred));
                if !ok {
                    return Err(syn::Error::new(
                        fk.span(),
                        "many_to_one `fk` names a (not Deferred) column field of this model",
                    ));
                }
            }
        }
        for k in &r.key {
            if !ir.fields.iter().any(|f| &f.ident == k) {
                return Err(syn::Error::new(
                    k.span(),
                    "`key` names a column field of this model",
                ));
            }
        }
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

/// The slot type (`Many`, `One`, `WriteOnly`) and its target of a relationship field.
fn slot_of(ty: &Type) -> Option<(Ident, Type)> {
    let Type::Path(p) = ty else { return None };
    let seg = p.path.segments.last()?;
    if !["Many", "One", "WriteOnly"].iter().any(|n| seg.ident == n) {
        return None;
    }
    let syn::PathArguments::AngleBracketed(args) = &seg.arguments else {
        return None;
    };
    match args.args.first()? {
        syn::GenericArgument::Type(t) => Some((seg.ident.clone(), t.clone())),
        _ => None,
    }
}

const REL_KINDS: [&str; 4] = ["many_to_one", "one_to_many", "one_to_one", "many_to_many"];

fn paths(meta: &syn::meta::ParseNestedMeta<'_>) -> syn::Result<Vec<Path>> {
    // `fk = a` or `fk(a, b)`
    if meta.input.peek(syn::Token![=]) {
        Ok(vec![meta.value()?.parse::<Path>()?])
    } else {
        let mut out = Vec::new();
        meta.parse_nested_meta(|m| {
            out.push(m.path.clone());
            Ok(())
        })?;
        Ok(out)
    }
}

fn parse_relation(f: &syn::Field) -> syn::Result<Option<RelIr>> {
    let mut found: Option<RelIr> = None;
    for attr in f.attrs.iter().filter(|a| a.path().is_ident("aludel")) {
        attr.parse_nested_meta(|meta| {
            let Some(kind) = REL_KINDS.iter().find(|k| meta.path.is_ident(k)) else {
                if found.is_some() {
                    return Err(meta.error("a relationship field takes no column attributes"));
                }
                // not a relationship attribute: let parse_field report it
                let _ = meta.input.parse::<proc_macro2::TokenStream>();
                return Ok(());
            };
            let ident = f
                .ident
                .clone()
                .ok_or_else(|| meta.error("named field expected"))?;
            let Some((slot, target)) = slot_of(&f.ty) else {
                return Err(syn::Error::new(
                    f.ty.span(),
                    "a relationship field has type Many<T>, One<T> or WriteOnly<T>",
                ));
            };
            let mut r = RelIr {
                ident,
                slot,
                target,
                kind,
                fk: Vec::new(),
                key: Vec::new(),
                secondary: None,
                back: None,
                cascade: (true, false, false),
                passive_deletes: false,
                order_by: Vec::new(),
                lazy: String::from("explicit"),
            };
            let (mut sec, mut local, mut remote) = (None, None, None);
            meta.parse_nested_meta(|m| {
                let p = &m.path;
                if p.is_ident("fk") {
                    r.fk = paths(&m)?;
                } else if p.is_ident("key") {
                    r.key = paths(&m)?
                        .into_iter()
                        .map(|p| p.get_ident().cloned().ok_or_else(|| m.error("expected a field name")))
                        .collect::<syn::Result<_>>()?;
                } else if p.is_ident("secondary") {
                    sec = Some(m.value()?.parse::<Path>()?);
                } else if p.is_ident("local") {
                    local = Some(m.value()?.parse::<Path>()?);
                } else if p.is_ident("remote") {
                    remote = Some(m.value()?.parse::<Path>()?);
                } else if p.is_ident("back_populates") {
                    r.back = Some(m.value()?.parse::<Ident>()?);
                } else if p.is_ident("passive_deletes") {
                    r.passive_deletes = true;
                } else if p.is_ident("cascade") {
                    let lit = m.value()?.parse::<LitStr>()?;
                    let mut c = (false, false, false);
                    for part in lit.value().split(',').map(str::trim).filter(|p| !p.is_empty()) {
                        match part {
                            "save-update" | "merge" | "refresh-expire" | "expunge" => c.0 = true,
                            "delete" => c.1 = true,
                            "delete-orphan" => c.2 = true,
                            "all" => {
                                c.0 = true;
                                c.1 = true;
                            }
                            "none" => {}
                            _ => {
                                return Err(syn::Error::new(
                                    lit.span(),
                                    format!("unknown cascade `{part}`; expected save-update, merge, delete, delete-orphan, all or none"),
                                ));
                            }
                        }
                    }
                    if c.2 {
                        c.1 = true;
                    }
                    r.cascade = c;
                } else if p.is_ident("order_by") {
                    let lit = m.value()?.parse::<LitStr>()?;
                    for part in lit.value().split(',').map(str::trim).filter(|p| !p.is_empty()) {
                        let mut words = part.split_whitespace();
                        let col = words.next().unwrap_or_default().to_owned();
                        let desc = match words.next().map(str::to_ascii_lowercase).as_deref() {
                            None | Some("asc") => false,
                            Some("desc") => true,
                            Some(_) => return Err(syn::Error::new(lit.span(), "order_by: `column [asc|desc], …`")),
                        };
                        r.order_by.push((col, desc));
                    }
                } else if p.is_ident("lazy") {
                    let lit = m.value()?.parse::<LitStr>()?;
                    let v = lit.value();
                    if !["select", "explicit", "selectin", "joined", "raise", "noload", "write_only"].contains(&v.as_str()) {
                        return Err(syn::Error::new(lit.span(), "lazy: expected \"selectin\", \"joined\", \"raise\", \"noload\" or \"select\""));
                    }
                    r.lazy = v;
                } else {
                    return Err(m.error("unknown relationship key; expected fk, key, secondary, local, remote, back_populates, cascade, passive_deletes, order_by or lazy"));
                }
                Ok(())
            })?;
            match *kind {
                "many_to_many" => match (sec, local, remote) {
                    (Some(s), Some(l), Some(r2)) => r.secondary = Some((s, l, r2)),
                    _ => return Err(meta.error("many_to_many needs `secondary = LinkModel, local = LinkModel::parent_fk, remote = LinkModel::target_fk`")),
                },
                _ if r.fk.is_empty() => return Err(meta.error("this relationship needs `fk = …`")),
                _ => {}
            }
            if r.slot == "WriteOnly" {
                r.lazy = String::from("write_only");
                if !matches!(*kind, "one_to_many" | "many_to_many") {
                    return Err(meta.error("WriteOnly<T> is for one_to_many and many_to_many"));
                }
            }
            let want_one = matches!(*kind, "many_to_one" | "one_to_one");
            if want_one != (r.slot == "One") {
                return Err(syn::Error::new(
                    f.ty.span(),
                    if want_one { "this relationship is scalar: use One<T>" } else { "this relationship is a collection: use Many<T> or WriteOnly<T>" },
                ));
            }
            found = Some(r);
            Ok(())
        })?;
    }
    Ok(found)
}

fn parse_field(f: &syn::Field) -> syn::Result<FieldIr> {
    let ident = f
        .ident
        .clone()
        .ok_or_else(|| syn::Error::new(f.span(), "named field expected"))?;
    let (ty, deferred) = match wrapper_inner(&f.ty, "Deferred") {
        Some(inner) => (inner, true),
        None => (f.ty.clone(), false),
    };
    if wrapper_inner(&ty, "Generated").is_some_and(|g| wrapper_inner(&g, "Deferred").is_some()) {
        return Err(syn::Error::new(
            f.ty.span(),
            "write `Deferred<Generated<T>>`, not `Generated<Deferred<T>>`",
        ));
    }
    let (ty, generated) = match wrapper_inner(&ty, "Generated") {
        Some(inner) => (inner, true),
        None => (ty, false),
    };
    let mut ir = FieldIr {
        column: ident.to_string(),
        ident,
        nullable: is_option(&ty),
        ty,
        primary_key: false,
        identity: false,
        identity_always: false,
        server_default: None,
        generated_expr: None,
        generated,
        unique: false,
        index: false,
        sql_type: None,
        references: None,
        on_delete: Ident::new("NoAction", Span::call_site()),
        version: false,
        deferred,
        group: None,
    };
    for attr in f.attrs.iter().filter(|a| a.path().is_ident("aludel")) {
        attr.parse_nested_meta(|meta| {
            let p = &meta.path;
            if p.is_ident("primary_key") {
                ir.primary_key = true;
            } else if p.is_ident("identity") {
                ir.identity = true;
                if meta.input.peek(syn::Token![=]) {
                    let lit = meta.value()?.parse::<LitStr>()?;
                    ir.identity_always = match lit.value().to_ascii_lowercase().as_str() {
                        "always" => true,
                        "by default" | "by_default" => false,
                        _ => {
                            return Err(syn::Error::new(
                                lit.span(),
                                "expected `identity`, `identity = \"by default\"` or `identity = \"always\"`",
                            ));
                        }
                    };
                }
            } else if p.is_ident("generated") {
                ir.generated_expr = Some(meta.value()?.parse::<LitStr>()?.value());
            } else if p.is_ident("unique") {
                ir.unique = true;
            } else if p.is_ident("index") {
                ir.index = true;
            } else if p.is_ident("version") {
                ir.version = true;
            } else if p.is_ident("group") {
                ir.group = Some(meta.value()?.parse::<LitStr>()?.value());
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
                     `server_default`, `generated`, `unique`, `index`, `sql_type`, `references`, `on_delete`, \
                     `version`, `group`",
                ));
            }
            Ok(())
        })?;
    }
    if ir.deferred && (ir.primary_key || ir.version) {
        return Err(syn::Error::new(
            f.ty.span(),
            "a primary-key or version field cannot be Deferred",
        ));
    }
    if ir.deferred && ir.references.is_some() {
        return Err(syn::Error::new(
            f.ty.span(),
            "a foreign-key field cannot be Deferred (relationships read it)",
        ));
    }
    if ir.group.is_some() && !ir.deferred {
        return Err(syn::Error::new(
            f.ty.span(),
            "`group` is for Deferred<T> fields",
        ));
    }
    let server_filled = ir.identity || ir.server_default.is_some() || ir.generated_expr.is_some();
    if server_filled && !ir.generated {
        return Err(syn::Error::new(
            f.ty.span(),
            "a column the server fills (`identity`, `server_default`, `generated`) needs a \
             `Generated<T>` field: `Generated::unset()` leaves it to the server, a set value is \
             sent as given",
        ));
    }
    if ir.generated && !server_filled {
        return Err(syn::Error::new(
            f.ty.span(),
            "`Generated<T>` is for columns the server fills: add `identity`, \
             `server_default = \"…\"` or `generated = \"…\"`",
        ));
    }
    if ir.generated_expr.is_some() && (ir.identity || ir.server_default.is_some()) {
        return Err(syn::Error::new(
            f.ty.span(),
            "a `generated` column has no identity and no server_default",
        ));
    }
    if ir.primary_key && ir.nullable {
        return Err(syn::Error::new(
            f.ty.span(),
            "a primary-key field cannot be an Option",
        ));
    }
    Ok(ir)
}

/// `T` of a `Deferred<T>` / `Generated<T>` (`name`) field type.
fn wrapper_inner(ty: &Type, name: &str) -> Option<Type> {
    let Type::Path(p) = ty else { return None };
    let seg = p.path.segments.last()?;
    if p.qself.is_some() || seg.ident != name {
        return None;
    }
    let syn::PathArguments::AngleBracketed(args) = &seg.arguments else {
        return None;
    };
    match args.args.first() {
        Some(syn::GenericArgument::Type(t)) if args.args.len() == 1 => Some(t.clone()),
        _ => None,
    }
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
    let n_cols = m.fields.iter().filter(|f| !f.deferred).count();
    if m.fields.iter().filter(|f| f.deferred).count() > 64 {
        return syn::Error::new(ident.span(), "a model has at most 64 Deferred fields")
            .into_compile_error();
    }

    let column_consts = m.fields.iter().map(|f| {
        let (fid, ty, col) = (&f.ident, &f.ty, &f.column);
        let doc = format!("The `{col}` column.");
        quote! {
            #[doc = #doc]
            #[allow(non_upper_case_globals)]
            pub const #fid: ::aludel::__private::Column<#ident, #ty> = ::aludel::__private::Column::new(#table, #col);
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
                    ::core::option::Option::Some(::aludel::__private::ForeignKeyDef::new(
                        || <#model as ::aludel::__private::Model>::TABLE,
                        #model::#col_ident.name(),
                        ::aludel::__private::OnDelete::#on_delete,
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
        let deferred = if f.deferred {
            let group = opt_str(&f.group);
            quote!(.deferred(#group))
        } else {
            quote!()
        };
        let always = if f.identity_always {
            quote!(.always())
        } else {
            quote!()
        };
        let generated = match &f.generated_expr {
            Some(e) => quote!(.generated_as(#e)),
            None => quote!(),
        };
        quote! {
            ::aludel::__private::ColumnDef::new(#col, #field, <#ty as ::aludel::__private::SqlType>::sql_type)
                .with(#ddl, #nullable, #pk, #identity, #default, #unique, #index, #fk)
                #versioned
                #deferred
                #always
                #generated
        }
    });

    let uniques = m.uniques.iter().map(|cols| quote!(&[#(#cols),*]));
    let indexes = m
        .indexes
        .iter()
        .map(|cols| quote!(::aludel::__private::IndexDef::new(&[#(#cols),*], false)));
    let checks = m
        .checks
        .iter()
        .map(|(n, e)| quote!(::aludel::__private::CheckDef::new(#n, #e)));

    let inserts = m
        .fields
        .iter()
        .filter(|f| !f.identity_always && f.generated_expr.is_none())
        .map(|f| {
            let fid = &f.ident;
            match (f.deferred, f.generated) {
                (true, true) => {
                    quote!(out.push(::aludel::__private::deferred_generated_bind(&self.#fid));)
                }
                (true, false) => quote!(out.push(::core::option::Option::Some(
                    ::aludel::__private::deferred_bind(&self.#fid)
                ));),
                (false, true) => {
                    quote!(out.push(::aludel::__private::Generated::bind(&self.#fid));)
                }
                (false, false) => quote!(out.push(::core::option::Option::Some(
                    ::aludel::__private::Bind::new(::core::clone::Clone::clone(&self.#fid))
                ));),
            }
        });

    let values = m.fields.iter().enumerate().map(|(i, f)| {
        let fid = &f.ident;
        match (f.deferred, f.generated) {
            (true, true) => quote!(#i => ::aludel::__private::deferred_generated_bind(&self.#fid),),
            (true, false) => quote!(#i => self.#fid.loaded().map(|v| ::aludel::__private::Bind::new(::core::clone::Clone::clone(v))),),
            (false, true) => quote!(#i => ::aludel::__private::Generated::bind(&self.#fid),),
            (false, false) => quote!(#i => ::core::option::Option::Some(::aludel::__private::Bind::new(::core::clone::Clone::clone(&self.#fid))),),
        }
    });

    let key_parts = m.fields.iter().filter(|f| f.primary_key).map(|f| {
        let fid = &f.ident;
        if f.generated {
            quote!(out.part_generated(&self.#fid);)
        } else {
            quote!(out.part(&self.#fid);)
        }
    });
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
    let clear_column = if clears.is_empty() {
        quote!()
    } else {
        quote! {
            fn clear_column(&mut self, idx: usize) {
                match idx {
                    #(#clears)*
                    _ => {}
                }
            }
        }
    };

    let mut pos = 0usize;
    let reads: Vec<TokenStream> = m
        .fields
        .iter()
        .map(|f| {
            let fid = &f.ident;
            if f.deferred {
                let path = format!("{table}.{}", f.column);
                quote!(#fid: ::aludel::__private::Deferred::not_loaded(#path, false))
            } else {
                let i = pos;
                pos += 1;
                quote!(#fid: row.get(offset + #i)?)
            }
        })
        .collect();
    let mut k = 0usize;
    let masked_reads: Vec<TokenStream> = m
        .fields
        .iter()
        .map(|f| {
            let fid = &f.ident;
            if f.deferred {
                let path = format!("{table}.{}", f.column);
                let bit = k;
                k += 1;
                quote!(#fid: if cols.has(#bit) {
                    let v = row.get(at)?;
                    at += 1;
                    ::aludel::__private::Deferred::new(v)
                } else {
                    ::aludel::__private::Deferred::not_loaded(#path, cols.raises(#bit))
                })
            } else {
                quote!(#fid: {
                    let v = row.get(at)?;
                    at += 1;
                    v
                })
            }
        })
        .collect();

    let rel_consts = m.relations.iter().map(|r| expand_relation(m, r));
    let rel_inits = m.relations.iter().map(|r| {
        let (fid, slot) = (&r.ident, &r.slot);
        let path = format!("{table}.{}", r.ident);
        if r.slot == "WriteOnly" {
            quote!(#fid: ::aludel::__private::WriteOnly::named(#path))
        } else {
            quote!(#fid: ::aludel::__private::#slot::not_loaded(#path))
        }
    });
    let rel_visits = m.relations.iter().map(|r| {
        let fid = &r.ident;
        quote!(v.visit(#ident::#fid);)
    });
    let sets = m.fields.iter().enumerate().map(|(i, f)| {
        let (fid, ty, col) = (&f.ident, &f.ty, &f.column);
        let mut value = quote!(::aludel::__private::decode_column::<#ty>(raw, #col)?);
        if f.generated {
            value = quote!(::aludel::__private::Generated::new(#value));
        }
        if f.deferred {
            value = quote!(::aludel::__private::Deferred::new(#value));
        }
        quote!(#i => self.#fid = #value,)
    });

    let Some((pk_index, pk_field)) = m
        .fields
        .iter()
        .filter(|f| !f.deferred)
        .enumerate()
        .find(|(_, f)| f.primary_key)
    else {
        return syn::Error::new(ident.span(), "a model needs a primary key").into_compile_error();
    };
    let rel_inits: Vec<TokenStream> = rel_inits.collect();
    let from_row_columns = if m.fields.iter().any(|f| f.deferred) {
        quote! {
            #[allow(unused_assignments)]
            fn from_row_columns(
                row: &::aludel::__private::Row,
                offset: usize,
                cols: ::aludel::__private::Columns,
            ) -> ::aludel::__private::Result<Self> {
                let mut at = offset;
                ::core::result::Result::Ok(#ident { #(#masked_reads,)* #(#rel_inits,)* })
            }
        }
    } else {
        quote!()
    };
    let pk_ty = &pk_field.ty;
    let alias_doc = format!("`{table}` under another name, for self-joins.");
    let all_name = format_ident!("ALL");

    quote! {
        impl #ident {
            #(#column_consts)*
            /// Every column of the model: `select(Model::ALL)`.
            pub const #all_name: ::aludel::__private::All<#ident> = ::aludel::__private::All::new();
            /// The table's description (for `create_all`).
            pub const TABLE: &'static ::aludel::__private::TableDef = <#ident as ::aludel::__private::Model>::TABLE;
            #[doc = #alias_doc]
            pub const fn alias(name: &'static str) -> ::aludel::__private::Alias<#ident> {
                ::aludel::__private::Alias::new(name)
            }
            #(#rel_consts)*
        }

        impl ::aludel::__private::Model for #ident {
            const TABLE: &'static ::aludel::__private::TableDef = &::aludel::__private::TableDef::new(
                #table,
                &[#(#column_defs),*],
                &[#(#uniques),*],
                &[#(#indexes),*],
                &[#(#checks),*],
            );

            fn insert_values(&self, out: &mut ::std::vec::Vec<::core::option::Option<::aludel::__private::Bind>>) {
                #(#inserts)*
            }

            fn write_identity(&self, out: &mut ::aludel::__private::KeyWriter<'_>) {
                #(#key_parts)*
            }

            fn column_value(&self, idx: usize) -> ::core::option::Option<::aludel::__private::Bind> {
                match idx {
                    #(#values)*
                    _ => ::core::option::Option::None,
                }
            }

            fn set_column(&mut self, idx: usize, raw: ::core::option::Option<&[u8]>) -> ::aludel::__private::Result<()> {
                match idx {
                    #(#sets)*
                    _ => {}
                }
                ::core::result::Result::Ok(())
            }

            #clear_column

            fn visit_relations<V: ::aludel::__private::RelVisitor<Self>>(v: &mut V) {
                let _ = &v;
                #(#rel_visits)*
            }

        }

        impl ::aludel::__private::FromRowOpt for #ident {
            fn from_row_opt_at(row: &::aludel::__private::Row, offset: usize) -> ::aludel::__private::Result<::core::option::Option<Self>> {
                let pk: ::core::option::Option<#pk_ty> = row.get(offset + #pk_index)?;
                if pk.is_none() {
                    return ::core::result::Result::Ok(::core::option::Option::None);
                }
                <Self as ::aludel::__private::FromRow>::from_row_at(row, offset).map(::core::option::Option::Some)
            }
            fn opt_column_count() -> usize {
                #n_cols
            }
        }

        impl ::aludel::__private::FromRow for #ident {
            #[inline]
            fn from_row_at(row: &::aludel::__private::Row, offset: usize) -> ::aludel::__private::Result<Self> {
                ::core::result::Result::Ok(#ident { #(#reads,)* #(#rel_inits,)* })
            }
            fn column_count() -> usize {
                #n_cols
            }

            #from_row_columns
        }
    }
}

fn path_tokens(p: &Path) -> TokenStream {
    quote!(#p)
}

/// `Model::field` → (`Model`, `field`).
fn split_path(p: &Path) -> (TokenStream, TokenStream) {
    let mut model = p.clone();
    let last = model.segments.pop().map(|s| s.into_value().ident);
    let model = Path {
        leading_colon: model.leading_colon,
        segments: model.segments.into_iter().collect(),
    };
    (quote!(#model), quote!(#last))
}

fn expand_relation(m: &ModelIr, r: &RelIr) -> TokenStream {
    let ident = &m.ident;
    let (fid, target, slot) = (&r.ident, &r.target, &r.slot);
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
    let kind = match r.kind {
        "many_to_one" => quote!(ManyToOne),
        "one_to_many" => quote!(OneToMany),
        "one_to_one" => quote!(OneToOne),
        _ => quote!(ManyToMany),
    };
    let none = quote!(::core::option::Option::None);
    let key_cols = if r.key.is_empty() {
        none.clone()
    } else {
        let cols = r.key.iter().map(col_of);
        quote!(::core::option::Option::Some(&[#(#cols),*]))
    };
    let (local, remote) = match r.kind {
        "many_to_one" => {
            let cols = r.fk.iter().filter_map(|p| p.get_ident()).map(col_of);
            (
                quote!(::core::option::Option::Some(&[#(#cols),*])),
                none.clone(),
            )
        }
        "many_to_many" => (key_cols, none.clone()),
        _ => {
            let cols = r.fk.iter().map(path_tokens).map(|p| quote!(#p.name()));
            (
                key_cols,
                quote!(::core::option::Option::Some(&[#(#cols),*])),
            )
        }
    };
    let secondary = match &r.secondary {
        Some((sec, l, rm)) => {
            let (_, lf) = split_path(l);
            let (_, rf) = split_path(rm);
            quote!(::core::option::Option::Some(::aludel::__private::Secondary {
                table: || <#sec as ::aludel::__private::Model>::TABLE,
                local: &[#sec::#lf.name()],
                remote: &[#sec::#rf.name()],
            }))
        }
        None => none.clone(),
    };
    let back = match &r.back {
        Some(b) => quote!(::core::option::Option::Some({
            fn back() -> ::aludel::__private::Rel<#target, #ident> { <#target>::#b }
            back
        })),
        None => none.clone(),
    };
    let (su, del, orphan) = r.cascade;
    let passive = r.passive_deletes;
    let order = r.order_by.iter().map(|(c, d)| quote!((#c, #d)));
    let lazy = match r.lazy.as_str() {
        "selectin" => quote!(Selectin),
        "joined" => quote!(Joined),
        "raise" => quote!(Raise),
        "noload" => quote!(NoLoad),
        "write_only" => quote!(WriteOnly),
        _ => quote!(Explicit),
    };
    let doc = format!("The `{name}` relationship ({}).", r.kind.replace('_', "-"));
    quote! {
        #[doc = #doc]
        #[allow(non_upper_case_globals)]
        pub const #fid: ::aludel::__private::Rel<#ident, #target> = ::aludel::__private::Rel::new(&::aludel::__private::RelDef {
            name: #name,
            path: #path,
            kind: ::aludel::__private::RelKind::#kind,
            local: #local,
            remote: #remote,
            secondary: #secondary,
            back: #back,
            cascade: ::aludel::__private::Cascade { save_update: #su, delete: #del, delete_orphan: #orphan },
            passive_deletes: #passive,
            order_by: &[#(#order),*],
            lazy: ::aludel::__private::Lazy::#lazy,
            alias: #alias,
            slot: ::aludel::__private::Slot::#slot({
                fn slot(m: &mut #ident) -> &mut ::aludel::__private::#slot<#target> { &mut m.#fid }
                slot
            }),
        });
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
            "#[aludel(table = \"users\")] struct User { #[aludel(primary_key, identity)] id: Generated<i32>, \
             #[aludel(column = \"full_name\")] name: String, hair: Option<String>, \
             #[aludel(identity = \"always\")] n: Generated<i64> }",
        )
        .unwrap();
        // a Generated<T> field's column handle has type T
        assert!(out.contains("pub const id : :: aludel :: __private :: Column < User , i32 > = :: aludel :: __private :: Column :: new (\"users\" , \"id\")"), "{out}");
        assert!(out.contains("\"full_name\""), "{out}");
        // a BY DEFAULT identity is sent when set; a GENERATED ALWAYS one never
        let insert =
            &out[out.find("fn insert_values").unwrap()..out.find("fn write_identity").unwrap()];
        assert!(
            insert.contains("Generated :: bind (& self . id)"),
            "{insert}"
        );
        assert!(insert.contains("self . name"), "{insert}");
        assert!(!insert.contains("self . n)"), "{insert}");
        assert!(out.contains(". always ()"), "{out}");
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
             struct Post { #[aludel(primary_key, identity)] id: Generated<i32>, \
             #[aludel(references = \"User::id\", on_delete = \"cascade\")] user_id: i32, \
             #[aludel(unique)] title: String, body: Option<String>, \
             #[aludel(server_default = \"now()\", sql_type = \"timestamptz\")] created_at: Generated<i64> }"
        ));
    }

    #[test]
    fn expansion_snapshot_relations() {
        insta::assert_snapshot!(pretty(
            "#[aludel(table = \"users\")] struct User { #[aludel(primary_key, identity)] id: Generated<i64>, \
             #[aludel(one_to_many(fk = Post::user_id, back_populates = author, cascade = \"all, delete-orphan\", order_by = \"id desc\"))] \
             posts: Many<Post>, \
             #[aludel(many_to_many(secondary = Follow, local = Follow::follower_id, remote = Follow::followee_id, lazy = \"selectin\"))] \
             following: Many<User> }"
        ));
    }

    #[test]
    fn expansion_snapshot_deferred() {
        insta::assert_snapshot!(pretty(
            "#[aludel(table = \"books\")] struct Book { #[aludel(primary_key)] id: i64, \
             summary: Deferred<String>, title: String, \
             #[aludel(group = \"media\")] cover: Deferred<Option<Vec<u8>>>, \
             #[aludel(server_default = \"''\")] note: Deferred<Generated<String>> }"
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
        assert!(
            expand_src("struct A { #[aludel(primary_key)] id: Deferred<i32> }")
                .unwrap_err()
                .contains("cannot be Deferred")
        );
        assert!(
            expand_src(
                "struct A { #[aludel(primary_key)] id: i32, #[aludel(group = \"g\")] b: String }"
            )
            .unwrap_err()
            .contains("`group` is for Deferred")
        );
        assert!(
            expand_src(
                "struct A { #[aludel(primary_key)] id: i32, #[aludel(references = \"B::id\")] b: Deferred<i32> }"
            )
            .unwrap_err()
            .contains("foreign-key field cannot be Deferred")
        );
        assert!(
            expand_src("struct A { #[aludel(primary_key, identity)] id: i32 }")
                .unwrap_err()
                .contains("needs a `Generated<T>` field")
        );
        assert!(
            expand_src("struct A { #[aludel(primary_key)] id: i32, n: Generated<i32> }")
                .unwrap_err()
                .contains("`Generated<T>` is for columns the server fills")
        );
        assert!(
            expand_src(
                "struct A { #[aludel(primary_key)] id: i32, #[aludel(server_default = \"1\")] n: Generated<Deferred<i32>> }"
            )
            .unwrap_err()
            .contains("Deferred<Generated<T>>")
        );
        assert!(
            expand_src(
                "struct A { #[aludel(primary_key, identity = \"sometimes\")] id: Generated<i32> }"
            )
            .unwrap_err()
            .contains("expected `identity`")
        );
        assert_eq!(snake_case("UserProfile"), "user_profile");
    }
}
