// Host page: choose or upload a quiz, create a game, run the lobby and the game, see the report.
import qrcode from '/vendor/qrcode.mjs';
import { applyI18n, mountLangSwitch, onLangChange, t } from '/assets/i18n.js';
import { choiceImage, placeQuestionImage } from '/assets/media.js';
import {
  Connection, SHAPES, api, connectionStatus, countdown, el, normBoard, normSnapshot, readJSON,
  sessionAuth, showScreen, writeJSON,
} from '/assets/net.js';
import { downloadReportCsv, reportTables } from '/assets/report.js';

const HOST_KEY = 'tuiz_host_game'; // {gameId, hostToken, pin}

const state = {
  game: readJSON(localStorage, HOST_KEY),
  screen: 'connecting',
  quizzes: [],
  players: new Map(), // playerId -> {name, status: 'connected' | 'disconnected' | 'reconnected'}
  playersDirty: true, // the in-game list is redrawn only when a player changes
  playersCount: 0,
  locked: false,
  phase: null,
  question: null,
  totalQuestions: 0,
  endsAt: null,
  paused: false,
  answered: 0,
  total: 0,
  counts: {},
  reveal: null,
  explanation: null,
  leaderboard: [],
  podium: null,
  completed: true,
  report: null,
  reportError: null,
};

let stopTimer = () => {};
const $ = (id) => document.getElementById(id);

mountLangSwitch();
applyI18n();
onLangChange(() => { state.playersDirty = true; renderQuizList(); render(); });

const conn = new Connection({ onReady, onStatus: connectionStatus(t) });

// -- setup: quiz list, upload, create ---------------------------------------------------

async function loadQuizzes(selectId) {
  $('quiz-status').textContent = t('host.loadingQuizzes');
  try {
    const data = await api('GET', '/quiz-sets?limit=100', undefined, sessionAuth());
    state.quizzes = Array.isArray(data) ? data : (data.items || data.quiz_sets || []);
  } catch (err) {
    state.quizzes = [];
    $('quiz-status').textContent = t('err.generic', { message: err.message });
    return;
  }
  renderQuizList(selectId);
}

function renderQuizList(selectId) {
  const select = $('quiz-select');
  const current = selectId || select.value;
  select.replaceChildren(...state.quizzes.map((q) => el('option', { value: q.id },
    `${q.title} — ${t('host.questions', { n: q.total_questions ?? (q.questions || []).length })}`)));
  if (current && state.quizzes.some((q) => q.id === current)) select.value = current;
  $('quiz-status').textContent = state.quizzes.length ? '' : t('host.noQuizzes');
  $('create-button').disabled = state.quizzes.length === 0;
}

$('upload-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const status = $('upload-status');
  const file = $('quiz-file').files[0];
  if (!file) return;
  let body;
  try {
    body = JSON.parse(await file.text());
  } catch {
    status.className = 'message error';
    status.textContent = t('host.badJson');
    return;
  }
  const useLocally = () => {
    // No account: keep the quiz in this page; the game is created from it directly.
    const local = {
      id: `local:${Date.now()}`, title: body.title || '?', inline: body,
      total_questions: (body.questions || []).length, play_settings: body.play_settings,
    };
    state.quizzes = [local, ...state.quizzes];
    renderQuizList(local.id);
    status.className = 'message info';
    status.textContent = t('host.uploadedLocal', { title: local.title });
  };
  if (!sessionAuth().Authorization) {
    useLocally();
    return;
  }
  try {
    const created = await api('POST', '/quiz-sets', body, sessionAuth());
    status.className = 'message info';
    status.textContent = t('host.uploaded', { title: created.title });
    await loadQuizzes(created.id);
  } catch (err) {
    if (err.status === 401) {  // an expired session: still playable from this page
      useLocally();
      return;
    }
    status.className = 'message error';
    status.textContent = t('host.uploadFailed', { message: err.message });
  }
});

