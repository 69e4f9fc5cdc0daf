//! Frame-level protocol violations, each mapped to exactly one close code.

use super::close::CloseCode;

/// Why the decoder refused the stream. After an error the decoder is spent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WsError {
    // H1 fills in the variants.
}

impl WsError {
    pub fn close_code(self) -> CloseCode {
        todo!()
    }
}
impl std::fmt::Display for WsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "x")
    }
}
