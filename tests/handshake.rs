//! The opening handshake and the plain endpoints over real loopback TCP:
//! every refused upgrade gets its status and reason (PROTOCOL.md §5), a good
//! one gets 101 with the RFC 6455 accept key, and plain requests keep the
//! connection alive.

mod common;

use std::io::Write;
use std::net::TcpStream;

use common::*;

/// The RFC 6455 §1.3 sample key and its accept value.
const SAMPLE_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// A valid upgrade to `path` with every `drop:` header line removed and
/// `extra` header lines added.
fn upgrade_without(path: &str, drop: &str, extra: &str) -> Vec<u8> {
    let full = String::from_utf8(upgrade_request(path, "")).unwrap();
    let prefix = format!("{}:", drop.to_ascii_lowercase());
    let kept: String =
        full.split_inclusive("\r\n").filter(|line| !line.to_ascii_lowercase().starts_with(&prefix)).collect();
    format!("{}\r\n{extra}\r\n", kept.trim_end_matches("\r\n")).into_bytes()
}

/// Sends `request` on a fresh connection, reads the answer, and checks the
/// server then ends the connection (a refused upgrade is not kept alive).
fn refused(server: &TestServer, request: &[u8]) -> HttpResponse {
    let mut stream = server.tcp();
    stream.write_all(request).unwrap();
    let response = read_response(&mut stream).expect("an HTTP response");
    let rest = read_to_end_or_timeout(&mut stream);
    assert!(rest.is_empty(), "expected EOF after a refused upgrade, got {:?}", String::from_utf8_lossy(&rest));
    response
}

/// Asserts a refusal with `status` and a plain-text body containing `reason`.
fn assert_refused(server: &TestServer, request: &[u8], status: u16, reason: &str) -> HttpResponse {
    let response = refused(server, request);
    let what = String::from_utf8_lossy(request).into_owned();
    assert_eq!(response.status, status, "for {what:?}: {response:?}");
    assert!(response.header("Content-Type").is_some_and(|t| t.starts_with("text/plain")), "for {what:?}: {response:?}");
    assert!(
        response.body_text().contains(reason),
        "{reason:?} not in the body {:?} for {what:?}",
        response.body_text()
    );
    response
}

/// Sends `request` and expects `101 Switching Protocols` with the sample accept key.
fn assert_upgraded(server: &TestServer, request: &[u8]) -> (HttpResponse, TcpStream) {
    let mut stream = server.tcp();
    stream.write_all(request).unwrap();
    let response = read_response(&mut stream).expect("an HTTP response");
    assert_eq!(response.status, 101, "for {:?}: {response:?}", String::from_utf8_lossy(request));
    assert_eq!(response.header("Sec-WebSocket-Accept"), Some(SAMPLE_ACCEPT));
    assert!(response.header("Upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket")));
    assert!(response.header("Connection").is_some_and(|v| v.eq_ignore_ascii_case("upgrade")));
    (response, stream)
}

