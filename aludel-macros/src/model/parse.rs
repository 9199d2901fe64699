//! `#[aludel(…)]` attributes → [`ModelIr`]. Every error points at the attribute or field at
//! fault; the checks run in a fixed order, which the compile-fail tests pin.

use proc_macro2::Ident;
use syn::meta::ParseNestedMeta;
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Fields, LitStr, Path, Type};

use super::ir::{
    Cascade, FieldIr, Identity, Lazy, ModelIr, OnDelete, RelIr, RelKind, Secondary, SlotKind,
};
use crate::snake_case;

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
        attr.parse_nested_meta(|meta| struct_attr(&mut ir, &meta))?;
    }
    for f in &named.named {
        if let Some(rel) = parse_relation(f)? {
            ir.relations.push(rel);
        } else {
            ir.fields.push(parse_field(f)?);
        }
    }
    check_model(ast, &ir)?;
    Ok(ir)
}

/// One struct-level attribute: `table`, `unique(..)`, `index(..)`, `check(..)`.
fn struct_attr(ir: &mut ModelIr, meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.path.is_ident("table") {
        ir.table = meta.value()?.parse::<LitStr>()?.value();
    } else if meta.path.is_ident("unique") {
        ir.uniques.push(ident_list(meta)?);
    } else if meta.path.is_ident("index") {
        ir.indexes.push(ident_list(meta)?);
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
        return Err(meta.error(
            "unknown aludel attribute; expected `table`, `unique(..)`, `index(..)` or `check(..)`",
        ));
    }
    Ok(())
}

/// What holds across fields: relationship keys name column fields, a primary key exists,
/// constraint columns exist.
fn check_model(ast: &DeriveInput, ir: &ModelIr) -> syn::Result<()> {
    for r in &ir.relations {
        if matches!(r.kind, RelKind::ManyToOne) {
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
    Ok(())
}

fn ident_list(meta: &ParseNestedMeta<'_>) -> syn::Result<Vec<String>> {
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
fn slot_of(ty: &Type) -> Option<(SlotKind, Type)> {
    let Type::Path(p) = ty else { return None };
    let seg = p.path.segments.last()?;
    let slot = SlotKind::from_type_name(&seg.ident)?;
    let syn::PathArguments::AngleBracketed(args) = &seg.arguments else {
        return None;
    };
    match args.args.first()? {
        syn::GenericArgument::Type(t) => Some((slot, t.clone())),
        _ => None,
    }
}

fn paths(meta: &ParseNestedMeta<'_>) -> syn::Result<Vec<Path>> {
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
            let Some(kind) = RelKind::ATTRS.into_iter().find(|k| meta.path.is_ident(k)) else {
                if found.is_some() {
                    return Err(meta.error("a relationship field takes no column attributes"));
                }
                // not a relationship attribute: let parse_field report it
                let _ = meta.input.parse::<proc_macro2::TokenStream>();
                return Ok(());
            };
            found = Some(relation(f, kind, &meta)?);
            Ok(())
        })?;
    }
    Ok(found)
}

/// The link-table keys of a many-to-many, before they are known to be complete.
#[derive(Default)]
struct LinkKeys {
    secondary: Option<Path>,
    local: Option<Path>,
    remote: Option<Path>,
}

