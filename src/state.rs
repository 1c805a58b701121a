//! What every request handler and background task can reach. Built once by
//! [`crate::startup::Application::build`]; `http` and `startup` both depend
//! on it, it depends on neither.

use crate::accounts::{Accounts, Sessions};
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

impl AppState {
    /// The user-management use cases on this daemon's store and keyring.
    pub fn accounts(&self) -> Accounts<'_> {
        Accounts {
            store: &self.store,
            hasher: &self.hasher,
            clock: &self.clock,
            tokens: Some(&self.tokens),
            throttle: Some(&self.throttle),
        }
    }

    /// The login-session use cases.
    pub fn sessions(&self) -> Sessions<'_> {
        Sessions {
            accounts: self.accounts(),
            tokens: &self.tokens,
            settings: &self.settings,
            throttle: &self.throttle,
        }
    }
}
