// Node socket.io peer of the load benchmark (benches/load): the reference Socket.IO server
// (Engine.IO 4 / Socket.IO protocol 5), one Node process.
//
// Usage: node server.js [PORT]. PORT 0 or absent: any free port. Binds 127.0.0.1 and prints
// `peer-socketio listening on ADDR` as its first stdout line, like soket and the other peers.
// socket.io's defaults throughout (path `/socket.io/`, polling and WebSocket transports, ping
// interval 25 s, no compression of WebSocket messages); in the namespace `/`, every `bench`
// event goes to every socket of the namespace, the sender included (`io.emit`).
"use strict";

const http = require("node:http");
const { Server } = require("socket.io");

const args = process.argv.slice(2).filter((a) => !a.startsWith("--"));
const port = args.length > 0 ? Number(args[0]) : 0;
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`usage: node server.js [PORT]; got port \`${args[0]}\``);
  process.exit(2);
}

// `noDelay` is already Node's default for accepted sockets; said here because every peer sets it.
const httpServer = http.createServer({ noDelay: true });
const io = new Server(httpServer);

io.on("connection", (socket) => {
  socket.on("bench", (...args) => io.emit("bench", ...args));
});

httpServer.on("error", (e) => {
  console.error(`peer-socketio: ${e}`);
  process.exit(1);
});

httpServer.listen(port, "127.0.0.1", () => {
  const { address, port: bound } = httpServer.address();
  process.stdout.write(`peer-socketio listening on ${address}:${bound}\n`);
});
