//! hostscope-core: what the collector, the analyzer and the web service share.
//!
//! - [`point`]: the validated data point every program writes or reads.
//! - [`lineproto`]: InfluxDB line protocol, encoder and parser.
//! - [`config`]: layered configuration (defaults, TOML file, environment) with strict keys.
//! - [`influx`]: the one InfluxDB client (1.x, 2.x, 3.x) and the typed query layer that
//!   renders Flux or InfluxQL.
//!
//! - `serve` (feature `serve`): what the analyzer's and the web's HTTP servers share.
//!
//! Only `influx` (and `serve`) do network I/O; `config` reads its one file. Everything
//! else is pure.

pub mod app;
pub mod calendar;
pub mod config;
pub mod detect;
pub mod influx;
pub mod lineproto;
pub mod point;
pub mod secret;
#[cfg(feature = "serve")]
pub mod serve;

pub use point::{FieldValue, Point, PointBuilder, PointError};
