//! InfluxQL dialect (placeholder: being written).
