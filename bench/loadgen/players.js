#!/usr/bin/env node
// One player-simulation process for bench/game_load.py: `count` quiz players on one live tuiz
// game, driven by JSON commands on stdin (one object a line), answering with JSON lines on
// stdout.
//
//   node bench/loadgen/players.js '{"url": "http://127.0.0.1:PORT", "pin": "123456",
//                                   "count": 250, "index": 0, "seed": 1, ...}'
//
// Commands:
//   connect  open every socket (websocket transport) and register (`ws:connect` ->
//            `ws:connected`), `connectConcurrency` in flight -> {event: "connected", ...}
//   join     `game:join {pin, nickname}` with an acknowledgement for every connected socket,
//            `joinConcurrency` in flight -> {event: "joined", ...}
//   count    progress counters -> {event: "count", ...}
//   report   everything measured -> {event: "report", ...}
//   exit
// The process also exits when stdin closes (the orchestrator died) and after `maxSeconds`.
//
// Playing is automatic once joined: on `game:question:started` with phase `answering`, each
// player records the receive time, waits a random 0..thinkMs (uniform, from a per-player
// seeded PRNG, so a run is repeatable), then emits `game:answer:submit` with a client answer
// id and a random choice, and records the acknowledgement: emit -> ack callback latency and
// whether it was `{ok: true}`.
//
// Clock: receive, emit and ack times are `performance.timeOrigin + performance.now()` in ms
// since the Unix epoch (the real-time clock read once at process start with sub-ms precision,
// then the monotonic clock). The server stamps `startsAt` with `int(time.time() * 1000)`, the
// same kernel real-time clock truncated to the ms, so `receive - startsAt` is the broadcast
// latency from the server's decision to this player's handler, overstated by < 1 ms. The
// report carries `clockOffsetMs` (Date.now() minus our clock at report time) so a clock step
// during a run would show.
"use strict";

const { performance } = require("node:perf_hooks");
const readline = require("node:readline");
const { io } = require("socket.io-client");

const config = {
  url: "http://127.0.0.1:8000",
  pin: "000000",
  count: 1,
  index: 0, // process index: nicknames and device ids
  seed: 1,
  transports: ["websocket"],
  connectConcurrency: 32,
  joinConcurrency: 4,
  thinkMs: 3000, // answer after a uniform random 0..thinkMs
  heartbeatMs: 25000, // ws:heartbeat per client, as the TUIZ client does (0: none)
  timeoutMs: 30000, // connect / join / answer acknowledgement
  maxSeconds: 1800,
  ...JSON.parse(process.argv[2] || "{}"),
};

const origin = performance.timeOrigin;
const now = () => origin + performance.now();
const out = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);

// mulberry32: a small seeded PRNG, one state per player.
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const players = []; // {socket, nickname, playerId, gameId, random, answered: Set, score}
const timers = new Set();
const counters = {
  connectFailed: 0,
  joinFailed: 0,
  joinErrors: {},
  disconnects: 0,
  disconnectReasons: {},
  gameErrors: 0,
  lastGameError: null,
  playerJoined: 0,
  questionEnded: 0,
  results: 0,
  gameEnd: 0,
  lastError: null,
};
// question index -> per-question measurements
const questions = new Map();

function questionStore(index) {
  let q = questions.get(index);
  if (!q) {
    q = {
      index,
      questionId: null,
      startsAt: null,
      received: 0,
      recvLatUs: [], // receive - startsAt, per player, microseconds
      firstRecv: Infinity,
      lastRecv: 0,
      sent: 0,
      ok: 0,
      failed: 0,
      errors: {},
      ackLatUs: [], // emit -> ack, ok acks only, microseconds
      acked: [], // [playerId, answerId] of every ok ack
    };
    questions.set(index, q);
  }
  return q;
}

function later(ms, fn) {
  const t = setTimeout(() => {
    timers.delete(t);
    fn();
  }, ms);
  timers.add(t);
}

function answer(player, data, q) {
  const question = data.question;
  const choices = question.choices || [];
  const choice = choices.length ? choices[Math.floor(player.random() * choices.length)] : null;
  const answerId = `${player.nickname}-q${question.index}`;
  const payload = {
    gameId: player.gameId,
    playerId: player.playerId,
    questionId: question.id,
    answerId,
  };
  if (choice) payload.choiceIds = [choice.id];
  else payload.text = "bench";
  q.sent += 1;
  const sentAt = now();
  player.socket.timeout(config.timeoutMs).emit("game:answer:submit", payload, (err, ack) => {
    const latency = now() - sentAt;
    if (!err && ack && ack.ok) {
      q.ok += 1;
      q.ackLatUs.push(Math.round(latency * 1000));
      q.acked.push([player.playerId, answerId]);
    } else {
      q.failed += 1;
      const code = err ? "ACK_TIMEOUT" : String((ack && ack.error) || "UNKNOWN");
      q.errors[code] = (q.errors[code] || 0) + 1;
    }
  });
}

