//! InfluxDB line protocol (placeholder: being written).
use crate::point::Point;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision { Seconds, Milliseconds, Microseconds, Nanoseconds }

pub fn encode(_point: &Point, _precision: Precision, _buf: &mut Vec<u8>) {}
