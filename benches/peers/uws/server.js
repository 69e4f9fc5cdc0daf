// uWebSockets.js peer of the load benchmark (benches/load): one Node process, one thread.
//
// Usage: node server.js [PORT] [--broadcast]. PORT 0 or absent: any free port. Binds 127.0.0.1
// and prints `peer-uws listening on ADDR` as its first stdout line, like soket and the Rust peers.
// `--broadcast` is accepted for symmetry with them; both routes are always served:
// - `/echo`: every text or binary message goes back to its sender with the same opcode;
// - `/broadcast`: every message goes to all OTHER connections of `/broadcast`, through uWS's
//   pub/sub: one topic, and `ws.publish` from the sending socket, which skips that socket and
//   fans out in C++ without calling back into JavaScript per receiver.
"use strict";

// The package's own entry point falls back to a pure-JS server (the `ws` package) when the
// native addon does not load, and says so on stdout. That would measure another server and
// corrupt the address line, so load the addon for this Node ABI directly and fail otherwise.
const addon = `@trufflesuite/uws-js-unofficial/binaries/uws_${process.platform}_${process.arch}_${process.versions.modules}.node`;
let uWS;
try {
  uWS = require(addon);
} catch (e) {
  console.error(`peer-uws: cannot load the native uWebSockets.js addon ${addon}: ${e}`);
  process.exit(1);
}

const args = process.argv.slice(2).filter((a) => !a.startsWith("--"));
const port = args.length > 0 ? Number(args[0]) : 0;
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`usage: node server.js [PORT] [--broadcast]; got port \`${args[0]}\``);
  process.exit(2);
}

// What every route shares. The limits are far above what the cases need (64 KiB messages;
// 16 fan-out rounds of 16 B in flight per receiver), so uWS never drops a message for
// backpressure (it would skip the receiver, not close it, and the client would wait forever).
const common = {
  compression: uWS.DISABLED,
  maxPayloadLength: 16 * 1024 * 1024,
  maxBackpressure: 64 * 1024 * 1024,
  closeOnBackpressureLimit: false,
  // No idle timeout and no server pings: the idle case holds silent connections.
  idleTimeout: 0,
  sendPingsAutomatically: false,
  maxLifetime: 0,
};

const TOPIC = "broadcast";

uWS
  .App()
  .ws("/echo", {
    ...common,
    message: (ws, message, isBinary) => {
      // `message` is only valid during this call; `send` copies it into the socket's buffer.
      ws.send(message, isBinary);
    },
  })
  .ws("/broadcast", {
    ...common,
    open: (ws) => {
      ws.subscribe(TOPIC);
    },
    message: (ws, message, isBinary) => {
      ws.publish(TOPIC, message, isBinary);
    },
  })
  .any("/*", (res) => {
    res.writeStatus("404 Not Found").end();
  })
  .listen("127.0.0.1", port, (listenSocket) => {
    if (!listenSocket) {
      console.error(`peer-uws: cannot listen on 127.0.0.1:${port}`);
      process.exit(1);
    }
    const bound = uWS.us_socket_local_port(listenSocket);
    process.stdout.write(`peer-uws listening on 127.0.0.1:${bound}\n`);
  });
