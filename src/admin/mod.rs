//! Administration of a gateway from its own shell. The store's engine
//! lets one process hold it, so the daemon listens on `<data-dir>/admin.sock` and the
//! CLI sends it one [`Request`] per connection as a JSON line and reads one
//! [`Response`] line; when no daemon answers, the CLI opens the store
//! itself and runs the very same [`execute`].
//!
//! - `protocol`: the typed requests and responses (what crosses the socket).
//! - `execute`: runs a request through the use cases of `crate::accounts`
//!   as the operator.
//! - `socket`: the daemon's side (mode 0600, and the peer's uid checked with
//!   `SO_PEERCRED`: only root and the daemon's own user are served).
//! - `client`: the CLI's side.
//!
//! Requests may carry a password, so they are never logged. A backup
//! (`Request::Backup`) is the one response with more than a line: the file's
//! bytes follow it, so the CLI writes it wherever the operator asked (the
//! daemon, under systemd, may only write in its state dir).

mod client;
mod execute;
mod protocol;
mod socket;

pub use client::send;
pub use execute::execute;
pub use protocol::{BackupData, KeySummary, Output, Request, Response, UserSummary};
pub use socket::{AdminSocket, SOCKET_NAME, serve, socket_path};
