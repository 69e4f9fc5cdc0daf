//! Between a connection and its app: complete messages in, framed answers
//! and close requests out.

use super::Ctx;
use crate::app::{App, AppCtx, CloseRequest, Input, Output};
use crate::proto::ws::OpCode;
use crate::proto::ws::encoder::encode_frame;
use crate::write_queue::{BufPool, WriteQueue};

/// An app's answers, written into the connection's queue in its framing.
pub(super) struct AppOutput<'a> {
    out: &'a mut WriteQueue,
    pool: &'a mut BufPool,
    websocket: bool,
    close: Option<CloseRequest>,
}

impl Output for AppOutput<'_> {
    fn send_text(&mut self, payload: &[u8]) {
        if self.websocket {
            self.out.append_with(self.pool, |v| encode_frame(v, OpCode::Text, payload));
        } else {
            self.out.append_with(self.pool, |v| {
                v.extend_from_slice(payload);
                v.push(b'\n');
            });
        }
    }

    fn send_binary(&mut self, payload: &[u8]) {
        if self.websocket {
            self.out.append_with(self.pool, |v| encode_frame(v, OpCode::Binary, payload));
        }
    }

    fn close(&mut self, request: CloseRequest) {
        self.close.get_or_insert(request);
    }
}

/// Gives one complete message to the app; returns how it wants the
/// connection to end, if it does.
pub(super) fn run_app(
    app: &mut Option<Box<dyn App>>,
    out: &mut WriteQueue,
    websocket: bool,
    input: Input<'_>,
    ctx: &mut Ctx<'_>,
) -> Option<CloseRequest> {
    ctx.metrics.messages_in_total += 1;
    with_app(app, out, websocket, ctx, |app, cx, output| app.handle_input(input, cx, output))
}

/// Runs the app's own deadline; returns how it wants the connection to end,
/// if it does.
pub(super) fn run_app_timeout(
    app: &mut Option<Box<dyn App>>,
    out: &mut WriteQueue,
    websocket: bool,
    ctx: &mut Ctx<'_>,
) -> Option<CloseRequest> {
    with_app(app, out, websocket, ctx, |app, cx, output| app.handle_timeout(cx, output))
}

/// Lets the app write what it was woken for; returns how it wants the
/// connection to end, if it does.
pub(super) fn run_app_wake(
    app: &mut Option<Box<dyn App>>,
    out: &mut WriteQueue,
    websocket: bool,
    ctx: &mut Ctx<'_>,
) -> Option<CloseRequest> {
    with_app(app, out, websocket, ctx, |app, cx, output| app.on_wake(cx, output))
}

/// Lends the app what it may use and an output into the connection's queue.
fn with_app(
    app: &mut Option<Box<dyn App>>,
    out: &mut WriteQueue,
    websocket: bool,
    ctx: &mut Ctx<'_>,
    act: impl FnOnce(&mut dyn App, &mut AppCtx<'_>, &mut AppOutput<'_>),
) -> Option<CloseRequest> {
    let app = app.as_mut()?;
    let (pool, mut cx) = ctx.split();
    let mut output = AppOutput { out, pool, websocket, close: None };
    act(app.as_mut(), &mut cx, &mut output);
    output.close
}
