//! RFC 6455 WebSocket framing. No sockets, no clocks.

pub mod close;
pub mod decoder;
pub mod deflate;
pub mod encoder;
pub mod error;
pub mod frame;
pub mod mask;
pub mod utf8;

pub use close::CloseCode;
pub use decoder::{CloseFrame, Decoder, DecoderLimits, Message};
pub use encoder::{encode_client_frame, encode_close, encode_frame, encode_header};
pub use error::WsError;
pub use frame::OpCode;
pub use mask::{apply_mask, apply_mask_naive};