$('create-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const quizId = $('quiz-select').value;
  if (!quizId) return;
  const button = $('create-button');
  const error = $('create-error');
  error.hidden = true;
  button.disabled = true;
  button.textContent = t('host.creating');
  try {
    const quiz = state.quizzes.find((q) => q.id === quizId) || {};
    const settings = { ...(quiz.play_settings || {}), auto_advance: $('auto-advance').checked };
    const source = quiz.inline ? { quiz: quiz.inline } : { quiz_set_id: quizId };
    const game = await api('POST', '/games', {
      ...source, device_id: conn.deviceId, player_name: 'Host', game_settings: settings,
    }, sessionAuth());
    const g = game.game || game;
    state.game = { gameId: g.id, hostToken: game.host_token || g.host_token, pin: g.game_code };
    writeJSON(localStorage, HOST_KEY, state.game);
    await hostJoin();
  } catch (err) {
    error.textContent = t('err.generic', { message: err.message });
    error.hidden = false;
  } finally {
    button.disabled = false;
    button.textContent = t('host.create');
  }
});

// -- connection and snapshot --------------------------------------------------------------

async function onReady() {
  if (state.game) {
    await hostJoin();
  } else if (state.screen === 'connecting') {
    go('setup');
    loadQuizzes();
  }
}

async function hostJoin() {
  const res = await conn.request('game:host:join', {
    gameId: state.game.gameId, hostToken: state.game.hostToken,
  });
  if (!res.ok) {
    writeJSON(localStorage, HOST_KEY, null);
    state.game = null;
    go('setup');
    loadQuizzes();
    const error = $('create-error');
    error.textContent = t('err.generic', { message: res.message || res.error });
    error.hidden = false;
    return;
  }
  applySnapshot(res.snapshot);
  loadPlayers();
}

// Players whose connection a live event reported while the list was being fetched: the
// event is newer than the fetched status.
let presenceSince = null;

async function loadPlayers() {
  presenceSince = new Map(); // playerId -> status
  try {
    const data = await api('GET', `/games/${state.game.gameId}/players?limit=500`);
    const list = Array.isArray(data) ? data : (data.players || data.items || []);
    for (const p of list) {
      if (p.is_host || p.kicked) continue;
      const id = p.id || p.playerId;
      const known = state.players.get(id);
      const status = presenceSince.get(id)
        || (known && known.status === 'reconnected' ? 'reconnected'
          : (p.connected === false ? 'disconnected' : 'connected'));
      state.players.set(id, { name: p.player_name || p.name, status });
    }
    state.playersDirty = true;
    render();
  } catch {
    // The live events keep the list current; the initial fetch only helps after a reload.
  } finally {
    presenceSince = null;
  }
}

/** A seat's connection changed (game:player-left / -reconnected, to the host only). */
function setPresence(playerId, status) {
  if (presenceSince) presenceSince.set(playerId, status);
  const player = state.players.get(playerId);
  if (!player) return;
  player.status = status;
  state.playersDirty = true;
  render();
}

function applySnapshot(raw) {
  const s = normSnapshot(raw);
  if (!s) return;
  state.game.pin = s.pin || state.game.pin;
  writeJSON(localStorage, HOST_KEY, state.game);
  state.phase = s.phase;
  state.locked = Boolean(s.locked);
  state.paused = Boolean(s.paused);
  state.playersCount = s.playersCount ?? state.playersCount;
  state.totalQuestions = s.totalQuestions || state.totalQuestions;
  if (!s.question || !state.question || s.question.id !== state.question.id) {
    state.reveal = null;
    state.explanation = null;
    state.counts = {};
    state.answered = 0;
  }
  state.question = s.question || null;
  if (s.question && s.question.explanation && s.phase === 'explanation') {
    state.explanation = s.question.explanation;
  }
  state.endsAt = s.phaseEndsAt ?? (s.timeLeftMs != null ? conn.now() + s.timeLeftMs : null);
  if (s.leaderboard) state.leaderboard = s.leaderboard;
  for (const p of s.players || []) {
    state.players.set(p.playerId || p.player_id || p.id, { name: p.name || p.player_name, status: 'connected' });
    state.playersDirty = true;
  }
  if (s.answerCounts) state.counts = s.answerCounts;
  if (s.answeredCount != null) state.answered = s.answeredCount;
  if (s.phase === 'podium' || s.phase === 'ended') {
    state.completed = s.phase === 'podium';
    state.podium = s.leaderboard || [];
  }
  render();
}

