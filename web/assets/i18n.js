// Japanese and English text for every page. `t(key, vars)` looks a key up in the current
// language; elements with data-i18n="key" get their text, data-i18n-attr="attr:key;..." their
// attributes. The language comes from localStorage, else navigator.language.

const STRINGS = {
  en: {
    'app.name': 'tuiz',
    'lang.label': 'Language',
    'nav.home': 'tuiz home',
    'title.host': 'Host a game · tuiz',
    'title.play': 'Join a game · tuiz',
    'title.admin': 'Admin · tuiz',
    'title.report': 'Report · tuiz',
    'landing.title': 'Live quiz games',
    'landing.lead': 'Host a quiz on a big screen; players answer from their phones.',
    'landing.host': 'Host a game',
    'landing.join': 'Join a game',
    'landing.admin': 'Admin',
    'landing.editor': 'Make a quiz',
    'landing.account': 'Sign in or create an account',
    'conn.connecting': 'Connecting…',
    'conn.lost': 'Connection lost. Reconnecting…',
    'conn.back': 'Connected',
    'host.title': 'Host a game',
    'host.choose': 'Choose a quiz',
    'host.quiz': 'Quiz',
    'host.loadingQuizzes': 'Loading quizzes…',
    'host.noQuizzes': 'No quizzes in the database yet. Upload one below.',
    'host.questions': '{n} questions',
    'host.questions.one': '1 question',
    'host.upload': 'Or upload a quiz (JSON file)',
    'host.uploadButton': 'Upload',
    'host.uploaded': 'Quiz "{title}" uploaded.',
    'host.uploadedLocal': 'Quiz "{title}" is ready in this page (not saved: sign in to keep it).',
    'host.uploadFailed': 'Upload failed: {message}',
    'host.badJson': 'That file is not valid JSON.',
    'host.uploadNeedsLogin': 'Uploading a quiz needs a signed-in account (a tuiz_session token in this browser).',
    'host.create': 'Create game',
    'host.autoAdvance': 'Advance automatically (otherwise press Next)',
    'host.creating': 'Creating…',
    'host.pin': 'Game PIN',
    'host.joinAt': 'Join at',
    'host.qr': 'QR code for the join link',
    'host.players': 'Players',
    'host.playersCount': '{n} players',
    'host.playersCount.one': '1 player',
    'host.noPlayers': 'Waiting for players to join…',
    'host.kick': 'Kick',
    'host.ban': 'Ban',
    'host.kickName': 'Kick {name}',
    'host.banName': 'Ban {name}',
    'host.presence.disconnected': 'Disconnected',
    'host.presence.reconnected': 'Reconnected',
    'host.playersAway': '{n} players · {away} disconnected',
    'host.playersAway.one': '1 player · {away} disconnected',
    'host.playersAllHere': '{n} players · all connected',
    'host.playersAllHere.one': '1 player · connected',
    'host.lock': 'Lock game',
    'host.unlock': 'Unlock game',
    'host.locked': 'Locked: no new players can join.',
    'host.unlocked': 'Open: players can join.',
    'host.start': 'Start game',
    'host.needPlayers': 'At least one player must join before the game starts.',
    'host.question': 'Question {n} of {total}',
    'host.getReady': 'Get ready…',
    'host.answered': '{n} of {total} answered',
    'host.pause': 'Pause',
    'host.resume': 'Resume',
    'host.skip': 'Skip (close answers)',
    'host.next': 'Next',
    'host.end': 'End game',
    'host.controls': 'Game controls',
    'host.confirmEnd': 'Press again to end the game for everyone',
    'host.paused': 'Paused',
    'host.distribution': 'Answers',
    'host.correctMark': 'correct',
    'host.accepted': 'Accepted answers: {list}',
    'host.explanation': 'Explanation',
    'host.leaderboard': 'Leaderboard',
    'host.podium': 'Podium',
    'host.endedEarly': 'The game was ended.',
    'host.report': 'Report',
    'host.csv': 'Download CSV',
    'host.newGame': 'Host another game',
    'host.reportFailed': 'The report could not be loaded: {message}',
    'host.votes': '{n} answers',
    'host.votes.one': '1 answer',
    'host.points': '{n} pts',
    'report.player': 'Player',
    'report.score': 'Score',
    'report.rank': 'Rank',
    'report.correct': 'Correct',
    'report.question': 'Question',
    'report.answered': 'Answered',
    'report.correctRate': 'Correct rate',
    'report.time': 'Average time',
    'report.players': 'Players',
    'report.questions': 'Questions',
    'report.loading': 'Loading the report…',
    'report.back': 'Back to the dashboard',
    'report.toAdmin': 'Open the admin page',
    'report.noGame': 'This link names no game.',
    'report.needKey': 'This report is for the host and the admin: open it from the admin page with the service key.',
    'gameType.quiz': 'Quiz',
    'status.waiting': 'Waiting',
    'status.active': 'Playing',
    'status.paused': 'Paused',
    'status.finished': 'Finished',
    'play.title': 'Join a game',
    'play.pin': 'Game PIN',
    'play.nickname': 'Nickname',
    'play.join': 'Join',
    'play.joining': 'Joining…',
    'play.rejoining': 'Returning to your game…',
    'play.waiting': "You're in! Waiting for the host to start…",
    'play.youAre': 'You are {name}',
    'play.getReady': 'Get ready…',
    'play.question': 'Question {n} of {total}',
    'play.submit': 'Submit answer',
    'play.typeHere': 'Your answer',
    'play.chooseMany': 'Select all that apply, then submit.',
    'play.received': 'Answer received',
    'play.waitingOthers': 'Waiting for the others…',
    'play.tooLate': "Time's up",
    'play.noAnswer': 'No answer this time.',
    'play.correct': 'Correct!',
    'play.incorrect': 'Incorrect',
    'play.correctAnswer': 'Correct answer: {list}',
    'play.pollDone': 'Thanks for voting',
    'play.pointsEarned': '+{n} points',
    'play.score': 'Score: {n}',
    'play.rank': 'Rank: {rank}',
    'play.streak': 'Streak: {n}',
    'play.leaderboard': 'Leaderboard',
    'play.final': 'Game over',
    'play.finalRank': 'You finished #{rank} with {score} points',
    'play.endedEarly': 'The host ended the game.',
    'play.paused': 'The game is paused.',
    'play.kicked': 'The host removed you from the game.',
    'play.playAgain': 'Join another game',
    'err.NOT_FOUND': 'No game with that PIN. Check the number and try again.',
    'err.GAME_LOCKED': 'This game is locked. Ask the host to unlock it.',
    'err.GAME_FULL': 'This game is full.',
    'err.CONFLICT': 'That nickname is already taken. Choose another.',
    'err.FORBIDDEN': 'You cannot join this game.',
    'err.VALIDATION_ERROR': 'Please check what you entered.',
    'err.TOO_LATE': "Time's up: the answer was not accepted.",
    'err.WRONG_PHASE': 'Answers are not open right now.',
    'err.pinFormat': 'The PIN has 6 digits.',
    'err.nickname': 'Enter a nickname.',
    'err.network': 'The server did not answer. Try again.',
    'err.generic': 'Something went wrong: {message}',
    'admin.title': 'Admin',
    'admin.key': 'Service key',
    'admin.keyHelp': 'Kept only in this browser tab.',
    'admin.open': 'Open dashboard',
    'admin.forget': 'Forget key',
    'admin.badKey': 'The service key was refused.',
    'admin.active': 'Active connections',
    'admin.daily': 'Connections per day (UTC)',
    'admin.dailyEmpty': 'No connections in this period.',
    'admin.completion': 'Game completion',
    'admin.completionRow': '{type}: {completed} of {total} finished ({rate}%)',
    'admin.recent': 'Recent games',
    'admin.noGames': 'No games yet.',
    'admin.status': 'Status',
    'admin.created': 'Created',
    'admin.reportLink': 'Report',
    'admin.csvLink': 'CSV',
    'admin.reportFor': 'Report of game {pin}',
    'admin.csvFor': 'CSV of game {pin}',
    'admin.unavailable': 'Not available: {message}',
    'admin.refresh': 'Refresh',
    'phase.waiting': 'Lobby',
    'phase.question': 'Question',
    'phase.answering': 'Answering',
    'phase.answer_reveal': 'Answer',
    'phase.explanation': 'Explanation',
    'phase.leaderboard': 'Leaderboard',
    'phase.podium': 'Podium',
    'phase.ended': 'Ended',
    'type.multiple_choice': 'Multiple choice',
    'type.true_false': 'True or false',
    'type.multi_select': 'Multiple answers',
    'type.type_answer': 'Type the answer',
    'type.poll': 'Poll',
    'seconds': '{n} s',
    'media.questionImage': 'Question image',
  },
  ja: {
    'app.name': 'tuiz',
    'lang.label': '言語',
    'nav.home': 'tuiz ホーム',
    'title.host': 'ゲームを主催する · tuiz',
    'title.play': 'ゲームに参加する · tuiz',
    'title.admin': '管理 · tuiz',
    'title.report': 'レポート · tuiz',
    'landing.title': 'ライブクイズ',
    'landing.lead': '大きな画面でクイズを出題し、参加者はスマートフォンで回答します。',
    'landing.host': 'ゲームを主催する',
    'landing.join': 'ゲームに参加する',
    'landing.admin': '管理',
    'landing.editor': 'クイズを作る',
    'landing.account': 'ログイン・アカウント作成',
    'conn.connecting': '接続中…',
    'conn.lost': '接続が切れました。再接続しています…',
    'conn.back': '接続しました',
    'host.title': 'ゲームを主催する',
    'host.choose': 'クイズを選ぶ',
    'host.quiz': 'クイズ',
    'host.loadingQuizzes': 'クイズを読み込み中…',
    'host.noQuizzes': 'データベースにクイズがありません。下からアップロードしてください。',
    'host.questions': '{n}問',
    'host.upload': 'またはクイズ（JSONファイル）をアップロード',
    'host.uploadButton': 'アップロード',
    'host.uploaded': 'クイズ「{title}」をアップロードしました。',
    'host.uploadedLocal': 'クイズ「{title}」をこのページで使えます（保存はされません。保存するにはログインしてください）。',
    'host.uploadFailed': 'アップロードに失敗しました：{message}',
    'host.badJson': 'このファイルは正しいJSONではありません。',
    'host.uploadNeedsLogin': 'クイズのアップロードにはログインが必要です（このブラウザの tuiz_session トークン）。',
    'host.create': 'ゲームを作成',
    'host.autoAdvance': '自動で進める（オフのときは「次へ」で進めます）',
    'host.creating': '作成中…',
    'host.pin': 'ゲームPIN',
    'host.joinAt': '参加URL',
    'host.qr': '参加URLのQRコード',
    'host.players': '参加者',
    'host.playersCount': '{n}人',
    'host.noPlayers': '参加者を待っています…',
    'host.kick': '退出',
    'host.ban': '禁止',
    'host.kickName': '{name}さんを退出させる',
    'host.banName': '{name}さんを参加禁止にする',
    'host.presence.disconnected': '切断中',
    'host.presence.reconnected': '再接続',
    'host.playersAway': '参加者{n}人・切断中{away}人',
    'host.playersAllHere': '参加者{n}人・全員接続中',
    'host.lock': 'ロックする',
    'host.unlock': 'ロックを解除',
    'host.locked': 'ロック中：新しい参加はできません。',
    'host.unlocked': '参加受付中',
    'host.start': 'ゲーム開始',
    'host.needPlayers': '開始するには参加者が1人以上必要です。',
    'host.question': '第{n}問 / 全{total}問',
    'host.getReady': 'まもなく回答開始…',
    'host.answered': '{total}人中{n}人が回答',
    'host.pause': '一時停止',
    'host.resume': '再開',
    'host.skip': 'スキップ（回答締切）',
    'host.next': '次へ',
    'host.end': 'ゲーム終了',
    'host.controls': 'ゲーム操作',
    'host.confirmEnd': 'もう一度押すと全員のゲームを終了します',
    'host.paused': '一時停止中',
    'host.distribution': '回答分布',
    'host.correctMark': '正解',
    'host.accepted': '正解とする回答：{list}',
    'host.explanation': '解説',
    'host.leaderboard': 'ランキング',
    'host.podium': '表彰台',
    'host.endedEarly': 'ゲームは終了しました。',
    'host.report': 'レポート',
    'host.csv': 'CSVをダウンロード',
    'host.newGame': '別のゲームを主催する',
    'host.reportFailed': 'レポートを読み込めませんでした：{message}',
    'host.votes': '{n}票',
    'host.points': '{n}点',
    'report.player': '参加者',
    'report.score': '得点',
    'report.rank': '順位',
    'report.correct': '正解数',
    'report.question': '問題',
    'report.answered': '回答数',
    'report.correctRate': '正答率',
    'report.time': '平均回答時間',
    'report.players': '参加者',
    'report.questions': '問題',
    'report.loading': 'レポートを読み込み中…',
    'report.back': 'ダッシュボードに戻る',
    'report.toAdmin': '管理ページを開く',
    'report.noGame': 'このリンクにはゲームが指定されていません。',
    'report.needKey': 'このレポートは主催者と管理者のものです。管理ページからサービスキーで開いてください。',
    'gameType.quiz': 'クイズ',
    'status.waiting': '待機中',
    'status.active': 'プレイ中',
    'status.paused': '一時停止中',
    'status.finished': '終了',
    'play.title': 'ゲームに参加する',
    'play.pin': 'ゲームPIN',
    'play.nickname': 'ニックネーム',
    'play.join': '参加',
    'play.joining': '参加中…',
    'play.rejoining': 'ゲームに戻っています…',
    'play.waiting': '参加しました！主催者の開始を待っています…',
    'play.youAre': 'あなたは {name} です',
    'play.getReady': 'まもなく回答開始…',
    'play.question': '第{n}問 / 全{total}問',
    'play.submit': '回答を送信',
    'play.typeHere': 'あなたの回答',
    'play.chooseMany': '当てはまるものをすべて選んでから送信してください。',
    'play.received': '回答を受け付けました',
    'play.waitingOthers': '他の参加者を待っています…',
    'play.tooLate': '時間切れ',
    'play.noAnswer': '今回は回答なし',
    'play.correct': '正解！',
    'play.incorrect': '不正解',
    'play.correctAnswer': '正解：{list}',
    'play.pollDone': '投票ありがとうございます',
    'play.pointsEarned': '+{n}点',
    'play.score': '得点：{n}',
    'play.rank': '順位：{rank}位',
    'play.streak': '連続正解：{n}',
    'play.leaderboard': 'ランキング',
    'play.final': 'ゲーム終了',
    'play.finalRank': 'あなたは{score}点で{rank}位でした',
    'play.endedEarly': '主催者がゲームを終了しました。',
    'play.paused': 'ゲームは一時停止中です。',
    'play.kicked': '主催者によってゲームから退出させられました。',
    'play.playAgain': '別のゲームに参加する',
    'err.NOT_FOUND': 'このPINのゲームはありません。番号を確認してもう一度お試しください。',
    'err.GAME_LOCKED': 'このゲームはロックされています。主催者にロック解除を頼んでください。',
    'err.GAME_FULL': 'このゲームは満員です。',
    'err.CONFLICT': 'このニックネームは使われています。別の名前にしてください。',
    'err.FORBIDDEN': 'このゲームには参加できません。',
    'err.VALIDATION_ERROR': '入力内容を確認してください。',
    'err.TOO_LATE': '時間切れのため回答は受け付けられませんでした。',
    'err.WRONG_PHASE': '今は回答を受け付けていません。',
    'err.pinFormat': 'PINは6桁の数字です。',
    'err.nickname': 'ニックネームを入力してください。',
    'err.network': 'サーバーから応答がありません。もう一度お試しください。',
    'err.generic': 'エラーが発生しました：{message}',
    'admin.title': '管理',
    'admin.key': 'サービスキー',
    'admin.keyHelp': 'このタブの中だけに保存されます。',
    'admin.open': 'ダッシュボードを開く',
    'admin.forget': 'キーを消去',
    'admin.badKey': 'サービスキーが拒否されました。',
    'admin.active': '現在の接続数',
    'admin.daily': '日別の接続数（UTC）',
    'admin.dailyEmpty': 'この期間の接続はありません。',
    'admin.completion': 'ゲーム完了率',
    'admin.completionRow': '{type}：{total}件中{completed}件が完了（{rate}%）',
    'admin.recent': '最近のゲーム',
    'admin.noGames': 'ゲームはまだありません。',
    'admin.status': '状態',
    'admin.created': '作成日時',
    'admin.reportLink': 'レポート',
    'admin.csvLink': 'CSV',
    'admin.reportFor': 'ゲーム{pin}のレポート',
    'admin.csvFor': 'ゲーム{pin}のCSV',
    'admin.unavailable': '取得できません：{message}',
    'admin.refresh': '更新',
    'phase.waiting': 'ロビー',
    'phase.question': '問題',
    'phase.answering': '回答中',
    'phase.answer_reveal': '正解発表',
    'phase.explanation': '解説',
    'phase.leaderboard': 'ランキング',
    'phase.podium': '表彰台',
    'phase.ended': '終了',
    'type.multiple_choice': '選択式',
    'type.true_false': '○×',
    'type.multi_select': '複数選択',
    'type.type_answer': '記述式',
    'type.poll': 'アンケート',
    'seconds': '{n}秒',
    'media.questionImage': '問題の画像',
  },
};

