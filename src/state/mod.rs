//! Object state: the handles a session hands out (`Obj`), their lifecycle and change
//! snapshots, relationship handles and field slots (`Rel`, `Many`, `One`, `WriteOnly`), the
//! identity map, and what relationship history asks of a flush. SQLAlchemy's `state.py`,
//! `attributes.py` and `identity.py`; no statement is sent from here except through the
//! narrow [`Context`] a session provides.

mod history;
mod identity;
mod key;
pub(crate) mod object;
mod rel;
mod slots;

pub(crate) use self::history::RelWork;
pub use self::identity::unique;
pub(crate) use self::identity::{
    Context, IdentityMap, fetch_into, identify, identify_into, lookup,
};
pub(crate) use self::key::{Key, identity_key, identity_key_non_null};
pub(crate) use self::object::encode;
pub use self::object::{Obj, ObjMut, ObjRef, ObjectState, SessionEvent};
pub(crate) use self::rel::RelVisitor;
pub use self::rel::{Rel, RelDef, Slot};
pub(crate) use self::slots::Edge;
pub use self::slots::{Many, One, WriteOnly};
