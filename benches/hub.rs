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
use soket::chat::{ChatConfig, ClientKind, Content, Hub, Outbox};
use soket::timers::ConnId;

const SAY: &str = r#"{"type":"say","text":"hello everyone, the build is green again"}"#;

fn conn(slot: usize) -> ConnId {
    ConnId { slot, generation: 1 }
}

/// A hub whose lobby holds `members` registered JSON users, slots `0..members`; the outbox is empty.
fn lobby_of(members: usize) -> (Hub, Outbox) {
    let mut hub = Hub::new(ChatConfig::default());
    let mut out = Outbox::default();
    for slot in 0..members {
        hub.attach(conn(slot), ClientKind::Json, "/");
        hub.handle_json(conn(slot), &format!(r#"{{"type":"hello","name":"user{slot}"}}"#), &mut out);
        // Drop each join's presence lists at once, so set-up memory stays O(N²), not O(N³).
        out.clear();
    }
    assert_eq!(hub.users(), members);
    (hub, out)
}

fn bench_fan_out(c: &mut Criterion) {
    let recipients = [1, 100, 1000, 10_000];
    let mut group = c.benchmark_group("fan_out_lobby_say");
    for n in recipients {
        let started = Instant::now();
        let (mut hub, mut out) = lobby_of(n + 1);
        eprintln!("fan_out: set-up of {} members took {:.1?}", n + 1, started.elapsed());
        let sender = conn(0);

        // One delivery, rendered once, to everyone but the sender.
        hub.handle_json(sender, SAY, &mut out);
        assert!(out.closes.is_empty());
        assert_eq!(out.deliveries.len(), 1, "one delivery for the whole room");
        let delivery = &out.deliveries[0];
        assert!(matches!(delivery.content, Content::Json(_)));
        assert_eq!(delivery.recipients.len(), n);
        assert!(!delivery.recipients.contains(&sender));
        out.clear();

        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                hub.handle_json(sender, black_box(SAY), &mut out);
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
