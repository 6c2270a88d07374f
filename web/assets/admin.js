// Admin page: the service key (sessionStorage only) unlocks connection and game statistics.
import { applyI18n, currentLang, mountLangSwitch, onLangChange, t, tValue } from '/assets/i18n.js';
import { api, el, showScreen } from '/assets/net.js';
import { downloadReportCsv } from '/assets/report.js';

const KEY = 'tuiz_service_key';
const $ = (id) => document.getElementById(id);
const SVG = 'http://www.w3.org/2000/svg';

const data = { stats: null, statsError: null, completion: null, completionError: null, games: null, gamesError: null };

mountLangSwitch();
applyI18n();
onLangChange(() => render());

function serviceKey() {
  try { return sessionStorage.getItem(KEY); } catch { return null; }
}

function auth() {
  return { Authorization: `Bearer ${serviceKey()}` };
}

$('key-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const key = $('service-key').value.trim();
  if (!key) return;
  try { sessionStorage.setItem(KEY, key); } catch { /* private mode: kept for this page only */ }
  $('service-key').value = '';
  await open();
});

$('forget').addEventListener('click', () => {
  try { sessionStorage.removeItem(KEY); } catch { /* ignore */ }
  showScreen('key');
});

$('refresh').addEventListener('click', () => open());

async function open() {
  const error = $('key-error');
  error.hidden = true;
  try {
    data.stats = await api('GET', '/websocket-connections/stats?days=14', undefined, auth());
    data.statsError = null;
  } catch (err) {
    if (err.status === 401 || err.status === 403) {
      try { sessionStorage.removeItem(KEY); } catch { /* ignore */ }
      error.textContent = t('admin.badKey');
      error.hidden = false;
      showScreen('key');
      return;
    }
    data.stats = null;
    data.statsError = err.message;
  }
  const [completion, games] = await Promise.allSettled([
    api('GET', '/stats/completion', undefined, auth()),
    api('GET', '/games?limit=20', undefined, auth()),
  ]);
  data.completion = completion.status === 'fulfilled' ? completion.value : null;
  data.completionError = completion.status === 'rejected' ? completion.reason.message : null;
  data.games = games.status === 'fulfilled' ? games.value : null;
  data.gamesError = games.status === 'rejected' ? games.reason.message : null;
  showScreen('dashboard');
  render();
}

function unavailable(message) {
  return el('p', { class: 'muted', text: t('admin.unavailable', { message }) });
}

function listOf(value, ...keys) {
  if (Array.isArray(value)) return value;
  for (const k of keys) if (value && Array.isArray(value[k])) return value[k];
  return [];
}

function render() {
  if (!serviceKey()) return;
  $('active').textContent = data.stats ? String(data.stats.active_connections) : '–';
  $('daily').replaceChildren(data.statsError ? unavailable(data.statsError) : dailyChart(data.stats ? data.stats.daily : []));
  const rows = listOf(data.completion, 'items', 'stats', 'completion');
  $('completion').replaceChildren(data.completionError ? unavailable(data.completionError)
    : el('ul', {}, ...rows.map((r) => el('li', {
      text: t('admin.completionRow', {
        type: tValue('gameType', r.game_type ?? 'quiz'), completed: r.completed_games ?? 0, total: r.total_games ?? 0,
        rate: r.completion_rate ?? 0,
      }),
    }))));
  const games = listOf(data.games, 'items', 'games');
  if (data.gamesError) {
    $('recent').replaceChildren(unavailable(data.gamesError));
  } else if (!games.length) {
    $('recent').replaceChildren(el('p', { class: 'muted', text: t('admin.noGames') }));
  } else {
    const fmt = new Intl.DateTimeFormat(currentLang(), { dateStyle: 'short', timeStyle: 'short' });
    $('recent').replaceChildren(el('table', {},
      el('thead', {}, el('tr', {},
        el('th', { scope: 'col', text: t('host.pin') }),
        el('th', { scope: 'col', text: t('admin.status') }),
        el('th', { scope: 'col', text: t('admin.created') }),
        el('th', { scope: 'col', text: t('host.report') }))),
      el('tbody', {}, ...games.map((g) => el('tr', {},
        el('td', { text: g.game_code ?? '' }),
        el('td', { text: g.status ? tValue('status', g.status) : '' }),
        el('td', { text: g.created_at ? fmt.format(new Date(g.created_at)) : '' }),
        el('td', {},
          el('a', {
            href: `/report?game=${encodeURIComponent(g.id)}`, text: t('admin.reportLink'),
            'aria-label': t('admin.reportFor', { pin: g.game_code ?? '' }),
          }), ' · ',
          csvLink(g)))))));
  }
}

/** The CSV needs the key in a header, so it is fetched here and saved as a file. */
function csvLink(game) {
  const href = `/games/${encodeURIComponent(game.id)}/report?format=csv`;
  return el('a', {
    href, text: t('admin.csvLink'), 'aria-label': t('admin.csvFor', { pin: game.game_code ?? '' }),
    onclick: (event) => {
      event.preventDefault();
      downloadReportCsv(game.id, auth(), `tuiz-${game.game_code || game.id}.csv`).catch(() => {});
    },
  });
}

function dailyChart(daily) {
  if (!daily || !daily.length || daily.every((d) => !d.total_connections)) {
    return el('p', { class: 'muted', text: t('admin.dailyEmpty') });
  }
  const days = [...daily].sort((a, b) => String(a.date).localeCompare(String(b.date)));
  const w = 600;
  const h = 200;
  const pad = 24;
  const max = Math.max(1, ...days.map((d) => Number(d.total_connections) || 0));
  const bw = Math.min((w - pad) / days.length, 48);
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', `0 0 ${w} ${h + 30}`);
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-labelledby', 'daily-title daily-desc');
  const desc = document.createElementNS(SVG, 'desc');
  desc.id = 'daily-desc';
  desc.textContent = days.map((d) => `${d.date}: ${d.total_connections}`).join(', ');
  svg.append(desc);
  days.forEach((d, i) => {
    const n = Number(d.total_connections) || 0;
    const bh = (h - pad) * (n / max);
    const rect = document.createElementNS(SVG, 'rect');
    rect.setAttribute('x', String(pad + i * bw + 2));
    rect.setAttribute('y', String(h - bh));
    rect.setAttribute('width', String(Math.max(1, bw - 4)));
    rect.setAttribute('height', String(bh));
    rect.setAttribute('fill', '#46178f');
    const label = document.createElementNS(SVG, 'text');
    label.setAttribute('x', String(pad + i * bw + bw / 2));
    label.setAttribute('y', String(h + 18));
    label.setAttribute('text-anchor', 'middle');
    label.setAttribute('font-size', '12');
    label.setAttribute('fill', '#1b1530');
    label.textContent = String(d.date).slice(5);
    const value = document.createElementNS(SVG, 'text');
    value.setAttribute('x', String(pad + i * bw + bw / 2));
    value.setAttribute('y', String(h - bh - 4));
    value.setAttribute('text-anchor', 'middle');
    value.setAttribute('font-size', '12');
    value.setAttribute('fill', '#1b1530');
    value.textContent = String(n);
    svg.append(rect, label, value);
  });
  return svg;
}

if (serviceKey()) open();
else showScreen('key');
