//! Token lifecycle as attacks (`cargo test --test it lifecycle::`): revocation,
//! refresh rotation and reuse detection, the grace window, session
//! lifetime, logout, signing-key rotation and pruning, revocation of every
//! earlier key at once (`key_revocation`), clock jumps, and the
//! real binary under SIGHUP, SIGKILL and its CLI over the admin socket, and
//! its offline store commands (`check`, `compact`), and backup and restore
//! (`backup`: the restore drill).

mod backup;
mod binary_cli;
mod binary_durability;
mod binary_keys;
mod binary_store;
mod clock;
mod key_records;
mod key_revocation;
mod logout;
mod refresh_grace;
mod refresh_rotation;
mod restart;
mod revocation;
mod session_lifetime;
mod signing_keys;
