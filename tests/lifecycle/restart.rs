//! Stopping an in-process server and starting another on the same data dir,
//! as a restart (and the clock tests) would: the stopped `Application` must
//! let go of its store, and the new one must find every rotation.

use engine_auth::clock::Clock;
use engine_auth::store::{Opened, Store, StoreError};
use std::time::{Duration, Instant};

use crate::helpers::{json_ok, spawn_app, start_in};

#[actix_web::test]
async fn a_stopped_server_releases_its_store_for_a_restart_on_the_same_dir() {
    let app = spawn_app().await;
    let login = app.admin().await;
    let refreshed = app.refresh_ok(&login.refresh_token).await;

    let dir = app.stop().await;

    // Worker threads may take a moment to drop their handles.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match Store::open(dir.path(), 1 << 20) {
            Ok((_, opened)) => {
                assert_eq!(opened, Opened::Ready);
                break;
            }
            Err(StoreError::InUse(_)) if Instant::now() < deadline => {
                actix_web::rt::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("the stopped server still holds its store: {e}"),
        }
    }
    let app = start_in(dir, Clock::system(), |_| {}).await;
    let next = app.refresh_ok(&refreshed.refresh_token).await;
    json_ok(app.list_users(&next.token).await).await;
}
