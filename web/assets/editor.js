// Quiz editor: make, edit, duplicate and delete quizzes; import/export spreadsheets; play.
//
// The quiz being edited is the version-1 document of `/quiz-sets` (README, "Quiz format").
// Signed-in users save it to their account (POST/PUT /quiz-sets) and upload images into it
// (/upload/question-image|answer-image/{id}: images belong to a stored quiz). Guests keep the
// document in this browser (localStorage), download it, or host a game from it directly
// (POST /games {quiz}); image uploads need an account, so guests see a sign-in link instead.
// A 422's `details.errors[].loc` puts each message next to the field it names.
import { addStrings, applyI18n, mountLangSwitch, onLangChange, t } from '/assets/i18n.js';
import { EDITOR_STRINGS } from '/assets/i18n-editor.js';
import { api, deviceId, el, readJSON, showScreen, writeJSON } from '/assets/net.js';
import {
  authed, clearFieldErrors, currentUser, placeFieldError, showFieldErrors, upload,
} from '/assets/account.js';

addStrings(EDITOR_STRINGS);
mountLangSwitch();
applyI18n();

const DRAFT_KEY = 'tuiz_editor_draft'; // {quizId, doc}: survives a reload
const HOST_KEY = 'tuiz_host_game'; // what /host resumes (host.js)
const TYPES = ['multiple_choice', 'multi_select', 'true_false', 'type_answer', 'poll'];
const MAX_QUESTIONS = 100;
const MAX_ANSWERS = 6;
const IMAGE_TYPES = 'image/png,image/jpeg,image/webp,image/gif';

const $ = (id) => document.getElementById(id);
const librarySection = document.querySelector('section[data-screen="library"]');
const state = { user: currentUser(), quizId: null, doc: null, quizzes: [] };

// -- the document --------------------------------------------------------------------------

function newAnswer(text = '', correct = false) {
  return { answer_text: text, is_correct: correct, image_url: null };
}

function newQuestion() {
  return {
    question_text: '', question_type: 'multiple_choice', image_url: null,
    answering_time: 20, points: 1000, explanation_title: null, explanation_text: null,
    accepted_answers: [], answers: [newAnswer('', true), newAnswer(), newAnswer(), newAnswer()],
  };
}

function newDoc() {
  return { version: 1, title: '', description: '', questions: [newQuestion()] };
}

/** Change a question's type, keeping what still fits. */
function retype(q, type) {
  const was = q.question_type;
  q.question_type = type;
  if (type === 'type_answer') {
    if (!q.accepted_answers.length) {
      const correct = q.answers.filter((a) => a.is_correct && a.answer_text).map((a) => a.answer_text);
      q.accepted_answers = correct.length ? correct : [''];
    }
    q.answers = [];
    return;
  }
  q.accepted_answers = [];
  if (type === 'true_false') {
    q.answers = [newAnswer(t('editor.trueText'), true), newAnswer(t('editor.falseText'))];
    return;
  }
  if (was === 'type_answer' || was === 'true_false' || q.answers.length < 2) {
    q.answers = [newAnswer('', type !== 'poll'), newAnswer(), newAnswer(), newAnswer()];
  }
  if (type === 'poll') {
    q.points = 0;
    for (const a of q.answers) a.is_correct = false;
  } else {
    if (was === 'poll' && !q.points) q.points = 1000;
    if (type === 'multiple_choice') {
      const first = Math.max(0, q.answers.findIndex((a) => a.is_correct));
      q.answers.forEach((a, i) => { a.is_correct = i === first; });
    }
  }
}

/** The document as the API takes it: empty optional texts are absent, not "". */
function cleaned() {
  const doc = structuredClone(state.doc);
  doc.title = doc.title.trim();
  for (const q of doc.questions) {
    for (const key of ['explanation_title', 'explanation_text', 'image_url']) {
      if (!q[key] || !String(q[key]).trim()) q[key] = null;
    }
    q.accepted_answers = (q.accepted_answers || []).map((s) => s.trim()).filter(Boolean);
    if (q.question_type === 'type_answer' && !q.accepted_answers.length) q.accepted_answers = [''];
    for (const a of q.answers) if (!a.image_url) a.image_url = null;
  }
  return doc;
}

function remember() {
  writeJSON(localStorage, DRAFT_KEY, { quizId: state.quizId, doc: state.doc });
}

// -- library -------------------------------------------------------------------------------

