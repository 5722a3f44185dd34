// A small SVG chart library for the dashboard (no dependencies, works offline):
//   Chart.series(el, {points: [{label, value, title}], kind: "line" | "columns", format})
//   Chart.bars(el, {items: [{label, value, text}], format})
// `value` is a number used for geometry only; labels and tooltips are passed in already
// formatted from the API's exact strings. Charts are drawn at the container's width and
// scale with it; nothing here reads or writes style attributes (the page's CSP forbids it).
"use strict";

const Chart = (() => {
  const NS = "http://www.w3.org/2000/svg";
  const PAD = { top: 12, right: 16, bottom: 28, left: 72 };

  function svg(tag, attrs, parent) {
    const node = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (parent) parent.appendChild(node);
    return node;
  }

  function text(parent, x, y, content, attrs) {
    const node = svg("text", { x, y, ...(attrs || {}) }, parent);
    node.textContent = content;
    return node;
  }

  function tip(node, content) {
    const t = svg("title", {}, node);
    t.textContent = content;
  }

  // 1, 2 or 5 times a power of ten, so ticks read as round numbers.
  function niceStep(max, count) {
    const raw = max / count;
    if (!(raw > 0)) return 1;
    const power = 10 ** Math.floor(Math.log10(raw));
    const n = raw / power;
    return (n <= 1 ? 1 : n <= 2 ? 2 : n <= 5 ? 5 : 10) * power;
  }

  function frame(el, height) {
    el.replaceChildren();
    const width = Math.max(320, el.clientWidth || 720);
    const root = svg("svg", {
      viewBox: `0 0 ${width} ${height}`,
      width: "100%",
      class: "chart",
      role: "img",
    }, el);
    return { root, width, height };
  }

  function empty(el, message) {
    el.replaceChildren();
    const p = document.createElement("p");
    p.className = "muted chart-empty";
    p.textContent = message || "No data yet.";
    el.appendChild(p);
  }

  // A time series: points in order; x labels are thinned to fit.
  function series(el, opts) {
    const points = opts.points || [];
    if (!points.length) return empty(el, opts.empty);
    const format = opts.format || String;
    const { root, width, height } = frame(el, opts.height || 220);
    const plotW = width - PAD.left - PAD.right;
    const plotH = height - PAD.top - PAD.bottom;
    const max = Math.max(...points.map((p) => p.value), 0);
    const step = niceStep(max || 1, 4);
    const top = Math.max(step, Math.ceil(max / step) * step);
    const y = (v) => PAD.top + plotH - (v / top) * plotH;
    const slot = plotW / points.length;
    const x = (i) => PAD.left + slot * (i + 0.5);

    const axis = svg("g", { class: "axis" }, root);
    for (let v = 0; v <= top + step / 2; v += step) {
      svg("line", { x1: PAD.left, x2: width - PAD.right, y1: y(v), y2: y(v), class: "grid" }, axis);
      text(axis, PAD.left - 8, y(v) + 4, format(v), { "text-anchor": "end" });
    }
    const every = Math.max(1, Math.ceil(points.length / Math.max(1, Math.floor(plotW / 90))));
    points.forEach((p, i) => {
      if (i % every === 0 || i === points.length - 1) {
        text(axis, x(i), height - 8, p.label, { "text-anchor": "middle" });
      }
    });

    const marks = svg("g", { class: "marks" }, root);
    if (opts.kind === "columns") {
      const w = Math.max(2, Math.min(40, slot * 0.7));
      points.forEach((p, i) => {
        const bar = svg("rect", {
          x: x(i) - w / 2,
          y: y(p.value),
          width: w,
          height: Math.max(0, PAD.top + plotH - y(p.value)),
          class: "bar",
        }, marks);
        tip(bar, p.title || `${p.label}: ${format(p.value)}`);
      });
    } else {
      const path = points.map((p, i) => `${i ? "L" : "M"}${x(i)},${y(p.value)}`).join(" ");
      const area = `${path} L${x(points.length - 1)},${y(0)} L${x(0)},${y(0)} Z`;
      svg("path", { d: area, class: "area" }, marks);
      svg("path", { d: path, class: "line" }, marks);
      points.forEach((p, i) => {
        const dot = svg("circle", { cx: x(i), cy: y(p.value), r: 3.5, class: "dot" }, marks);
        tip(dot, p.title || `${p.label}: ${format(p.value)}`);
      });
    }
    return root;
  }

  // Horizontal bars, largest first as given; the value's text sits at the bar's end.
  function bars(el, opts) {
    const items = opts.items || [];
    if (!items.length) return empty(el, opts.empty);
    const rowH = 26;
    const labelW = 200;
    const valueW = 110;
    const { root, width } = frame(el, items.length * rowH + 8);
    const plotW = Math.max(40, width - labelW - valueW - 16);
    const max = Math.max(...items.map((i) => i.value), 0) || 1;
    items.forEach((item, i) => {
      const top = 4 + i * rowH;
      const g = svg("g", { class: "row" }, root);
      const label = item.label.length > 28 ? item.label.slice(0, 27) + "…" : item.label;
      text(g, labelW - 8, top + 17, label, { "text-anchor": "end", class: "label" });
      const bar = svg("rect", {
        x: labelW,
        y: top + 4,
        width: Math.max(1, (item.value / max) * plotW),
        height: rowH - 8,
        rx: 3,
        class: "bar",
      }, g);
      tip(bar, `${item.label}: ${item.text}`);
      text(g, labelW + (item.value / max) * plotW + 8, top + 17, item.text, { class: "value" });
    });
    return root;
  }

  return { series, bars, niceStep };
})();