// -- events -------------------------------------------------------------------------------

const HANDLERS = {
  'game:player-joined': (d) => {
    state.players.set(d.playerId, { name: d.playerName || d.name, status: 'connected' });
    state.playersDirty = true;
    if (d.playersCount != null) state.playersCount = d.playersCount;
    render();
  },
  'game:player-left': (d) => setPresence(d.playerId, 'disconnected'),
  'game:player-reconnected': (d) => setPresence(d.playerId, 'reconnected'),
  'game:player-kicked': (d) => {
    state.players.delete(d.player_id || d.playerId);
    state.playersDirty = true;
    state.playersCount = Math.max(0, state.playersCount - 1);
    render();
  },
  'game:room-locked': (d) => { state.locked = Boolean(d.locked); render(); },
  'game:started': () => {},
  'game:phase:change': (d) => {
    state.phase = d.phase;
    state.endsAt = d.endsAt ?? null;
    // A new question's text follows at once in game:question:started; draw then.
    if (d.questionId && (!state.question || state.question.id !== d.questionId)
        && (d.phase === 'question' || d.phase === 'answering')) return;
    render();
  },
  'game:question:started': (d) => {
    if (!state.question || state.question.id !== d.question.id) {
      state.reveal = null;
      state.explanation = null;
      state.counts = {};
      state.answered = 0;
    }
    state.question = d.question;
    state.phase = d.phase || 'question';
    state.endsAt = d.endsAt ?? null;
    if (d.totalQuestions) state.totalQuestions = d.totalQuestions;
    render();
  },
  'game:answer:stats:update': (d) => {
    if (state.question && d.questionId && d.questionId !== state.question.id) return;
    state.counts = d.counts || state.counts;
    if (d.answered != null) state.answered = d.answered;
    if (d.total != null) state.total = d.total;
    render();
  },
  'game:question:ended': (d) => {
    state.reveal = d;
    if (d.counts) state.counts = d.counts;
    state.phase = 'answer_reveal';
    render();
  },
  'game:explanation:show': (d) => {
    state.explanation = d.explanation || null;
    state.phase = 'explanation';
    render();
  },
  'game:leaderboard:update': (d) => {
    state.leaderboard = normBoard(d.leaderboard) || [];
    if (state.phase === 'answer_reveal' || state.phase === 'explanation') state.phase = 'leaderboard';
    render();
  },
  'game:pause': () => { state.paused = true; render(); },
  'game:resume': (d) => {
    state.paused = false;
    if (d.endsAt != null) state.endsAt = d.endsAt;
    render();
  },
  'game:end': (d) => {
    state.completed = d.completed !== false;
    state.podium = normBoard(d.podium) || state.leaderboard;
    state.phase = state.completed ? 'podium' : 'ended';
    render();
    loadReport();
  },
};

for (const [event, handler] of Object.entries(HANDLERS)) {
  conn.on(event, (payload) => {
    if (!state.game) return;
    const d = payload || {};
    if ((d.gameId && d.gameId !== state.game.gameId) || (d.roomId && d.roomId !== state.game.gameId)) return;
    handler(d);
  });
}

async function refreshState() {
  const res = await conn.request('game:state', { gameId: state.game.gameId });
  if (res.ok) applySnapshot(res.snapshot);
}

// -- commands -----------------------------------------------------------------------------

