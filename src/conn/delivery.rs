//! Hub deliveries on their way to connections: each event rendered once per
//! wire format and framed once per carrier, whatever the number of receivers.

use std::rc::Rc;

use super::app_io::WsDeflate;
use super::websocket::{Framed, frame_rendered};
use super::{Conn, Ctx, Transport, app_io};
use crate::app::WireFormat;
use crate::app::render::Rendered;
use crate::chat::{Delivery, Event};
use crate::proto::ws::OpCode;
use crate::proto::ws::deflate::DeflateShared;

/// One format's rendering of the event (`None`: its receivers never get
/// it) and its framings for raw TCP and WebSocket, each made on first use.
struct Rendering {
    format: WireFormat,
    rendered: Option<Rendered>,
    framed: [Option<Framed>; 2],
    /// Compressed framings for permessage-deflate receivers without context
    /// takeover, one per window size they agreed to (usually one).
    deflated: Vec<(u8, Framed)>,
}

/// The renderings of one delivery's event, shared by all its receivers.
pub struct Renderings<'e> {
    delivery: &'e Delivery,
    made: Vec<Rendering>,
}

impl<'e> Renderings<'e> {
    pub fn new(delivery: &'e Delivery) -> Renderings<'e> {
        Renderings { delivery, made: Vec::new() }
    }

    /// The index of `format`'s rendering, made on first use.
    fn index(&mut self, format: WireFormat) -> usize {
        // Most deliveries go to one format: look at the last one first.
        match self.made.iter().rposition(|r| r.format == format) {
            Some(index) => index,
            None => {
                let rendered = (format.render)(self.delivery);
                self.made.push(Rendering { format, rendered, framed: [None, None], deflated: Vec::new() });
                self.made.len() - 1
            }
        }
    }

    /// The event being delivered.
    pub fn event(&self) -> &'e Event {
        &self.delivery.event
    }

    /// The event rendered in `format`, unframed (for a session that frames
    /// it itself); `None` if such receivers never get it.
    pub fn rendered(&mut self, format: WireFormat) -> Option<&Rendered> {
        let index = self.index(format);
        self.made.get(index)?.rendered.as_ref()
    }

    /// Hands `push` the bytes for a receiver speaking `format` over
    /// `websocket` (or raw TCP) whose own entry in a shared list is `omit`;
    /// `None` if such receivers never get this event.
    fn with_framed<R>(
        &mut self,
        format: WireFormat,
        websocket: bool,
        omit: Option<u32>,
        push: impl FnOnce(&Framed) -> R,
    ) -> Option<R> {
        let index = self.index(format);
        let rendering = self.made.get_mut(index).expect("found or just pushed");
        let rendered = rendering.rendered.as_ref()?;
        if rendered.entries.is_some() {
            // A list every receiver sees without its own entry: the shared
            // body is cut per receiver, never copied.
            return Some(push(&frame_rendered(rendered, omit, websocket)));
        }
        let framed = &mut rendering.framed[usize::from(websocket)];
        Some(push(framed.get_or_insert_with(|| frame_rendered(rendered, None, websocket))))
    }

    /// The frames for a permessage-deflate receiver: compressed once per
    /// window size and shared by every receiver that agreed to it, or, for a
    /// receiver that keeps context, compressed with its own state. `None`:
    /// such receivers never get it; `Some(None)`: it goes out plain (a list
    /// cut per receiver is never compressed: its bytes differ per receiver).
    fn deflated(
        &mut self,
        format: WireFormat,
        ws: WsDeflate<'_>,
        shared: &mut DeflateShared,
    ) -> Option<Option<Framed>> {
        let index = self.index(format);
        let rendering = self.made.get_mut(index).expect("found or just pushed");
        let rendered = rendering.rendered.as_ref()?;
        if rendered.entries.is_some() {
            return Some(None);
        }
        let bits = ws.agreed.server_window_bits;
        let own = ws.own.filter(|own| own.has_compressor());
        if own.is_none()
            && let Some((_, framed)) = rendering.deflated.iter().find(|(b, _)| *b == bits)
        {
            return Some(Some(framed.clone()));
        }
        let mut own = own;
        let mut bytes = Vec::new();
        shared.frame(&ws.agreed, own.as_deref_mut(), OpCode::Text, &rendered.body, &mut bytes);
        for attachment in rendered.attachments.iter().flat_map(|a| a.iter()) {
            shared.frame(&ws.agreed, own.as_deref_mut(), OpCode::Binary, attachment, &mut bytes);
        }
        let framed = Framed::Whole(Rc::from(bytes));
        if own.is_none() {
            rendering.deflated.push((bits, framed.clone()));
        }
        Some(Some(framed))
    }
}

impl<S: Transport> Conn<S> {
    /// Queues one delivery for this connection, in its app's format; false
    /// if the connection takes no deliveries (not, or no longer, in the hub).
    pub fn deliver(&mut self, renderings: &mut Renderings<'_>, omit: Option<u32>, ctx: &mut Ctx<'_>) -> bool {
        let Some(format) = self.wire_format() else {
            return false;
        };
        if format.per_receiver {
            return self.deliver_through_app(renderings, format, omit, ctx);
        }
        let websocket = self.is_websocket();
        if let Some(ws) = self.ws_deflate() {
            match renderings.deflated(format, ws, ctx.deflate) {
                None => return false,
                Some(Some(framed)) => {
                    self.push_delivery(&framed, ctx);
                    return true;
                }
                Some(None) => {}
            }
        }
        renderings.with_framed(format, websocket, omit, |framed| self.push_delivery(framed, ctx)).is_some()
    }
}

impl<S: Transport> Conn<S> {
    /// A delivery for an app that writes each receiver's bytes itself,
    /// under the same slow-reader rule as a shared frame.
    fn deliver_through_app(
        &mut self,
        renderings: &mut Renderings<'_>,
        format: WireFormat,
        omit: Option<u32>,
        ctx: &mut Ctx<'_>,
    ) -> bool {
        let event = renderings.event();
        let Some(rendered) = renderings.rendered(format) else {
            return true;
        };
        if !self.room_for_delivery(rendered.body.len(), ctx) {
            return true;
        }
        let queued = self.out.queued();
        let carrier = self.carrier();
        let request = app_io::run_app_delivery(&mut self.app, &mut self.out, carrier, ctx, event, rendered, omit);
        if self.out.queued() > queued {
            ctx.metrics.messages_out_total += 1;
        }
        if let Some(request) = request {
            self.close(request, ctx);
        }
        true
    }
}
