//! Workspace integration tests, one binary, a module per area. Each test starts the
//! real servers it needs (see `hostscope_tests`); none is skipped when one is missing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod collector;
mod config_doc;
mod harness;
mod influx;
