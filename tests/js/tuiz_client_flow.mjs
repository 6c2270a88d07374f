#!/usr/bin/env node
// The TUIZ web client's socket flow, run with the official socket.io-client 4.x against a tuiz
// server: two clients (A = host, B = player) connect, register with ws:connect, heartbeat, join
// the game room, see each other, send bad payloads, and disconnect.
//
// Usage: node tests/js/tuiz_client_flow.mjs URL TRANSPORT GAME_ID DEVICE_A DEVICE_B
//   (or env TUIZ_URL, TUIZ_TRANSPORT, TUIZ_GAME_ID, TUIZ_DEVICE_A, TUIZ_DEVICE_B)
//   TRANSPORT is `websocket` (the client's own ['websocket', 'polling']) or `polling` (polling
//   only, as behind a proxy without WebSocket). TUIZ_WAIT_MS bounds every wait (default 5000).
//
// Every step is awaited on an event (never a sleep) and checked with node:assert. On success
// it prints one JSON summary line on stdout (socket ids, seqs seen) and exits 0; on any failure
// it prints the reason on stderr and exits 1.

import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { io } from "socket.io-client";

const require = createRequire(import.meta.url);
const CLIENT_VERSION = require("socket.io-client/package.json").version;

const [argUrl, argTransport, argGame, argDeviceA, argDeviceB] = process.argv.slice(2);
const URL_ = argUrl ?? process.env.TUIZ_URL;
const TRANSPORT = argTransport ?? process.env.TUIZ_TRANSPORT ?? "websocket";
const GAME_ID = argGame ?? process.env.TUIZ_GAME_ID;
const DEVICE_A = argDeviceA ?? process.env.TUIZ_DEVICE_A;
const DEVICE_B = argDeviceB ?? process.env.TUIZ_DEVICE_B;
const WAIT_MS = Number(process.env.TUIZ_WAIT_MS ?? 5000);

const ISO_8601 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$/;

// What the TUIZ SocketProvider passes to io() (docs/tuiz-client-protocol.md §1).
const TRANSPORTS = {
  websocket: ["websocket", "polling"],
  polling: ["polling"],
};

function usage(message) {
  console.error(`${message}\nusage: node tuiz_client_flow.mjs URL websocket|polling GAME_ID DEVICE_A DEVICE_B`);
  process.exit(2);
}

if (!URL_ || !GAME_ID || !DEVICE_A || !DEVICE_B) usage("missing arguments");
if (!(TRANSPORT in TRANSPORTS)) usage(`unknown transport ${JSON.stringify(TRANSPORT)}`);

/** One TUIZ client: a socket.io-client socket whose events are queued until a step awaits them. */
class TuizClient {
  constructor(name, deviceId) {
    this.name = name;
    this.deviceId = deviceId;
    this.queues = new Map(); // event -> payloads received and not yet awaited
    this.waiters = new Map(); // event -> [{resolve, reject, timer}]
    this.failure = null;
    this.closing = false;
    this.connects = 0;
    this.lastConnectError = null;
    this.socket = io(URL_, {
      transports: TRANSPORTS[TRANSPORT],
      upgrade: TRANSPORT !== "polling",
      timeout: 10000,
      reconnection: true,
      reconnectionAttempts: 5,
      reconnectionDelay: 1000,
      forceNew: true,
    });
    this.log = []; // every event received, in order
    this.unprompted = [];
    this.socket.onAny((event, ...args) => {
      this.log.push(event);
      this.#deliver(event, args[0]);
    });
    this.socket.on("connect", () => {
      this.connects += 1;
      this.sid = this.socket.id;
      this.#deliver("connect", this.socket.id);
    });
    this.socket.on("connect_error", (err) => {
      this.lastConnectError = err?.message ?? String(err);
    });
    this.socket.on("disconnect", (reason) => {
      if (this.closing) {
        this.#deliver("disconnect", reason);
      } else {
        this.#fail(new Error(`${this.name}: unexpected disconnect (${reason})`));
      }
    });
    // The provider emits client:hello once at setup, before the connection is up (buffered).
    this.socket.emit("client:hello");
  }

