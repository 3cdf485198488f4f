//! The stable error codes reprise gives JavaScript. `lib/errors.js` lists the same codes in
//! the same order (`CODES`), and the guide's error tables name them; `tests/vocabulary.rs`
//! checks that the three agree.

/// One stable `.code`. Each variant's doc names the JavaScript class it becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// `InvalidArgumentError`: bad input, named by field.
    InvalidArgument,
    /// `InvalidStateError`: the call does not fit the object's state.
    InvalidState,
    /// `NotFoundError`: no such instance.
    NotFound,
    /// `TimeoutError`: a wait ran out; also an activity attempt past its timeout.
    Timeout,
    /// `NondeterminismError`: the code no longer matches the instance's history.
    Nondeterminism,
    /// `NotRegisteredError`: no code here knows the name (after the grace period).
    NotRegistered,
    /// `StoreError`: the store failed.
    Store,
    /// `StoreError`: another runtime holds the SQLite file.
    Locked,
    /// `StoreError`: the PostgreSQL server cannot be reached.
    Unavailable,
    /// `StoreError`: a lease was lost; the work runs elsewhere.
    LeaseLost,
    /// `TaskFailedError`: a child instance id is already taken.
    AlreadyExists,
    /// `TaskFailedError`: canceled (by `cancelInstance`, a canceled parent, a lost race).
    Canceled,
    /// `TaskFailedError`: delivered more than `maxDeliveries` times without success.
    Poison,
    /// `RepriseError`: the driver and the engine disagree on the protocol.
    Protocol,
    /// `RepriseError` (an instance's `errorCode`): the orchestration threw without a code.
    OrchestrationFailed,
    /// `TaskFailedError`: an activity or child failed without a code.
    TaskFailed,
}

impl ErrorCode {
    /// Every code, in the order of `CODES` in `lib/errors.js`.
    pub const ALL: [ErrorCode; 16] = [
        ErrorCode::InvalidArgument,
        ErrorCode::InvalidState,
        ErrorCode::NotFound,
        ErrorCode::Timeout,
        ErrorCode::Nondeterminism,
        ErrorCode::NotRegistered,
        ErrorCode::Store,
        ErrorCode::Locked,
        ErrorCode::Unavailable,
        ErrorCode::LeaseLost,
        ErrorCode::AlreadyExists,
        ErrorCode::Canceled,
        ErrorCode::Poison,
        ErrorCode::Protocol,
        ErrorCode::OrchestrationFailed,
        ErrorCode::TaskFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidArgument => "ERR_INVALID_ARGUMENT",
            ErrorCode::InvalidState => "ERR_INVALID_STATE",
            ErrorCode::NotFound => "ERR_NOT_FOUND",
            ErrorCode::Timeout => "ERR_TIMEOUT",
            ErrorCode::Nondeterminism => "ERR_NONDETERMINISM",
            ErrorCode::NotRegistered => "ERR_NOT_REGISTERED",
            ErrorCode::Store => "ERR_STORE",
            ErrorCode::Locked => "ERR_LOCKED",
            ErrorCode::Unavailable => "ERR_UNAVAILABLE",
            ErrorCode::LeaseLost => "ERR_LEASE_LOST",
            ErrorCode::AlreadyExists => "ERR_ALREADY_EXISTS",
            ErrorCode::Canceled => "ERR_CANCELED",
            ErrorCode::Poison => "ERR_POISON",
            ErrorCode::Protocol => "ERR_PROTOCOL",
            ErrorCode::OrchestrationFailed => "ERR_ORCHESTRATION_FAILED",
            ErrorCode::TaskFailed => "ERR_TASK_FAILED",
        }
    }

    /// The JavaScript class an error with this code is thrown as.
    pub fn js_class(self) -> &'static str {
        match self {
            ErrorCode::InvalidArgument => "InvalidArgumentError",
            ErrorCode::InvalidState => "InvalidStateError",
            ErrorCode::NotFound => "NotFoundError",
            ErrorCode::Timeout => "TimeoutError",
            ErrorCode::Nondeterminism => "NondeterminismError",
            ErrorCode::NotRegistered => "NotRegisteredError",
            ErrorCode::Store
            | ErrorCode::Locked
            | ErrorCode::Unavailable
            | ErrorCode::LeaseLost => "StoreError",
            ErrorCode::AlreadyExists
            | ErrorCode::Canceled
            | ErrorCode::Poison
            | ErrorCode::TaskFailed => "TaskFailedError",
            ErrorCode::Protocol | ErrorCode::OrchestrationFailed => "RepriseError",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&crate::store::StoreError> for ErrorCode {
    fn from(e: &crate::store::StoreError) -> Self {
        use crate::store::StoreError;
        match e {
            StoreError::Config(_) => ErrorCode::InvalidArgument,
            e if e.is_unavailable() => ErrorCode::Unavailable,
            StoreError::Unavailable(_) => ErrorCode::Unavailable,
            StoreError::Locked(_) => ErrorCode::Locked,
            StoreError::NotFound(_) => ErrorCode::NotFound,
            StoreError::LeaseLost(_) => ErrorCode::LeaseLost,
            StoreError::Database(_)
            | StoreError::Sqlite(_)
            | StoreError::Migration(_)
            | StoreError::Open(_)
            | StoreError::Corrupt(_)
            | StoreError::Closed => ErrorCode::Store,
        }
    }
}
