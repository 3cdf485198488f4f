//! The connection pool as the provider uses it: a call that waits for a connection tells
//! an unreachable server (fail within 1.5 s, `StoreError::Unavailable`) from a busy pool
//! (keep waiting, up to the connect timeout). The pool is busy while every connection is
//! handed out, or while connections keep being handed out (thousands of callers sharing
//! ten connections); a server that is down hands out none.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnection, PgPool};
use sqlx::{Postgres, Transaction};

use crate::store::{Result, StoreError};

/// How long a call waits for a connection the pool cannot open before it fails.
const UNREACHABLE_AFTER: Duration = Duration::from_millis(1_500);

pub(super) struct Pool {
    pool: PgPool,
    size: u32,
    /// Connections handed out and not yet given back. sqlx's own `size()` also counts
    /// connections it is still trying to open, which during an outage fill the pool.
    in_use: Arc<AtomicU32>,
    /// When a connection was last handed out, in ms since `opened`.
    last_handed_out: AtomicU64,
    opened: Instant,
    target: String,
}

/// Marks one connection in use while it lives.
struct InUse(Arc<AtomicU32>);

impl Drop for InUse {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

pub(super) struct Conn {
    conn: PoolConnection<Postgres>,
    _in_use: InUse,
}

pub(super) struct Tx {
    tx: Transaction<'static, Postgres>,
    _in_use: InUse,
}

impl Pool {
    /// `pool` waits for a connection up to the connect timeout; `target` names the server
    /// in errors.
    pub(super) fn new(pool: PgPool, size: u32, target: String) -> Self {
        Pool {
            pool,
            size,
            in_use: Arc::default(),
            last_handed_out: AtomicU64::new(0),
            opened: Instant::now(),
            target,
        }
    }

    /// A connection. If none comes within 1.5 s while the pool has room and has handed out
    /// nothing meanwhile, the pool is opening connections the server does not accept: the
    /// call fails as unavailable (the runtime retries, waits ride it out). Otherwise the
    /// pool is busy and the call keeps its place in the queue.
    pub(super) async fn conn(&self) -> Result<Conn> {
        let acquire = self.pool.acquire();
        tokio::pin!(acquire);
        let mut check = tokio::time::interval_at(
            tokio::time::Instant::now() + UNREACHABLE_AFTER,
            Duration::from_millis(250),
        );
        loop {
            tokio::select! {
                conn = &mut acquire => {
                    let conn = conn?;
                    self.in_use.fetch_add(1, Ordering::Relaxed);
                    self.last_handed_out
                        .store(self.opened.elapsed().as_millis() as u64, Ordering::Relaxed);
                    return Ok(Conn { conn, _in_use: InUse(self.in_use.clone()) });
                }
                _ = check.tick() => {
                    let idle_for = (self.opened.elapsed().as_millis() as u64)
                        .saturating_sub(self.last_handed_out.load(Ordering::Relaxed));
                    let busy = self.in_use.load(Ordering::Relaxed) >= self.size
                        || idle_for < UNREACHABLE_AFTER.as_millis() as u64;
                    if !busy {
                        return Err(StoreError::Unavailable(format!(
                            "no connection to {} within {} ms",
                            self.target,
                            UNREACHABLE_AFTER.as_millis()
                        )));
                    }
                }
            }
        }
    }

    /// A transaction on a connection from [`Self::conn`].
    pub(super) async fn begin(&self) -> Result<Tx> {
        let Conn { conn, _in_use } = self.conn().await?;
        Ok(Tx {
            tx: Transaction::begin(conn, None).await?,
            _in_use,
        })
    }
}

impl Tx {
    pub(super) async fn commit(self) -> Result<()> {
        Ok(self.tx.commit().await?)
    }

    pub(super) async fn rollback(self) -> Result<()> {
        Ok(self.tx.rollback().await?)
    }
}

impl Deref for Conn {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        &self.conn
    }
}

impl DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.conn
    }
}

impl Deref for Tx {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        &self.tx
    }
}

impl DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.tx
    }
}