async function command(event, extra = {}, errorBox = 'control-error') {
  const box = $(errorBox);
  box.hidden = true;
  const res = await conn.request(event, { gameId: state.game.gameId, ...extra });
  if (!res.ok) {
    const key = `err.${res.error}`;
    box.textContent = t(key) !== key && res.error !== 'VALIDATION_ERROR'
      ? t(key) : t('err.generic', { message: res.message || res.error });
    box.hidden = false;
  }
  return res;
}

$('lock-button').addEventListener('click', () => command('game:lock', { locked: !state.locked }, 'lobby-error'));
$('start-button').addEventListener('click', () => command('game:flow:start', {}, 'lobby-error'));
$('pause-button').addEventListener('click', () => command('game:flow:pause'));
$('resume-button').addEventListener('click', () => command('game:flow:resume'));
$('skip-button').addEventListener('click', () => command('game:flow:skip'));
$('next-button').addEventListener('click', () => command('game:flow:next'));
// Ending is for everyone and cannot be undone: a second press confirms (no blocking dialog).
let endArmed = null;
$('end-button').addEventListener('click', () => {
  const button = $('end-button');
  if (endArmed) {
    clearTimeout(endArmed);
    endArmed = null;
    button.textContent = t('host.end');
    command('game:flow:end');
    return;
  }
  button.textContent = t('host.confirmEnd');
  endArmed = setTimeout(() => {
    endArmed = null;
    button.textContent = t('host.end');
  }, 5000);
});
$('new-game').addEventListener('click', () => {
  writeJSON(localStorage, HOST_KEY, null);
  state.game = null;
  state.players.clear();
  state.report = null;
  state.podium = null;
  go('setup');
  loadQuizzes();
});
$('csv-button').addEventListener('click', downloadCsv);

function reportHeaders() {
  return { 'x-host-token': state.game.hostToken, 'x-device-id': conn.deviceId };
}

async function loadReport() {
  if (!state.game) return;
  try {
    state.report = await api('GET', `/games/${state.game.gameId}/report`, undefined, reportHeaders());
    state.reportError = null;
  } catch (err) {
    state.reportError = err.message;
  }
  renderReport();
}

async function downloadCsv() {
  try {
    await downloadReportCsv(state.game.gameId, reportHeaders(), `tuiz-${state.game.pin || state.game.gameId}.csv`);
  } catch (err) {
    state.reportError = err.message;
    renderReport();
  }
}

// -- rendering ----------------------------------------------------------------------------

function go(screen) {
  const changed = state.screen !== screen;
  state.screen = screen;
  showScreen(screen, { focus: changed });
  const playing = ['question', 'reveal', 'leaderboard'].includes(screen);
  $('host-controls').hidden = !playing;
  $('game-players').hidden = !playing;
  if (playing) renderGamePlayers();
}

function render() {
  stopTimer();
  if (!state.game) return;
  const phase = state.phase;
  if (phase === 'waiting' || !phase) renderLobby();
  else if (phase === 'question' || phase === 'answering') renderQuestion();
  else if (phase === 'answer_reveal' || phase === 'explanation') renderReveal();
  else if (phase === 'leaderboard') renderLeaderboard();
  else renderPodium();
  $('pause-button').hidden = state.paused;
  $('resume-button').hidden = !state.paused;
  $('skip-button').hidden = phase !== 'answering' && phase !== 'question';
}

function joinUrl() {
  return `${location.origin}/play?pin=${encodeURIComponent(state.game.pin || '')}`;
}

