//! Nested transactions (savepoints) of a session, with SQLAlchemy 2.0's expiry rules.

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
        self.connection().await?;
        let conn = self.conn.as_mut().ok_or_else(Error::connection_lost)?;
        // Poisoned while SAVEPOINT is in flight: dropped midway, the server may hold a
        // savepoint the session does not know of.
        self.pending_rollback = true;
        let sp = conn.savepoint().await?;
        self.pending_rollback = false;
        self.savepoints.push(SavepointMark {
            sp,
            start: self.journal.len(),
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
    ///
    /// # Cancel safety
    /// Dropped during RELEASE, the session needs `rollback()` (of the whole transaction).
    pub async fn commit_nested(&mut self, nested: NestedTransaction) -> Result<()> {
        self.check_nested(&nested)?;
        self.flush().await?;
        let Some(mark) = self.savepoints.pop() else {
            return Err(Error::invalid("no open nested transaction"));
        };
        // The savepoint's journal entries now belong to the enclosing transaction.
        let conn = self.conn.as_mut().ok_or_else(Error::connection_lost)?;
        self.pending_rollback = true;
        conn.release_savepoint(mark.sp).await?;
        self.pending_rollback = false;
        if self.savepoints.is_empty() {
            self.journal.compact();
        }
        Ok(())
    }

    /// Rolls back to the savepoint: what was inserted inside becomes transient, what was
    /// deleted inside persistent, what was changed inside expired (EXP-06); objects changed
    /// before the savepoint keep their state. Also recovers a session whose flush failed
    /// (or was dropped) inside the savepoint.
    ///
    /// # Cancel safety
    /// Objects are reset before the statement is sent; dropped midway, the session needs
    /// `rollback()` (of the whole transaction).
    pub async fn rollback_nested(&mut self, nested: NestedTransaction) -> Result<()> {
        self.check_nested(&nested)?;
        let Some(mark) = self.savepoints.pop() else {
            return Err(Error::invalid("no open nested transaction"));
        };
        self.pending_rollback = true;
        let entries = self.journal.take_from(mark.start);
        self.undo(entries, false);
        // Changes made inside and never flushed are discarded with the savepoint.
        for obj in self.registry.take_written() {
            if obj.session_is(&self.registry) {
                obj.expire();
            }
        }
        for obj in self.new.drain(..) {
            obj.make_transient();
        }
        for obj in self.deleted.drain(..) {
            obj.set_state(ObjectState::Persistent);
        }
        let conn = self.conn.as_mut().ok_or_else(Error::connection_lost)?;
        conn.rollback_to_savepoint(mark.sp).await?;
        self.pending_rollback = false;
        Ok(())
    }

    /// True inside a savepoint.
    pub fn in_nested_transaction(&self) -> bool {
        !self.savepoints.is_empty()
    }
}
