// Player page: join by PIN + nickname, answer every question type, see results; a reload or
// a lost network returns to the same seat (game:rejoin with the stored resume token).
import { applyI18n, mountLangSwitch, onLangChange, t } from '/assets/i18n.js';
import { choiceImage, placeQuestionImage } from '/assets/media.js';
import {
  Connection, SHAPES, connectionStatus, countdown, el, normBoard, normSnapshot, readJSON,
  showScreen, uuid, writeJSON,
} from '/assets/net.js';

const SEAT_KEY = 'tuiz_seat'; // {gameId, playerId, resumeToken, lastSeq, name, pin}
const PENDING_KEY = 'tuiz_pending_answer'; // an answer sent but not yet acknowledged
// A join sent but not yet answered, {pin, nickname, joinKey}: its retry sends the same key,
// so a join applied whose reply was lost gets its seat back instead of CONFLICT.
const JOIN_KEY = 'tuiz_pending_join';

const state = {
  seat: readJSON(localStorage, SEAT_KEY),
  screen: 'connecting',
  phase: null,
  question: null,
  totalQuestions: 0,
  endsAt: null,
  paused: false,
  answer: null, // {questionId, answerId, choiceIds, text, acked}
  result: null, // game:player:result for the current question
  reveal: null, // game:question:ended for the current question
  explanation: null,
  leaderboard: [],
  podium: null,
  completed: true,
  score: 0,
  rank: null,
  selection: new Set(), // multi_select choices picked so far
  joining: false,
};

let stopTimer = () => {};

const $ = (id) => document.getElementById(id);

mountLangSwitch();
applyI18n();
onLangChange(() => render());

const conn = new Connection({ onReady, onStatus: connectionStatus(t) });

// -- seat and sequence ------------------------------------------------------------------

function saveSeat() { writeJSON(localStorage, SEAT_KEY, state.seat); }

function clearSeat() {
  state.seat = null;
  saveSeat();
  writeJSON(localStorage, PENDING_KEY, null);
}

function noteSeq(payload) {
  if (!state.seat || !payload || typeof payload.seq !== 'number') return;
  if (payload.seq > (state.seat.lastSeq || 0)) {
    state.seat.lastSeq = payload.seq;
    saveSeat();
  }
}

function mine(payload) {
  return !payload || !state.seat || !payload.gameId || payload.gameId === state.seat.gameId
    || payload.roomId === state.seat.gameId;
}

// -- connection -------------------------------------------------------------------------

async function onReady() {
  if (state.seat) {
    if (state.screen === 'join' || state.screen === 'connecting') showScreen('connecting');
    const res = await conn.request('game:rejoin', {
      gameId: state.seat.gameId,
      playerId: state.seat.playerId,
      resumeToken: state.seat.resumeToken,
      lastSeq: state.seat.lastSeq || 0,
    });
    if (res.ok) {
      applySnapshot(res.snapshot);
      for (const item of res.missed || []) replay(item);
      resendPending();
      return;
    }
    const kicked = res.error === 'FORBIDDEN' || res.error === 'KICKED';
    clearSeat();
    if (kicked) {
      go('kicked');
      return;
    }
  }
  const pending = readJSON(sessionStorage, JOIN_KEY);
  if (pending && !state.joining) {
    $('pin').value = pending.pin;
    $('nickname').value = pending.nickname;
    await sendJoin(pending.pin, pending.nickname); // the reply to it was lost: ask again
    return;
  }
  if (state.screen === 'connecting') showJoin();
}

function showJoin(messageKey) {
  const params = new URLSearchParams(location.search);
  const pin = $('pin');
  if (params.get('pin') && !pin.value) pin.value = params.get('pin').replace(/\D/g, '').slice(0, 6);
  go('join');
  showJoinError(messageKey);
  if (!pin.value) pin.focus();
  else $('nickname').focus();
}

function showJoinError(key, vars) {
  const box = $('join-error');
  if (!key) {
    box.hidden = true;
    box.textContent = '';
    return;
  }
  box.textContent = t(key, vars);
  box.hidden = false;
}

$('join-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  if (state.joining) return;
  const pin = $('pin').value.replace(/\s/g, '');
  const nickname = $('nickname').value.trim();
  if (!/^\d{6}$/.test(pin)) { showJoinError('err.pinFormat'); $('pin').focus(); return; }
  if (!nickname) { showJoinError('err.nickname'); $('nickname').focus(); return; }
  showJoinError(null);
  await sendJoin(pin, nickname);
});