function renderWho() {
  const draft = readJSON(localStorage, DRAFT_KEY);
  const resume = $('continue-draft');
  resume.hidden = !(draft && draft.doc);
  if (!resume.hidden) {
    resume.textContent = t('editor.continue', { title: draft.doc.title || t('editor.untitled') });
  }
  const who = $('who');
  const link = $('account-link');
  if (state.user) {
    who.textContent = t('editor.signedIn', { name: state.user.displayName || state.user.email || '' });
    link.textContent = t('account.title');
    link.href = '/account';
  } else {
    who.replaceChildren(t('editor.guest'), ' ',
      el('a', { href: '/account?next=/editor', text: t('editor.guestSignIn') }));
    link.textContent = t('account.signIn');
    link.href = '/account?next=/editor';
  }
}

async function loadLibrary() {
  renderWho();
  $('mine').hidden = !state.user;
  if (!state.user) return;
  try {
    const page = await authed('GET', '/quiz-sets?scope=mine&limit=200');
    state.quizzes = page.items || [];
  } catch (err) {
    libraryError(err);
    return;
  }
  renderLibrary();
}

function renderLibrary() {
  $('mine-empty').hidden = state.quizzes.length > 0;
  $('quiz-list').replaceChildren(...state.quizzes.map((q) => el('li', { dataset: { quizId: q.id } },
    el('span', { class: 'quiz-name' }, el('strong', { text: q.title }), ' ',
      el('span', { class: 'muted', text: t('host.questions', { n: q.total_questions }) })),
    el('span', { class: 'controls' },
      el('button', { type: 'button', class: 'small', onclick: () => openQuiz(q.id),
        'aria-label': t('editor.editName', { title: q.title }), text: t('editor.edit') }),
      el('button', { type: 'button', class: 'small secondary', onclick: () => duplicate(q),
        'aria-label': t('editor.duplicateName', { title: q.title }), text: t('editor.duplicate') }),
      el('button', { type: 'button', class: 'small danger', onclick: () => remove(q),
        'aria-label': t('editor.deleteName', { title: q.title }), text: t('editor.delete') })))));
}

function libraryError(err) {
  const box = $('library-error');
  box.textContent = t('err.generic', { message: err.message });
  box.hidden = false;
}

async function openQuiz(id) {
  try {
    const doc = await authed('GET', `/quiz-sets/${id}/export`);
    edit(doc, id);
  } catch (err) {
    libraryError(err);
  }
}

async function duplicate(q) {
  try {
    await authed('POST', `/quiz-library/clone/${q.id}`);
    await loadLibrary();
    $('who').textContent = t('editor.duplicated', { title: q.title });
  } catch (err) {
    libraryError(err);
  }
}

async function remove(q) {
  if (!window.confirm(t('editor.confirmDelete', { title: q.title }))) return;
  try {
    await authed('DELETE', `/quiz-sets/${q.id}`);
    if (state.quizId === q.id) { state.quizId = null; writeJSON(localStorage, DRAFT_KEY, null); }
    await loadLibrary();
    $('who').textContent = t('editor.deleted', { title: q.title });
  } catch (err) {
    libraryError(err);
  }
}

$('new-quiz').addEventListener('click', () => edit(newDoc(), null));

$('import-file').addEventListener('change', async (event) => {
  const input = event.target;
  const file = input.files[0];
  if (!file) return;
  clearFieldErrors(librarySection);
  $('library-error').hidden = true;
  try {
    const doc = await upload('/quiz-sheets/import', 'file', file, { signed: false });
    edit(doc, null);
    status('info', t('editor.imported', { n: doc.questions.length }));
  } catch (err) {
    placeFieldError(input, err.message);
  } finally {
    input.value = '';
  }
});

$('open-json').addEventListener('change', async (event) => {
  const input = event.target;
  const file = input.files[0];
  if (!file) return;
  clearFieldErrors(librarySection);
  try {
    const doc = JSON.parse(await file.text());
    if (!doc || typeof doc !== 'object' || !Array.isArray(doc.questions)) throw new Error('questions');
    edit({ ...newDoc(), ...doc }, null);
  } catch {
    placeFieldError(input, t('host.badJson'));
  } finally {
    input.value = '';
  }
});

// -- editing -------------------------------------------------------------------------------

