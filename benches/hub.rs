//! Hub fan-out: one lobby `say` delivered to N JSON members, in process (no sockets, no framing).
//!
//! The room holds the sender plus N recipients; the hub renders the message once and lists the N recipients in one
//! delivery. Throughput is N elements per iteration, so criterion reports deliveries per second.
//!
//! Setting up the room sends every other user a presence list per `hello` (PROTOCOL.md §3); the lists are cut from
//! one rendering per join, so even the 10 001-member set-up takes only seconds.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use soket::app::json_chat;
use soket::chat::{ChatConfig, Dialect, Endpoint, Event, Hub, MemberId, Outbox};
use soket::ids::ConnId;

const SAY: &str = r#"{"type":"say","text":"hello everyone, the build is green again"}"#;

fn endpoint(slot: usize) -> Endpoint {
    Endpoint::Conn(ConnId { slot, generation: 1 })
}

/// One JSON text through the JSON app into the hub, as a `/ws` connection hands it in.
fn handle_json(hub: &mut Hub, member: MemberId, text: &str, out: &mut Outbox) {
    json_chat::handle_text(hub, member, text, 16 << 20, out);
}

/// A hub whose lobby holds `members` registered JSON users (the first is the
/// returned member); the outbox is empty.
fn lobby_of(members: usize) -> (Hub, Outbox, MemberId) {
    let mut hub = Hub::new(ChatConfig::default());
    let mut out = Outbox::default();
    let mut first = None;
    for slot in 0..members {
        let member = hub.attach(endpoint(slot), Dialect::Events, "/");
        first.get_or_insert(member);
        handle_json(&mut hub, member, &format!(r#"{{"type":"hello","name":"user{slot}"}}"#), &mut out);
        // Drop each join's presence lists at once, so set-up memory stays O(N²), not O(N³).
        out.clear();
    }
    assert_eq!(hub.users(), members);
    (hub, out, first.expect("at least one member"))
}

fn bench_fan_out(c: &mut Criterion) {
    let recipients = [1, 100, 1000, 10_000];
    let mut group = c.benchmark_group("fan_out_lobby_say");
    for n in recipients {
        let started = Instant::now();
        let (mut hub, mut out, sender) = lobby_of(n + 1);
        eprintln!("fan_out: set-up of {} members took {:.1?}", n + 1, started.elapsed());

        // One delivery, rendered once, to everyone but the sender.
        handle_json(&mut hub, sender, SAY, &mut out);
        assert!(out.closes.is_empty());
        assert_eq!(out.deliveries.len(), 1, "one delivery for the whole room");
        let delivery = &out.deliveries[0];
        assert!(matches!(delivery.event, Event::Message { .. }));
        assert_eq!(delivery.recipients.len(), n);
        assert!(delivery.recipients.iter().all(|r| r.member != sender));
        out.clear();

        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                handle_json(&mut hub, sender, black_box(SAY), &mut out);
                black_box(&out.deliveries);
                out.clear();
            });
        });
    }
    group.finish();
}

criterion_group! {
    name = hub;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench_fan_out
}
criterion_main!(hub);