async function sendJoin(pin, nickname) {
  // One key per join attempt, kept until the server answers it: a retry after a lost reply
  // (or a reconnect) sends the same key and gets the seat that attempt took.
  const kept = readJSON(sessionStorage, JOIN_KEY);
  const joinKey = kept && kept.pin === pin && kept.joinKey ? kept.joinKey : uuid();
  writeJSON(sessionStorage, JOIN_KEY, { pin, nickname, joinKey });
  state.joining = true;
  const button = $('join-button');
  button.disabled = true;
  button.textContent = t('play.joining');
  // A reply lost with the connection is not waited for: the reconnect (onReady) asks again.
  let dropped;
  const lost = new Promise((resolve) => {
    dropped = () => resolve({ ok: false, error: 'NETWORK', message: 'connection lost' });
    conn.on('disconnect', dropped);
  });
  const res = await Promise.race([conn.request('game:join', { pin, nickname, joinKey }), lost]);
  conn.socket.off('disconnect', dropped);
  state.joining = false;
  button.disabled = false;
  button.textContent = t('play.join');
  if (!res.ok) {
    // Answered (refused): the next attempt is a new join, with a new key.
    if (res.error !== 'NETWORK') writeJSON(sessionStorage, JOIN_KEY, null);
    if (state.screen !== 'join') showJoin();
    const key = `err.${res.error}`;
    if (res.error === 'NETWORK') showJoinError('err.network');
    else if (t(key) !== key) showJoinError(key);
    else showJoinError('err.generic', { message: res.message || res.error });
    return;
  }
  writeJSON(sessionStorage, JOIN_KEY, null);
  state.seat = {
    gameId: res.gameId, playerId: res.playerId, resumeToken: res.resumeToken,
    lastSeq: (res.snapshot && res.snapshot.lastSeq) || 0, name: nickname, pin,
  };
  saveSeat();
  applySnapshot(res.snapshot);
}

for (const id of ['again-final', 'again-kicked']) {
  $(id).addEventListener('click', () => {
    clearSeat();
    state.phase = null;
    $('nickname').value = '';
    showJoin();
  });
}

// -- snapshot and events ----------------------------------------------------------------

function applySnapshot(raw) {
  const s = normSnapshot(raw);
  if (!s) return;
  state.phase = s.phase;
  state.totalQuestions = s.totalQuestions || state.totalQuestions;
  const q = s.question || null;
  if (!q || !state.question || q.id !== state.question.id) {
    state.result = null;
    state.reveal = null;
    state.explanation = null;
    state.selection = new Set();
  }
  state.question = q;
  state.paused = Boolean(s.paused);
  state.endsAt = s.phaseEndsAt ?? (s.timeLeftMs != null ? conn.now() + s.timeLeftMs : null);
  if (s.leaderboard) state.leaderboard = s.leaderboard;
  const me = s.me || {};
  if (typeof me.score === 'number') state.score = me.score;
  if (me.rank != null) state.rank = me.rank;
  if (state.seat && me.name) { state.seat.name = me.name; saveSeat(); }
  const answer = me.answer ? { ...me.answer, questionId: q && q.id, acked: true } : null;
  if (answer && q) state.answer = answer;
  else if (!state.answer || !q || state.answer.questionId !== q.id) state.answer = null;
  // Back during a reveal: the snapshot says how this question went (the live event is past).
  if (q && (s.phase === 'answer_reveal' || s.phase === 'explanation') && !state.result) {
    const a = me.answer;
    if (!a || a.correct !== undefined) {
      state.result = {
        questionId: q.id, answered: Boolean(a), correct: a ? a.correct : false,
        points: a ? a.points || 0 : 0, score: state.score, rank: state.rank,
      };
    }
  }
  if (q && q.explanation && s.phase === 'explanation') state.explanation = q.explanation;
  if (state.seat && typeof s.lastSeq === 'number' && s.lastSeq > (state.seat.lastSeq || 0)) {
    state.seat.lastSeq = s.lastSeq;
    saveSeat();
  }
  if (s.phase === 'podium' || s.phase === 'ended' || s.status === 'finished') {
    state.completed = s.phase !== 'ended';
    state.podium = state.podium || s.leaderboard || [];
  }
  render();
}

