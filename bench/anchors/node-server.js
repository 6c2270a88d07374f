#!/usr/bin/env node
// Minimal Node.js Socket.IO 4.x server speaking tuiz's realtime protocol (DESIGN §3), used as
// the anchor that bench/socketio_load.py measures tuiz against. In-memory rooms, any roomId
// accepted, no persistence: the cost floor of the protocol on this machine.
//
// Presence follows tuiz's policy: `room:user-joined` / `room:user-left` go only to the room's
// host (and spectators, in tuiz), never to every player, so N joins cost N announcements, not
// N^2. The anchor has no `players` table, so the host is recognised by its device id: a socket
// whose `ws:connect` deviceId starts with `bench-sender` (the load generator's host socket) also
// joins `<roomId>#watchers`, and presence is sent to that room only, as tuiz does.
//
//   node bench/anchors/node-server.js [--port P] [--host 127.0.0.1]   (or PORT / HOST env)
//
// Prints "pid <pid>" and then "ready <port>" on stdout once listening. GET /health answers 200.
"use strict";

const http = require("node:http");
const { Server } = require("socket.io");

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const port = Number(arg("port", process.env.PORT || "0"));
const host = arg("host", process.env.HOST || "127.0.0.1");

const httpServer = http.createServer((req, res) => {
  res.writeHead(req.url === "/health" ? 200 : 404, { "content-type": "text/plain" });
  res.end(req.url === "/health" ? "ok\n" : "not found\n");
});

const io = new Server(httpServer, {
  path: "/socket.io/",
  serveClient: false,
  cors: { origin: "*" },
  transports: ["polling", "websocket"],
});

const reconnects = new Map(); // deviceId -> times seen before
const HOST_PREFIX = "bench-sender";

function watchers(roomId) {
  return `${roomId}#watchers`;
}

function error(socket, code, message) {
  socket.emit("ws:error", { error: code, message });
}

function isObject(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function validRoom(payload) {
  return isObject(payload) && typeof payload.roomId === "string" && payload.roomId.length > 0;
}

io.on("connection", (socket) => {
  socket.on("ws:connect", (payload) => {
    if (!isObject(payload) || typeof payload.deviceId !== "string" || !payload.deviceId.trim()) {
      return error(socket, "INVALID_PAYLOAD", "deviceId is required");
    }
    const seen = reconnects.get(payload.deviceId);
    const reconnectCount = seen === undefined ? 0 : seen + 1;
    reconnects.set(payload.deviceId, reconnectCount);
    socket.data.deviceId = payload.deviceId;
    socket.emit("ws:connected", {
      socketId: socket.id,
      deviceId: payload.deviceId,
      reconnectCount,
      serverTime: new Date().toISOString(),
    });
  });

  socket.on("ws:heartbeat", () => {
    socket.emit("ws:pong", { serverTime: new Date().toISOString() });
  });

  socket.on("room:join", (payload) => {
    if (!validRoom(payload)) return error(socket, "INVALID_PAYLOAD", "roomId is required");
    const { roomId } = payload;
    socket.join(roomId);
    const isHost = String(socket.data.deviceId || "").startsWith(HOST_PREFIX);
    if (isHost) socket.join(watchers(roomId));
    // A count, as tuiz sends: a list of socket ids would make joining 3,000 clients cost
    // O(N^2) bytes.
    const members = io.sockets.adapter.rooms.get(roomId);
    socket.emit("room:joined", { roomId, clients: members ? members.size : 0 });
    socket.to(watchers(roomId)).emit("room:user-joined", { roomId, socketId: socket.id });
  });

  socket.on("room:leave", (payload) => {
    if (!validRoom(payload)) return error(socket, "INVALID_PAYLOAD", "roomId is required");
    socket.leave(payload.roomId);
    socket.leave(watchers(payload.roomId));
    socket.emit("room:left", { roomId: payload.roomId });
    socket.to(watchers(payload.roomId)).emit("room:user-left", {
      roomId: payload.roomId,
      socketId: socket.id,
    });
  });

  socket.on("room:message", (payload) => {
    if (!validRoom(payload)) return error(socket, "INVALID_PAYLOAD", "roomId is required");
    if (!socket.rooms.has(payload.roomId)) return error(socket, "NOT_IN_ROOM", "join the room first");
    socket.to(payload.roomId).emit("room:message", {
      roomId: payload.roomId,
      socketId: socket.id,
      message: payload.message,
    });
  });

  socket.on("disconnecting", () => {
    for (const roomId of socket.rooms) {
      if (roomId !== socket.id && !roomId.endsWith("#watchers")) {
        socket.to(watchers(roomId)).emit("room:user-left", { roomId, socketId: socket.id });
      }
    }
  });
});

function shutdown() {
  io.close();
  httpServer.close();
  setTimeout(() => process.exit(0), 200).unref();
}
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);

httpServer.listen(port, host, () => {
  process.stdout.write(`pid ${process.pid}\n`);
  process.stdout.write(`ready ${httpServer.address().port}\n`);
});