export const LANGS = ['ja', 'en'];
const LANG_NAMES = { ja: '日本語', en: 'English' };
const LANG_KEY = 'tuiz_lang';

function initialLang() {
  try {
    const stored = localStorage.getItem(LANG_KEY);
    if (LANGS.includes(stored)) return stored;
  } catch { /* storage unavailable: fall through */ }
  const nav = (navigator.language || 'en').toLowerCase();
  return nav.startsWith('ja') ? 'ja' : 'en';
}

let lang = initialLang();
const listeners = new Set();

export function currentLang() { return lang; }

export function t(key, vars = {}) {
  const table = STRINGS[lang] || STRINGS.en;
  // English counts of one take the key's `.one` form ("1 question"), where there is one.
  const one = vars.n === 1 ? table[`${key}.one`] ?? null : null;
  const text = one ?? table[key] ?? STRINGS.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in vars ? String(vars[name]) : `{${name}}`));
}

/** A value the server names (a status, a game type) in words when a key exists for it. */
export function tValue(prefix, value) {
  const key = `${prefix}.${value}`;
  return t(key) === key ? String(value) : t(key);
}

export function applyI18n(root = document) {
  document.documentElement.lang = lang;
  for (const el of root.querySelectorAll('[data-i18n]')) {
    el.textContent = t(el.dataset.i18n);
  }
  for (const el of root.querySelectorAll('[data-i18n-attr]')) {
    for (const pair of el.dataset.i18nAttr.split(';')) {
      const [attr, key] = pair.split(':').map((s) => s.trim());
      if (attr && key) el.setAttribute(attr, t(key));
    }
  }
}