const HANDLERS = {
  'game:started': () => {},
  'game:phase:change': (d) => {
    const changedQuestion = d.questionId && (!state.question || state.question.id !== d.questionId);
    state.phase = d.phase;
    state.endsAt = d.endsAt ?? null;
    // A new question's text follows at once in game:question:started; draw then.
    if (changedQuestion && (d.phase === 'question' || d.phase === 'answering')) return;
    render();
  },
  'game:question:started': (d) => {
    const q = d.question;
    if (!state.question || state.question.id !== q.id) {
      state.answer = null;
      state.result = null;
      state.reveal = null;
      state.explanation = null;
      state.selection = new Set();
      $('q-error').hidden = true;
    }
    state.question = q;
    state.phase = d.phase || 'question';
    state.endsAt = d.endsAt ?? null;
    if (d.totalQuestions) state.totalQuestions = d.totalQuestions;
    render();
  },
  'game:question:ended': (d) => {
    state.reveal = d;
    state.phase = 'answer_reveal';
    state.endsAt = null;
    render();
  },
  'game:player:result': (d) => {
    state.result = d;
    if (typeof d.score === 'number') state.score = d.score;
    if (d.rank != null) state.rank = d.rank;
    render();
  },
  'game:explanation:show': (d) => {
    state.explanation = d.explanation || null;
    state.phase = 'explanation';
    render();
  },
  'game:explanation:hide': () => {},
  'game:leaderboard:update': (d) => {
    state.leaderboard = normBoard(d.leaderboard) || [];
    const me = state.leaderboard.find((e) => e.playerId === (state.seat && state.seat.playerId));
    if (me) { state.score = me.score; state.rank = me.rank; }
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
    state.podium = normBoard(d.podium) || [];
    state.phase = state.completed ? 'podium' : 'ended';
    const me = state.podium.find((e) => e.playerId === (state.seat && state.seat.playerId));
    if (me) { state.score = me.score; state.rank = me.rank; }
    writeJSON(localStorage, PENDING_KEY, null);
    render();
  },
  'game:player-kicked': (d) => {
    if (state.seat && (d.player_id || d.playerId) === state.seat.playerId) {
      clearSeat();
      stopTimer();
      go('kicked');
    }
  },
};

for (const [event, handler] of Object.entries(HANDLERS)) {
  conn.on(event, (payload) => {
    if (!state.seat || !mine(payload)) return;
    noteSeq(payload);
    handler(payload || {});
  });
}

/** One event of a rejoin's catch-up `{seq, event, data}`: handled as if it came live. */
function replay(item) {
  const handler = HANDLERS[item.event];
  if (handler && item.event !== 'game:player-kicked') handler(item.data);
  noteSeq(item);
}

async function refreshState() {
  if (!state.seat) return;
  const res = await conn.request('game:state', { gameId: state.seat.gameId });
  if (res.ok) applySnapshot(res.snapshot);
}

// -- answering --------------------------------------------------------------------------

async function submit(choiceIds, text) {
  const q = state.question;
  if (!q || !state.seat || state.answer) return;
  state.answer = { questionId: q.id, answerId: uuid(), choiceIds, text, acked: false };
  writeJSON(localStorage, PENDING_KEY, { ...state.answer, gameId: state.seat.gameId });
  render();
  await send(state.answer);
}

async function send(answer) {
  const payload = {
    gameId: state.seat.gameId,
    roomId: state.seat.gameId,
    playerId: state.seat.playerId,
    questionId: answer.questionId,
    answerId: answer.answerId,
  };
  if (answer.text != null) payload.text = answer.text;
  else {
    payload.choiceIds = answer.choiceIds;
    if (answer.choiceIds.length === 1) payload.answer = answer.choiceIds[0];
  }
  const res = await conn.request('game:answer:submit', payload);
  if (state.answer !== answer) return;
  if (res.ok || res.error === 'CONFLICT') {
    answer.acked = true;
    writeJSON(localStorage, PENDING_KEY, null);
  } else if (res.error === 'NETWORK') {
    return; // kept as pending: sent again after the reconnect
  } else {
    writeJSON(localStorage, PENDING_KEY, null);
    state.answer = null;
    const key = `err.${res.error}`;
    const box = $('q-error');
    box.textContent = t(key) !== key ? t(key) : t('err.generic', { message: res.message || res.error });
    box.hidden = false;
  }
  render();
}

