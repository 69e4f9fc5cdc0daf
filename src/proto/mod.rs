//! Sans-IO protocol cores: no sockets, no clocks (time is a parameter).

pub mod engineio;
pub mod http;
pub mod line;
pub mod socketio;
pub mod sockjs;
pub mod stomp;
pub mod ws;
