//! The legacy line protocol (PROTOCOL.md section 2): lines in, lines out.

pub mod parse;
pub mod render;
