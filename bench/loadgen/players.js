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
//   mark-kill {at}: the owner was killed at `at` (ms since the epoch) -> {event: "marked"}
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
// With `rejoin` (bench/game_load.py --cluster with the owner killed), a player whose socket
// drops reconnects (through the load balancer, so to another process), registers with the same
// device id and sends `game:rejoin` with its resume token until the game answers (UNAVAILABLE
// while another process takes the game over); an answer refused with UNAVAILABLE, or left
// without an acknowledgement by the dropped socket, is sent again with the same answer id (the
// server keeps one answer per id); answer retries back off (rejoinRetryMs doubling to 4 s,
// jittered). Reconnections wait as socket.io-client's own reconnection does, the first one
// included (reconnectionDelay 1 s doubling to 5 s, randomizationFactor 0.5): a phone whose
// socket drops does not reconnect within the same millisecond as every other phone.
// Measured: disconnects, rejoins and their latency, each step of a rejoin (connect, register,
// game:rejoin acknowledgement and its size), retries; a question a rejoin's snapshot shows
// open is answered (counted `viaRejoin`: its start was sent while the socket was away).
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
  rejoin: false,
  rejoinRetryMs: 250,
  rejoinWithinMs: 60000,
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
  rejoined: 0,
  rejoinFailed: 0,
  rejoinLatUs: [], // disconnect -> rejoin acknowledged, microseconds
  rejoinAttempts: [], // attempts of each successful rejoin
  rejoinConnectUs: [], // the successful attempt: open -> connected (handshake, upgrade)
  rejoinRegisterUs: [], // connected -> ws:connected (the connection row)
  rejoinAckUs: [], // game:rejoin -> its acknowledgement (forward, seat, snapshot)
  rejoinAckBytes: [], // the acknowledgement's JSON size
  rejoinErrors: {}, // failed attempts by cause
  lastRejoinError: null,
  answerRetries: 0,
  firstAckAfterKill: null, // first ok ack sent after `markKill` (ms since the epoch)
};
let killedAt = null; // set by the `mark-kill` command
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
      viaRejoin: 0, // players who learnt of the question from a rejoin's snapshot
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

