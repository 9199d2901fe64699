//! Nested transactions (savepoints) of a session, with SQLAlchemy 2.0's expiry rules.

use std::sync::Arc;

use super::{AsyncSession, NestedTransaction, ObjectState, SavepointMark};
use crate::error::{Error, Result};

impl AsyncSession {
    /// Flushes, then opens a SAVEPOINT (SQLAlchemy's `begin_nested`).
    ///
    /// ```no_run
    /// # #[derive(aludel::Model)] struct Item { #[aludel(primary_key)] id: i32 }
    /// # async fn demo(s: &mut aludel::AsyncSession, items: Vec<aludel::Obj<Item>>) -> aludel::Result<()> {
    /// for item in &items {
    ///     let sp = s.begin_nested().await?;
    ///     s.add(item)?;
    ///     match s.flush().await {
    ///         Ok(()) => s.commit_nested(sp).await?,
    ///         Err(e) if e.is_unique_violation() => s.rollback_nested(sp).await?,
    ///         Err(e) => return Err(e),
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn begin_nested(&mut self) -> Result<NestedTransaction> {
        self.flush().await?;
        let conn = self.connection().await?;
        let sp = conn.savepoint().await?;
        self.savepoints.push(SavepointMark {
            sp,
            inserted: Vec::new(),
            deleted: Vec::new(),
            updated: Vec::new(),
        });
        Ok(NestedTransaction {
            depth: self.savepoints.len(),
        })
    }

    fn check_nested(&self, nested: &NestedTransaction) -> Result<()> {
        if nested.depth != self.savepoints.len() {
            return Err(Error::invalid(
                "that nested transaction is not the innermost open one",
            ));
        }
        Ok(())
    }

    /// Flushes and releases the savepoint; its work stays in the enclosing transaction and
    /// nothing is expired.
    pub async fn commit_nested(&mut self, nested: NestedTransaction) -> Result<()> {
        self.check_nested(&nested)?;
        self.flush().await?;
        let Some(mark) = self.savepoints.pop() else {
            return Err(Error::invalid("no open nested transaction"));
        };
        let conn = self.conn.as_mut().ok_or_else(Error::connection_lost)?;
        conn.release_savepoint(mark.sp).await?;
        if let Some(outer) = self.savepoints.last_mut() {
            outer.inserted.extend(mark.inserted);
            outer.deleted.extend(mark.deleted);
            outer.updated.extend(mark.updated);
        }
        Ok(())
    }

    /// Rolls back to the savepoint: what was inserted inside becomes transient, what was
    /// deleted inside persistent, what was changed inside expired (EXP-06); objects changed
    /// before the savepoint keep their state. Also recovers a session whose flush failed
    /// inside the savepoint.
    pub async fn rollback_nested(&mut self, nested: NestedTransaction) -> Result<()> {
        self.check_nested(&nested)?;
        let Some(mark) = self.savepoints.pop() else {
            return Err(Error::invalid("no open nested transaction"));
        };
        let conn = self.conn.as_mut().ok_or_else(Error::connection_lost)?;
        conn.rollback_to_savepoint(mark.sp).await?;
        self.pending_rollback = false;
        for obj in mark.inserted {
            self.identity.remove(&(obj.table().name, obj.key()));
            self.tx_inserted.retain(|o| !Arc::ptr_eq(o, &obj));
            obj.make_transient();
        }
        for obj in mark.deleted {
            obj.mark_deleted_in_tx(false);
            self.tx_deleted.retain(|o| !Arc::ptr_eq(o, &obj));
            obj.set_state(ObjectState::Persistent);
            self.identity
                .insert((obj.table().name, obj.key()), Arc::downgrade(&obj));
        }
        for obj in mark.updated {
            obj.expire();
        }
        // Changes made inside and never flushed are discarded with the savepoint.
        for obj in self.registry.take_written() {
            obj.expire();
        }
        for obj in self.new.drain(..) {
            obj.make_transient();
        }
        for obj in self.deleted.drain(..) {
            obj.set_state(ObjectState::Persistent);
        }
        Ok(())
    }

    /// True inside a savepoint.
    pub fn in_nested_transaction(&self) -> bool {
        !self.savepoints.is_empty()
    }
}
