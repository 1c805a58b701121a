//! What every request handler and background task can reach. Built once by
//! [`crate::startup::Application::build`]; `http` and `startup` both depend
//! on it, it depends on neither.

use crate::clock::Clock;
use crate::config::Settings;
use crate::password::Hasher;
use crate::store::Store;
use crate::throttle::Throttle;
use crate::tokens::Tokens;

pub struct AppState {
    pub store: Store,
    pub tokens: Tokens,
    pub hasher: Hasher,
    pub settings: Settings,
    pub throttle: Throttle,
    pub clock: Clock,
}
