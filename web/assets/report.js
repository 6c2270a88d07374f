// The end-of-game report as tables: drawn on the host's podium and on /report (admin, host).
import { t } from '/assets/i18n.js';
import { el } from '/assets/net.js';

/** The players' and the questions' tables of a report (GET /games/{id}/report). */
export function reportTables(report) {
  const players = report.players || report.leaderboard || [];
  const head = el('tr', {}, ...['report.rank', 'report.player', 'report.score', 'report.correct']
    .map((k) => el('th', { scope: 'col', text: t(k) })));
  const rows = players.map((p) => el('tr', {},
    el('td', { text: String(p.rank ?? '') }),
    el('td', { text: p.name ?? p.player_name ?? '' }),
    el('td', { text: String(p.score ?? '') }),
    el('td', { text: String(p.correct ?? p.correct_answers ?? p.correct_count ?? '') })));
  const tables = [el('table', { class: 'report-players' },
    el('caption', { text: t('report.players') }), el('thead', {}, head), el('tbody', {}, ...rows))];
  const questions = report.questions || [];
  if (questions.length) {
    const qHead = el('tr', {}, ...['report.question', 'report.answered', 'report.correctRate', 'report.time']
      .map((k) => el('th', { scope: 'col', text: t(k) })));
    const qRows = questions.map((q, i) => el('tr', {},
      el('td', { text: `${i + 1}. ${q.text ?? q.question_text ?? ''}` }),
      el('td', { text: String(q.answered ?? q.answers ?? '') }),
      el('td', { text: q.correct_rate == null ? '–' : `${Math.round(q.correct_rate * 100)}%` }),
      el('td', { text: q.average_time_ms == null ? '–' : t('seconds', { n: (q.average_time_ms / 1000).toFixed(1) }) })));
    tables.push(el('table', { class: 'report-questions' },
      el('caption', { text: t('report.questions') }), el('thead', {}, qHead), el('tbody', {}, ...qRows)));
  }
  return tables;
}

/**
 * Saves the report as CSV (GET /games/{id}/report?format=csv with the caller's headers) under
 * `filename`; throws an Error with the server's status text when refused.
 */
export async function downloadReportCsv(gameId, headers, filename) {
  const res = await fetch(`/games/${encodeURIComponent(gameId)}/report?format=csv`, { headers });
  if (!res.ok) throw new Error(res.statusText || String(res.status));
  const url = URL.createObjectURL(await res.blob());
  const a = el('a', { href: url, download: filename });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
