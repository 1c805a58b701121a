//! The integration tests, one binary (`cargo test --test it`): every test
//! drives a real engine-auth over real HTTP, in process or as the built
//! executable, through the one [`harness`].
//!
//! - `api`: the HTTP contract (routes, bodies, status codes, tokens' claims).
//! - `hardening`: attacks (bad input, forged tokens, slow clients, brute
//!   force, enumeration, headers, the audit log).
//! - `compat`: differential tests against the original Fastify service:
//!   every generated body is accepted or refused as the original would
//!   (Fastify runs as an oracle; needs Node.js and npm).
//! - `lifecycle`: tokens over time (revocation, refresh rotation, session
//!   lifetime, clock jumps, signing keys) and the binary's operations
//!   (signals, SIGKILL, the CLI over the admin socket, offline store upkeep).
//! - `frontdoor`: engine-auth deciding for other services behind real
//!   reverse proxies (Debian's nginx and caddy, on loopback).
//! - `browser`: the admin console in headless Chromium through WebDriver
//!   (needs Debian's chromium and chromium-driver).
//! - `jwks`: EdDSA tokens verified by other services from the published
//!   key set (PyJWT and the `jose` npm package, installed from their pins
//!   in `tests/jwks/`), the attacks on that, and the Prometheus metrics
//!   (checked with Debian's `promtool`).
//! - `powercut`: power cuts under mixed load, on a FUSE filesystem that
//!   keeps only what was synced (needs root and `/dev/fuse`).

mod api;
mod browser;
mod compat;
mod frontdoor;
mod hardening;
mod harness;
mod jwks;
mod lifecycle;
mod powercut;
