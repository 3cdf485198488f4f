//! What a client does on top of a store: retrying a failed instance and following one as
//! it runs. Written against the `Provider` trait only, so it works on every backend and
//! from any process.

pub mod retry;
pub mod watch;

pub use retry::{retry_instance, RetryError};
