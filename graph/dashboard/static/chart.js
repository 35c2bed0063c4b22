// A line chart of one value over time, drawn as inline SVG: one circle
// (class "point") per result, an accessible name and description, and the
// same values in a table for those who cannot see the chart.

const SVG = 'http://www.w3.org/2000/svg';
const H = 300;
const M = { top: 16, right: 24, bottom: 44, left: 56 };

function el(name, attrs = {}, text) {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

// niceTicks are about n round values from one at or below lo to one at
// or above hi.
function niceTicks(lo, hi, n) {
  const raw = (hi - lo) / n;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((f) => f * mag).find((s) => s >= raw) || 10 * mag;
  const out = [];
  for (let v = Math.floor(lo / step) * step; v < hi + step; v += step) {
    out.push(Number(v.toPrecision(12)));
    if (v >= hi) break;
  }
  return out;
}

export function dateLabel(ms) {
  return new Date(ms).toISOString().slice(0, 10);
}

// drawChart returns an SVG element width pixels wide for points ({t:
// epoch ms, v: number, label: "2024-03-01 10:00: 5.6 mmol/L"}, sorted by
// t), named by title and described by desc. Drawn at the width it is
// shown at, its text keeps its size on any screen.
export function drawChart(points, title, desc, width) {
  const W = Math.max(280, Math.round(width));
  const svg = el('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-labelledby': 'chart-title chart-desc', class: 'chart', preserveAspectRatio: 'xMidYMid meet' });
  svg.append(el('title', { id: 'chart-title' }, title), el('desc', { id: 'chart-desc' }, desc));
  let t0 = Math.min(...points.map((p) => p.t)), t1 = Math.max(...points.map((p) => p.t));
  if (t0 === t1) { t0 -= 86400000; t1 += 86400000; }
  let v0 = Math.min(...points.map((p) => p.v)), v1 = Math.max(...points.map((p) => p.v));
  const pad = v0 === v1 ? Math.abs(v0) * 0.1 || 1 : (v1 - v0) * 0.05;
  const ticks = niceTicks(v0 - pad, v1 + pad, 5);
  v0 = ticks[0]; v1 = ticks[ticks.length - 1];
  const x = (t) => M.left + ((t - t0) / (t1 - t0)) * (W - M.left - M.right);
  const y = (v) => H - M.bottom - ((v - v0) / (v1 - v0)) * (H - M.top - M.bottom);

  const axes = el('g', { class: 'axes', 'aria-hidden': 'true' });
  for (const v of ticks) {
    axes.append(el('line', { x1: M.left, x2: W - M.right, y1: y(v), y2: y(v), class: 'grid' }));
    axes.append(el('text', { x: M.left - 8, y: y(v) + 4, 'text-anchor': 'end' }, String(v)));
  }
  const n = W < 480 ? 2 : 4;
  for (let i = 0; i <= n; i++) {
    const t = t0 + ((t1 - t0) * i) / n;
    axes.append(el('line', { x1: x(t), x2: x(t), y1: H - M.bottom, y2: H - M.bottom + 5, class: 'tick' }));
    axes.append(el('text', { x: x(t), y: H - M.bottom + 20, 'text-anchor': i === 0 ? 'start' : i === n ? 'end' : 'middle' }, dateLabel(t)));
  }
  axes.append(el('line', { x1: M.left, x2: W - M.right, y1: H - M.bottom, y2: H - M.bottom, class: 'axis' }));
  axes.append(el('line', { x1: M.left, x2: M.left, y1: M.top, y2: H - M.bottom, class: 'axis' }));
  svg.append(axes);

  svg.append(el('polyline', { class: 'line', points: points.map((p) => `${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join(' '), 'aria-hidden': 'true' }));
  const dots = el('g', { class: 'points' });
  for (const p of points) {
    const c = el('circle', { class: 'point', cx: x(p.t).toFixed(1), cy: y(p.v).toFixed(1), r: 4.5, 'data-value': p.v, 'data-time': new Date(p.t).toISOString() });
    c.append(el('title', {}, p.label));
    dots.append(c);
  }
  svg.append(dots);
  return svg;
}