let qrFor = null;
function renderLobby() {
  $('lobby-pin').textContent = state.game.pin || '';
  const url = joinUrl();
  const link = $('join-url');
  link.href = url;
  link.textContent = url;
  if (qrFor !== url) {
    const qr = qrcode(0, 'M');
    qr.addData(url);
    qr.make();
    $('qr').src = qr.createDataURL(8, 2);
    qrFor = url;
  }
  const count = Math.max(state.players.size, 0);
  $('player-count').textContent = t('host.playersCount', { n: count });
  $('no-players').hidden = count > 0;
  $('player-list').replaceChildren(...[...state.players].map(([id, { name, status }]) => el('li', {
    class: status, dataset: { playerId: id, status },
  },
    el('span', { class: 'name', text: name }),
    el('span', { class: 'row' },
      presenceBadge(status),
      el('button', {
        type: 'button', class: 'small secondary', text: t('host.kick'),
        'aria-label': t('host.kickName', { name }),
        onclick: () => command('game:kick', { playerId: id, ban: false }, 'lobby-error'),
      }),
      el('button', {
        type: 'button', class: 'small danger', text: t('host.ban'),
        'aria-label': t('host.banName', { name }),
        onclick: () => command('game:kick', { playerId: id, ban: true }, 'lobby-error'),
      })))));
  const lock = $('lock-button');
  lock.textContent = state.locked ? t('host.unlock') : t('host.lock');
  lock.setAttribute('aria-pressed', String(state.locked));
  $('lock-status').textContent = state.locked ? t('host.locked') : t('host.unlocked');
  $('start-button').disabled = count === 0;
  $('start-button').title = count === 0 ? t('host.needPlayers') : '';
  go('lobby');
}

function presenceBadge(status) {
  if (status === 'connected') return null;
  return el('span', { class: `badge ${status}`, text: t(`host.presence.${status}`) });
}

/** The players during the game, collapsed under a summary that counts the disconnected. */
function renderGamePlayers() {
  if (!state.playersDirty) return;
  state.playersDirty = false;
  const list = [...state.players];
  const away = list.filter(([, p]) => p.status === 'disconnected').length;
  $('game-players-summary').textContent = away
    ? t('host.playersAway', { n: list.length, away })
    : t('host.playersAllHere', { n: list.length });
  $('game-player-list').replaceChildren(...list.map(([id, { name, status }]) => el('li', {
    class: status, dataset: { playerId: id, status },
  }, el('span', { class: 'name', text: name }), presenceBadge(status))));
}

function questionTitle() {
  const q = state.question;
  return t('host.question', { n: (q.index ?? 0) + 1, total: state.totalQuestions || '?' });
}

function renderQuestion() {
  const q = state.question;
  if (!q) return;
  $('hq-number').textContent = `${questionTitle()} · ${t(`type.${q.type}`)}`;
  $('hq-text').textContent = q.text;
  placeQuestionImage($('hq-text'), q.image_url, t('media.questionImage'));
  $('hq-paused').hidden = !state.paused;
  const timer = $('hq-timer');
  if (state.endsAt && !state.paused) {
    stopTimer = countdown(conn, state.endsAt, (left) => {
      timer.textContent = String(left);
      timer.setAttribute('aria-label', t('seconds', { n: left }));
    });
  } else {
    timer.textContent = state.paused ? '❚❚' : '';
  }
  const answering = state.phase === 'answering';
  $('hq-ready').hidden = answering;
  $('hq-choices').replaceChildren(...(q.choices || []).map((c, i) => {
    const shape = SHAPES[i % SHAPES.length];
    return el('li', { class: `choice button ${shape.cls}` },
      el('span', { class: 'shape', 'aria-hidden': 'true', text: shape.glyph }), el('span', { text: c.text }),
      choiceImage(c.image_url));
  }));
  const total = state.total || state.playersCount || state.players.size;
  const answered = $('hq-answered');
  answered.textContent = answering ? t('host.answered', { n: state.answered, total }) : '';
  answered.dataset.answered = String(state.answered);
  go('question');
}

