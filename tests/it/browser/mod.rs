//! The admin console (`/admin/`) in a real browser: Debian's headless
//! Chromium through chromedriver (`webdriver.rs`, a minimal W3C WebDriver
//! client), against the daemon binary (`console.rs`). Without Chromium
//! these tests fail, saying how to install it.

mod console;
mod webdriver;
