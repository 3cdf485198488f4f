//! The pure replay engine: history model, activation protocol and turn logic.
//! No I/O, no napi: everything here is tested on synthetic histories.

pub mod history;
pub mod lifecycle;
pub mod protocol;
pub mod rewind;
pub mod turn;

#[cfg(test)]
mod tests;

pub use history::*;
pub use protocol::*;
pub use rewind::*;
pub use turn::*;

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum EngineError {
    /// The code replayed differently from what history recorded.
    #[error("nondeterminism: {0}")]
    Nondeterminism(String),
    /// The driver sent something the protocol does not allow (a driver bug).
    #[error("protocol error: {0}")]
    Protocol(String),
}

use crate::error_code::ErrorCode;

impl EngineError {
    pub fn code(&self) -> ErrorCode {
        match self {
            EngineError::Nondeterminism(_) => ErrorCode::Nondeterminism,
            EngineError::Protocol(_) => ErrorCode::Protocol,
        }
    }
}
