//! `/echo`: every text and binary message sent back as it came (the
//! Autobahn|Testsuite target and the benchmarks' echo).

use super::{App, AppCtx, Input, Output};

pub struct Echo;

impl App for Echo {
    fn handle_input(&mut self, input: Input<'_>, cx: &mut AppCtx<'_>, out: &mut dyn Output) {
        match input {
            Input::Text(text) => out.send_text(text.as_bytes()),
            Input::Binary(data) => out.send_binary(data),
            // Echo is served over WebSocket only.
            Input::Line(_) | Input::LineTooLarge | Input::Bytes(_) => return,
        }
        cx.metrics.messages_out_total += 1;
    }
}