function onQuestionStarted(player, data) {
  const t = now();
  if (!data || data.phase !== "answering" || !data.question) return;
  const index = data.question.index;
  if (player.answered.has(index)) return;
  player.answered.add(index);
  const q = questionStore(index);
  q.questionId = data.question.id;
  q.startsAt = data.startsAt;
  q.received += 1;
  q.recvLatUs.push(Math.round((t - data.startsAt) * 1000));
  if (t < q.firstRecv) q.firstRecv = t;
  if (t > q.lastRecv) q.lastRecv = t;
  later(player.random() * config.thinkMs, () => {
    if (player.socket.connected) answer(player, data, q);
  });
}

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

async function connectOne(i) {
  const nickname = `p${config.index}-${i}`;
  const player = {
    socket: null,
    nickname,
    playerId: null,
    gameId: null,
    random: rng((config.seed * 1000003) ^ (config.index * 65537) ^ (i + 1)),
    answered: new Set(),
    score: null,
  };
  const start = now();
  const socket = io(config.url, {
    transports: config.transports,
    forceNew: true,
    reconnection: false,
    timeout: config.timeoutMs,
  });
  player.socket = socket;
  players[i] = player;
  socket.on("game:question:started", (data) => onQuestionStarted(player, data));
  socket.on("game:player-joined", () => counters.playerJoined++);
  socket.on("game:question:ended", () => counters.questionEnded++);
  socket.on("game:player:result", (data) => {
    counters.results++;
    if (data && typeof data.score === "number") player.score = data.score;
  });
  socket.on("game:end", () => counters.gameEnd++);
  socket.on("game:error", (e) => {
    counters.gameErrors++;
    counters.lastGameError = e;
  });
  socket.on("disconnect", (reason) => {
    counters.disconnects++;
    counters.disconnectReasons[reason] = (counters.disconnectReasons[reason] || 0) + 1;
  });
  try {
    await new Promise((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("connect_error", reject);
    });
    socket.emit("ws:connect", { deviceId: `bench-game-${config.index}-${i}-${process.pid}` });
    await waitFor(socket, "ws:connected", config.timeoutMs);
  } catch (err) {
    counters.connectFailed++;
    counters.lastError = { connect: String(err && err.message) };
    return null;
  }
  if (config.heartbeatMs > 0) {
    // Spread over the interval; the server drops sockets silent for 60 s.
    later(Math.random() * config.heartbeatMs, function beat() {
      if (!socket.connected) return;
      socket.emit("ws:heartbeat");
      later(config.heartbeatMs, beat);
    });
  }
  return [start, now()];
}

async function joinOne(i) {
  const player = players[i];
  if (!player || !player.socket.connected) return null;
  const start = now();
  let ack;
  try {
    ack = await player.socket
      .timeout(config.timeoutMs)
      .emitWithAck("game:join", { pin: config.pin, nickname: player.nickname });
  } catch (err) {
    ack = { ok: false, error: "ACK_TIMEOUT" };
  }
  if (!ack || !ack.ok) {
    counters.joinFailed++;
    const code = String((ack && ack.error) || "UNKNOWN");
    counters.joinErrors[code] = (counters.joinErrors[code] || 0) + 1;
    return null;
  }
  player.playerId = ack.playerId;
  player.gameId = ack.gameId;
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

function progress() {
  let sent = 0;
  let done = 0;
  for (const q of questions.values()) {
    sent += q.sent;
    done += q.ok + q.failed;
  }
  return {
    event: "count",
    sent,
    done,
    connected: players.filter((p) => p && p.socket.connected).length,
    ...counters,
  };
}

function report() {
  out({
    event: "report",
    questions: [...questions.values()].map((q) => ({
      ...q,
      firstRecv: Number.isFinite(q.firstRecv) ? q.firstRecv : null,
      lastRecv: q.lastRecv || null,
    })),
    scores: players.filter((p) => p && p.playerId).map((p) => [p.playerId, p.score]),
    connected: players.filter((p) => p && p.socket.connected).length,
    clockOffsetMs: Date.now() - now(),
    counters,
  });
}

function exit(code) {
  for (const t of timers) clearTimeout(t);
  for (const p of players) if (p) p.socket.close();
  setTimeout(() => process.exit(code), 100).unref();
}

async function handle(cmd) {
  switch (cmd.cmd) {
    case "connect":
      return out(summarize("connected", await pooled(config.count, config.connectConcurrency, connectOne)));
    case "join":
      return out(summarize("joined", await pooled(config.count, config.joinConcurrency, joinOne)));
    case "count":
      return out(progress());
    case "report":
      return report();
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
