//! What a use case can refuse, in words a client may see. HTTP maps each
//! variant to its status (`http::error`); the CLI prints the message.

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// 400: the input breaks a rule (username or password rules).
    #[error("{0}")]
    Invalid(String),
    /// 401: no valid credential.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: authenticated, but not allowed.
    #[error("{0}")]
    Forbidden(&'static str),
    /// 404
    #[error("{0}")]
    NotFound(&'static str),
    /// 409
    #[error("{0}")]
    Conflict(&'static str),
    /// 429: wait this many seconds.
    #[error("too many failed attempts: retry in {0} s")]
    Throttled(u64),
    /// 503: every place in the hash queue is taken; retry in this many
    /// seconds.
    #[error("too many passwords being checked: retry in {0} s")]
    Busy(u64),
    /// A fault, not a refusal: logged with its cause chain, shown to a
    /// client as a 500.
    #[error(transparent)]
    Internal(anyhow::Error),
}

impl From<StoreError> for AccountError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => AccountError::NotFound("User not found"),
            StoreError::UsernameTaken => AccountError::Conflict("Username is already taken"),
            StoreError::LastAdmin => {
                AccountError::Conflict("The change would leave no user with the admin role")
            }
            other => AccountError::Internal(other.into()),
        }
    }
}

impl From<anyhow::Error> for AccountError {
    fn from(e: anyhow::Error) -> Self {
        AccountError::Internal(e)
    }
}

impl From<crate::domain::InvalidInput> for AccountError {
    fn from(e: crate::domain::InvalidInput) -> Self {
        AccountError::Invalid(e.to_string())
    }
}
