// A tiny dependency-free SVG line chart.
//
//   const chart = new LineChart(container, { label: "Temperatures", unit: "°C", yMin: 0 });
//   chart.update([{ name: "Nozzle", className: "series-1", points: [{ t: ms, v: 212.5 }, ...] }]);
//   chart.destroy();
//
// Colours come from CSS classes (style-src 'self': no inline styles needed);
// the SVG carries role="img" and an aria-label that states the latest values,
// so the chart is not only pixels for people who cannot see it.

const SVG = "http://www.w3.org/2000/svg";
const DEFAULT_WIDTH = 640;
const HEIGHT = 200;
const PAD = { top: 12, right: 14, bottom: 26, left: 44 };
const MAX_POINTS = 1500; // drawn per series; older points are thinned, never unbounded

function svg(tag, attrs = {}) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

// "Nice" tick values between lo and hi (about `count` of them).
export function ticks(lo, hi, count = 4) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
  const out = [];
  for (let v = Math.ceil(lo / step) * step, i = 0; v <= hi + 1e-9 && i < 50; v += step, i++) {
    out.push(Math.round(v * 1e6) / 1e6);
  }
  return out;
}

function timeLabel(ms, spanMs) {
  const d = new Date(ms);
  if (spanMs > 36 * 3600e3) return d.toLocaleDateString([], { month: "short", day: "numeric" });
  if (spanMs < 10 * 60e3) return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function thin(points) {
  if (points.length <= MAX_POINTS) return points;
  const step = Math.ceil(points.length / MAX_POINTS);
  const out = points.filter((_, i) => i % step === 0);
  if (out[out.length - 1] !== points[points.length - 1]) out.push(points[points.length - 1]);
  return out;
}

export class LineChart {
  constructor(container, { label = "Chart", unit = "", yMin = null, yMax = null, emptyText = "No data yet." } = {}) {
    this.label = label;
    this.unit = unit;
    this.yMin = yMin;
    this.yMax = yMax;
    this.emptyText = emptyText;
    this.root = document.createElement("figure");
    this.root.className = "chart";
    this.svg = svg("svg", { role: "img", height: HEIGHT });
    this.svg.classList.add("chart-svg");
    this.series = [];
    this.width = 0;
    this.legend = document.createElement("figcaption");
    this.legend.className = "chart-legend";
    this.root.append(this.svg, this.legend);
    container.append(this.root);
    // Draw in CSS pixels at the real width, so labels stay readable on a phone.
    if (typeof ResizeObserver === "function") {
      this.observer = new ResizeObserver(() => {
        const width = Math.round(this.root.clientWidth);
        if (width > 0 && width !== this.width) this.update(this.series);
      });
      this.observer.observe(this.root);
    }
    this.update([]);
  }

  update(series) {
    this.series = series;
    const WIDTH = (this.width = Math.round(this.root.clientWidth) || DEFAULT_WIDTH);
    this.svg.setAttribute("viewBox", `0 0 ${WIDTH} ${HEIGHT}`);
    this.svg.setAttribute("width", WIDTH);
    const drawn = series.map((s) => ({ ...s, points: thin((s.points || []).filter((p) => Number.isFinite(p.v))) }));
    const all = drawn.flatMap((s) => s.points);
    this.svg.replaceChildren();
    this.legend.replaceChildren();

    const latest = drawn
      .filter((s) => s.points.length)
      .map((s) => `${s.name} ${fmt(s.points[s.points.length - 1].v)}${this.unit}`);
    this.svg.setAttribute(
      "aria-label",
      latest.length ? `${this.label}: latest ${latest.join(", ")}` : `${this.label}: ${this.emptyText}`,
    );

    for (const s of drawn) {
      const item = document.createElement("span");
      item.className = `chart-key ${s.className || ""}`;
      const swatch = document.createElement("span");
      swatch.className = "chart-swatch";
      swatch.setAttribute("aria-hidden", "true");
      const last = s.points.length ? ` ${fmt(s.points[s.points.length - 1].v)}${this.unit}` : "";
      item.append(swatch, document.createTextNode(`${s.name}${last}`));
      this.legend.append(item);
    }

    if (!all.length) {
      const t = svg("text", { x: WIDTH / 2, y: HEIGHT / 2, "text-anchor": "middle" });
      t.classList.add("chart-empty");
      t.textContent = this.emptyText;
      this.svg.append(t);
      return;
    }

    let t0 = Math.min(...all.map((p) => p.t));
    let t1 = Math.max(...all.map((p) => p.t));
    if (t1 === t0) { t0 -= 30e3; t1 += 30e3; }
    let lo = this.yMin ?? Math.min(...all.map((p) => p.v));
    let hi = this.yMax ?? Math.max(...all.map((p) => p.v));
    if (this.yMax == null) hi = Math.max(hi, lo + 1) * 1.05;
    if (hi <= lo) hi = lo + 1;

    const w = WIDTH - PAD.left - PAD.right;
    const hgt = HEIGHT - PAD.top - PAD.bottom;
    const x = (t) => PAD.left + ((t - t0) / (t1 - t0)) * w;
    const y = (v) => PAD.top + hgt - ((Math.min(Math.max(v, lo), hi) - lo) / (hi - lo)) * hgt;

    const grid = svg("g");
    grid.classList.add("chart-grid");
    for (const v of ticks(lo, hi)) {
      const line = svg("line", { x1: PAD.left, x2: WIDTH - PAD.right, y1: y(v), y2: y(v) });
      const label = svg("text", { x: PAD.left - 6, y: y(v) + 4, "text-anchor": "end" });
      label.textContent = `${fmt(v)}`;
      grid.append(line, label);
    }
    const span = t1 - t0;
    const steps = Math.max(1, Math.min(3, Math.floor(WIDTH / 160))); // labels never overlap
    for (let i = 0; i <= steps; i++) {
      const t = t0 + (span * i) / steps;
      const anchor = i === 0 ? "start" : i === steps ? "end" : "middle";
      const label = svg("text", { x: x(t), y: HEIGHT - 6, "text-anchor": anchor });
      label.textContent = timeLabel(t, span);
      grid.append(label);
    }
    this.svg.append(grid);

    for (const s of drawn) {
      if (!s.points.length) continue;
      const d = s.points.map((p, i) => `${i ? "L" : "M"}${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join("");
      const path = svg("path", { d, fill: "none", "vector-effect": "non-scaling-stroke" });
      path.classList.add("chart-line");
      if (s.className) path.classList.add(s.className);
      this.svg.append(path);
    }
  }

  destroy() {
    if (this.observer) this.observer.disconnect();
    this.root.remove();
  }
}

function fmt(v) {
  return Math.abs(v) >= 100 ? Math.round(v).toString() : (Math.round(v * 10) / 10).toString();
}
