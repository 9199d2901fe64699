//! What `#[derive(Model)]` knows about a struct once its attributes are parsed: a typed IR
//! (`parse` builds it, `expand` reads it). Each enum mirrors a runtime enum of aludel's
//! `schema` module and names its variant there.

use proc_macro2::{Ident, Span};
use syn::{Path, Type};

pub(crate) struct ModelIr {
    pub(crate) ident: Ident,
    pub(crate) table: String,
    pub(crate) fields: Vec<FieldIr>,
    pub(crate) uniques: Vec<Vec<String>>,
    pub(crate) indexes: Vec<Vec<String>>,
    /// `check(name = …, expr = …)`: (name, expr).
    pub(crate) checks: Vec<(String, String)>,
    pub(crate) relations: Vec<RelIr>,
}

/// A column field.
pub(crate) struct FieldIr {
    pub(crate) ident: Ident,
    /// The column's Rust type: `T` of a `Generated<T>`, `Deferred<T>` or
    /// `Deferred<Generated<T>>` field.
    pub(crate) ty: Type,
    pub(crate) column: String,
    pub(crate) nullable: bool,
    pub(crate) primary_key: bool,
    pub(crate) identity: Option<Identity>,
    pub(crate) server_default: Option<String>,
    /// `generated = "expr"`: GENERATED ALWAYS AS (expr) STORED.
    pub(crate) generated_expr: Option<String>,
    /// A `Generated<T>` field.
    pub(crate) generated: bool,
    pub(crate) unique: bool,
    pub(crate) index: bool,
    pub(crate) sql_type: Option<String>,
    /// `references = "Model::field"`: (model, field).
    pub(crate) references: Option<(Path, Ident)>,
    pub(crate) on_delete: OnDelete,
    pub(crate) version: bool,
    /// A `Deferred<T>` field.
    pub(crate) deferred: bool,
    pub(crate) group: Option<String>,
}

impl FieldIr {
    /// `identity = "always"`: the server refuses a value, so no INSERT sends one.
    pub(crate) fn identity_always(&self) -> bool {
        self.identity == Some(Identity::Always)
    }
}

/// `identity` / `identity = "by default"` / `identity = "always"`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Identity {
    ByDefault,
    Always,
}

/// `on_delete = "…"` (`schema::OnDelete`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnDelete {
    NoAction,
    Cascade,
    Restrict,
    SetNull,
    SetDefault,
}

impl OnDelete {
    pub(crate) fn from_attr(s: &str) -> Option<Self> {
        Some(match s.to_ascii_lowercase().as_str() {
            "cascade" => OnDelete::Cascade,
            "restrict" => OnDelete::Restrict,
            "set null" | "set_null" => OnDelete::SetNull,
            "set default" | "set_default" => OnDelete::SetDefault,
            "no action" | "no_action" => OnDelete::NoAction,
            _ => return None,
        })
    }

    pub(crate) fn variant(self) -> Ident {
        let name = match self {
            OnDelete::NoAction => "NoAction",
            OnDelete::Cascade => "Cascade",
            OnDelete::Restrict => "Restrict",
            OnDelete::SetNull => "SetNull",
            OnDelete::SetDefault => "SetDefault",
        };
        Ident::new(name, Span::call_site())
    }
}

/// A relationship field (`Many<T>`, `One<T>`, `WriteOnly<T>`): not a column.
pub(crate) struct RelIr {
    pub(crate) ident: Ident,
    pub(crate) slot: SlotKind,
    pub(crate) target: Type,
    pub(crate) kind: RelKind,
    /// many_to_one: own FK fields; one_to_many/one_to_one: `Target::field` paths.
    pub(crate) fk: Vec<Path>,
    pub(crate) key: Vec<Ident>,
    pub(crate) back: Option<Ident>,
    pub(crate) cascade: Cascade,
    pub(crate) passive_deletes: bool,
    /// `order_by = "col [asc|desc], …"`: (column, descending).
    pub(crate) order_by: Vec<(String, bool)>,
    pub(crate) lazy: Lazy,
}