export function setLang(next) {
  if (!LANGS.includes(next)) return;
  lang = next;
  try { localStorage.setItem(LANG_KEY, next); } catch { /* ignore */ }
  applyI18n();
  for (const fn of listeners) fn(lang);
}

/** Call `fn` after every language change (pages re-render their dynamic text). */
export function onLangChange(fn) { listeners.add(fn); }

/** A pair of buttons in #lang-switch; the pressed one is the current language. */
export function mountLangSwitch(container = document.getElementById('lang-switch')) {
  if (!container) return;
  container.setAttribute('role', 'group');
  container.setAttribute('aria-label', 'Language / 言語');
  container.replaceChildren();
  for (const code of LANGS) {
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'lang-button';
    button.lang = code;
    button.textContent = LANG_NAMES[code];
    button.dataset.lang = code;
    button.addEventListener('click', () => setLang(code));
    container.append(button);
  }
  const sync = () => {
    for (const b of container.querySelectorAll('button')) {
      b.setAttribute('aria-pressed', String(b.dataset.lang === lang));
    }
  };
  sync();
  onLangChange(sync);
}

/** More strings for a page's own module ({en: {...}, ja: {...}}); call before applyI18n(). */
export function addStrings(extra) {
  for (const [code, table] of Object.entries(extra)) Object.assign(STRINGS[code] ||= {}, table);
}
