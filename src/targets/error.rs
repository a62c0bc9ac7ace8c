//! How a target says an action failed: worth retrying, or not.

use std::time::Duration;

#[derive(Debug, Clone, thiserror::Error)]
pub enum TargetError {
    /// Timeouts, refused or reset connections, 429, 5xx, busy servers.
    #[error("{message}")]
    Transient {
        message: String,
        /// The server's `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
    },
    /// The server refused the request for good (4xx, constraint violations):
    /// the person's action fails with the server's message and the run goes on.
    #[error("{message}")]
    Permanent { message: String },
}

impl TargetError {
    pub fn transient(message: impl Into<String>) -> Self {
        TargetError::Transient {
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        TargetError::Permanent {
            message: message.into(),
        }
    }

    pub fn is_transient(&self) -> bool {
        matches!(self, TargetError::Transient { .. })
    }
}
