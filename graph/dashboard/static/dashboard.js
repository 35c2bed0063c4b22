// The staff dashboard: counts per resource type, the newest encounters
// and one lab value of one patient over time. Every piece of data comes
// from the GraphQL endpoint with the user's access token; GraphQL errors
// are shown where the data would have been.

import { LoginError, currentToken, finishLogin, signOut, signedOut, startLogin, tokenRefused } from './smart.js';
import { dateLabel, drawChart } from './chart.js';

const $ = (id) => document.getElementById(id);

// The types counted, with how the page names them.
const COUNTED = [
  ['Patient', 'Patients'],
  ['Encounter', 'Encounters'],
  ['Observation', 'Observations'],
  ['Condition', 'Conditions'],
  ['MedicationRequest', 'Medication requests'],
  ['Procedure', 'Procedures'],
  ['Immunization', 'Immunizations'],
  ['AllergyIntolerance', 'Allergies'],
  ['DiagnosticReport', 'Diagnostic reports'],
];

// MAX is the largest page the API serves.
const MAX = 1000;

let config;
let token;

// Reauthenticating stops whatever asked: the browser is leaving.
class Reauthenticating extends Error {}

// GraphQLErrors carries the errors array of an answer without data.
class GraphQLErrors extends Error {
  constructor(errors) {
    super(errors.map((e) => e.message).join('; '));
    this.errors = errors;
  }
}

// gql posts one query and returns {data, errors}. HTTP 401 (expired or
// revoked token) sends the user through login again; any answer without
// data throws GraphQLErrors.
async function gql(query, variables = {}) {
  let resp;
  try {
    resp = await fetch(config.graphql, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json', Authorization: 'Bearer ' + token.access_token },
      body: JSON.stringify({ query, variables }),
    });
  } catch (e) {
    throw new GraphQLErrors([{ message: `The GraphQL API could not be reached: ${e.message}`, extensions: { code: 'NETWORK' } }]);
  }
  let body = null;
  try {
    body = await resp.json();
  } catch {
    // reported below
  }
  if (resp.status === 401) {
    if (tokenRefused()) {
      status('Your session has ended; signing in again…');
      await startLogin(config);
      throw new Reauthenticating();
    }
    throw new GraphQLErrors(body?.errors?.length ? body.errors : [{ message: 'The API refused the access token.', extensions: { code: 'UNAUTHENTICATED' } }]);
  }
  const errors = body?.errors || [];
  if (!body || (body.data == null && errors.length === 0)) {
    throw new GraphQLErrors([{ message: `The GraphQL API answered HTTP ${resp.status} without a result.`, extensions: { code: 'HTTP_' + resp.status } }]);
  }
  if (body.data == null) throw new GraphQLErrors(errors);
  return { data: body.data, errors };
}

function status(text) {
  $('status').textContent = text;
}

// showErrors lists GraphQL errors (message and extensions.code) in box;
// an empty list hides it.
function showErrors(box, errors, lead = 'The server answered with an error:') {
  box.replaceChildren();
  box.hidden = errors.length === 0;
  if (box.hidden) return;
  const p = document.createElement('p');
  p.textContent = errors.length > 1 ? lead.replace('an error', `${errors.length} errors`) : lead;
  const ul = document.createElement('ul');
  for (const e of errors) {
    const li = document.createElement('li');
    li.textContent = e.message || 'unknown error';
    if (e.extensions?.code) {
      const code = document.createElement('code');
      code.textContent = e.extensions.code;
      li.append(' (', code, ')');
    }
    if (e.path) li.append(` at ${e.path.join('.')}`);
    ul.append(li);
  }
  box.append(p, ul);
}

// failed shows what went wrong in box, unless the page is leaving.
function failed(box, err) {
  if (err instanceof Reauthenticating) return;
  showErrors(box, err.errors || [{ message: err.message }]);
}

function cell(text) {
  const td = document.createElement('td');
  td.textContent = text ?? '—';
  return td;
}

function dateTime(s) {
  if (!s) return null;
  return s.length > 10 ? s.slice(0, 16).replace('T', ' ') : s;
}