function resendPending() {
  const pending = readJSON(localStorage, PENDING_KEY);
  if (!pending || !state.seat || pending.gameId !== state.seat.gameId) return;
  const q = state.question;
  if (!q || q.id !== pending.questionId || state.phase !== 'answering') {
    writeJSON(localStorage, PENDING_KEY, null);
    return;
  }
  if (state.answer && state.answer.acked) {
    writeJSON(localStorage, PENDING_KEY, null);
    return;
  }
  state.answer = { ...pending, acked: false };
  render();
  send(state.answer);
}

// -- rendering --------------------------------------------------------------------------

function go(screen) {
  const changed = state.screen !== screen;
  state.screen = screen;
  showScreen(screen, { focus: changed });
}

function choiceLabel(id) {
  const q = state.question;
  const c = q && (q.choices || []).find((x) => x.id === id);
  return c ? c.text : '';
}

function render() {
  stopTimer();
  $('paused-banner').hidden = !state.paused;
  if (!state.seat) return;
  const phase = state.phase;
  if (phase === 'waiting' || !phase) return renderWaiting();
  if (phase === 'question' || phase === 'answering') return renderQuestion();
  if (phase === 'answer_reveal' || phase === 'explanation') return renderResult();
  if (phase === 'leaderboard') return renderLeaderboard();
  if (phase === 'podium' || phase === 'ended') return renderFinal();
  return renderWaiting();
}

function renderWaiting() {
  $('waiting-name').textContent = t('play.youAre', { name: state.seat.name || '' });
  go('waiting');
}

function renderQuestion() {
  const q = state.question;
  if (!q) return renderWaiting();
  $('q-number').textContent = t('play.question', { n: (q.index ?? 0) + 1, total: state.totalQuestions || '?' });
  $('q-text').textContent = q.text;
  placeQuestionImage($('q-text'), q.image_url, t('media.questionImage'));
  $('q-name').textContent = state.seat.name || '';
  $('q-score').textContent = t('play.score', { n: state.score });
  $('q-score').dataset.value = String(state.score);
  const timer = $('q-timer');
  if (state.endsAt && !state.paused) {
    stopTimer = countdown(conn, state.endsAt, (left) => {
      timer.textContent = String(left);
      timer.setAttribute('aria-label', t('seconds', { n: left }));
    });
  } else {
    timer.textContent = state.paused ? '❚❚' : '';
  }
  const answering = state.phase === 'answering';
  $('q-ready').hidden = answering;
  const controls = $('q-controls');
  const answered = $('q-answered');
  if (!answering) {
    controls.replaceChildren();
    answered.hidden = true;
  } else if (state.answer) {
    controls.replaceChildren();
    answered.hidden = !state.answer.acked;
    const mineText = state.answer.text != null
      ? state.answer.text
      : state.answer.choiceIds.map(choiceLabel).filter(Boolean).join(', ');
    $('q-my-answer').textContent = mineText;
    if (!state.answer.acked) controls.append(el('p', { class: 'status-big', text: '…' }));
  } else {
    answered.hidden = true;
    controls.replaceChildren(answerControls(q));
  }
  go('question');
}

function answerControls(q) {
  const disabled = state.paused;
  if (q.type === 'type_answer') {
    const input = el('input', {
      id: 'type-answer', type: 'text', autocomplete: 'off', maxlength: '200',
      'aria-label': t('play.typeHere'), placeholder: t('play.typeHere'),
    });
    const form = el('form', { class: 'stack', onsubmit: (e) => {
      e.preventDefault();
      const text = input.value.trim();
      if (text) submit([], text);
    } }, input, el('button', { type: 'submit', disabled, text: t('play.submit') }));
    queueMicrotask(() => input.focus());
    return form;
  }
  const multi = q.type === 'multi_select';
  const group = el('div', {
    class: 'choices', role: 'group', 'aria-label': t(`type.${q.type}`),
  });
  (q.choices || []).forEach((c, i) => {
    const shape = SHAPES[i % SHAPES.length];
    const button = el('button', {
      type: 'button', class: `choice ${shape.cls}`, disabled, dataset: { choiceId: c.id },
      'aria-pressed': multi ? String(state.selection.has(c.id)) : null,
    }, el('span', { class: 'shape', 'aria-hidden': 'true', text: shape.glyph }),
    el('span', { text: c.text }), choiceImage(c.image_url));
    button.addEventListener('click', () => {
      if (!multi) { submit([c.id], null); return; }
      if (state.selection.has(c.id)) state.selection.delete(c.id);
      else state.selection.add(c.id);
      button.setAttribute('aria-pressed', String(state.selection.has(c.id)));
      submitButton.disabled = state.selection.size === 0;
    });
    group.append(button);
  });
  if (!multi) return group;
  const submitButton = el('button', {
    type: 'button', id: 'multi-submit', disabled: state.selection.size === 0 || disabled,
    text: t('play.submit'),
    onclick: () => submit((q.choices || []).map((c) => c.id).filter((id) => state.selection.has(id)), null),
  });
  return el('div', { class: 'stack' }, el('p', { class: 'muted', text: t('play.chooseMany') }), group, submitButton);
}