function renderReveal() {
  const q = state.question;
  if (!q) return;
  $('hr-title').textContent = questionTitle();
  $('hr-text').textContent = q.text;
  placeQuestionImage($('hr-text'), q.image_url, t('media.questionImage'));
  const correct = new Set((state.reveal && state.reveal.correctChoiceIds)
    || (q.choices || []).filter((c) => c.is_correct).map((c) => c.id));
  const counts = state.counts || {};
  const rows = [];
  if (q.type === 'type_answer') {
    for (const [answer, n] of Object.entries(counts)) rows.push({ label: answer, n, cls: 'c1', ok: false });
  } else {
    (q.choices || []).forEach((c, i) => {
      rows.push({ label: c.text, n: counts[c.id] || 0, cls: SHAPES[i % SHAPES.length].cls,
        glyph: SHAPES[i % SHAPES.length].glyph, ok: correct.has(c.id) });
    });
  }
  const max = Math.max(1, ...rows.map((r) => r.n));
  $('hr-chart').replaceChildren(...rows.map((r) => el('div', {
    class: `bar-row${r.ok ? ' correct' : ''}`, role: 'img',
    'aria-label': `${r.label}: ${t('host.votes', { n: r.n })}${r.ok ? ` (${t('host.correctMark')})` : ''}`,
    dataset: { correct: String(r.ok), count: String(r.n) },
  },
  el('span', { class: 'bar-label', 'aria-hidden': 'true' },
    r.glyph ? el('span', { class: 'shape', text: r.glyph }) : null, r.label),
  el('span', { class: 'bar-track', 'aria-hidden': 'true' },
    el('span', { class: `bar ${r.cls}`, style: `display:block;width:${(100 * r.n) / max}%` })),
  el('span', { class: 'bar-count', 'aria-hidden': 'true', text: String(r.n) }))));
  const accepted = (state.reveal && state.reveal.acceptedAnswers) || q.accepted_answers || [];
  $('hr-accepted').textContent = accepted.length ? t('host.accepted', { list: accepted.join(', ') }) : '';
  const ex = state.explanation;
  const box = $('hr-explanation');
  if (state.phase === 'explanation' && ex && (ex.title || ex.text)) {
    $('hr-expl-title').textContent = ex.title || t('host.explanation');
    $('hr-expl-text').textContent = ex.text || '';
    box.hidden = false;
  } else {
    box.hidden = true;
  }
  go('reveal');
}

function leaderboardItems(list) {
  return (list || []).map((e) => el('li', { dataset: { playerId: e.playerId, score: String(e.score) } },
    el('span', { class: 'rank', text: String(e.rank) }),
    el('span', { class: 'name', text: e.name }),
    el('span', { class: 'score', text: String(e.score) })));
}

function renderLeaderboard() {
  $('hl-list').replaceChildren(...leaderboardItems(state.leaderboard));
  go('leaderboard');
}

function renderPodium() {
  const list = state.podium || state.leaderboard || [];
  $('hp-title').textContent = state.completed ? t('host.podium') : t('host.endedEarly');
  const top = list.filter((e) => e.rank <= 3).slice(0, 3);
  const order = [top.find((e, i) => i === 1), top[0], top.find((e, i) => i === 2)].filter(Boolean);
  $('hp-podium').replaceChildren(...order.map((e) => el('div', { class: `step p${Math.min(e.rank, 3)}` },
    el('div', { class: 'who', text: e.name }),
    el('div', { class: 'muted', text: t('host.points', { n: e.score }) }),
    el('div', { class: 'block', text: String(e.rank) }))));
  const full = state.leaderboard && state.leaderboard.length > list.length ? state.leaderboard : list;
  $('hp-list').replaceChildren(...leaderboardItems(full));
  go('podium');
  if (!state.report && !state.reportError) loadReport();
  renderReport();
}

function renderReport() {
  const box = $('report');
  if (state.reportError) {
    box.replaceChildren(el('p', { class: 'message error', text: t('host.reportFailed', { message: state.reportError }) }));
    return;
  }
  box.replaceChildren(...(state.report ? reportTables(state.report) : []));
}

if (!state.game) {
  // Wait for the socket only when a game is resumed; the quiz list needs no socket.
  go('setup');
  loadQuizzes();
}
