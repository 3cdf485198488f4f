//! Every `#[napi]` item, one file per exposed class. Thin: convert the input, forward,
//! map errors. Errors reach JavaScript as `[CODE] message`; lib/errors.js turns the prefix
//! into an error class. Output shapes are the serde views of `views.rs`.

mod client;
mod provider;
mod runtime;
mod tracing;
mod views;

use napi::bindgen_prelude::*;

use crate::engine::payload_from_str;
use crate::error_code::ErrorCode;
use crate::store::StoreError;

#[napi_derive::module_init]
fn init() {
    // RUST_LOG, else warnings, on stderr, until initTracing or the first runtime's options
    // configure it. An embedder's subscriber wins.
    crate::logging::install_default();
}

fn err(code: ErrorCode, message: impl std::fmt::Display) -> Error {
    Error::new(Status::GenericFailure, format!("[{code}] {message}"))
}

fn store_err(e: StoreError) -> Error {
    err(ErrorCode::from(&e), e)
}

/// Reads a JSON argument that the JavaScript layer has already validated.
fn json_arg<T: serde::de::DeserializeOwned>(text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| err(ErrorCode::InvalidArgument, e))
}

/// Serializes an output view (views always serialize).
fn to_json<T: serde::Serialize>(view: &T) -> String {
    serde_json::to_string(view).expect("views serialize")
}

fn payload(field: &str, text: &str) -> Result<crate::engine::Payload> {
    payload_from_str(text).map_err(|e| {
        err(
            ErrorCode::InvalidArgument,
            format!("{field} is not valid JSON: {e}"),
        )
    })
}
