//! Protocol apps over the chat hub: each parses its wire format into hub
//! requests and renders hub events into its wire format, once per fan-out.
//! Pure functions, no I/O.

pub mod json_chat;
pub mod line_chat;
pub mod render;