  #deliver(event, payload) {
    const waiting = this.waiters.get(event);
    if (waiting?.length) {
      const waiter = waiting.shift();
      clearTimeout(waiter.timer);
      waiter.resolve(payload);
      return;
    }
    if (!this.queues.has(event)) this.queues.set(event, []);
    this.queues.get(event).push(payload);
  }

  #fail(error) {
    this.failure ??= error;
    for (const waiting of this.waiters.values()) {
      for (const waiter of waiting.splice(0)) {
        clearTimeout(waiter.timer);
        waiter.reject(error);
      }
    }
  }

  /** The next unseen `event` (already received or still to come), within WAIT_MS. */
  expect(event) {
    if (this.failure) return Promise.reject(this.failure);
    const queued = this.queues.get(event);
    if (queued?.length) return Promise.resolve(queued.shift());
    return new Promise((resolve, reject) => {
      const waiter = { resolve, reject, timer: null };
      waiter.timer = setTimeout(() => {
        const list = this.waiters.get(event);
        list.splice(list.indexOf(waiter), 1);
        const extra = this.lastConnectError ? ` (last connect_error: ${this.lastConnectError})` : "";
        reject(new Error(`${this.name}: no ${event} within ${WAIT_MS} ms${extra}; unexpected so far: ${JSON.stringify(this.pendingAll())}`));
      }, WAIT_MS);
      if (!this.waiters.has(event)) this.waiters.set(event, []);
      this.waiters.get(event).push(waiter);
    });
  }

  /** Received events nobody awaited, by name (ignoring the ones the client itself ignores). */
  pendingAll() {
    const out = {};
    for (const [event, payloads] of this.queues) {
      if (payloads.length && !["ws:pong", "server:hello"].includes(event)) out[event] = payloads;
    }
    return out;
  }

  emit(event, payload) {
    if (payload === undefined) this.socket.emit(event);
    else this.socket.emit(event, payload);
  }

  /** Disconnect as the client does; resolves with the reason once the server has the packet. */
  async close() {
    this.closing = true;
    if (!this.socket.connected) {
      this.socket.close();
      return null;
    }
    // The engine closes only after its write buffer drained, i.e. after the DISCONNECT packet
    // was written (under polling: after the server answered its POST).
    const engine = this.socket.io.engine;
    const flushed = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name}: engine not closed within ${WAIT_MS} ms`)), WAIT_MS);
      engine.once("close", () => {
        clearTimeout(timer);
        resolve();
      });
    });
    this.socket.disconnect();
    const reason = await this.expect("disconnect");
    await flushed;
    return reason;
  }
}

function assertConnected(client, connected) {
  assert.equal(typeof connected, "object", `${client.name}: ws:connected payload is not an object`);
  for (const key of ["socketId", "deviceId", "reconnectCount", "serverTime"]) {
    assert.ok(key in connected, `${client.name}: ws:connected lacks ${key}: ${JSON.stringify(connected)}`);
  }
  assert.equal(connected.socketId, client.socket.id, `${client.name}: ws:connected.socketId is not the socket's id`);
  assert.equal(connected.deviceId, client.deviceId);
  assert.ok(Number.isInteger(connected.reconnectCount), `reconnectCount not an integer: ${connected.reconnectCount}`);
  assert.equal(connected.reconnectCount, 0, `${client.name}: a device's first connection has reconnectCount 0`);
  assert.equal(typeof connected.serverTime, "string", "serverTime is not a string");
  assert.match(connected.serverTime, ISO_8601, "serverTime is not an ISO 8601 timestamp");
  const skew = Math.abs(Date.parse(connected.serverTime) - Date.now());
  assert.ok(skew < 60_000, `serverTime ${connected.serverTime} is ${skew} ms away from this clock`);
}

function assertError(client, payload, code) {
  assert.equal(typeof payload, "object", `${client.name}: ws:error payload is not an object: ${JSON.stringify(payload)}`);
  assert.equal(payload.error, code, `${client.name}: expected ws:error ${code}, got ${JSON.stringify(payload)}`);
  assert.equal(typeof payload.message, "string", "ws:error.message is not a string");
  assert.ok(payload.message.length > 0, "ws:error.message is empty");
}

async function step(name, fn) {
  try {
    return await fn();
  } catch (err) {
    err.message = `step "${name}": ${err.message}`;
    throw err;
  }
}

