//! Bulk and criteria writes, and `merge`: the paths around the unit of work.

use std::sync::Weak;

use super::{AsyncSession, Obj, pk_binds};
use crate::error::{Error, Result};
use crate::schema::Model;
use crate::state::identity_key;

impl AsyncSession {
    /// Inserts many rows in multi-row statements (≤ 1,000 rows, ≤ 32,767 binds each) without
    /// tracking them. Returns the number of rows inserted.
    pub async fn bulk_insert<M: Model>(&mut self, rows: &[M]) -> Result<u64> {
        self.autoflush().await?;
        let per_row = M::TABLE.insert_columns().count().max(1);
        let chunk = (32_767 / per_row).clamp(1, 1_000);
        let conn = self.connection().await?;
        let mut n = 0;
        for part in rows.chunks(chunk) {
            n += conn.execute(&crate::sql::insert_many(part)).await?;
        }
        Ok(n)
    }

    /// Inserts many rows like [`AsyncSession::bulk_insert`] and returns them as tracked
    /// objects, in input order, with server-generated keys and defaults filled in.
    pub async fn bulk_insert_returning<M: Model>(&mut self, rows: Vec<M>) -> Result<Vec<Obj<M>>> {
        let objs: Vec<Obj<M>> = rows.into_iter().map(Obj::new).collect();
        self.add_all(&objs)?;
        self.flush().await?;
        Ok(objs)
    }

    /// Runs a criteria `UPDATE` and keeps loaded objects in sync from its `RETURNING` rows,
    /// without a separate SELECT (`synchronize_session='fetch'`). Returns the rows changed.
    /// Like SQLAlchemy, a criteria UPDATE does not bump version counters (OPT-04): set the
    /// version column in `stmt` yourself if other sessions must see a conflict.
    pub async fn update_where<M: Model>(&mut self, stmt: crate::sql::Update<M>) -> Result<u64> {
        self.autoflush().await?;
        let q = stmt.returning(crate::sql::All::<M>::new());
        let rows = self.connection().await?.query(&q).await?;
        for row in &rows {
            let value = M::from_row(row)?;
            let key = (M::TABLE.name, identity_key(&pk_binds(&value)));
            if let Some(obj) = self.identity.get(&key).and_then(Weak::upgrade) {
                // A savepoint rollback expires it again.
                self.journal.updated(&obj);
                obj.load(row)?;
            }
        }
        Ok(rows.len() as u64)
    }

    /// Runs a criteria `DELETE`; loaded objects it removed become deleted and leave the
    /// identity map. Returns the rows deleted.
    pub async fn delete_where<M: Model>(&mut self, stmt: crate::sql::Delete<M>) -> Result<u64> {
        self.autoflush().await?;
        let q = stmt.returning(crate::sql::All::<M>::new());
        let rows = self.connection().await?.query(&q).await?;
        for row in &rows {
            let value = M::from_row(row)?;
            let key = (M::TABLE.name, identity_key(&pk_binds(&value)));
            if let Some(obj) = self.identity.get(&key).and_then(Weak::upgrade) {
                self.journal_delete(&obj);
            }
        }
        Ok(rows.len() as u64)
    }

    /// Updates many rows by primary key in one statement per 1,000 rows
    /// (`UPDATE … FROM (VALUES …)`), writing every non-key column from `rows`; objects loaded
    /// in the session are not touched (SQLAlchemy's bulk UPDATE by primary key). A key with no
    /// row is a stale-data error; roll the transaction back to discard the batches before it.
    /// Every row must have every column: an unset [`Generated`](crate::Generated) field is an
    /// [`Error::is_unset`] error before any SQL.
    pub async fn bulk_update<M: Model + Clone>(&mut self, rows: &[M]) -> Result<u64> {
        self.autoflush().await?;
        let t = M::TABLE;
        let pk: Vec<usize> = t
            .columns
            .iter()
            .enumerate()
            .filter(|(_, c)| c.primary_key)
            .map(|(i, _)| i)
            .collect();
        let idx: Vec<usize> = t
            .columns
            .iter()
            .enumerate()
            .filter(|(_, c)| !c.primary_key && !c.version)
            .map(|(i, _)| i)
            .collect();
        if idx.is_empty() || rows.is_empty() {
            return Ok(0);
        }
        // Every row sets every column: a Deferred one not loaded, or a Generated one unset,
        // has no value to send (and the key must be known).
        for r in rows {
            if let Some(&i) = idx
                .iter()
                .chain(&pk)
                .find(|&&i| r.column_value(i).is_none())
            {
                let c = &t.columns[i];
                if c.deferred {
                    return Err(Error::invalid(format!(
                        "bulk_update sets every column, and `{}.{}` is a Deferred column not \
                         loaded in one of the rows",
                        t.name, c.name
                    )));
                }
                return Err(Error::unset_column(t.name, c.name));
            }
        }
        let per_row = 1 + pk.len() + idx.len();
        let chunk = (32_767 / per_row).clamp(1, 1_000);
        let conn = self.connection().await?;
        let mut n = 0u64;
        for part in rows.chunks(chunk) {
            let dirty: Vec<super::flush::DirtyRow> = part
                .iter()
                .map(|r| {
                    let obj = Obj::new(r.clone()).erased();
                    let changes = idx
                        .iter()
                        .filter_map(|i| r.column_value(*i).map(|b| (*i, b)))
                        .collect();
                    (Default::default(), obj, changes)
                })
                .collect();
            super::flush::update_chunk(conn, t, &pk, &idx, None, &dirty).await?;
            n += part.len() as u64;
        }
        Ok(n)
    }
}