/// `kind(…)` on field `f`: the relationship it declares.
fn relation(f: &syn::Field, kind: &str, meta: &ParseNestedMeta<'_>) -> syn::Result<RelIr> {
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
        kind: RelKind::ManyToOne,
        fk: Vec::new(),
        key: Vec::new(),
        back: None,
        cascade: Cascade::DEFAULT,
        passive_deletes: false,
        order_by: Vec::new(),
        lazy: Lazy::Explicit,
    };
    let mut link = LinkKeys::default();
    meta.parse_nested_meta(|m| relation_key(&mut r, &mut link, &m))?;
    r.kind = match kind {
        "many_to_many" => match link {
            LinkKeys {
                secondary: Some(table),
                local: Some(local),
                remote: Some(remote),
            } => RelKind::ManyToMany(Secondary {
                table,
                local,
                remote,
            }),
            _ => {
                return Err(meta.error(
                    "many_to_many needs `secondary = LinkModel, local = LinkModel::parent_fk, remote = LinkModel::target_fk`",
                ));
            }
        },
        _ if r.fk.is_empty() => return Err(meta.error("this relationship needs `fk = …`")),
        "one_to_many" => RelKind::OneToMany,
        "one_to_one" => RelKind::OneToOne,
        _ => RelKind::ManyToOne,
    };
    if r.slot == SlotKind::WriteOnly {
        r.lazy = Lazy::WriteOnly;
        if !matches!(r.kind, RelKind::OneToMany | RelKind::ManyToMany(_)) {
            return Err(meta.error("WriteOnly<T> is for one_to_many and many_to_many"));
        }
    }
    let want_one = r.kind.is_scalar();
    if want_one != (r.slot == SlotKind::One) {
        return Err(syn::Error::new(
            f.ty.span(),
            if want_one {
                "this relationship is scalar: use One<T>"
            } else {
                "this relationship is a collection: use Many<T> or WriteOnly<T>"
            },
        ));
    }
    Ok(r)
}

/// One key inside `kind(…)`.
fn relation_key(r: &mut RelIr, link: &mut LinkKeys, m: &ParseNestedMeta<'_>) -> syn::Result<()> {
    let p = &m.path;
    if p.is_ident("fk") {
        r.fk = paths(m)?;
    } else if p.is_ident("key") {
        r.key = paths(m)?
            .into_iter()
            .map(|p| {
                p.get_ident()
                    .cloned()
                    .ok_or_else(|| m.error("expected a field name"))
            })
            .collect::<syn::Result<_>>()?;
    } else if p.is_ident("secondary") {
        link.secondary = Some(m.value()?.parse::<Path>()?);
    } else if p.is_ident("local") {
        link.local = Some(m.value()?.parse::<Path>()?);
    } else if p.is_ident("remote") {
        link.remote = Some(m.value()?.parse::<Path>()?);
    } else if p.is_ident("back_populates") {
        r.back = Some(m.value()?.parse::<Ident>()?);
    } else if p.is_ident("passive_deletes") {
        r.passive_deletes = true;
    } else if p.is_ident("cascade") {
        r.cascade = cascade(&m.value()?.parse::<LitStr>()?)?;
    } else if p.is_ident("order_by") {
        r.order_by = order_by(&m.value()?.parse::<LitStr>()?)?;
    } else if p.is_ident("lazy") {
        let lit = m.value()?.parse::<LitStr>()?;
        let Some(lazy) = Lazy::from_attr(&lit.value()) else {
            return Err(syn::Error::new(
                lit.span(),
                "lazy: expected \"selectin\", \"joined\", \"raise\", \"noload\" or \"select\"",
            ));
        };
        r.lazy = lazy;
    } else {
        return Err(m.error(
            "unknown relationship key; expected fk, key, secondary, local, remote, back_populates, cascade, passive_deletes, order_by or lazy",
        ));
    }
    Ok(())
}

/// `cascade = "save-update, delete, …"`; `delete-orphan` implies `delete`.
fn cascade(lit: &LitStr) -> syn::Result<Cascade> {
    let mut c = Cascade::NONE;
    for part in lit
        .value()
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        match part {
            "save-update" | "merge" | "refresh-expire" | "expunge" => c.save_update = true,
            "delete" => c.delete = true,
            "delete-orphan" => c.delete_orphan = true,
            "all" => {
                c.save_update = true;
                c.delete = true;
            }
            "none" => {}
            _ => {
                return Err(syn::Error::new(
                    lit.span(),
                    format!(
                        "unknown cascade `{part}`; expected save-update, merge, delete, delete-orphan, all or none"
                    ),
                ));
            }
        }
    }
    if c.delete_orphan {
        c.delete = true;
    }
    Ok(c)
}