async function main() {
  const a = new TuizClient("A", DEVICE_A);
  const b = new TuizClient("B", DEVICE_B);
  const clients = [a, b];
  const summary = { transport: TRANSPORT, client: CLIENT_VERSION, gameId: GAME_ID };
  try {
    await step("connect", () => Promise.all(clients.map((c) => c.expect("connect"))));
    for (const c of clients) {
      assert.equal(c.socket.io.engine.transport.name, TRANSPORTS[TRANSPORT][0], `${c.name}: transport`);
    }

    // On `connect` the provider emits ws:connect and counts itself registered on ws:connected.
    await step("ws:connect -> ws:connected", async () => {
      for (const c of clients) {
        c.emit("ws:connect", {
          deviceId: c.deviceId,
          metadata: { userAgent: `node/${process.version} socket.io-client/${CLIENT_VERSION}`, connectedAt: new Date().toISOString() },
        });
      }
      for (const c of clients) assertConnected(c, await c.expect("ws:connected"));
    });

    await step("ws:heartbeat -> ws:pong", async () => {
      for (const c of clients) c.emit("ws:heartbeat");
      for (const c of clients) await c.expect("ws:pong");
    });

    // The client sent nothing wrong so far (ws:connect, client:hello, ws:heartbeat); any
    // ws:error here would clear its registered flag. Set aside, so the flow goes on, and
    // reported at the end.
    for (const c of clients) c.unprompted = (c.queues.get("ws:error") ?? []).splice(0);

    const joinedSeq = await step("room:join, the other sees room:user-joined", async () => {
      a.emit("room:join", { roomId: GAME_ID });
      const aJoined = await a.expect("room:joined");
      assert.equal(aJoined.roomId, GAME_ID);
      assert.equal(aJoined.clients, 1, `A alone in the room: ${JSON.stringify(aJoined)}`);

      b.emit("room:join", { roomId: GAME_ID });
      const bJoined = await b.expect("room:joined");
      assert.equal(bJoined.roomId, GAME_ID);
      assert.equal(bJoined.clients, 2, `A and B in the room: ${JSON.stringify(bJoined)}`);

      const seen = await a.expect("room:user-joined");
      assert.equal(seen.roomId, GAME_ID);
      assert.equal(seen.socketId, b.socket.id, "room:user-joined names B's socket");
      assert.ok(Number.isInteger(seen.seq) && seen.seq > 0, `room:user-joined.seq: ${seen.seq}`);
      return seen.seq;
    });

    await step("bad payloads -> ws:error", async () => {
      a.emit("ws:connect", { deviceId: "" });
      assertError(a, await a.expect("ws:error"), "VALIDATION_ERROR");
      b.emit("room:message", { roomId: "00000000-0000-4000-8000-000000000000", message: "hi" });
      assertError(b, await b.expect("ws:error"), "FORBIDDEN");
      // Nothing changed: both are still connected and registered.
      for (const c of clients) c.emit("ws:heartbeat");
      for (const c of clients) await c.expect("ws:pong");
    });

    const leftSeq = await step("B disconnects, A sees room:user-left", async () => {
      assert.equal(await b.close(), "io client disconnect");
      const left = await a.expect("room:user-left");
      assert.equal(left.roomId, GAME_ID);
      assert.equal(left.socketId, b.sid, "room:user-left names B's socket");
      assert.equal(left.seq, joinedSeq + 1, "room:user-left follows B's join in the room's seq");
      return left.seq;
    });
    summary.joinedSeq = joinedSeq;
    summary.leftSeq = leftSeq;

    await step("A disconnects", async () => {
      assert.equal(await a.close(), "io client disconnect");
    });

    await step("nothing unexpected", () => {
      // A join is announced once its event is logged, to whoever is in the room by then: B,
      // joining right after A's room:joined, may hear of A's earlier join too. That is
      // harmless for the client (the host page only re-fetches players); accept exactly that.
      const early = b.queues.get("room:user-joined") ?? [];
      if (early.length === 1 && early[0].socketId === a.sid && early[0].seq < joinedSeq) {
        summary.bSawAJoin = early.splice(0)[0].seq;
      }
      for (const c of clients) {
        assert.deepEqual(
          c.unprompted,
          [],
          `${c.name}: ws:error for a well-formed TUIZ client (it clears the client's registered flag); events in order: ${c.log.join(", ")}`,
        );
        assert.equal(c.connects, 1, `${c.name} connected ${c.connects} times (reconnected?)`);
        assert.deepEqual(c.pendingAll(), {}, `${c.name}: events no step expected`);
      }
    });
    summary.a = { socketId: a.sid, deviceId: a.deviceId };
    summary.b = { socketId: b.sid, deviceId: b.deviceId };
    console.log(JSON.stringify(summary));
  } finally {
    for (const c of clients) {
      c.closing = true;
      c.socket.close();
    }
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err?.stack ?? String(err));
    process.exit(1);
  },
);
