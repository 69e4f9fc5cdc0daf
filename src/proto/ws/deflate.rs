//! RFC 7692 permessage-deflate: validating offers, choosing the answer, and
//! the raw-deflate codec. Sans-IO: zlib state in, bytes out.
//!
//! Memory decides the design (docs/DEFLATE.md): a zlib compressor costs
//! 250-380 KB and a decompressor ~50 KB, against ~400 B for an idle
//! connection. So, as uWebSockets does, the server answers
//! `server_no_context_takeover` always (§7.1.1.1 lets it) and
//! `client_no_context_takeover` whenever the client offers it: every message
//! then starts from an empty window, and one compressor per window size and
//! one decompressor serve the whole reactor, reset per message. Only a
//! client whose compressor keeps its context (it did not offer
//! `client_no_context_takeover`), or `--deflate dedicated`, gets zlib state
//! of its own, counted and capped.

use std::cell::Cell;
use std::rc::Rc;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::frame::OpCode;

/// The extension's registered name.
pub const NAME: &str = "permessage-deflate";

/// RFC 7692 §7.2.1: the four octets a sender removes from the end of each
/// compressed message (an empty stored block after a sync flush) and the
/// receiver appends back before inflating.
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// The RSV1 bit of byte 0: the message is compressed (RFC 7692 §6).
pub const RSV1: u8 = 0x40;

/// `--deflate`: whether and how permessage-deflate is offered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum DeflateMode {
    /// Every offer declined.
    Off,
    /// No context takeover wherever the client allows: shared zlib state.
    #[default]
    Shared,
    /// Context takeover both ways unless the client asks otherwise: zlib
    /// state per connection (~300-430 KB each), capped by `--deflate-max-dedicated`.
    Dedicated,
}

/// One valid `permessage-deflate` offer (RFC 7692 §7.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeflateOffer {
    pub server_no_context_takeover: bool,
    pub client_no_context_takeover: bool,
    /// `server_max_window_bits=N`, 8 to 15.
    pub server_max_window_bits: Option<u8>,
    /// `client_max_window_bits` present (the client supports it), with its value if any.
    pub client_max_window_bits: Option<Option<u8>>,
}

impl DeflateOffer {
    /// An offer's parameters, or `None` where RFC 7692 §7 has the server
    /// decline it: an unknown parameter, a repeated one, or a bad value.
    pub fn from_params(params: &[(&str, Option<String>)]) -> Option<DeflateOffer> {
        let mut offer = DeflateOffer::default();
        let mut seen = [false; 4];
        for (name, value) in params {
            let slot = match name.to_ascii_lowercase().as_str() {
                "server_no_context_takeover" => 0,
                "client_no_context_takeover" => 1,
                "server_max_window_bits" => 2,
                "client_max_window_bits" => 3,
                _ => return None,
            };
            if std::mem::replace(&mut seen[slot], true) {
                return None;
            }
            match (slot, value.as_deref()) {
                (0, None) => offer.server_no_context_takeover = true,
                (1, None) => offer.client_no_context_takeover = true,
                (2, Some(v)) => offer.server_max_window_bits = Some(window_bits(v)?),
                (3, None) => offer.client_max_window_bits = Some(None),
                (3, Some(v)) => offer.client_max_window_bits = Some(Some(window_bits(v)?)),
                _ => return None,
            }
        }
        Some(offer)
    }
}

/// RFC 7692 §7.1.2: `1*DIGIT` without leading zeros, 8 to 15.
fn window_bits(value: &str) -> Option<u8> {
    if value.starts_with('0') || value.len() > 2 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok().filter(|bits| (8..=15).contains(bits))
}

/// What the 101 agreed to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Agreed {
    /// Our compressor's window: the offer's `server_max_window_bits`, else 15.
    pub server_window_bits: u8,
    /// We reset our compressor per message (always, but in dedicated mode
    /// when the client did not ask for it).
    pub server_no_context_takeover: bool,
    /// The client resets its compressor per message, so ours may be shared.
    pub client_no_context_takeover: bool,
    /// Echo `server_max_window_bits` (it was offered with a value).
    echo_server_bits: bool,
}

