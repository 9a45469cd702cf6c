//! Flux dialect (placeholder: being written).
