//! A write transaction whose statements are gathered rather than sent one by one. SQLite runs
//! on its own connection thread, and every statement sent there costs a round trip; a stage's
//! commit writes a dozen rows. Projection updates are therefore pushed into a [`Tx`] and sent
//! together as one multi-statement query, the last of them with the `COMMIT`, so a commit costs
//! two round trips whatever it holds. A read first sends what is gathered, so it sees every
//! earlier write of the transaction; an error stops the query at the failing statement.

use std::borrow::Cow;

use sqlx::encode::IsNull;
use sqlx::sqlite::{SqliteArgumentValue, SqliteArguments, SqliteConnection};
use sqlx::{Arguments, Encode, Sqlite};

use super::StoreError;

/// A connection inside a write transaction, with the statements gathered so far.
pub(in crate::store) struct Tx<'c> {
    conn: &'c mut SqliteConnection,
    sql: String,
    args: SqliteArguments<'static>,
    /// `?` placeholders in `sql`: every one must have its value before the query is sent
    /// (SQLite would bind a missing one as NULL, and the next statement's values would shift).
    placeholders: usize,
    statements: usize,
    /// A value that could not be encoded: the query is never sent.
    error: Option<String>,
}

impl<'c> Tx<'c> {
    pub(in crate::store) fn new(conn: &'c mut SqliteConnection) -> Tx<'c> {
        Tx {
            conn,
            sql: String::new(),
            args: SqliteArguments::default(),
            placeholders: 0,
            statements: 0,
            error: None,
        }
    }

    /// Gathers one statement (positional `?` placeholders only); bind its values in order.
    pub(in crate::store) fn push(&mut self, sql: &str) -> Stmt<'_, 'c> {
        debug_assert!(
            !sql.contains("?1") && !sql.contains('$'),
            "numbered placeholders bind out of order in a gathered query: {sql}"
        );
        self.sql.push_str(sql);
        self.sql.push_str(";\n");
        self.placeholders += sql.matches('?').count();
        self.statements += 1;
        Stmt { tx: self }
    }

    /// The connection, once everything gathered has been sent (for a read, or for work that
    /// runs its own statements).
    pub(in crate::store) async fn conn(&mut self) -> Result<&mut SqliteConnection, StoreError> {
        self.flush().await?;
        Ok(&mut *self.conn)
    }

    /// Sends what is gathered, in one round trip.
    pub(in crate::store) async fn flush(&mut self) -> Result<(), StoreError> {
        if self.statements == 0 {
            return Ok(());
        }
        self.send().await
    }

    /// Sends what is gathered followed by `last` (`COMMIT`), in one round trip.
    pub(in crate::store) async fn flush_with(&mut self, last: &str) -> Result<(), StoreError> {
        self.push(last);
        self.send().await
    }

    /// Forgets what is gathered and not sent (a write that failed before its statements ran).
    pub(in crate::store) fn discard(&mut self) {
        self.sql.clear();
        self.args = SqliteArguments::default();
        self.placeholders = 0;
        self.statements = 0;
        self.error = None;
    }

    async fn send(&mut self) -> Result<(), StoreError> {
        let sql = std::mem::take(&mut self.sql);
        let args = std::mem::take(&mut self.args);
        let (placeholders, error) = (self.placeholders, self.error.take());
        self.discard();
        if let Some(error) = error {
            return Err(StoreError::Gathered(format!(
                "a value could not be stored: {error}"
            )));
        }
        if args.len() != placeholders {
            return Err(StoreError::Gathered(format!(
                "a gathered write has {placeholders} placeholders and {} values",
                args.len()
            )));
        }
        // Kept in the connection's statement cache: a stage's commit gathers the same
        // statements every time.
        sqlx::query_with(&sql, args)
            .execute(&mut *self.conn)
            .await?;
        Ok(())
    }
}

/// `(?, ?), (?, ?)`: the VALUES of a multi-row INSERT of `rows` rows of `columns` columns.
pub(in crate::store) fn rows_of(columns: usize, rows: usize) -> String {
    let row = format!("({})", vec!["?"; columns].join(", "));
    vec![row; rows].join(", ")
}

/// A gathered statement, taking its values in placeholder order.
pub(in crate::store) struct Stmt<'t, 'c> {
    tx: &'t mut Tx<'c>,
}

impl Stmt<'_, '_> {
    /// Binds the next placeholder, as `sqlx::Query::bind` does; the value is copied, so the
    /// statement may outlive what it was given.
    pub(in crate::store) fn bind<'a, T: Encode<'a, Sqlite>>(self, value: T) -> Self {
        if let Err(e) = add_owned(&mut self.tx.args, value) {
            self.tx.error.get_or_insert(e.to_string());
        }
        self
    }
}

/// Encodes `value` and adds it to `args` as an owned value.
fn add_owned<'a, T: Encode<'a, Sqlite>>(
    args: &mut SqliteArguments<'static>,
    value: T,
) -> Result<(), sqlx::error::BoxDynError> {
    let mut encoded: Vec<SqliteArgumentValue<'a>> = Vec::with_capacity(1);
    if let IsNull::Yes = value.encode(&mut encoded)? {
        encoded.push(SqliteArgumentValue::Null);
    }
    for value in encoded {
        match value {
            SqliteArgumentValue::Null => args.add(None::<i64>)?,
            SqliteArgumentValue::Text(text) => args.add(Cow::into_owned(text))?,
            SqliteArgumentValue::Blob(blob) => args.add(Cow::into_owned(blob))?,
            SqliteArgumentValue::Double(v) => args.add(v)?,
            SqliteArgumentValue::Int(v) => args.add(v)?,
            SqliteArgumentValue::Int64(v) => args.add(v)?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use sqlx::Connection;

    use super::*;

    async fn memory() -> SqliteConnection {
        let mut conn = SqliteConnection::connect("sqlite::memory:").await.unwrap();
        sqlx::query("CREATE TABLE t (a TEXT NOT NULL, b INTEGER)")
            .execute(&mut conn)
            .await
            .unwrap();
        conn
    }

    async fn rows(conn: &mut SqliteConnection) -> Vec<(String, Option<i64>)> {
        sqlx::query_as("SELECT a, b FROM t ORDER BY rowid")
            .fetch_all(conn)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn gathered_statements_keep_their_values_in_order_and_a_read_sees_them() {
        let mut conn = memory().await;
        let mut tx = Tx::new(&mut conn);
        {
            // Values borrowed from something that is gone before the query is sent.
            let first = String::from("first");
            tx.push("INSERT INTO t (a, b) VALUES (?, ?)")
                .bind(&first)
                .bind(1i64);
        }
        tx.push("INSERT INTO t (a, b) VALUES (?, ?), (?, ?)")
            .bind("second")
            .bind(None::<i64>)
            .bind("third")
            .bind(3i32);
        tx.push("UPDATE t SET b = b * 10 WHERE a = ?").bind("first");
        let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM t")
            .fetch_one(tx.conn().await.unwrap())
            .await
            .unwrap();
        assert_eq!(count, 3, "a read sees what was gathered before it");
        assert_eq!(
            rows(&mut conn).await,
            vec![
                ("first".into(), Some(10)),
                ("second".into(), None),
                ("third".into(), Some(3))
            ]
        );
    }

    #[tokio::test]
    async fn a_missing_value_is_refused_before_anything_is_sent() {
        let mut conn = memory().await;
        let mut tx = Tx::new(&mut conn);
        tx.push("INSERT INTO t (a, b) VALUES (?, ?)").bind("kept");
        tx.push("INSERT INTO t (a, b) VALUES (?, ?)")
            .bind("x")
            .bind(2i64);
        let err = tx.flush().await.unwrap_err();
        assert!(
            err.to_string().contains("3 values") && err.to_string().contains("4 placeholders"),
            "{err}"
        );
        assert!(rows(&mut conn).await.is_empty(), "nothing was sent");
    }

    #[tokio::test]
    async fn a_failing_statement_stops_the_rest_and_the_commit() {
        let mut conn = memory().await;
        sqlx::query("BEGIN").execute(&mut conn).await.unwrap();
        let mut tx = Tx::new(&mut conn);
        tx.push("INSERT INTO t (a) VALUES (?)").bind("before");
        tx.push("INSERT INTO t (a) VALUES (?)").bind(None::<String>);
        tx.push("INSERT INTO t (a) VALUES (?)").bind("after");
        let err = tx.flush_with("COMMIT").await.unwrap_err();
        assert!(err.to_string().contains("NOT NULL"), "{err}");
        sqlx::query("ROLLBACK").execute(&mut conn).await.unwrap();
        assert!(rows(&mut conn).await.is_empty());
    }
}