impl Agreed {
    /// The connection needs zlib state of its own.
    pub fn is_dedicated(&self) -> bool {
        !self.server_no_context_takeover || !self.client_no_context_takeover
    }

    /// The `Sec-WebSocket-Extensions` value of the 101.
    pub fn response_value(&self) -> String {
        let mut value = NAME.to_owned();
        if self.server_no_context_takeover {
            value.push_str("; server_no_context_takeover");
        }
        if self.client_no_context_takeover {
            value.push_str("; client_no_context_takeover");
        }
        if self.echo_server_bits {
            value.push_str(&format!("; server_max_window_bits={}", self.server_window_bits));
        }
        value
    }
}

/// Picks the first offer the server can honour (RFC 7692 §5: the server
/// accepts at most one, of its choice). `dedicated_room`: a connection may
/// still get zlib state of its own.
pub fn negotiate(offers: &[DeflateOffer], mode: DeflateMode, dedicated_room: bool) -> Option<Agreed> {
    if mode == DeflateMode::Off {
        return None;
    }
    offers.iter().find_map(|offer| {
        // zlib cannot produce a raw deflate stream with a 256-byte window
        // (it silently uses 512), so `server_max_window_bits=8` is declined.
        if offer.server_max_window_bits == Some(8) {
            return None;
        }
        let agreed = Agreed {
            server_window_bits: offer.server_max_window_bits.unwrap_or(15),
            // §7.1.1.1: the server may always include it, and must when asked.
            server_no_context_takeover: mode == DeflateMode::Shared || offer.server_no_context_takeover,
            // §7.1.1.2: the client's choice; it keeps its context otherwise.
            client_no_context_takeover: offer.client_no_context_takeover,
            echo_server_bits: offer.server_max_window_bits.is_some(),
        };
        (!agreed.is_dedicated() || dedicated_room).then_some(agreed)
    })
}

/// Why inflating a message failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InflateError {
    /// The inflated message would pass the size limit (1009).
    TooBig,
    /// Not a valid deflate stream (1007).
    Corrupt,
}

