//! The benchmark ceiling: a bare actix-web server (same actix-web version and
//! features as the daemon, same worker count) that answers every request with
//! a small fixed JSON body. `bench/run.sh` drives it with exactly the load it
//! puts on engine-auth, so each scenario's ratio to it says how much of the
//! machine's HTTP capacity the daemon's own work costs.
//!
//!   cargo run --release --example hello -- --listen 127.0.0.1:8080 [--workers N]
//!
//! Workers default to the number of CPUs, as in engine-auth.

use actix_web::{App, HttpResponse, HttpServer, web};
use std::net::SocketAddr;

async fn hello(_body: web::Bytes) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(r#"{"hello":"world"}"#)
}

fn main() -> std::io::Result<()> {
    let mut listen: SocketAddr = ([127, 0, 0, 1], 8080).into();
    let mut workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_default();
        match flag.as_str() {
            "--listen" => {
                listen = value
                    .parse()
                    .map_err(|e| std::io::Error::other(format!("--listen {value}: {e}")))?
            }
            "--workers" => {
                workers = value
                    .parse()
                    .map_err(|e| std::io::Error::other(format!("--workers {value}: {e}")))?
            }
            _ => {
                return Err(std::io::Error::other(format!(
                    "unknown argument {flag}; usage: hello [--listen ADDR] [--workers N]"
                )));
            }
        }
    }
    actix_web::rt::System::new().block_on(async move {
        HttpServer::new(|| App::new().default_service(web::to(hello)))
            .workers(workers)
            .bind(listen)?
            .run()
            .await
    })
}
