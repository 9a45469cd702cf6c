//! The InfluxDB client and query layer: one HTTP stack for 1.x, 2.x and 3.x.
//!
//! - [`query`]: the typed query model and result [`query::Series`].
//! - [`flux`]: renders the model to Flux and parses InfluxDB 2's annotated CSV.
//! - [`influxql`]: renders the model to InfluxQL and parses the `/query` JSON.

mod client;
mod error;
pub mod flux;
pub mod influxql;
pub mod query;

pub use client::{Client, RejectedLine, ServerVersion, WriteFailure, WriteReport};
pub use error::InfluxError;
pub use query::{
    Aggregate, Every, FieldData, FieldKey, FieldKeysQuery, FieldKind, LastQuery, QueryError, Row,
    RowSelect, RowsQuery, Series, SeriesQuery, TagValuesQuery, TimeRange,
};