/// Inflates one message's `payload` (RFC 7692 §7.2.2: with the tail
/// appended) onto `out`, failing as soon as `out` would pass `limit` bytes:
/// the limit is checked while inflating, so a bomb costs at most `limit`
/// (plus the vector's growth slack) of memory.
pub fn inflate(d: &mut Decompress, payload: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<(), InflateError> {
    for input in [payload, &TAIL[..]] {
        let mut pos = 0;
        loop {
            if out.len() == out.capacity() {
                let room = (limit + 1).saturating_sub(out.len());
                if room == 0 {
                    return Err(InflateError::TooBig);
                }
                // Grow geometrically but never past the limit (plus one byte to see an overrun).
                out.reserve_exact(room.min(out.len().max(16 * 1024)));
            }
            let (before_in, before_out) = (d.total_in(), out.len());
            let status = d
                .decompress_vec(input.get(pos..).unwrap_or_default(), out, FlushDecompress::Sync)
                .map_err(|_| InflateError::Corrupt)?;
            pos += (d.total_in() - before_in) as usize;
            if out.len() > limit {
                return Err(InflateError::TooBig);
            }
            if status == Status::StreamEnd {
                // A final block ends the stream; the tail (and anything else) is not deflate data.
                return Ok(());
            }
            let progress = d.total_in() != before_in || out.len() != before_out;
            // Done with this input once it is consumed and zlib had room to spare.
            if (pos >= input.len() && out.len() < out.capacity()) || (!progress && out.len() < out.capacity()) {
                break;
            }
        }
    }
    Ok(())
}

/// Compresses `payload` as one message with a sync flush, without the
/// tail (RFC 7692 §7.2.1), appending to `out`.
pub fn deflate(c: &mut Compress, payload: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    let mut pos = 0;
    loop {
        if out.capacity() - out.len() < 64 {
            out.reserve(payload.len() / 2 + 64);
        }
        let before_in = c.total_in();
        // Compressing into memory with a sync flush cannot fail (flate2
        // reports only a bad flush or a stream error, neither possible here).
        if c.compress_vec(payload.get(pos..).unwrap_or_default(), out, FlushCompress::Sync).is_err() {
            break;
        }
        pos += (c.total_in() - before_in) as usize;
        if pos >= payload.len() && out.len() < out.capacity() {
            break;
        }
    }
    if out.len() >= start + TAIL.len() && out.ends_with(&TAIL) {
        out.truncate(out.len() - TAIL.len());
    }
}

/// A fresh raw-deflate compressor with a `bits` window, level 6 (zlib's default).
fn compressor(bits: u8) -> Box<Compress> {
    // zlib's smallest raw window is 9 bits; 8 is declined in `negotiate`.
    Box::new(Compress::new_with_window_bits(Compression::default(), false, bits.clamp(9, 15)))
}

/// A fresh raw-deflate decompressor taking any window up to 15 bits.
fn decompressor() -> Box<Decompress> {
    Box::new(Decompress::new_with_window_bits(false, 15))
}

/// `--deflate*` flags.
#[derive(Clone, Copy, Debug)]
pub struct DeflateConfig {
    pub mode: DeflateMode,
    /// Most connections with zlib state of their own.
    pub max_dedicated: usize,
    /// Messages shorter than this go out uncompressed.
    pub min_bytes: usize,
}

/// The reactor's zlib state, shared by every connection that agreed to no
/// context takeover, and the count of dedicated states.
pub struct DeflateShared {
    pub config: DeflateConfig,
    /// One compressor per window size (9 to 15 bits), made on first use.
    compressors: [Option<Box<Compress>>; 7],
    decompressor: Option<Box<Decompress>>,
    /// Connections holding dedicated state now (their `Dedicated` decrements it when dropped).
    dedicated: Rc<Cell<usize>>,
    /// Scratch for one compressed payload.
    scratch: Vec<u8>,
    /// The last inflated message's buffer, lent out per message.
    inflated: Vec<u8>,
    /// Messages compressed (each fan-out counted once).
    pub compressed_total: u64,
}

impl DeflateShared {
    pub fn new(config: DeflateConfig) -> DeflateShared {
        DeflateShared {
            config,
            compressors: Default::default(),
            decompressor: None,
            dedicated: Rc::new(Cell::new(0)),
            scratch: Vec::new(),
            inflated: Vec::new(),
            compressed_total: 0,
        }
    }

    /// Negotiates for a new connection; the caller gives the connection the
    /// [`Dedicated`] state if the answer needs it.
    pub fn negotiate(&self, offers: &[DeflateOffer]) -> Option<Agreed> {
        negotiate(offers, self.config.mode, self.dedicated.get() < self.config.max_dedicated)
    }

    /// An empty buffer to inflate a message into (give it back with `put_buffer`).
    pub fn take_buffer(&mut self) -> Vec<u8> {
        let mut buffer = std::mem::take(&mut self.inflated);
        buffer.clear();
        buffer
    }

    /// Keeps a small buffer for the next message; a large one is freed.
    pub fn put_buffer(&mut self, buffer: Vec<u8>) {
        if buffer.capacity() <= 256 * 1024 {
            self.inflated = buffer;
        }
    }

    /// Connections holding zlib state of their own.
    pub fn dedicated_count(&self) -> usize {
        self.dedicated.get()
    }

    /// Zlib state for a connection whose agreement needs it, counted until dropped.
    pub fn dedicated(&self, agreed: &Agreed) -> Option<Box<Dedicated>> {
        if !agreed.is_dedicated() {
            return None;
        }
        self.dedicated.set(self.dedicated.get() + 1);
        Some(Box::new(Dedicated {
            compressor: (!agreed.server_no_context_takeover).then(|| compressor(agreed.server_window_bits)),
            decompressor: (!agreed.client_no_context_takeover).then(decompressor),
            count: Rc::clone(&self.dedicated),
        }))
    }

    /// Inflates a compressed message from a client, with the connection's
    /// own decompressor if it keeps context, else the shared one reset.
    pub fn inflate(
        &mut self,
        own: Option<&mut Dedicated>,
        payload: &[u8],
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), InflateError> {
        match own.and_then(|d| d.decompressor.as_deref_mut()) {
            Some(d) => inflate(d, payload, out, limit),
            None => {
                let d = self.decompressor.get_or_insert_with(decompressor);
                d.reset(false);
                inflate(d, payload, out, limit)
            }
        }
    }

    /// `payload` as one frame for a connection that agreed to `agreed`:
    /// compressed with RSV1 when long enough, else plain. The shared
    /// compressor is reset first, so the frame suits every connection with
    /// the same window size.
    pub fn frame(
        &mut self,
        agreed: &Agreed,
        own: Option<&mut Dedicated>,
        opcode: OpCode,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) {
        if payload.len() < self.config.min_bytes {
            super::encoder::encode_frame(out, opcode, payload);
            return;
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        match own.and_then(|d| d.compressor.as_deref_mut()) {
            Some(c) => deflate(c, payload, &mut scratch),
            None => {
                let slot = usize::from(agreed.server_window_bits.clamp(9, 15) - 9);
                let c = self.compressors[slot].get_or_insert_with(|| compressor(agreed.server_window_bits));
                c.reset();
                deflate(c, payload, &mut scratch);
            }
        }
        self.compressed_total += 1;
        let mut header = [0u8; 14];
        let n = super::encoder::encode_header(opcode, true, scratch.len() as u64, None, &mut header);
        header[0] |= RSV1;
        out.reserve(n + scratch.len());
        out.extend_from_slice(&header[..n]);
        out.extend_from_slice(&scratch);
        if scratch.capacity() > 256 * 1024 {
            // A large message is done with; the reactor keeps only a small scratch.
            scratch = Vec::new();
        }
        self.scratch = scratch;
    }
}

/// Zlib state of one connection that keeps context one way or both.
pub struct Dedicated {
    compressor: Option<Box<Compress>>,
    decompressor: Option<Box<Decompress>>,
    count: Rc<Cell<usize>>,
}

impl Dedicated {
    /// It compresses with context of its own (its messages cannot be shared).
    pub fn has_compressor(&self) -> bool {
        self.compressor.is_some()
    }
}

impl Drop for Dedicated {
    fn drop(&mut self) {
        self.count.set(self.count.get().saturating_sub(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::http::upgrade::parse_extensions;

    fn offers(header: &str) -> Vec<DeflateOffer> {
        parse_extensions([header.as_bytes()])
            .unwrap()
            .iter()
            .filter(|o| o.name == NAME)
            .filter_map(|o| DeflateOffer::from_params(&o.params))
            .collect()
    }

    fn answer(header: &str, mode: DeflateMode, room: bool) -> Option<String> {
        negotiate(&offers(header), mode, room).map(|a| a.response_value())
    }

    #[test]
    fn negotiation_table() {
        use DeflateMode::*;
        let nct = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";
        // The browsers' offer: client context kept, so dedicated state, if room.
        assert_eq!(
            answer("permessage-deflate; client_max_window_bits", Shared, true).as_deref(),
            Some("permessage-deflate; server_no_context_takeover")
        );
        assert_eq!(answer("permessage-deflate; client_max_window_bits", Shared, false), None);
        // Autobahn's and uWebSockets-style offers: shared state.
        assert_eq!(
            answer("permessage-deflate; client_no_context_takeover; client_max_window_bits", Shared, false).as_deref(),
            Some(nct)
        );
        assert_eq!(
            answer("permessage-deflate; client_no_context_takeover; server_max_window_bits=9", Shared, false)
                .as_deref(),
            Some(
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=9"
            )
        );
        // A window we cannot honour: the next offer is taken.
        assert_eq!(
            answer("permessage-deflate; server_max_window_bits=8; client_no_context_takeover, permessage-deflate; client_no_context_takeover", Shared, false).as_deref(),
            Some(nct)
        );
        // Malformed offers are declined, not refused.
        for bad in [
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=09",
            "permessage-deflate; client_max_window_bits=7",
            "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; x=1",
            "x-webkit-deflate-frame",
        ] {
            assert_eq!(answer(bad, Shared, true), None, "{bad}");
        }
        assert_eq!(answer(nct, Off, true), None);
        // Dedicated mode keeps context unless asked not to.
        assert_eq!(answer("permessage-deflate", Dedicated, true).as_deref(), Some("permessage-deflate"));
        assert_eq!(answer("permessage-deflate", Dedicated, false), None);
        assert_eq!(answer(nct, Dedicated, false).as_deref(), Some(nct));
        let quoted = offers("permessage-deflate; server_max_window_bits=\"10\"; client_no_context_takeover");
        assert_eq!(quoted[0].server_max_window_bits, Some(10));
    }

    #[test]
    fn round_trip_and_limits() {
        let text = b"{\"type\":\"message\",\"room\":\"lobby\",\"text\":\"hello hello hello hello\"}".repeat(20);
        let mut shared =
            DeflateShared::new(DeflateConfig { mode: DeflateMode::Shared, max_dedicated: 1, min_bytes: 16 });
        let agreed =
            negotiate(&offers("permessage-deflate; client_no_context_takeover"), DeflateMode::Shared, false).unwrap();
        let mut frame = Vec::new();
        shared.frame(&agreed, None, OpCode::Text, &text, &mut frame);
        assert_eq!(frame[0], 0x80 | RSV1 | 0x1);
        let body = &frame[2..];
        assert_eq!(usize::from(frame[1]), body.len());
        assert!(body.len() < text.len() / 5, "{} bytes", body.len());
        let mut out = Vec::new();
        shared.inflate(None, body, &mut out, 1 << 20).unwrap();
        assert_eq!(out, text);
        // Twice: the shared state is reset per message.
        let mut again = Vec::new();
        shared.frame(&agreed, None, OpCode::Text, &text, &mut again);
        assert_eq!(again, frame);
        let mut out = Vec::new();
        assert_eq!(shared.inflate(None, body, &mut out, text.len() - 1), Err(InflateError::TooBig));
        assert!(out.capacity() <= 2 * text.len());
        out.clear();
        assert_eq!(shared.inflate(None, &[0xff; 64], &mut out, 1 << 20), Err(InflateError::Corrupt));
        // Short messages go out plain.
        let mut plain = Vec::new();
        shared.frame(&agreed, None, OpCode::Text, b"hi", &mut plain);
        assert_eq!(plain, [0x81, 2, b'h', b'i']);
        // Dedicated state is counted until dropped.
        let keep = negotiate(&offers("permessage-deflate"), DeflateMode::Shared, true).unwrap();
        let own = shared.dedicated(&keep);
        assert_eq!(shared.dedicated_count(), 1);
        assert!(shared.negotiate(&offers("permessage-deflate")).is_none());
        drop(own);
        assert_eq!(shared.dedicated_count(), 0);
    }

    #[test]
    fn bomb_is_cut_at_the_limit() {
        let zeros = vec![0u8; 8 << 20];
        let mut c = compressor(15);
        let mut bomb = Vec::new();
        deflate(&mut c, &zeros, &mut bomb);
        let mut d = decompressor();
        let mut out = Vec::new();
        assert_eq!(inflate(&mut d, &bomb, &mut out, 1 << 20), Err(InflateError::TooBig));
        assert!(out.capacity() <= 2 << 20, "{}", out.capacity());
    }
}
