//! Sans-IO protocol cores: no sockets, no clocks (time is a parameter).

pub mod http;
pub mod line;
pub mod ws;
