// /report?game=<id>: a game's report as the host sees it at the end, with CSV download. Read
// with the admin's service key (this tab's sessionStorage) or, on the host's own device, with
// the host token the host page stored.
import { applyI18n, currentLang, mountLangSwitch, onLangChange, t, tValue } from '/assets/i18n.js';
import { api, deviceId, readJSON, showScreen } from '/assets/net.js';
import { downloadReportCsv, reportTables } from '/assets/report.js';

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const $ = (id) => document.getElementById(id);
const gameId = new URLSearchParams(location.search).get('game') || '';
let report = null;
let failure = null; // [i18n key, vars]: kept untranslated so a language switch redraws it
let screen = null;

mountLangSwitch();
applyI18n();
onLangChange(render);

/** The headers that let this browser read the report, or null when it holds no right to. */
function credentials() {
  let key = null;
  try { key = sessionStorage.getItem('tuiz_service_key'); } catch { /* unavailable */ }
  if (key) return { Authorization: `Bearer ${key}` };
  const hosted = readJSON(localStorage, 'tuiz_host_game');
  if (hosted && hosted.gameId === gameId && hosted.hostToken) {
    return { 'x-host-token': hosted.hostToken, 'x-device-id': deviceId() };
  }
  return null;
}

function render() {
  if (failure) {
    $('report-error').textContent = t(...failure);
    show('error');
    return;
  }
  if (!report) return;
  const g = report.game || {};
  const created = g.created_at
    ? new Intl.DateTimeFormat(currentLang(), { dateStyle: 'medium', timeStyle: 'short' }).format(new Date(g.created_at))
    : '';
  $('report-summary').textContent = [g.quiz_title, g.game_code && `${t('host.pin')} ${g.game_code}`,
    created, g.status && tValue('status', g.status)].filter(Boolean).join(' · ');
  $('report').replaceChildren(...reportTables(report));
  show('report');
}

function show(name) {
  showScreen(name, { focus: screen !== name });
  screen = name;
}

async function load() {
  const headers = credentials();
  if (!UUID_RE.test(gameId)) {
    failure = ['report.noGame'];
  } else if (!headers) {
    failure = ['report.needKey'];
  } else {
    try {
      report = await api('GET', `/games/${gameId}/report`, undefined, headers);
    } catch (err) {
      failure = err.status === 401 || err.status === 403 ? ['report.needKey']
        : ['host.reportFailed', { message: err.message }];
    }
  }
  render();
}

$('csv-button').addEventListener('click', async () => {
  const box = $('csv-error');
  box.hidden = true;
  const code = report && report.game && report.game.game_code;
  try {
    await downloadReportCsv(gameId, credentials() || {}, `tuiz-${code || gameId}.csv`);
  } catch (err) {
    box.textContent = t('host.reportFailed', { message: err.message });
    box.hidden = false;
  }
});

load();