function timeCell(s) {
  const td = document.createElement('td');
  td.className = 'when';
  if (!s) {
    td.textContent = '—';
    return td;
  }
  const t = document.createElement('time');
  t.dateTime = s;
  t.textContent = dateTime(s);
  td.append(t);
  return td;
}

// periodCell shows a period as its start, and its end too (the time
// alone on the same day): a descending sort by date orders by the end.
function periodCell(p) {
  const td = timeCell(p?.start);
  const end = dateTime(p?.end);
  if (end && p?.start && end !== dateTime(p.start)) {
    const t = document.createElement('time');
    t.dateTime = p.end;
    const sameDay = end.slice(0, 10) === dateTime(p.start).slice(0, 10) && end.length > 10;
    t.textContent = sameDay ? end.slice(11) : end;
    td.append('–', t);
  }
  return td;
}

function conceptText(c) {
  if (!c) return null;
  return c.text || c.coding?.find((x) => x.display)?.display || c.coding?.find((x) => x.code)?.code || null;
}

async function loadCounts() {
  const list = $('counts');
  const query = `query Counts {\n${COUNTED.map(([t]) => `  ${t}: ${t}Connection(_count: 1) { count }`).join('\n')}\n}`;
  try {
    const { data, errors } = await gql(query);
    showErrors($('counts-error'), errors);
    list.replaceChildren(...COUNTED.map(([type, label]) => {
      const li = document.createElement('li');
      li.dataset.type = type;
      const n = document.createElement('span');
      n.className = 'count';
      const count = data[type]?.count;
      n.textContent = typeof count === 'number' ? count.toLocaleString('en-US') : '—';
      if (typeof count === 'number') li.dataset.count = String(count);
      const name = document.createElement('span');
      name.className = 'label';
      name.textContent = label;
      li.append(n, name);
      return li;
    }));
  } catch (err) {
    failed($('counts-error'), err);
  } finally {
    list.setAttribute('aria-busy', 'false');
  }
}

async function loadEncounters() {
  const table = $('encounters');
  const query = `query NewestEncounters {
  EncounterList(_sort: "-date", _count: 10) {
    id status period { start end } type { text coding { display } } subject { reference display }
  }
}`;
  try {
    const { data, errors } = await gql(query);
    showErrors($('encounters-error'), errors);
    const rows = (data.EncounterList || []).map((e) => {
      const tr = document.createElement('tr');
      tr.dataset.id = e.id;
      tr.append(periodCell(e.period), cell(e.subject?.display || e.subject?.reference), cell(conceptText(e.type?.[0])), cell(e.status));
      return tr;
    });
    if (rows.length === 0) {
      const tr = document.createElement('tr');
      const td = cell('No encounters.');
      td.colSpan = 4;
      tr.append(td);
      rows.push(tr);
    }
    table.tBodies[0].replaceChildren(...rows);
  } catch (err) {
    failed($('encounters-error'), err);
  } finally {
    table.setAttribute('aria-busy', 'false');
  }
}

function humanName(p) {
  const n = p.name?.[0];
  if (!n) return `Patient ${p.id}`;
  return n.text || [...(n.given || []), n.family].filter(Boolean).join(' ') || `Patient ${p.id}`;
}

// The lab chart: search patients by name, choose one, choose one of the
// lab codes that patient has numeric results for, draw the results.
let chosen = null; // {id, name}
let labCodes = new Map(); // token (system|code) → {label, code, count, unit}

