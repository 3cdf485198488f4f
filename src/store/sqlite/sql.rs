//! Statements with a variable number of arguments for the writer's synchronous operations:
//! the text is built with its arguments, and run through the connection's statement cache
//! (the same shapes recur: one text per batch size).

use rusqlite::types::Value;
use rusqlite::{params_from_iter, Row};

use super::writer::Db;
use crate::store::Result;

pub(super) struct Sql {
    text: String,
    args: Vec<Value>,
}

impl Sql {
    pub(super) fn new(text: &str) -> Self {
        Sql {
            text: text.to_owned(),
            args: Vec::new(),
        }
    }

    pub(super) fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder for `value`.
    pub(super) fn bind(&mut self, value: impl Into<Value>) -> &mut Self {
        self.args.push(value.into());
        self.text.push('?');
        self
    }

    /// Appends `(?, ?, …)` for `values`.
    pub(super) fn list<V: Into<Value>>(
        &mut self,
        values: impl IntoIterator<Item = V>,
    ) -> &mut Self {
        self.text.push('(');
        for (i, v) in values.into_iter().enumerate() {
            if i > 0 {
                self.text.push_str(", ");
            }
            self.bind(v);
        }
        self.text.push(')');
        self
    }

    /// Appends `(?, ?, …), (?, …)`: one tuple per item, its values given by `row`.
    pub(super) fn tuples<I>(
        &mut self,
        items: impl IntoIterator<Item = I>,
        mut row: impl FnMut(I) -> Vec<Value>,
    ) -> &mut Self {
        for (i, item) in items.into_iter().enumerate() {
            if i > 0 {
                self.text.push_str(", ");
            }
            self.list(row(item));
        }
        self
    }

    /// Runs the statement; the number of rows it changed.
    pub(super) fn execute(&self, db: &Db) -> Result<usize> {
        execute(db, &self.text, params_from_iter(&self.args))
    }

    /// Runs the statement and reads each row it returns with `read`.
    pub(super) fn rows<T>(
        &self,
        db: &Db,
        read: impl FnMut(&Row<'_>) -> Result<T>,
    ) -> Result<Vec<T>> {
        query_rows(db, &self.text, params_from_iter(&self.args), read)
    }
}

/// Runs a fixed statement with `params` and reads each row with `read`.
pub(super) fn query_rows<T>(
    db: &Db,
    sql: &str,
    params: impl rusqlite::Params,
    mut read: impl FnMut(&Row<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let mut statement = db.prepare_cached(sql)?;
    let mut rows = statement.query(params)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(read(row)?);
    }
    Ok(out)
}

/// Runs a fixed statement with `params`; the number of rows it changed.
pub(super) fn execute(db: &Db, sql: &str, params: impl rusqlite::Params) -> Result<usize> {
    Ok(db.prepare_cached(sql)?.execute(params)?)
}
