// SMART standalone launch for a public client: authorization code with
// PKCE (S256). The access token lives in sessionStorage only — never in a
// URL or localStorage — and dies with the tab.

const TOKEN_KEY = 'fhirgraph.dashboard.token';
const LAUNCH_KEY = 'fhirgraph.dashboard.launch';
const SIGNED_OUT_KEY = 'fhirgraph.dashboard.signed-out';

// A token this young that the API refuses means a loop, not an expiry.
const FRESH_MS = 15000;

// LoginError is a sign-in that failed; its message is for the user.
export class LoginError extends Error {}

// redirectURI is this page's own URL without query: the registered
// redirect URI is <origin>/dashboard/.
export function redirectURI() {
  return location.origin + location.pathname.replace(/[^/]*$/, '');
}

let discovered;

// discovery reads the SMART configuration of the FHIR base.
async function discovery(config) {
  if (!discovered) {
    const resp = await fetch(config.fhir_base + '/.well-known/smart-configuration', { headers: { Accept: 'application/json' } });
    if (!resp.ok) {
      throw new LoginError(`The SMART configuration could not be read (HTTP ${resp.status}).`);
    }
    discovered = await resp.json();
  }
  return discovered;
}

function base64url(bytes) {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function randomString(n) {
  return base64url(crypto.getRandomValues(new Uint8Array(n)));
}

// sha256 is SubtleCrypto's where the page is a secure context (https,
// localhost), else a plain implementation: development servers are
// often reached over http by name.
async function sha256(text) {
  const data = new TextEncoder().encode(text);
  if (globalThis.crypto && crypto.subtle) {
    return new Uint8Array(await crypto.subtle.digest('SHA-256', data));
  }
  return sha256Plain(data);
}

const K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

function sha256Plain(data) {
  const len = data.length;
  const padded = new Uint8Array(((len + 9 + 63) >> 6) << 6);
  padded.set(data);
  padded[len] = 0x80;
  const view = new DataView(padded.buffer);
  view.setUint32(padded.length - 8, Math.floor(len / 0x20000000));
  view.setUint32(padded.length - 4, (len << 3) >>> 0);
  const h = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
  const w = new Uint32Array(64);
  const rotr = (x, n) => (x >>> n) | (x << (32 - n));
  for (let off = 0; off < padded.length; off += 64) {
    for (let i = 0; i < 16; i++) w[i] = view.getUint32(off + 4 * i);
    for (let i = 16; i < 64; i++) {
      const s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >>> 3);
      const s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >>> 10);
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) >>> 0;
    }
    let [a, b, c, d, e, f, g, hh] = h;
    for (let i = 0; i < 64; i++) {
      const t1 = (hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i]) >>> 0;
      const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) >>> 0;
      hh = g; g = f; f = e; e = (d + t1) >>> 0; d = c; c = b; b = a; a = (t1 + t2) >>> 0;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
  }
  const out = new Uint8Array(32);
  const ov = new DataView(out.buffer);
  h.forEach((x, i) => ov.setUint32(4 * i, x));
  return out;
}

let leaving = null;

// startLogin sends the browser to the authorization endpoint; it does
// not return. Several callers (requests refused at once) start one login.
export function startLogin(config) {
  leaving ??= login(config).catch((err) => {
    leaving = null;
    throw err;
  });
  return leaving;
}

async function login(config) {
  sessionStorage.removeItem(SIGNED_OUT_KEY);
  const smart = await discovery(config);
  const verifier = randomString(48);
  const state = randomString(24);
  sessionStorage.setItem(LAUNCH_KEY, JSON.stringify({ state, verifier }));
  const q = new URLSearchParams({
    response_type: 'code',
    client_id: config.client_id,
    redirect_uri: redirectURI(),
    scope: config.scope,
    state,
    code_challenge: base64url(await sha256(verifier)),
    code_challenge_method: 'S256',
    aud: config.fhir_base,
  });
  location.assign(smart.authorization_endpoint + '?' + q.toString());
  return new Promise(() => {});
}

// finishLogin handles the authorization server's redirect back (code or
// error in params): the code and state leave the address bar first, the
// state must be the one startLogin kept, and the code is redeemed with
// the PKCE verifier. It throws LoginError with what went wrong.
export async function finishLogin(config, params) {
  history.replaceState(null, '', location.pathname);
  const launch = JSON.parse(sessionStorage.getItem(LAUNCH_KEY) || 'null');
  sessionStorage.removeItem(LAUNCH_KEY);
  if (!launch || params.get('state') !== launch.state) {
    throw new LoginError('The sign-in answer does not belong to a sign-in this page started (its state differs). Sign in again.');
  }
  if (params.has('error')) {
    throw new LoginError(`Sign-in did not succeed: ${params.get('error_description') || params.get('error')} (${params.get('error')}).`);
  }
  const smart = await discovery(config);
  const body = new URLSearchParams({
    grant_type: 'authorization_code',
    code: params.get('code'),
    redirect_uri: redirectURI(),
    client_id: config.client_id,
    code_verifier: launch.verifier,
  });
  const resp = await fetch(smart.token_endpoint, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
    body,
  });
  const tok = await resp.json().catch(() => ({}));
  if (!resp.ok || !tok.access_token) {
    throw new LoginError(`The code could not be exchanged for a token: ${tok.error_description || tok.error || 'HTTP ' + resp.status}.`);
  }
  const now = Date.now();
  const kept = { access_token: tok.access_token, scope: tok.scope || '', obtained: now, expires_at: now + (tok.expires_in || 3600) * 1000 };
  sessionStorage.setItem(TOKEN_KEY, JSON.stringify(kept));
  return kept;
}

// currentToken is the kept token unless it has expired.
export function currentToken() {
  const tok = JSON.parse(sessionStorage.getItem(TOKEN_KEY) || 'null');
  if (!tok || !tok.access_token || Date.now() >= tok.expires_at) {
    sessionStorage.removeItem(TOKEN_KEY);
    return null;
  }
  return tok;
}

// tokenRefused forgets a token the API refused (HTTP 401) and says
// whether to sign in again: not when the token was fresh, which would
// only loop.
export function tokenRefused() {
  const tok = JSON.parse(sessionStorage.getItem(TOKEN_KEY) || 'null');
  sessionStorage.removeItem(TOKEN_KEY);
  return !tok || Date.now() - tok.obtained > FRESH_MS;
}

// signOut forgets the token and remembers not to sign in again by itself.
export function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.setItem(SIGNED_OUT_KEY, '1');
}

export function signedOut() {
  return sessionStorage.getItem(SIGNED_OUT_KEY) === '1';
}