async function searchPatients(ev) {
  ev.preventDefault();
  const name = $('patient-name').value.trim();
  $('lab-form').hidden = true;
  $('chart').hidden = true;
  showErrors($('lab-error'), []);
  $('lab-status').textContent = 'Searching…';
  try {
    const { data, errors } = await gql(`query Patients($name: String) {
  PatientList(name: $name, _count: 20, _sort: "family") { id name { text family given } birthDate gender }
}`, { name });
    showErrors($('lab-error'), errors);
    const found = data.PatientList || [];
    $('lab-status').textContent = found.length === 0 ? `No patient matches “${name}”.` : `${found.length} patient${found.length === 1 ? '' : 's'} found.`;
    $('patient-results').replaceChildren(...found.map((p) => {
      const li = document.createElement('li');
      const input = document.createElement('input');
      input.type = 'radio';
      input.name = 'patient-choice';
      input.id = 'patient-' + p.id;
      input.value = p.id;
      input.addEventListener('change', () => choosePatient({ id: p.id, name: humanName(p) }));
      const label = document.createElement('label');
      label.htmlFor = input.id;
      label.textContent = humanName(p) + [p.birthDate && `, born ${p.birthDate}`, p.gender && ` (${p.gender})`].filter(Boolean).join('');
      li.append(input, label);
      return li;
    }));
    $('patients').hidden = found.length === 0;
  } catch (err) {
    $('lab-status').textContent = '';
    failed($('lab-error'), err);
  }
}

async function choosePatient(p) {
  chosen = p;
  $('lab-form').hidden = true;
  $('chart').hidden = true;
  showErrors($('lab-error'), []);
  $('lab-status').textContent = `Reading the lab results of ${p.name}…`;
  try {
    const { data, errors } = await gql(`query LabCodes($patient: String) {
  ObservationList(patient: $patient, category: "laboratory", _count: ${MAX}) {
    code { text coding { system code display } } valueQuantity { value unit }
  }
}`, { patient: 'Patient/' + p.id });
    showErrors($('lab-error'), errors);
    labCodes = new Map();
    for (const o of data.ObservationList || []) {
      if (o.valueQuantity?.value == null || !Number.isFinite(Number(o.valueQuantity.value))) continue;
      const coding = o.code?.coding?.find((c) => c.system === 'http://loinc.org' && c.code) || o.code?.coding?.find((c) => c.code);
      if (!coding) continue;
      const key = coding.system ? `${coding.system}|${coding.code}` : coding.code;
      const entry = labCodes.get(key) || { label: o.code.text || coding.display || coding.code, code: coding.code, count: 0 };
      entry.count++;
      labCodes.set(key, entry);
    }
    const sorted = [...labCodes.entries()].sort((a, b) => a[1].label.localeCompare(b[1].label));
    const options = sorted.map(([key, c]) => new Option(`${c.label} (${c.code}), ${c.count} result${c.count === 1 ? '' : 's'}`, key));
    $('lab-code').replaceChildren(new Option('Choose a lab test', ''), ...options);
    $('lab-form').hidden = sorted.length === 0;
    $('lab-status').textContent = sorted.length === 0
      ? `${p.name} has no laboratory results with a numeric value.`
      : `${p.name} has numeric results for ${sorted.length} lab test${sorted.length === 1 ? '' : 's'}.`;
  } catch (err) {
    $('lab-status').textContent = '';
    failed($('lab-error'), err);
  }
}

async function showChart(ev) {
  ev.preventDefault();
  const key = $('lab-code').value;
  const lab = labCodes.get(key);
  if (!chosen || !lab) return;
  showErrors($('lab-error'), []);
  $('lab-status').textContent = `Reading ${lab.label} of ${chosen.name}…`;
  try {
    const { data, errors } = await gql(`query LabValues($patient: String, $code: String) {
  ObservationList(patient: $patient, code: $code, _sort: "date", _count: ${MAX}) {
    id effectiveDateTime valueQuantity { value unit }
  }
}`, { patient: 'Patient/' + chosen.id, code: key });
    showErrors($('lab-error'), errors);
    const all = data.ObservationList || [];
    const points = [];
    for (const o of all) {
      const v = Number(o.valueQuantity?.value);
      const t = Date.parse(o.effectiveDateTime || '');
      if (o.valueQuantity?.value == null || !Number.isFinite(v) || Number.isNaN(t)) continue;
      const unit = o.valueQuantity.unit || '';
      points.push({ t, v, raw: String(o.valueQuantity.value), unit, when: o.effectiveDateTime, label: `${dateTime(o.effectiveDateTime)}: ${o.valueQuantity.value} ${unit}`.trim() });
    }
    points.sort((a, b) => a.t - b.t);
    renderChart(lab, points, all.length);
  } catch (err) {
    $('lab-status').textContent = '';
    failed($('lab-error'), err);
  }
}

