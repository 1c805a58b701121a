//! `Application` in process, as ARCHITECTURE.md says tests use it: once
//! `run_until_stopped` has returned, the store must be free again (for a
//! restart in the same process, or the offline CLI), and a server started
//! on the same data dir finds every rotation.

use crate::harness::{TestApp, store};

#[actix_web::test]
async fn a_stopped_server_releases_its_store_for_a_restart_on_the_same_dir() {
    let app = TestApp::spawn().await;
    let login = app.admin_tokens().await;
    let refreshed = app.refresh_ok(&login.refresh_token).await;
    let clock = app.clock.clone();

    let dir = app.stop().await;

    // The store opens (as a seeded, consistent one) once the worker
    // threads have dropped their handles.
    drop(store::open_released(dir.path()));
    let app = TestApp::spawn_in(dir, clock, |_| {}).await;
    let next = app.refresh_ok(&refreshed.refresh_token).await;
    app.list_users(&next.token).await.ok_json();
}