function edit(doc, quizId) {
  state.doc = doc;
  state.quizId = quizId;
  for (const q of doc.questions) {
    q.answers = q.answers || [];
    q.accepted_answers = q.accepted_answers || [];
  }
  remember();
  $('quiz-title').value = doc.title || '';
  $('quiz-description').value = doc.description || '';
  $('save-button').hidden = !state.user;
  $('guest-images').hidden = !!state.user;
  $('guest-images').replaceChildren(t('editor.guestImages'), ' ',
    el('a', { href: '/account?next=/editor', text: t('editor.guestSignIn') }));
  $('save-status').replaceChildren();
  clearFieldErrors($('quiz-form'));
  renderQuestions();
  showScreen('edit');
}

$('quiz-title').addEventListener('input', (e) => { state.doc.title = e.target.value; remember(); });
$('quiz-description').addEventListener('input', (e) => { state.doc.description = e.target.value; remember(); });
$('back-button').addEventListener('click', () => { // the draft stays: "Continue" reopens it
  showScreen('library');
  loadLibrary();
});
$('continue-draft').addEventListener('click', () => {
  const draft = readJSON(localStorage, DRAFT_KEY);
  if (draft && draft.doc) edit(draft.doc, state.user ? draft.quizId : null);
});
$('add-question').addEventListener('click', () => {
  if (state.doc.questions.length >= MAX_QUESTIONS) return;
  state.doc.questions.push(newQuestion());
  renderQuestions();
  const cards = $('questions').children;
  cards[cards.length - 1].querySelector('textarea').focus();
});

function field(id, labelText, input, extra = null) {
  input.id = id;
  return el('div', { class: 'field' }, el('label', { for: id, text: labelText }), input, extra);
}

function bind(input, apply) {
  input.addEventListener('input', () => { apply(input.value); remember(); });
  return input;
}

function renderQuestions() {
  const list = $('questions');
  list.replaceChildren(...state.doc.questions.map((q, i) => questionCard(q, i)));
  $('add-question').disabled = state.doc.questions.length >= MAX_QUESTIONS;
}

function questionCard(q, i) {
  const n = state.doc.questions.length;
  const path = `questions.${i}`;
  const handle = el('button', {
    type: 'button', class: 'drag-handle secondary small', 'aria-label': t('editor.dragName', { n: i + 1 }),
    'aria-keyshortcuts': 'Alt+ArrowUp Alt+ArrowDown', text: '⠿',
  });
  handle.addEventListener('pointerdown', (e) => startDrag(e, i));
  handle.addEventListener('keydown', (e) => {
    if (e.altKey && (e.key === 'ArrowUp' || e.key === 'ArrowDown')) {
      e.preventDefault();
      move(i, e.key === 'ArrowUp' ? i - 1 : i + 1);
    }
  });
  const type = el('select', {}, ...TYPES.map((k) => el('option', { value: k, text: t(`type.${k}`) })));
  type.value = q.question_type;
  type.dataset.path = `${path}.question_type`;
  type.addEventListener('change', () => { retype(q, type.value); remember(); renderQuestions(); focusIn(i, 'select'); });
  const text = bind(el('textarea', { rows: '2', maxlength: '500', 'data-path': `${path}.question_text` }),
    (v) => { q.question_text = v; });
  text.value = q.question_text;
  const time = bind(el('input', {
    type: 'number', min: '5', max: '240', step: '1', 'data-path': `${path}.answering_time`,
  }), (v) => { q.answering_time = Number(v); });
  time.value = String(q.answering_time ?? 20);
  const points = bind(el('input', {
    type: 'number', min: '0', max: '2000', step: '100', 'data-path': `${path}.points`,
    disabled: q.question_type === 'poll',
  }), (v) => { q.points = Number(v); });
  points.value = String(q.points ?? 1000);
  const explTitle = bind(el('input', { type: 'text', maxlength: '200', 'data-path': `${path}.explanation_title` }),
    (v) => { q.explanation_title = v; });
  explTitle.value = q.explanation_title || '';
  const explText = bind(el('textarea', { rows: '2', maxlength: '2000', 'data-path': `${path}.explanation_text` }),
    (v) => { q.explanation_text = v; });
  explText.value = q.explanation_text || '';
  const id = (name) => `q${i}-${name}`;
  return el('li', { class: 'card question-card', dataset: { index: String(i), path } },
    el('div', { class: 'q-card-head' },
      handle,
      el('h3', { text: t('editor.questionN', { n: i + 1 }) }),
      el('span', { class: 'controls' },
        el('button', { type: 'button', class: 'small secondary', disabled: i === 0, onclick: () => move(i, i - 1),
          'aria-label': t('editor.moveUpName', { n: i + 1 }), text: '↑' }),
        el('button', { type: 'button', class: 'small secondary', disabled: i === n - 1, onclick: () => move(i, i + 1),
          'aria-label': t('editor.moveDownName', { n: i + 1 }), text: '↓' }),
        el('button', { type: 'button', class: 'small secondary', disabled: n >= MAX_QUESTIONS,
          onclick: () => copyQuestion(i), 'aria-label': t('editor.copyName', { n: i + 1 }), text: t('editor.copy') }),
        el('button', { type: 'button', class: 'small danger', disabled: n === 1, onclick: () => removeQuestion(i),
          'aria-label': t('editor.removeName', { n: i + 1 }), text: t('editor.remove') }))),
    el('div', { class: 'q-grid' },
      field(id('type'), t('editor.type'), type),
      field(id('time'), t('editor.time'), time),
      field(id('points'), t('editor.points'), points)),
    field(id('text'), t('editor.questionText'), text),
    imageField(q, `${path}.image_url`, 'question-image', t('editor.questionImage'), id('image')),
    answersBlock(q, i),
    el('details', { class: 'explanation', open: !!(q.explanation_title || q.explanation_text) },
      el('summary', { text: t('host.explanation') }),
      field(id('expl-title'), t('editor.explTitle'), explTitle),
      field(id('expl-text'), t('editor.explText'), explText)));
}

