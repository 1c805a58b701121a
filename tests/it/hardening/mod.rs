//! Hardening tests (`cargo test --test it hardening::`): every module attacks a
//! real engine-auth over real HTTP (or TLS, or raw TCP) and fails if a
//! defence broke. After each group of attacks the daemon must still answer
//! `/health`; no attack may ever be answered with 500.
//!
//! - `bad_input`: malformed, mistyped, oversized, nested, non-UTF-8 and
//!   oddly encoded requests; unknown routes and methods.
//! - `tokens`: forged, mis-signed, expired, future and retired-key tokens.
//! - `connections`: idle and slow clients must be cut off, not pin workers.
//! - `throttle`: brute force is slowed per address without locking the
//!   real user out; the throttle's memory stays bounded.
//! - `throttle_bursts`: concurrent bursts get no more guesses than
//!   sequential ones, floods are refused rather than queued, neighbours
//!   behind one address (or a trusted proxy) are not locked out, and a
//!   stolen token cannot guess its user's current password.
//! - `enumeration`: unknown users and wrong passwords look the same.
//! - `headers`: security headers on every response; HSTS only over TLS.
//! - `admin_socket`: a local user who is neither root nor the daemon's
//!   cannot use the admin socket, whatever its file mode.
//! - `audit`: the real binary logs one line per security event and never a
//!   secret.
//! - `store_permissions`: nothing in the data dir (signing keys, password
//!   hashes, the `--daemon` log) is left open to group or other, whatever
//!   the umask or the data dir's mode beforehand; what the daemon's user
//!   cannot close, it refuses to start on.
//! - `exhaustion`: what fills the disk (logins without end, throttled
//!   floods in the audit log) is bounded, and a full disk makes the daemon
//!   report itself unhealthy rather than claim it is fine.
//!
//! Three tests reproduce defects found while writing these and fixed since:
//! stalled request bodies were never timed out, throttle entries were
//! unbounded in bytes, and `fold` let "STRAẞE" coexist with "strasse".

mod admin_socket;
mod audit;
mod bad_input;
mod connections;
mod enumeration;
mod exhaustion;
mod headers;
mod store_permissions;
mod throttle;
mod throttle_bursts;
mod tokens;
mod usernames;
