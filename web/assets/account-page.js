// /account: sign in, create an account, sign out. After signing in, `?next=` (a path on
// this site) is where the page goes back to, e.g. the editor.
import { addStrings, applyI18n, mountLangSwitch, onLangChange, t } from '/assets/i18n.js';
import { EDITOR_STRINGS } from '/assets/i18n-editor.js';
import { showScreen } from '/assets/net.js';
import {
  clearFieldErrors, currentUser, showFieldErrors, signIn, signOut, signUp,
} from '/assets/account.js';

addStrings(EDITOR_STRINGS);
mountLangSwitch();
applyI18n();

const $ = (id) => document.getElementById(id);
const next = new URLSearchParams(location.search).get('next');
const safeNext = next && /^\/[A-Za-z0-9/_?=&-]*$/.test(next) && !next.startsWith('//') ? next : null;

function render() {
  document.title = `tuiz — ${t('account.title')}`;
  const user = currentUser();
  if (user) {
    $('signed-in-as').textContent = t('account.signedInAs', { name: user.displayName || user.email || '' });
    showScreen('signed-in', { focus: false });
  } else {
    showScreen('signed-out', { focus: false });
  }
}

function wire(formId, errorId, action) {
  const form = $(formId);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const box = $(errorId);
    box.hidden = true;
    clearFieldErrors(form);
    const button = form.querySelector('button[type="submit"]');
    button.disabled = true;
    try {
      await action();
      if (safeNext) { location.assign(safeNext); return; }
      render();
    } catch (err) {
      if (!showFieldErrors(form, err)) {
        // A wrong password is re-translated by applyI18n when the language changes.
        if (err.status === 401) box.dataset.i18n = 'account.wrong';
        else delete box.dataset.i18n;
        box.textContent = err.status === 401 ? t('account.wrong') : t('err.generic', { message: err.message });
        box.hidden = false;
      }
    } finally {
      button.disabled = false;
    }
  });
}

wire('signin-form', 'signin-error', () => signIn($('signin-email').value.trim(), $('signin-password').value));
wire('signup-form', 'signup-error', () => signUp(
  $('signup-email').value.trim(), $('signup-password').value, $('signup-name').value.trim() || undefined,
));
$('signout-button').addEventListener('click', async () => { await signOut(); render(); });
onLangChange(render);
render();
