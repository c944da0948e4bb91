//! The integration tests: one binary, one module per capability.

mod helpers;

mod daemon;
mod fixtures;
mod reload;
mod staff_cli;
mod store;
mod systemd;
