//! `Application` in-process, as ARCHITECTURE.md says tests use it: once
//! `run_until_stopped` has returned, the store must be free again (for a
//! restart in the same process, or the offline CLI).

use engine_auth::store::{Opened, Store, StoreError};
use std::time::{Duration, Instant};

use crate::helpers::spawn_app;

#[actix_web::test]
async fn a_stopped_application_releases_its_store() {
    let mut app = spawn_app().await;
    app.admin_token().await;

    app.stop().await;

    // Worker threads may take a moment to drop their handles.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match Store::open(app.data_dir.path(), 1 << 20) {
            Ok((_, opened)) => {
                assert_eq!(opened, Opened::Ready);
                break;
            }
            Err(StoreError::InUse(_)) if Instant::now() < deadline => {
                actix_web::rt::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("the store is still held after the application stopped: {e}"),
        }
    }
}