function answersBlock(q, i) {
  const path = `questions.${i}`;
  if (q.question_type === 'type_answer') {
    const box = el('textarea', { rows: '3', 'data-path': `${path}.accepted_answers`,
      'aria-describedby': `q${i}-accepted-hint` });
    box.value = q.accepted_answers.join('\n');
    bind(box, (v) => { q.accepted_answers = v.split('\n').slice(0, 20); });
    return field(`q${i}-accepted`, t('editor.accepted'), box,
      el('p', { id: `q${i}-accepted-hint`, class: 'muted hint', text: t('editor.acceptedHint') }));
  }
  const single = q.question_type === 'multiple_choice' || q.question_type === 'true_false';
  const poll = q.question_type === 'poll';
  const rows = q.answers.map((a, j) => {
    const apath = `${path}.answers.${j}`;
    const text = bind(el('input', {
      type: 'text', maxlength: '200', 'data-path': `${apath}.answer_text`,
      readonly: q.question_type === 'true_false',
    }), (v) => { a.answer_text = v; });
    text.value = a.answer_text;
    const mark = poll ? null : el('input', {
      type: single ? 'radio' : 'checkbox', name: `q${i}-correct`, id: `q${i}-a${j}-correct`,
      checked: a.is_correct, 'data-path': `${apath}.is_correct`,
    });
    if (mark) {
      mark.addEventListener('change', () => {
        if (single) q.answers.forEach((x, k) => { x.is_correct = k === j; });
        else a.is_correct = mark.checked;
        remember();
      });
    }
    const removeButton = q.question_type === 'true_false' ? null : el('button', {
      type: 'button', class: 'small secondary', disabled: q.answers.length <= 2,
      'aria-label': t('editor.removeAnswerName', { n: j + 1 }), text: '✕',
      onclick: () => { q.answers.splice(j, 1); if (single && !q.answers.some((x) => x.is_correct)) q.answers[0].is_correct = true; remember(); renderQuestions(); },
    });
    return el('li', { class: `answer-row c${j % 6}`, 'data-path': apath },
      el('div', { class: 'answer-main' },
        field(`q${i}-a${j}`, t('editor.answerN', { n: j + 1 }), text),
        mark ? el('div', { class: 'correct-mark' }, mark,
          el('label', { for: `q${i}-a${j}-correct`, text: t('editor.correct') })) : null,
        removeButton),
      imageField(a, `${apath}.image_url`, 'answer-image', t('editor.answerImage', { n: j + 1 }), `q${i}-a${j}-image`));
  });
  const add = q.question_type === 'true_false' ? null : el('button', {
    type: 'button', class: 'small secondary', disabled: q.answers.length >= MAX_ANSWERS,
    text: t('editor.addAnswer'), 'aria-label': t('editor.addAnswerName', { n: i + 1 }),
    onclick: () => { q.answers.push(newAnswer()); remember(); renderQuestions(); },
  });
  const legend = poll ? t('editor.pollAnswers') : (single ? t('editor.answersOne') : t('editor.answersMany'));
  return el('fieldset', { class: 'answers', 'data-path': `${path}.answers` },
    el('legend', { text: legend }), el('ol', { class: 'answer-list' }, ...rows), add);
}

