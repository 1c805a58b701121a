//! The CLI's end of the admin socket.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use super::protocol::{Output, Request, Response};
use super::socket::socket_path;

/// Sends a request to a running daemon. `Ok(None)` when no daemon listens
/// (no socket, or a stale one): the caller then works on the store itself.
pub fn send(data_dir: &Path, req: &Request) -> anyhow::Result<Option<Response>> {
    let path = socket_path(data_dir);
    let mut conn = match UnixStream::connect(&path) {
        Ok(c) => c,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Ok(None);
        }
        Err(e) => anyhow::bail!("cannot reach the daemon at {}: {e}", path.display()),
    };
    conn.set_read_timeout(Some(Duration::from_secs(60)))?;
    serde_json::to_writer(&mut conn, req)?;
    conn.write_all(b"\n")?;
    let mut reader = BufReader::new(conn);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut response: Response = serde_json::from_str(&line)?;
    // A backup's bytes follow its line.
    if let Ok(Output::Backup { bytes, data }) = &mut response {
        reader.take(*bytes).read_to_end(&mut data.0)?;
        if data.0.len() as u64 != *bytes {
            anyhow::bail!(
                "the daemon's backup ended after {} of {bytes} bytes",
                data.0.len()
            );
        }
    }
    Ok(Some(response))
}