/// `order_by = "column [asc|desc], …"`.
fn order_by(lit: &LitStr) -> syn::Result<Vec<(String, bool)>> {
    let mut out = Vec::new();
    for part in lit
        .value()
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let mut words = part.split_whitespace();
        let col = words.next().unwrap_or_default().to_owned();
        let desc = match words.next().map(str::to_ascii_lowercase).as_deref() {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(_) => {
                return Err(syn::Error::new(
                    lit.span(),
                    "order_by: `column [asc|desc], …`",
                ));
            }
        };
        out.push((col, desc));
    }
    Ok(out)
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
        identity: None,
        server_default: None,
        generated_expr: None,
        generated,
        unique: false,
        index: false,
        sql_type: None,
        references: None,
        on_delete: OnDelete::NoAction,
        version: false,
        deferred,
        group: None,
    };
    for attr in f.attrs.iter().filter(|a| a.path().is_ident("aludel")) {
        attr.parse_nested_meta(|meta| field_attr(&mut ir, &meta))?;
    }
    check_field(f, &ir)?;
    Ok(ir)
}

/// One column attribute.
fn field_attr(ir: &mut FieldIr, meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    let p = &meta.path;
    if p.is_ident("primary_key") {
        ir.primary_key = true;
    } else if p.is_ident("identity") {
        ir.identity = Some(identity(meta)?);
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
        ir.references = Some(references(&meta.value()?.parse::<LitStr>()?)?);
    } else if p.is_ident("on_delete") {
        let lit = meta.value()?.parse::<LitStr>()?;
        let Some(on_delete) = OnDelete::from_attr(&lit.value()) else {
            return Err(syn::Error::new(
                lit.span(),
                "expected \"cascade\", \"restrict\", \"set null\", \"set default\" or \"no action\"",
            ));
        };
        ir.on_delete = on_delete;
    } else {
        return Err(meta.error(
            "unknown aludel field attribute; expected one of `primary_key`, `identity`, `column`, \
             `server_default`, `generated`, `unique`, `index`, `sql_type`, `references`, `on_delete`, \
             `version`, `group`",
        ));
    }
    Ok(())
}

/// `identity`, `identity = "by default"` or `identity = "always"`.
fn identity(meta: &ParseNestedMeta<'_>) -> syn::Result<Identity> {
    if !meta.input.peek(syn::Token![=]) {
        return Ok(Identity::ByDefault);
    }
    let lit = meta.value()?.parse::<LitStr>()?;
    match lit.value().to_ascii_lowercase().as_str() {
        "always" => Ok(Identity::Always),
        "by default" | "by_default" => Ok(Identity::ByDefault),
        _ => Err(syn::Error::new(
            lit.span(),
            "expected `identity`, `identity = \"by default\"` or `identity = \"always\"`",
        )),
    }
}

/// `references = "Model::field"` → (`Model`, `field`).
fn references(lit: &LitStr) -> syn::Result<(Path, Ident)> {
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
    Ok((model_path, last.into_value().ident))
}

/// What one column field's attributes must agree on.
fn check_field(f: &syn::Field, ir: &FieldIr) -> syn::Result<()> {
    let fail = |msg: &str| Err(syn::Error::new(f.ty.span(), msg));
    if ir.deferred && (ir.primary_key || ir.version) {
        return fail("a primary-key or version field cannot be Deferred");
    }
    if ir.deferred && ir.references.is_some() {
        return fail("a foreign-key field cannot be Deferred (relationships read it)");
    }
    if ir.group.is_some() && !ir.deferred {
        return fail("`group` is for Deferred<T> fields");
    }
    let server_filled =
        ir.identity.is_some() || ir.server_default.is_some() || ir.generated_expr.is_some();
    if server_filled && !ir.generated {
        return fail(
            "a column the server fills (`identity`, `server_default`, `generated`) needs a \
             `Generated<T>` field: `Generated::unset()` leaves it to the server, a set value is \
             sent as given",
        );
    }
    if ir.generated && !server_filled {
        return fail(
            "`Generated<T>` is for columns the server fills: add `identity`, \
             `server_default = \"…\"` or `generated = \"…\"`",
        );
    }
    if ir.generated_expr.is_some() && (ir.identity.is_some() || ir.server_default.is_some()) {
        return fail("a `generated` column has no identity and no server_default");
    }
    if ir.primary_key && ir.nullable {
        return fail("a primary-key field cannot be an Option");
    }
    Ok(())
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