function renderResult() {
  const r = state.result && state.question && state.result.questionId === state.question.id
    ? state.result : null;
  const box = $('result-box');
  const poll = state.question && state.question.type === 'poll';
  let headline;
  let cls;
  if (!r) {
    headline = state.answer ? t('play.received') : t('play.tooLate');
    cls = 'neutral';
  } else if (poll || r.correct == null) {
    headline = t('play.pollDone');
    cls = 'neutral';
  } else if (r.answered === false || (!state.answer && !r.correct && !r.points)) {
    headline = t('play.noAnswer');
    cls = 'incorrect';
  } else {
    headline = r.correct ? t('play.correct') : t('play.incorrect');
    cls = r.correct ? 'correct' : 'incorrect';
  }
  box.className = `result ${cls}`;
  $('result-headline').textContent = headline;
  $('result-title').textContent = headline;
  const points = $('result-points');
  points.textContent = r && !poll ? t('play.pointsEarned', { n: r.points || 0 }) : '';
  points.dataset.value = r ? String(r.points || 0) : '';
  setScoreRank($('result-score'), $('result-rank'));
  const q = state.question || {};
  const correctIds = (state.reveal && state.reveal.correctChoiceIds)
    || (q.choices || []).filter((c) => c.is_correct).map((c) => c.id);
  const accepted = (state.reveal && state.reveal.acceptedAnswers) || q.accepted_answers || [];
  const correctText = correctIds.map(choiceLabel).filter(Boolean).concat(accepted).join(', ');
  $('result-correct').textContent = correctText && !poll ? t('play.correctAnswer', { list: correctText }) : '';
  const ex = state.explanation;
  const exBox = $('result-explanation');
  if (state.phase === 'explanation' && ex && (ex.title || ex.text)) {
    $('result-expl-title').textContent = ex.title || t('host.explanation');
    $('result-expl-text').textContent = ex.text || '';
    exBox.hidden = false;
  } else {
    exBox.hidden = true;
  }
  go('result');
}

function setScoreRank(scoreEl, rankEl) {
  scoreEl.textContent = t('play.score', { n: state.score });
  scoreEl.dataset.value = String(state.score);
  rankEl.textContent = state.rank != null ? t('play.rank', { rank: state.rank }) : '';
  rankEl.dataset.value = state.rank != null ? String(state.rank) : '';
}

function leaderboardItems(list) {
  const me = state.seat && state.seat.playerId;
  return (list || []).map((e) => el('li', { class: e.playerId === me ? 'me' : null },
    el('span', { class: 'rank', text: String(e.rank) }),
    el('span', { class: 'name', text: e.name }),
    el('span', { class: 'score', text: String(e.score) })));
}

function renderLeaderboard() {
  $('lb-me').textContent = state.rank != null
    ? `${t('play.rank', { rank: state.rank })} · ${t('play.score', { n: state.score })}`
    : t('play.score', { n: state.score });
  $('lb-list').replaceChildren(...leaderboardItems(state.leaderboard));
  go('leaderboard');
}

function renderFinal() {
  const me = $('final-me');
  if (state.completed) {
    $('final-title').textContent = t('play.final');
    me.textContent = state.rank != null
      ? t('play.finalRank', { rank: state.rank, score: state.score })
      : t('play.score', { n: state.score });
  } else {
    $('final-title').textContent = t('play.endedEarly');
    me.textContent = t('play.score', { n: state.score });
  }
  me.dataset.score = String(state.score);
  me.dataset.rank = state.rank != null ? String(state.rank) : '';
  const list = state.leaderboard.length >= (state.podium || []).length ? state.leaderboard : state.podium;
  $('final-list').replaceChildren(...leaderboardItems(list));
  go('final');
}

if (!state.seat) showJoin();
