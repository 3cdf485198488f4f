//! reprise: durable execution for Node.js.
//!
//! Layers: `engine` (pure replay logic), `store` (providers), `client` (what a client does
//! on top of a store: retry, watch), `runtime` (dispatch, leases, wake-ups), `bindings` (the
//! napi surface, thin). `logging` holds the process-wide tracing subscriber.

#[cfg_attr(test, allow(dead_code))]
mod bindings;
pub mod client;
pub mod engine;
pub mod error_code;
pub mod logging;
pub mod runtime;
pub mod store;
