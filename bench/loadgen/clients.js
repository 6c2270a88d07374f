#!/usr/bin/env node
// One load-generator process for bench/socketio_load.py: opens `count` Socket.IO clients to one
// server and drives them on commands read from stdin (one JSON object a line); answers with JSON
// lines on stdout. Roles: "receiver" clients join the room and time the broadcasts they get;
// "sender" clients join the room and emit room:message at a fixed rate when told.
//
//   node bench/loadgen/clients.js '{"url": "http://127.0.0.1:PORT", "roomId": "...",
//                                  "count": 750, "role": "receiver", ...}'
//
// Device ids are stable, so tuiz can seat them before the run (a `players` row each):
// receivers are `bench-receiver-<proc>-<i>`; in the sender process client 0 is the room's host,
// `bench-sender-<proc>-0`, and the other burst senders are players, `bench-burst-<proc>-<i>`.
// The orchestrator (deviceIds() in bench/socketio_load.py) computes the same names.
//
// Commands: connect (optionally {"register": false}), register, join, send (sender), count, report, exit. The process also exits when
// stdin closes (the orchestrator died) and after `maxSeconds` whatever happens.
//
// Clock: every timestamp is `performance.timeOrigin + performance.now()` in milliseconds since
// the Unix epoch. timeOrigin is read from the system real-time clock once, with sub-millisecond
// precision, when the process starts, and performance.now() is monotonic after that. All the
// processes run on this one machine and read the same kernel clock, so a send time taken in
// the sender process and a receive time taken in a receiver process are comparable to within
// microseconds (plus any NTP slew during the run, which is parts per million). Date.now() would
// work too but has only 1 ms resolution.
"use strict";

const { performance } = require("node:perf_hooks");
const readline = require("node:readline");
const { io } = require("socket.io-client");

const config = {
  url: "http://127.0.0.1:3000",
  roomId: "bench",
  count: 1,
  role: "receiver", // or "sender"
  index: 0, // process index, for device ids
  transports: ["websocket"],
  connectConcurrency: 32, // in-flight connection attempts in this process
  joinConcurrency: 4, // in-flight room:join in this process
  heartbeatMs: 25000, // ws:heartbeat interval per client (0: none)
  timeoutMs: 30000, // per connect / join attempt
  maxSeconds: 900, // hard stop for this process
  pad: 0, // extra payload bytes per broadcast
  ...JSON.parse(process.argv[2] || "{}"),
};

const origin = performance.timeOrigin;
const now = () => origin + performance.now();

function out(obj) {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

const clients = [];
const counters = { userJoined: 0, errors: 0, disconnects: 0, pongs: 0, lastError: null };
// phase -> { counts: [], maxLat: [], lat: [], first, last }
const phases = new Map();
const heartbeatTimers = [];

function phaseStore(name) {
  let p = phases.get(name);
  if (!p) {
    p = { counts: [], maxLat: [], lat: [], received: 0, first: Infinity, last: 0 };
    phases.set(name, p);
  }
  return p;
}

function onMessage(data) {
  const t = now();
  const m = data && data.message;
  if (!m || typeof m.t !== "number" || config.role !== "receiver") return;
  const p = phaseStore(m.p);
  const latency = t - m.t;
  p.counts[m.s] = (p.counts[m.s] || 0) + 1;
  if (!(p.maxLat[m.s] >= latency)) p.maxLat[m.s] = latency;
  p.lat.push(Math.round(latency * 1000)); // microseconds
  p.received += 1;
  if (t < p.first) p.first = t;
  if (t > p.last) p.last = t;
}

// Run `task(i)` for i in [0, n) with at most `limit` in flight; resolves with the results.
async function pooled(n, limit, task) {
  const results = new Array(n);
  let next = 0;
  async function worker() {
    while (next < n) {
      const i = next++;
      results[i] = await task(i);
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, n) }, worker));
  return results;
}

function waitFor(socket, event, ms) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.off(event, handler);
      reject(new Error(`timeout waiting for ${event}`));
    }, ms);
    function handler(payload) {
      clearTimeout(timer);
      resolve(payload);
    }
    socket.once(event, handler);
  });
}

function deviceId(i) {
  if (config.role === "sender") {
    return i === 0 ? `bench-sender-${config.index}-0` : `bench-burst-${config.index}-${i}`;
  }
  return `bench-receiver-${config.index}-${i}`;
}

// Opens client i; unless `register` is false, also does ws:connect -> ws:connected and starts
// its heartbeats (bench/sio_memory.py connects first and registers later, to tell the costs
// apart).
async function connectOne(i, register = true) {
  const start = now();
  const socket = io(config.url, {
    transports: config.transports,
    forceNew: true, // one engine.io connection per client, never multiplexed
    reconnection: false,
    timeout: config.timeoutMs,
  });
  clients[i] = socket;
  socket.on("room:message", onMessage);
  socket.on("room:user-joined", () => counters.userJoined++);
  socket.on("ws:pong", () => counters.pongs++);
  socket.on("ws:error", (e) => {
    counters.errors++;
    counters.lastError = e;
  });
  socket.on("disconnect", (reason) => {
    counters.disconnects++;
    counters.lastError = { disconnect: reason };
  });
  try {
    await new Promise((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("connect_error", reject);
    });
  } catch (err) {
    counters.lastError = { connect: String(err && err.message) };
    return null;
  }
  return register ? registerOne(i, start) : [start, now()];
}