/// The relationship kind (`schema::RelKind`); many-to-many carries its link table.
pub(crate) enum RelKind {
    ManyToOne,
    OneToMany,
    OneToOne,
    ManyToMany(Secondary),
}

/// `secondary = Link, local = Link::parent_fk, remote = Link::target_fk`.
pub(crate) struct Secondary {
    pub(crate) table: Path,
    pub(crate) local: Path,
    pub(crate) remote: Path,
}

impl RelKind {
    /// The attribute that names this kind (`many_to_one` …).
    pub(crate) const ATTRS: [&'static str; 4] =
        ["many_to_one", "one_to_many", "one_to_one", "many_to_many"];

    pub(crate) fn attr(&self) -> &'static str {
        match self {
            RelKind::ManyToOne => "many_to_one",
            RelKind::OneToMany => "one_to_many",
            RelKind::OneToOne => "one_to_one",
            RelKind::ManyToMany(_) => "many_to_many",
        }
    }

    pub(crate) fn variant(&self) -> Ident {
        let name = match self {
            RelKind::ManyToOne => "ManyToOne",
            RelKind::OneToMany => "OneToMany",
            RelKind::OneToOne => "OneToOne",
            RelKind::ManyToMany(_) => "ManyToMany",
        };
        Ident::new(name, Span::call_site())
    }

    /// Scalar (`One<T>`) rather than a collection.
    pub(crate) fn is_scalar(&self) -> bool {
        matches!(self, RelKind::ManyToOne | RelKind::OneToOne)
    }
}

/// The field's slot type (`state::Slot`'s variants).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum SlotKind {
    Many,
    One,
    WriteOnly,
}

impl SlotKind {
    pub(crate) fn from_type_name(name: &Ident) -> Option<Self> {
        [SlotKind::Many, SlotKind::One, SlotKind::WriteOnly]
            .into_iter()
            .find(|s| name == s.name())
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            SlotKind::Many => "Many",
            SlotKind::One => "One",
            SlotKind::WriteOnly => "WriteOnly",
        }
    }

    pub(crate) fn ident(self) -> Ident {
        Ident::new(self.name(), Span::call_site())
    }
}

/// `cascade = "…"` (`schema::Cascade`).
#[derive(Clone, Copy)]
pub(crate) struct Cascade {
    pub(crate) save_update: bool,
    pub(crate) delete: bool,
    pub(crate) delete_orphan: bool,
}

impl Cascade {
    /// SQLAlchemy's default: `save-update` (and `merge`).
    pub(crate) const DEFAULT: Cascade = Cascade {
        save_update: true,
        delete: false,
        delete_orphan: false,
    };
    pub(crate) const NONE: Cascade = Cascade {
        save_update: false,
        delete: false,
        delete_orphan: false,
    };
}

/// `lazy = "…"` (`schema::Lazy`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lazy {
    Explicit,
    Selectin,
    Joined,
    Raise,
    NoLoad,
    WriteOnly,
}

impl Lazy {
    /// `select` is SQLAlchemy's name for the default; aludel never loads on access, so it
    /// means `explicit`.
    pub(crate) fn from_attr(s: &str) -> Option<Self> {
        Some(match s {
            "select" | "explicit" => Lazy::Explicit,
            "selectin" => Lazy::Selectin,
            "joined" => Lazy::Joined,
            "raise" => Lazy::Raise,
            "noload" => Lazy::NoLoad,
            "write_only" => Lazy::WriteOnly,
            _ => return None,
        })
    }

    pub(crate) fn variant(self) -> Ident {
        let name = match self {
            Lazy::Explicit => "Explicit",
            Lazy::Selectin => "Selectin",
            Lazy::Joined => "Joined",
            Lazy::Raise => "Raise",
            Lazy::NoLoad => "NoLoad",
            Lazy::WriteOnly => "WriteOnly",
        };
        Ident::new(name, Span::call_site())
    }
}