function answer(player, data, q, retry = false) {
  const question = data.question;
  const index = question.index;
  if (player.settled.has(index)) return;
  if (!player.seated) {
    player.missed.add(index); // sent after the rejoin (resumeAnswer)
    return;
  }
  const choices = question.choices || [];
  if (!player.choice.has(index)) {
    // drawn once per question, so a retry sends the same answer
    const pick = choices.length ? choices[Math.floor(player.random() * choices.length)] : null;
    player.choice.set(index, pick);
  }
  const choice = player.choice.get(index);
  const answerId = `${player.nickname}-q${index}`;
  const payload = {
    gameId: player.gameId,
    playerId: player.playerId,
    questionId: question.id,
    answerId,
  };
  if (choice) payload.choiceIds = [choice.id];
  else payload.text = "bench";
  if (!retry) q.sent += 1;
  else counters.answerRetries += 1;
  const sentAt = now();
  const socket = player.socket;
  socket.timeout(config.timeoutMs).emit("game:answer:submit", payload, (err, ack) => {
    if (player.settled.has(index)) return;
    const latency = now() - sentAt;
    if (!err && ack && ack.ok) {
      player.retries = 0;
      player.settled.add(index);
      q.ok += 1;
      q.ackLatUs.push(Math.round(latency * 1000));
      q.acked.push([player.playerId, answerId]);
      if (killedAt !== null && sentAt >= killedAt && counters.firstAckAfterKill === null) {
        counters.firstAckAfterKill = now();
      }
      return;
    }
    const code = err ? "ACK_TIMEOUT" : String((ack && ack.error) || "UNKNOWN");
    if (config.rejoin && (code === "UNAVAILABLE" || code === "ACK_TIMEOUT")) {
      // the game is moving to another process: same answer id again (or after the rejoin)
      if (socket === player.socket && socket.connected) {
        later(backoff(player), () => answer(player, data, q, true));
      }
      return;
    }
    player.settled.add(index);
    q.failed += 1;
    q.errors[code] = (q.errors[code] || 0) + 1;
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
  later(player.random() * config.thinkMs, () => answer(player, data, q));
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

function openSocket(player) {
  const socket = io(config.url, {
    transports: config.transports,
    forceNew: true,
    reconnection: false,
    timeout: config.timeoutMs,
  });
  player.socket = socket;
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
    if (socket !== player.socket) return; // a socket given up during a rejoin
    player.seated = false;
    if (config.rejoin && player.playerId && reason !== "io client disconnect" && !exiting) {
      if (!player.rejoining) rejoin(player, now()); // else that rejoin's next attempt
    }
  });
  return socket;
}

async function register(player) {
  const socket = player.socket;
  await new Promise((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("connect_error", reject);
  });
  socket.emit("ws:connect", { deviceId: player.deviceId });
  await waitFor(socket, "ws:connected", config.timeoutMs);
}

function reconnectDelay(attempt) {
  // socket.io-client's Backoff with its defaults: 1 s doubling to 5 s, +-50 % jitter
  const ms = Math.min(1000 * 2 ** attempt, 5000);
  const deviation = Math.floor(Math.random() * 0.5 * ms);
  return Math.min((Math.floor(Math.random() * 10) & 1) === 0 ? ms - deviation : ms + deviation, 5000);
}

function rejoinError(kind) {
  counters.rejoinErrors[kind] = (counters.rejoinErrors[kind] || 0) + 1;
  counters.lastRejoinError = kind;
}

async function rejoin(player, since) {
  player.rejoining = true;
  try {
    await rejoinUntil(player, since);
  } finally {
    player.rejoining = false;
  }
}

async function rejoinUntil(player, since) {
  const deadline = since + config.rejoinWithinMs;
  let attempt = 0;
  while (!exiting) {
    await new Promise((resolve) => later(reconnectDelay(attempt), resolve));
    attempt += 1;
    if (now() >= deadline || exiting) break;
    let step = "connect";
    try {
      const opened = now();
      openSocket(player);
      const socket = player.socket;
      await new Promise((resolve, reject) => {
        socket.once("connect", resolve);
        socket.once("connect_error", reject);
      });
      const connected = now();
      step = "register";
      socket.emit("ws:connect", { deviceId: player.deviceId });
      await waitFor(socket, "ws:connected", config.timeoutMs);
      const registered = now();
      step = "rejoin";
      const ack = await socket.timeout(config.timeoutMs).emitWithAck("game:rejoin", {
        gameId: player.gameId,
        playerId: player.playerId,
        resumeToken: player.resumeToken,
      });
      if (ack && ack.ok) {
        const done = now();
        player.seated = true;
        player.retries = 0;
        counters.rejoined++;
        counters.rejoinLatUs.push(Math.round((done - since) * 1000));
        counters.rejoinAttempts.push(attempt);
        counters.rejoinConnectUs.push(Math.round((connected - opened) * 1000));
        counters.rejoinRegisterUs.push(Math.round((registered - connected) * 1000));
        counters.rejoinAckUs.push(Math.round((done - registered) * 1000));
        counters.rejoinAckBytes.push(JSON.stringify(ack).length);
        resumeAnswer(player, ack.snapshot);
        return;
      }
      rejoinError(`rejoin:${(ack && ack.error) || "UNKNOWN"}`);
    } catch (err) {
      rejoinError(`${step}:${String((err && err.message) || err).slice(0, 60)}`);
    }
    player.socket.removeAllListeners("disconnect");
    player.socket.close();
  }
  counters.rejoinFailed++;
}

function backoff(player) {
  // doubling from rejoinRetryMs to 4 s, with jitter: thousands of players retrying in step
  // would be a load of their own
  const base = Math.min(config.rejoinRetryMs * 2 ** player.retries, 4000);
  player.retries += 1;
  return base / 2 + Math.random() * (base / 2);
}

function resumeAnswer(player, snapshot) {
  // The question this player was answering when its socket dropped: the snapshot says whether
  // the answer counted (then it is acknowledged by the snapshot) or must be sent again. A
  // question opened while the socket was away is answered now, as a phone showing it would.
  if (!snapshot || snapshot.phase !== "answering" || !snapshot.question) return;
  const index = snapshot.question.index;
  if (!player.answered.has(index)) {
    player.answered.add(index);
    const q = questionStore(index);
    q.questionId = snapshot.question.id;
    q.viaRejoin += 1;
    later(player.random() * config.thinkMs, () => answer(player, { question: snapshot.question }, q));
    return;
  }
  if (!player.answered.has(index) || player.settled.has(index)) return;
  const q = questionStore(index);
  const mine = snapshot.me && snapshot.me.answer;
  if (mine && mine.answerId === `${player.nickname}-q${index}`) {
    player.settled.add(index);
    q.ok += 1;
    q.acked.push([player.playerId, mine.answerId]);
    return;
  }
  if (player.choice.has(index) || player.missed.has(index)) {
    answer(player, { question: snapshot.question }, q, player.choice.has(index));
  }
}

async function connectOne(i) {
  const nickname = `p${config.index}-${i}`;
  const player = {
    socket: null,
    nickname,
    deviceId: `bench-game-${config.index}-${i}-${process.pid}`,
    playerId: null,
    gameId: null,
    resumeToken: null,
    random: rng((config.seed * 1000003) ^ (config.index * 65537) ^ (i + 1)),
    answered: new Set(),
    settled: new Set(), // question indexes whose answer is acknowledged or finally refused
    missed: new Set(), // question indexes whose answer was due while the socket was away
    seated: false, // joined (or rejoined) on the current socket
    rejoining: false, // a rejoin loop runs
    retries: 0, // consecutive retries (backoff)
    choice: new Map(),
    score: null,
  };
  const start = now();
  players[i] = player;
  openSocket(player);
  try {
    await register(player);
  } catch (err) {
    counters.connectFailed++;
    counters.lastError = { connect: String(err && err.message) };
    return null;
  }
  if (config.heartbeatMs > 0) {
    // Spread over the interval; the server drops sockets silent for 60 s.
    later(Math.random() * config.heartbeatMs, function beat() {
      if (exiting) return;
      if (player.socket.connected) player.socket.emit("ws:heartbeat");
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
  player.resumeToken = ack.resumeToken;
  player.seated = true;
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

let exiting = false;

function exit(code) {
  exiting = true;
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
    case "mark-kill":
      killedAt = cmd.at;
      return out({ event: "marked" });
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