fn metric(server: &TestServer, line_prefix: &str) -> u64 {
    let response = server.http(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_eq!(response.status, 200);
    let text = response.body_text();
    text.lines()
        .find_map(|l| l.strip_prefix(line_prefix)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {line_prefix} in the metrics:\n{text}"))
        .trim()
        .parse()
        .expect("a number")
}

#[test]
fn a_good_upgrade_gets_101_with_the_rfc_accept_key() {
    let server = TestServer::start();
    let (response, _stream) = assert_upgraded(&server, &upgrade_request("/echo", ""));
    assert!(response.body.is_empty());
    assert_eq!(response.header("Sec-WebSocket-Protocol"), None);
    assert_eq!(response.header("Sec-WebSocket-Extensions"), None);
    // The chat paths upgrade too (what they speak afterwards is not our concern here).
    for path in ["/ws", "/ws/pros", "/legacy", "/ws?name=alice"] {
        assert_upgraded(&server, &upgrade_request(path, ""));
    }
}

#[test]
fn tokens_and_header_names_are_case_insensitive() {
    let server = TestServer::start();
    let request = "GET /echo HTTP/1.1\r\nhost: localhost\r\nUPGRADE: WebSocket\r\n\
                   connection: UPGRADE\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                   SEC-WEBSOCKET-VERSION: 13\r\n\r\n";
    assert_upgraded(&server, request.as_bytes());
}

#[test]
fn connection_list_with_an_empty_element_is_accepted() {
    let server = TestServer::start();
    let request = upgrade_without("/echo", "Connection", "Connection: keep-alive, ,Upgrade\r\n");
    assert_upgraded(&server, &request);
}

#[test]
fn host_missing_empty_or_duplicated_is_400() {
    let server = TestServer::start();
    let cases = [
        (upgrade_without("/echo", "Host", ""), "missing or empty Host"),
        (upgrade_without("/echo", "Host", "Host: \r\n"), "missing or empty Host"),
        (upgrade_request("/echo", "Host: other\r\n"), "more than one Host"),
    ];
    for (request, reason) in cases {
        assert_refused(&server, &request, 400, reason);
    }
}

#[test]
fn a_plain_get_of_a_websocket_path_is_426() {
    let server = TestServer::start();
    // Everything of an upgrade except `Upgrade: websocket`.
    let request = upgrade_without("/echo", "Upgrade", "");
    for request in [
        request,
        b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        b"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        b"GET /legacy HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
    ] {
        let response = server.http(&request);
        assert_eq!(response.status, 426, "{response:?}");
        assert_eq!(response.header("Upgrade"), Some("websocket"));
        assert!(response.body_text().contains("upgrade required"));
    }
}

#[test]
fn connection_without_the_upgrade_token_is_400() {
    let server = TestServer::start();
    for extra in ["", "Connection: keep-alive\r\n", "Connection: upgraded\r\n"] {
        let request = upgrade_without("/echo", "Connection", extra);
        assert_refused(&server, &request, 400, "lacks the upgrade token");
    }
}

#[test]
fn bad_sec_websocket_key_is_400() {
    let server = TestServer::start();
    let key = "Sec-WebSocket-Key";
    let cases = [
        (upgrade_without("/echo", key, ""), "missing or empty Sec-WebSocket-Key"),
        (upgrade_without("/echo", key, "Sec-WebSocket-Key:\r\n"), "missing or empty Sec-WebSocket-Key"),
        (
            upgrade_request("/echo", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"),
            "more than one Sec-WebSocket-Key",
        ),
        // Base64 of 3 bytes.
        (upgrade_without("/echo", key, "Sec-WebSocket-Key: AAAA\r\n"), "16 bytes"),
        // Base64 of 17 bytes.
        (upgrade_without("/echo", key, "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAAA=\r\n"), "16 bytes"),
        // 24 characters, but not base64.
        (upgrade_without("/echo", key, "Sec-WebSocket-Key: !!!notbase64!!!!!!!!!!!\r\n"), "16 bytes"),
    ];
    for (request, reason) in cases {
        assert_refused(&server, &request, 400, reason);
    }
}

#[test]
fn missing_version_is_400_and_another_version_is_426() {
    let server = TestServer::start();
    let version = "Sec-WebSocket-Version";
    assert_refused(&server, &upgrade_without("/echo", version, ""), 400, "missing or empty Sec-WebSocket-Version");
    let response =
        assert_refused(&server, &upgrade_without("/echo", version, "Sec-WebSocket-Version: 8\r\n"), 426, "use 13");
    assert_eq!(response.header("Sec-WebSocket-Version"), Some("13"));
}

#[test]
fn post_and_http_1_0_upgrades_are_400() {
    let server = TestServer::start();
    let request = String::from_utf8(upgrade_request("/echo", "")).unwrap();
    assert_refused(&server, request.replacen("GET", "POST", 1).as_bytes(), 400, "must be a GET");
    assert_refused(&server, request.replacen("HTTP/1.1", "HTTP/1.0", 1).as_bytes(), 400, "requires HTTP/1.1");
}

#[test]
fn origin_outside_the_allow_list_is_403() {
    let server = TestServer::with_args(&["--allow-origin", "https://chat.example"]);
    assert_refused(&server, &upgrade_request("/echo", "Origin: https://evil.example\r\n"), 403, "origin not allowed");
    assert_upgraded(&server, &upgrade_request("/echo", "Origin: https://chat.example\r\n"));
    // No Origin (a non-browser client) is allowed.
    assert_upgraded(&server, &upgrade_request("/echo", ""));

    // Without --allow-origin, any Origin is fine.
    let open = TestServer::start();
    assert_upgraded(&open, &upgrade_request("/echo", "Origin: https://evil.example\r\n"));
}

#[test]
fn unknown_paths_are_404() {
    let server = TestServer::start();
    for path in ["/nope", "/ws/a/b", "/ws/", "/echo/", "/wsx"] {
        assert_refused(&server, &upgrade_request(path, ""), 404, "not found");
        let response = server.http(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
        assert_eq!(response.status, 404, "plain GET {path}");
    }
}

#[test]
fn echo_is_404_with_no_echo() {
    let server = TestServer::with_args(&["--no-echo"]);
    assert_refused(&server, &upgrade_request("/echo", ""), 404, "not found");
    let response = server.http(b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(response.status, 404);
    // The other endpoints are still served.
    assert_upgraded(&server, &upgrade_request("/ws", ""));
}

#[test]
fn healthz_answers_ok_and_head_has_no_body() {
    let server = TestServer::start();
    let response = server.http(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"ok\n");
    assert!(response.header("Content-Type").is_some_and(|t| t.starts_with("text/plain")));

    // HEAD: the length of the GET body is announced, no body follows.
    let mut stream = server.tcp();
    stream.write_all(b"HEAD /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let raw = String::from_utf8(read_to_end_or_timeout(&mut stream)).unwrap();
    assert!(raw.starts_with("HTTP/1.1 200 "), "{raw:?}");
    assert!(raw.contains("\r\nContent-Length: 3\r\n"), "{raw:?}");
    assert!(raw.ends_with("\r\n\r\n"), "a body after HEAD: {raw:?}");
}

#[test]
fn keep_alive_answers_every_request_on_one_connection() {
    let server = TestServer::start();
    let mut stream = server.tcp();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let first = read_response(&mut stream).expect("first response");
    assert_eq!((first.status, &first.body[..]), (200, &b"ok\n"[..]));
    assert_eq!(first.header("Connection"), None);
    stream.write_all(b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let second = read_response(&mut stream).expect("second response");
    assert_eq!(second.status, 404);

    // Pipelined in one write, the last asking to close.
    stream
        .write_all(
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n\
              GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n\
              HEAD /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
    let third = read_response(&mut stream).expect("third response");
    assert_eq!((third.status, &third.body[..]), (200, &b"ok\n"[..]));
    let fourth = read_response(&mut stream).expect("fourth response");
    assert_eq!(fourth.status, 200);
    assert!(fourth.body_text().contains("soket_connections"));
    let rest = String::from_utf8(read_to_end_or_timeout(&mut stream)).unwrap();
    assert!(rest.starts_with("HTTP/1.1 200 "), "{rest:?}");
    assert!(rest.ends_with("\r\n\r\n"), "HEAD then EOF: {rest:?}");
}

#[test]
fn an_upgrade_pipelined_behind_a_plain_request_is_served() {
    let server = TestServer::start();
    let mut stream = server.tcp();
    let mut bytes = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
    bytes.extend(upgrade_request("/echo", ""));
    stream.write_all(&bytes).unwrap();
    let first = read_response(&mut stream).expect("the 200");
    assert_eq!((first.status, &first.body[..]), (200, &b"ok\n"[..]));
    let second = read_response(&mut stream).expect("the 101");
    assert_eq!(second.status, 101);
    assert_eq!(second.header("Sec-WebSocket-Accept"), Some(SAMPLE_ACCEPT));
    let mut ws = tungstenite::WebSocket::from_raw_socket(stream, tungstenite::protocol::Role::Client, None);
    assert_echoes(&mut ws, "after keep-alive");
}

#[test]
fn a_request_whose_sender_half_closes_is_still_answered() {
    let server = TestServer::start();
    let mut stream = server.tcp();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let response = read_response(&mut stream).expect("an answer after our FIN");
    assert_eq!((response.status, &response.body[..]), (200, &b"ok\n"[..]));
    assert!(read_to_end_or_timeout(&mut stream).is_empty(), "then EOF");
}

#[test]
fn metrics_count_websockets_and_handshake_failures() {
    let server = TestServer::start();
    let response = server.http(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(response.status, 200);
    assert!(response.header("Content-Type").is_some_and(|t| t.starts_with("text/plain")));
    let text = response.body_text();
    for family in [
        "soket_connections{protocol=\"websocket\"}",
        "soket_connections{protocol=\"http\"}",
        "soket_connections{protocol=\"legacy\"}",
        "soket_handshake_failures_total",
        "soket_slow_consumer_disconnects_total",
    ] {
        assert!(text.contains(family), "{family} not in:\n{text}");
    }
    let websockets = "soket_connections{protocol=\"websocket\"}";
    assert_eq!(metric(&server, websockets), 0);
    let (_, _upgraded) = assert_upgraded(&server, &upgrade_request("/echo", ""));
    assert_eq!(metric(&server, websockets), 1);

    let failures = "soket_handshake_failures_total";
    let before = metric(&server, failures);
    assert_refused(&server, &upgrade_without("/echo", "Sec-WebSocket-Key", ""), 400, "Sec-WebSocket-Key");
    assert_eq!(metric(&server, failures), before + 1);
    assert_refused(&server, &upgrade_request("/nope", ""), 404, "not found");
    assert_eq!(metric(&server, failures), before + 2);
    // A plain request is no handshake failure.
    assert_eq!(server.http(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").status, 200);
    assert_eq!(metric(&server, failures), before + 2);
}

#[test]
fn an_h2c_upgrade_gets_the_plain_answer() {
    let server = TestServer::start();
    let h2c = |path: &str| {
        format!(
            "GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\n\
             Connection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n"
        )
        .into_bytes()
    };
    let response = server.http(&h2c("/healthz"));
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"ok\n");
    let response = server.http(&h2c("/echo"));
    assert_eq!(response.status, 426);
    assert_eq!(response.header("Upgrade"), Some("websocket"));
}
