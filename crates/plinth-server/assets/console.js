// Progressive enhancement for the console: every page works without this file.
// It submits choosers when changed, asks before destructive actions, and runs the
// WebAuthn ceremonies, which only a script can.
'use strict';
document.documentElement.classList.add('js');

function csrfToken() {
  const field = document.querySelector('input[name="csrf_token"]');
  return field ? field.value : '';
}

document.addEventListener('change', (event) => {
  const select = event.target.closest('select[data-autosubmit]');
  if (select && select.form) select.form.requestSubmit();
});

document.addEventListener('submit', (event) => {
  const message = event.target.getAttribute('data-confirm');
  if (message && !window.confirm(message)) event.preventDefault();
});

// WebAuthn carries bytes; the server's JSON carries them as base64url.
const b64 = {
  decode(text) {
    const base64 = text.replace(/-/g, '+').replace(/_/g, '/');
    const binary = atob(base64 + '='.repeat((4 - (base64.length % 4)) % 4));
    return Uint8Array.from(binary, (c) => c.charCodeAt(0)).buffer;
  },
  encode(buffer) {
    const bytes = new Uint8Array(buffer);
    let binary = '';
    for (const byte of bytes) binary += String.fromCharCode(byte);
    return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  },
};

async function postJson(url, body) {
  const response = await fetch(url, {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'content-type': 'application/json', 'x-csrf-token': csrfToken() },
    body: JSON.stringify(body),
  });
  const answer = response.headers.get('content-type')?.includes('json') ? await response.json() : {};
  if (!response.ok) {
    const fields = (answer.errors || []).map((e) => e.detail || e.message).filter(Boolean);
    throw new Error([answer.detail || answer.title || `The server answered ${response.status}.`, ...fields].join(' '));
  }
  return answer;
}

function credentialJson(credential) {
  const response = {};
  for (const name of ['clientDataJSON', 'attestationObject', 'authenticatorData', 'signature', 'userHandle']) {
    if (credential.response[name]) response[name] = b64.encode(credential.response[name]);
  }
  return {
    id: credential.id,
    rawId: b64.encode(credential.rawId),
    type: credential.type,
    response,
    extensions: credential.getClientExtensionResults(),
  };
}

function showError(form, message) {
  let alert = form.querySelector('[data-error]');
  if (!alert) {
    alert = document.createElement('div');
    alert.className = 'alert';
    alert.setAttribute('role', 'alert');
    alert.setAttribute('data-error', '');
    form.prepend(alert);
  }
  alert.textContent = message;
}

// Adding a passkey: the form carries the proof (password or code) and the name.
document.addEventListener('submit', async (event) => {
  const form = event.target.closest('form[data-passkey-register]');
  if (!form) return;
  event.preventDefault();
  try {
    const data = new FormData(form);
    const proof = data.get('code') ? { code: data.get('code') } : { password: data.get('password') };
    const begun = await postJson('/api/v1/me/passkeys/register/begin', proof);
    const options = begun.options.publicKey;
    options.challenge = b64.decode(options.challenge);
    options.user.id = b64.decode(options.user.id);
    for (const excluded of options.excludeCredentials || []) excluded.id = b64.decode(excluded.id);
    const credential = await navigator.credentials.create({ publicKey: options });
    await postJson('/api/v1/me/passkeys/register/finish', {
      challenge_id: begun.challenge_id,
      name: data.get('name'),
      credential: credentialJson(credential),
    });
    window.location.assign(form.getAttribute('data-done') || window.location.pathname);
  } catch (error) {
    showError(form, error.message || String(error));
  }
});

// Signing in with a passkey: the authenticator picks the account.
document.addEventListener('click', async (event) => {
  const button = event.target.closest('button[data-passkey-sign-in]');
  if (!button) return;
  event.preventDefault();
  const form = button.closest('form');
  try {
    const begun = await postJson('/console/sign-in/passkey/begin', {});
    const options = begun.options.publicKey;
    options.challenge = b64.decode(options.challenge);
    for (const allowed of options.allowCredentials || []) allowed.id = b64.decode(allowed.id);
    const credential = await navigator.credentials.get({ publicKey: options });
    const next = form.querySelector('input[name="next"]');
    const done = await postJson('/console/sign-in/passkey/finish', {
      challenge_id: begun.challenge_id,
      credential: credentialJson(credential),
      next: next ? next.value : '/console',
    });
    window.location.assign(done.next);
  } catch (error) {
    showError(form, error.message || String(error));
  }
});

// Passkeys need a script; say so where there is none (and show the button where there is).
for (const element of document.querySelectorAll('[data-needs-script]')) element.hidden = false;