// drawn is what the chart shows, redrawn at the width of the page.
let drawn = null;

function redraw() {
  const box = $('chart-svg');
  box.replaceChildren();
  if (drawn?.points.length) box.append(drawChart(drawn.points, drawn.title, drawn.desc, box.clientWidth));
}

let resizing;
window.addEventListener('resize', () => {
  clearTimeout(resizing);
  resizing = setTimeout(() => drawn && redraw(), 150);
});

function renderChart(lab, points, fetched) {
  const units = [...new Set(points.map((p) => p.unit).filter(Boolean))];
  const unit = units.join(' / ');
  const title = `${lab.label}${unit ? ` (${unit})` : ''} of ${chosen.name} over time`;
  const notes = [];
  if (fetched - points.length > 0) notes.push(`${fetched - points.length} result${fetched - points.length === 1 ? '' : 's'} without a date or numeric value not drawn`);
  if (fetched >= MAX) notes.push(`only the first ${MAX} results are shown`);
  if (units.length > 1) notes.push('the results use more than one unit');
  let desc = 'No results to draw.';
  if (points.length > 0) {
    const vs = points.map((p) => p.v);
    desc = `${points.length} result${points.length === 1 ? '' : 's'} from ${dateLabel(points[0].t)} to ${dateLabel(points[points.length - 1].t)}; ` +
      `lowest ${Math.min(...vs)}, highest ${Math.max(...vs)}, latest ${points[points.length - 1].v}${unit ? ' ' + unit : ''}.`;
  }
  if (notes.length) desc += ' Note: ' + notes.join('; ') + '.';
  $('chart-caption').textContent = `${title}. ${desc}`;
  $('chart').hidden = false;
  drawn = { points, title, desc };
  redraw();
  $('chart-table-caption').textContent = title;
  $('chart-table').tBodies[0].replaceChildren(...points.map((p) => {
    const tr = document.createElement('tr');
    tr.append(timeCell(p.when), cell(`${p.raw} ${p.unit}`.trim()));
    return tr;
  }));
  $('lab-status').textContent = `Showing ${points.length} result${points.length === 1 ? '' : 's'} of ${lab.label}.`;
}

function showDashboard() {
  $('account').hidden = false;
  $('who').textContent = `Signed in · ${token.scope}`;
  $('dashboard').hidden = false;
  status('');
  $('status').hidden = true;
  $('patient-search').addEventListener('submit', searchPatients);
  $('lab-form').addEventListener('submit', showChart);
  return Promise.all([loadCounts(), loadEncounters()]);
}

function showSignIn(message) {
  $('dashboard').hidden = true;
  $('account').hidden = true;
  $('signin').hidden = false;
  status(message);
}

async function main() {
  $('signout').addEventListener('click', () => {
    signOut();
    showSignIn('You are signed out. The dashboard forgot its access token.');
  });
  $('signin-button').addEventListener('click', () => startLogin(config).catch((err) => showErrors($('page-error'), [{ message: err.message }])));
  try {
    const resp = await fetch('config.json', { headers: { Accept: 'application/json' } });
    if (!resp.ok) throw new LoginError(`The dashboard's configuration could not be read (HTTP ${resp.status}).`);
    config = await resp.json();
    const params = new URLSearchParams(location.search);
    if (params.has('code') || params.has('error')) {
      status('Finishing sign-in…');
      token = await finishLogin(config, params);
    } else {
      token = currentToken();
    }
    if (!token) {
      if (signedOut()) {
        showSignIn('You are signed out.');
        return;
      }
      status('Signing in…');
      await startLogin(config);
      return;
    }
    await showDashboard();
  } catch (err) {
    showErrors($('page-error'), [{ message: err.message }], 'Signing in failed:');
    showSignIn('');
  }
}

main();