/** Preview, upload and remove for one image (`owner.image_url`). */
function imageField(owner, path, kind, labelText, id) {
  const wrap = el('div', { class: 'image-field', 'data-path': path });
  const draw = () => {
    const parts = [];
    if (owner.image_url) {
      parts.push(el('img', { class: 'image-preview', src: owner.image_url, alt: labelText }));
      parts.push(el('button', { type: 'button', class: 'small secondary', text: t('editor.removeImage'),
        'aria-label': `${t('editor.removeImage')}: ${labelText}`,
        onclick: () => { owner.image_url = null; remember(); draw(); } }));
    }
    if (state.user) {
      const input = el('input', { type: 'file', accept: IMAGE_TYPES, id, class: 'file-input' });
      input.addEventListener('change', async () => {
        const file = input.files[0];
        if (!file) return;
        for (const note of wrap.querySelectorAll('.field-error')) note.remove();
        wrap.setAttribute('aria-busy', 'true');
        try {
          const quizId = await ensureQuizId();
          const done = await upload(`/upload/${kind}/${quizId}`, 'image', file);
          owner.image_url = done.url;
          remember();
          draw();
        } catch (err) {
          draw();
          placeFieldError(wrap, err.message);
        } finally {
          wrap.removeAttribute('aria-busy');
        }
      });
      parts.unshift(el('label', { for: id, class: 'image-label', text: labelText }), input);
    } else if (!owner.image_url) {
      return wrap.replaceChildren();
    }
    return wrap.replaceChildren(...parts);
  };
  draw();
  return wrap;
}

/** Images belong to a stored quiz: an unsaved one is stored first (an empty draft). */
async function ensureQuizId() {
  if (state.quizId) return state.quizId;
  const created = await authed('POST', '/quiz-sets', {
    title: state.doc.title.trim() || t('editor.untitled'), questions: [],
  });
  state.quizId = created.id;
  remember();
  return state.quizId;
}

function focusIn(index, selector) {
  const card = $('questions').children[index];
  if (card) card.querySelector(selector).focus();
}

function move(from, to) {
  const qs = state.doc.questions;
  if (to < 0 || to >= qs.length || from === to) return;
  const [q] = qs.splice(from, 1);
  qs.splice(to, 0, q);
  remember();
  renderQuestions();
  focusIn(to, '.drag-handle');
  status('info', t('editor.moved', { from: from + 1, to: to + 1 }));
}

function copyQuestion(i) {
  state.doc.questions.splice(i + 1, 0, structuredClone(state.doc.questions[i]));
  remember();
  renderQuestions();
  focusIn(i + 1, 'textarea');
}

function removeQuestion(i) {
  state.doc.questions.splice(i, 1);
  remember();
  renderQuestions();
  focusIn(Math.min(i, state.doc.questions.length - 1), '.drag-handle');
}

/** Pointer reordering: drag a card by its handle; it lands where the pointer is let go. */
function startDrag(event, from) {
  if (event.button !== 0) return;
  event.preventDefault();
  const cards = [...$('questions').children];
  const card = cards[from];
  card.classList.add('dragging');
  let to = from;
  const onMove = (e) => {
    // Insert before the first card whose middle is below the pointer (after taking it out).
    let k = cards.findIndex((c) => { const b = c.getBoundingClientRect(); return e.clientY < b.top + b.height / 2; });
    if (k === -1) k = cards.length;
    to = k > from ? k - 1 : k;
    for (const c of cards) c.classList.toggle('drop-target', c === cards[to] && to !== from);
  };
  const onUp = () => {
    document.removeEventListener('pointermove', onMove);
    document.removeEventListener('pointerup', onUp);
    card.classList.remove('dragging');
    if (to !== from) move(from, to);
    else for (const c of cards) c.classList.remove('drop-target');
  };
  document.addEventListener('pointermove', onMove);
  document.addEventListener('pointerup', onUp);
}

// -- save, play, download, export -----------------------------------------------------------

