//! The two bits of the systemd protocol the daemon speaks, without libsystemd:
//! readiness (`READY=1` once the listener is bound and the store is open)
//! and the watchdog (`WATCHDOG=1` from the event loop, so a wedged loop gets
//! the service restarted; `startup.rs` also stops pinging once the store
//! has failed, which only a restart mends). Both are no-ops outside systemd.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// Sends a state string to `$NOTIFY_SOCKET`, if set. Failures are logged,
/// never fatal.
pub fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let result = UnixDatagram::unbound().and_then(|sock| {
        let bytes = path.as_encoded_bytes();
        if let Some(name) = bytes.strip_prefix(b"@") {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            sock.send_to_addr(state.as_bytes(), &addr)
        } else {
            sock.send_to(state.as_bytes(), &path)
        }
    });
    if let Err(e) = result {
        log::warn!("cannot notify systemd ({state:?}): {e}");
    }
}

/// Half the watchdog interval systemd asked for, if it asked (and asked
/// this process).
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    let pid = std::env::var("WATCHDOG_PID").ok();
    if pid.is_some_and(|p| p.parse::<u32>().ok() != Some(std::process::id())) {
        return None;
    }
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}
