//! The JSON event protocol (PROTOCOL.md section 3): requests in, events out.

pub mod parse;
pub mod render;