async function registerOne(i, start = now()) {
  const socket = clients[i];
  if (!socket || !socket.connected) return null;
  try {
    socket.emit("ws:connect", { deviceId: deviceId(i), metadata: { bench: true } });
    await waitFor(socket, "ws:connected", config.timeoutMs);
  } catch (err) {
    counters.lastError = { connect: String(err && err.message) };
    return null;
  }
  const end = now();
  if (config.heartbeatMs > 0) {
    const first = Math.random() * config.heartbeatMs; // spread clients over the interval
    heartbeatTimers.push(
      setTimeout(() => {
        socket.emit("ws:heartbeat");
        heartbeatTimers.push(setInterval(() => socket.emit("ws:heartbeat"), config.heartbeatMs));
      }, first),
    );
  }
  return [start, end];
}

async function joinOne(i) {
  const socket = clients[i];
  if (!socket || !socket.connected) return null;
  const start = now();
  socket.emit("room:join", { roomId: config.roomId });
  try {
    await waitFor(socket, "room:joined", config.timeoutMs);
  } catch (err) {
    counters.lastError = { join: String(err && err.message) };
    return null;
  }
  return [start, now()];
}

function summarize(event, spans) {
  const ok = spans.filter(Boolean);
  return {
    event,
    ok: ok.length,
    failed: spans.length - ok.length,
    first: ok.length ? Math.min(...ok.map((s) => s[0])) : null,
    last: ok.length ? Math.max(...ok.map((s) => s[1])) : null,
    latencies: ok.map((s) => Math.round((s[1] - s[0]) * 1000)), // microseconds
    counters,
  };
}

function sleepUntil(t) {
  const ms = t - now();
  return ms > 0 ? new Promise((r) => setTimeout(r, ms)) : Promise.resolve();
}

// Sender i of S sends seqs i, i+S, ... at `rate` per second each, staggered so that the
// senders together emit at an even S*rate per second.
async function send(cmd) {
  const senders = clients.filter((s) => s && s.connected).slice(0, cmd.senders || 1);
  const total = cmd.messages;
  const interval = 1000 / cmd.rate;
  const pad = config.pad > 0 ? "x".repeat(config.pad) : undefined;
  const start = now() + 50;
  const times = new Array(total);
  await Promise.all(
    senders.map(async (socket, k) => {
      for (let s = k, j = 0; s < total; s += senders.length, j++) {
        await sleepUntil(start + j * interval + (k * interval) / senders.length);
        const t = now();
        times[s] = t;
        socket.emit("room:message", {
          roomId: config.roomId,
          message: { p: cmd.phase, s, t, pad },
        });
      }
    }),
  );
  const sent = times.filter((t) => t !== undefined);
  out({
    event: "sent",
    phase: cmd.phase,
    count: sent.length,
    senders: senders.length,
    first: Math.min(...sent),
    last: Math.max(...sent),
    counters,
  });
}

function report(phase) {
  const p = phaseStore(phase);
  out({
    event: "report",
    phase,
    received: p.received,
    counts: p.counts,
    maxLat: p.maxLat.map((v) => (v === undefined ? null : Math.round(v * 1000))),
    lat: p.lat,
    first: Number.isFinite(p.first) ? p.first : null,
    last: p.last || null,
    connected: clients.filter((s) => s && s.connected).length,
    counters,
  });
}

function exit(code) {
  for (const t of heartbeatTimers) clearTimeout(t);
  for (const s of clients) if (s) s.close();
  setTimeout(() => process.exit(code), 100).unref();
}

async function handle(cmd) {
  switch (cmd.cmd) {
    case "connect": {
      const register = cmd.register !== false;
      const spans = await pooled(config.count, config.connectConcurrency, (i) =>
        connectOne(i, register),
      );
      return out(summarize("connected", spans));
    }
    case "register": {
      const spans = await pooled(config.count, config.connectConcurrency, (i) => registerOne(i));
      return out(summarize("registered", spans));
    }
    case "join": {
      const spans = await pooled(config.count, config.joinConcurrency, joinOne);
      return out(summarize("joined", spans));
    }
    case "send":
      return send(cmd);
    case "count":
      return out({
        event: "count",
        phase: cmd.phase,
        received: phaseStore(cmd.phase).received,
        connected: clients.filter((s) => s && s.connected).length,
        userJoined: counters.userJoined,
      });
    case "report":
      return report(cmd.phase);
    case "exit":
      return exit(0);
    default:
      return out({ event: "error", message: `unknown command ${cmd.cmd}` });
  }
}

readline.createInterface({ input: process.stdin }).on("line", (line) => {
  if (!line.trim()) return;
  let cmd;
  try {
    cmd = JSON.parse(line);
  } catch (err) {
    return out({ event: "error", message: `bad command: ${err.message}` });
  }
  handle(cmd).catch((err) => out({ event: "error", message: String(err && err.stack) }));
});
process.stdin.on("end", () => exit(0));
setTimeout(() => {
  out({ event: "error", message: `maxSeconds ${config.maxSeconds} reached` });
  exit(2);
}, config.maxSeconds * 1000).unref();
out({ event: "ready", pid: process.pid, origin });