function status(kind, text) {
  const box = $('save-status');
  box.replaceChildren(el('p', { class: `message ${kind}`, text }));
}

function failed(err) {
  const form = $('quiz-form');
  const placed = showFieldErrors(form, err);
  status('error', placed ? t('editor.fixFields', { message: err.message }) : t('err.generic', { message: err.message }));
  const first = form.querySelector('[aria-invalid="true"], .field-error');
  if (first) first.scrollIntoView({ block: 'center' });
  if (first && first.matches('input, select, textarea')) first.focus();
}

async function save() {
  clearFieldErrors($('quiz-form'));
  const doc = cleaned();
  const saved = state.quizId
    ? await authed('PUT', `/quiz-sets/${state.quizId}`, doc)
    : await authed('POST', '/quiz-sets', doc);
  state.quizId = saved.id;
  remember();
  return saved;
}

$('quiz-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  if (!state.user) return;
  try {
    const saved = await save();
    status('info', t('editor.saved', { title: saved.title }));
  } catch (err) {
    failed(err);
  }
});

$('play-button').addEventListener('click', async () => {
  clearFieldErrors($('quiz-form'));
  try {
    let source;
    if (state.user) source = { quiz_set_id: (await save()).id };
    else source = { quiz: cleaned() };
    const game = await (state.user ? authed : api)('POST', '/games', {
      ...source, device_id: deviceId(), player_name: 'Host',
      game_settings: { ...(state.doc.play_settings || {}), auto_advance: $('play-auto-advance').checked },
    });
    const g = game.game || game;
    writeJSON(localStorage, HOST_KEY, { gameId: g.id, hostToken: game.host_token || g.host_token, pin: g.game_code });
    location.assign('/host');
  } catch (err) {
    failed(err);
  }
});

function fileName(ext) {
  const base = (state.doc.title || 'quiz').trim().replace(/[\\/:*?"<>|]+/g, '_').slice(0, 80) || 'quiz';
  return `${base}.${ext}`;
}

function download(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = el('a', { href: url, download: name, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

$('download-json').addEventListener('click', () => {
  const blob = new Blob([`${JSON.stringify(cleaned(), null, 2)}\n`], { type: 'application/json' });
  download(blob, fileName('json'));
  status('info', t('editor.downloaded', { name: fileName('json') }));
});

async function exportSheet(format) {
  clearFieldErrors($('quiz-form'));
  const res = await fetch(`/quiz-sheets/export?format=${format}`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(cleaned()),
  });
  if (!res.ok) {
    const data = await res.json().catch(() => ({}));
    const err = new Error(data.message || res.statusText);
    err.details = data.details;
    failed(err);
    return;
  }
  download(await res.blob(), fileName(format));
  status('info', t('editor.downloaded', { name: fileName(format) }));
}

$('export-xlsx').addEventListener('click', () => exportSheet('xlsx'));
$('export-csv').addEventListener('click', () => exportSheet('csv'));

// -- start ---------------------------------------------------------------------------------

function syncTitle() { document.title = `tuiz — ${t('editor.title')}`; }
/** The field errors shown in the question cards, by the `data-path` they belong to. */
function shownErrors() {
  return [...$('questions').querySelectorAll('.field-error')].map((note) => {
    const owner = $('questions').querySelector(`[aria-describedby~="${note.id}"]`)
      || note.parentElement.closest('[data-path]');
    return { path: owner && owner.dataset.path, message: note.textContent };
  }).filter((e) => e.path);
}

onLangChange(() => {
  syncTitle();
  renderWho();
  if (state.quizzes.length) renderLibrary();
  if (state.doc) { // re-rendered in the new language, with the errors still by their fields
    const errors = shownErrors();
    renderQuestions();
    for (const { path, message } of errors) {
      const target = $('questions').querySelector(`[data-path="${CSS.escape(path)}"]`);
      if (target) placeFieldError(target, message);
    }
  }
});
syncTitle();
const draft = readJSON(localStorage, DRAFT_KEY);
const wanted = new URLSearchParams(location.search).get('quiz');
if (wanted && state.user) {
  renderWho();
  openQuiz(wanted);
} else if (draft && draft.doc && Array.isArray(draft.doc.questions)) {
  renderWho();
  edit(draft.doc, state.user ? draft.quizId : null);
} else {
  showScreen('library', { focus: false });
  loadLibrary();
}
