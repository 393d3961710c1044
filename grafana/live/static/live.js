// The live view's page: asks /api/dashboards/<uid>/data and hands every panel to plotly.
// Panel options come from the dashboard JSON (Grafana's model): units, thresholds, colours, overrides.
"use strict";

const BOOT = JSON.parse(document.getElementById("boot").textContent);
const PANELS = JSON.parse(document.getElementById("panels").textContent);
// Grafana's named colours and its classic palette, so a dashboard looks as it does in Grafana.
const NAMED = {
  green: "#73BF69", red: "#F2495C", orange: "#FF9830", yellow: "#FADE2A", blue: "#5794F2",
  purple: "#B877D9", "dark-green": "#37872D", "dark-red": "#C4162A", "dark-orange": "#FA6400",
  "dark-yellow": "#E0B400", "dark-blue": "#1F60C4", "dark-purple": "#8F3BB8", text: "#ccccdc",
};
const PALETTE = ["#7EB26D", "#EAB839", "#6ED0E0", "#EF843C", "#E24D42", "#1F78C1", "#BA43A6",
  "#705DA0", "#508642", "#CCA300", "#447EBC", "#C15C17"];
const SCHEMES = {
  Oranges: [[0, "#fff5eb"], [0.5, "#fd8d3c"], [1, "#7f2704"]],
  Blues: "Blues", Greens: "Greens", Reds: "Reds", Viridis: "Viridis", YlOrRd: "YlOrRd",
};
const FONT = { color: "#ccccdc", size: 11 };
const CONFIG = { displayModeBar: false, responsive: true, staticPlot: false };
let timer = null;
let drawing = false;
let again = false; // a change while drawing: draw once more after

function colour(name) { return NAMED[name] || name || PALETTE[0]; }

function alpha(hex, opacity) {
  const m = /^#([0-9a-f]{6})$/i.exec(hex);
  if (!m) return hex;
  const n = parseInt(m[1], 16);
  return `rgba(${n >> 16}, ${(n >> 8) & 255}, ${n & 255}, ${opacity})`;
}

// Grafana unit id -> d3 format, prefix and suffix, as plotly takes them.
function unitFormat(unit, decimals) {
  const fixed = decimals === null || decimals === undefined ? null : decimals;
  const si = fixed === null ? ".3~s" : `.${fixed}f`;
  switch (unit) {
    case "percentunit": return { format: fixed === null ? ".2~%" : `.${fixed}%`, prefix: "", suffix: "" };
    case "percent": return { format: fixed === null ? ".2~f" : `.${fixed}f`, prefix: "", suffix: "%" };
    case "s": return { format: ".3~s", prefix: "", suffix: "s" };
    case "ms": return { format: ".3~s", prefix: "", suffix: "s", scale: 0.001 };
    case "bytes": case "decbytes": return { format: ".3~s", prefix: "", suffix: "B" };
    case "ops": return { format: si, prefix: "", suffix: " ops/s" };
    case "opm": return { format: si, prefix: "", suffix: " ops/min" };
    case "reqps": return { format: si, prefix: "", suffix: " req/s" };
    case "currencyUSD": return { format: fixed === null ? ",.2f" : `,.${fixed}f`, prefix: "$", suffix: "" };
    case "none": case "": case undefined: case null: return { format: si, prefix: "", suffix: "" };
    default:
      if (String(unit).startsWith("suffix:")) return { format: si, prefix: "", suffix: unit.slice(7) };
      if (String(unit).startsWith("prefix:")) return { format: si, prefix: unit.slice(7), suffix: "" };
      return { format: si, prefix: "", suffix: unit === "short" ? "" : ` ${unit}` };
  }
}

function scaled(values, fmt) { return fmt.scale ? values.map(v => (v === null ? null : v * fmt.scale)) : values; }

function thresholdColour(steps, value) {
  let found = steps.length ? steps[0].color : "green";
  for (const step of steps) if (step.value === null || value >= step.value) found = step.color;
  return colour(found);
}

function reduce(values, calc) {
  const known = values.filter(v => v !== null);
  if (!known.length) return null;
  switch (calc) {
    case "last": return values[values.length - 1];
    case "first": return values[0];
    case "firstNotNull": return known[0];
    case "mean": return known.reduce((a, b) => a + b, 0) / known.length;
    case "sum": return known.reduce((a, b) => a + b, 0);
    case "max": return Math.max(...known);
    case "min": return Math.min(...known);
    case "count": return known.length;
    default: return known[known.length - 1]; // lastNotNull
  }
}

// Override properties by series/column name: {name: {propertyId: value}}.
function overrides(view) {
  const out = {};
  for (const o of view.overrides || []) {
    const m = o.matcher || {};
    if (m.id !== "byName") continue;
    out[m.options] = Object.assign(out[m.options] || {}, ...(o.properties || []).map(p => ({ [p.id]: p.value })));
  }
  return out;
}

function baseLayout(view) {
  return {
    paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)", font: FONT,
    margin: { l: 50, r: 12, t: 6, b: 24 }, showlegend: false,
  };
}

function noData(layout, text) {
  layout.annotations = [{ text: text || "No data", showarrow: false, xref: "paper", yref: "paper",
    x: 0.5, y: 0.5, font: { size: 14, color: "#8e8e99" } }];
  layout.xaxis = { visible: false }; layout.yaxis = { visible: false };
  return layout;
}

function timeseries(view, frame) {
  const fmt = unitFormat(view.unit, view.decimals);
  const over = overrides(view);
  const custom = view.custom || {};
  const series = frame.series || [];
  const colours = {};
  series.forEach((s, i) => { colours[s.name] = PALETTE[i % PALETTE.length]; });
  // A band: "upper" filled down to "lower" (custom.fillBelowTo); lower goes first, in the upper's colour.
  const lowerOf = {};
  for (const [name, props] of Object.entries(over)) if (props["custom.fillBelowTo"]) lowerOf[props["custom.fillBelowTo"]] = name;
  const ordered = [...series].sort((a, b) => (lowerOf[a.name] === b.name ? -1 : lowerOf[b.name] === a.name ? 1 : 0));
  const traces = ordered.map(s => {
    const props = over[s.name] || {};
    const fixed = props.color && props.color.fixedColor;
    const band = lowerOf[s.name] || (props["custom.fillBelowTo"] ? s.name : null);
    const c = colour(fixed || (band ? colours[band] : colours[s.name]));
    const width = props["custom.lineWidth"] ?? custom.lineWidth ?? 1;
    const trace = {
      type: "scatter", mode: "lines", name: s.name, x: s.t, y: scaled(s.v, fmt), connectgaps: false,
      line: { color: c, width: width, dash: props["custom.lineStyle"] ? "dash" : "solid" },
      hovertemplate: `%{y:${fmt.format}}${fmt.suffix}<extra>${s.name}</extra>`,
      showlegend: !band || props["custom.fillBelowTo"] !== undefined,
    };
    const opacity = (props["custom.fillOpacity"] ?? custom.fillOpacity ?? 0) / 100;
    if (props["custom.fillBelowTo"]) { trace.fill = "tonexty"; trace.fillcolor = alpha(c, opacity || 0.2); }
    else if (opacity > 0) { trace.fill = "tozeroy"; trace.fillcolor = alpha(c, opacity); }
    return trace;
  });
  const layout = baseLayout(view);
  if (!traces.some(t => t.y.some(v => v !== null))) return [traces, noData(layout)];
  layout.showlegend = true;
  layout.legend = { orientation: "h", y: -0.12, font: FONT };
  layout.margin.b = 40;
  layout.xaxis = { type: "date", gridcolor: "#2c3235", range: [frameWindow.start, frameWindow.end] };
  layout.yaxis = { automargin: true, gridcolor: "#2c3235", tickformat: fmt.format, ticksuffix: fmt.suffix, tickprefix: fmt.prefix,
    rangemode: view.min === 0 ? "tozero" : "normal" };
  if (view.min !== null && view.max !== null && view.min !== undefined && view.max !== undefined) layout.yaxis.range = [view.min, view.max];
  const style = (custom.thresholdsStyle || {}).mode;
  if (style && style !== "off") {
    layout.shapes = view.thresholds.filter(s => s.value !== null).map(s => ({
      type: "line", xref: "paper", x0: 0, x1: 1, y0: s.value, y1: s.value,
      line: { color: colour(s.color), width: 1, dash: style === "dashed" ? "dash" : "solid" },
    }));
  }
  return [traces, layout];
}

function stat(view, frame) {
  const fmt = unitFormat(view.unit, view.decimals);
  const series = (frame.series || []).slice(0, 4);
  const calc = ((view.options.reduceOptions || {}).calcs || ["lastNotNull"])[0];
  const layout = baseLayout(view);
  layout.margin = { l: 4, r: 4, t: 4, b: 4 };
  const values = series.map(s => reduce(scaled(s.v, fmt), calc));
  if (!values.some(v => v !== null)) return [[], noData(layout, view.noValue)];
  const background = view.options.colorMode === "background";
  const traces = [];
  series.forEach((s, i) => {
    const c = thresholdColour(view.thresholds, values[i]);
    const domain = { x: [i / series.length, (i + 1) / series.length], y: [0, 1] };
    if (view.options.graphMode !== "none") {
      const axis = i ? String(i + 1) : "";
      traces.push({ type: "scatter", mode: "lines", x: s.t, y: scaled(s.v, fmt), xaxis: `x${axis}`, yaxis: `y${axis}`,
        line: { color: background ? "rgba(255,255,255,0.6)" : c, width: 1 }, fill: "tozeroy",
        fillcolor: background ? "rgba(255,255,255,0.15)" : alpha(c, 0.15), hoverinfo: "skip", name: s.name });
      layout[`xaxis${axis}`] = { domain: domain.x, visible: false, fixedrange: true };
      layout[`yaxis${axis}`] = { domain: [0, 0.45], visible: false, fixedrange: true, rangemode: "tozero" };
    }
    traces.push({ type: "indicator", mode: "number", value: values[i], domain: domain,
      title: series.length > 1 ? { text: s.name, font: FONT } : undefined,
      number: { valueformat: fmt.format, suffix: fmt.suffix, prefix: fmt.prefix,
        font: { color: background ? "#ffffff" : c, size: 28 } } });
  });
  if (background) layout.paper_bgcolor = thresholdColour(view.thresholds, values[0]);
  return [traces, layout];
}

function gauge(view, frame) {
  const fmt = unitFormat(view.unit, view.decimals);
  const series = frame.series || [];
  const calc = ((view.options.reduceOptions || {}).calcs || ["lastNotNull"])[0];
  const layout = baseLayout(view);
  layout.margin = { l: 24, r: 24, t: 12, b: 12 };
  const value = series.length ? reduce(scaled(series[0].v, fmt), calc) : null;
  if (value === null) return [[], noData(layout)];
  const low = view.min ?? 0;
  const high = view.max ?? (view.unit === "percentunit" ? 1 : Math.max(100, value));
  const steps = view.thresholds;
  const ranges = steps.map((s, i) => ({
    range: [s.value === null ? low : s.value, i + 1 < steps.length ? steps[i + 1].value : high],
    color: alpha(colour(s.color), 0.35),
  }));
  const trace = { type: "indicator", mode: "gauge+number", value: value,
    number: { valueformat: fmt.format, suffix: fmt.suffix, prefix: fmt.prefix, font: { color: thresholdColour(steps, value) } },
    gauge: { axis: { range: [low, high], tickformat: fmt.format, tickfont: FONT,
      visible: view.options.showThresholdLabels !== false },
      bar: { color: thresholdColour(steps, value) }, bgcolor: "#22252b", borderwidth: 0,
      steps: view.options.showThresholdMarkers === false ? [] : ranges } };
  return [[trace], layout];
}

function table(view, frame) {
  const t = frame.table || { columns: [], rows: [], labels: 0 };
  const over = overrides(view);
  const layout = baseLayout(view);
  layout.margin = { l: 2, r: 2, t: 2, b: 2 };
  if (!t.rows.length) return [[], noData(layout)];
  const header = t.columns.map(c => (over[c] || {}).displayName || c);
  const formats = t.columns.map((c, i) => (i < t.labels ? null : unitFormat((over[c] || {}).unit || view.unit, (over[c] || {}).decimals ?? view.decimals)));
  const columns = t.columns.map((c, i) => t.rows.map(r => (formats[i] && r[i] !== null ? r[i] * (formats[i].scale || 1) : r[i] ?? "")));
  const trace = { type: "table",
    header: { values: header, fill: { color: "#22252b" }, font: { color: "#ccccdc", size: 12 }, align: "left", line: { color: "#2c3235" } },
    cells: { values: columns, format: formats.map(f => (f ? f.format : "")), suffix: formats.map(f => (f ? f.suffix : "")),
      prefix: formats.map(f => (f ? f.prefix : "")), fill: { color: "#181b1f" }, font: { color: "#ccccdc", size: 12 },
      align: "left", line: { color: "#2c3235" }, height: 24 } };
  return [[trace], layout];
}

function heatmap(view, frame) {
  const h = frame.heatmap || { times: [], buckets: [], counts: [] };
  const layout = baseLayout(view);
  const o = view.options || {};
  const known = h.counts.some(row => row.some(v => v !== null && v > 0));
  if (!known) return [[], noData(layout)];
  const fmt = unitFormat((o.yAxis || {}).unit || view.unit, null);
  const labels = h.buckets;
  const scheme = (o.color || {}).scheme;
  const trace = { type: "heatmap", x: h.times, y: labels, z: h.counts.map(row => row.map(v => (v === 0 ? null : v))),
    colorscale: SCHEMES[scheme] || SCHEMES.Oranges, reversescale: Boolean((o.color || {}).reverse),
    showscale: (o.legend || {}).show !== false, xgap: o.cellGap ?? 1, ygap: o.cellGap ?? 1,
    colorbar: { thickness: 8, tickfont: FONT, outlinewidth: 0 },
    hovertemplate: `le %{y}${fmt.suffix}: %{z:.3~s}<extra></extra>` };
  layout.xaxis = { type: "date", gridcolor: "#2c3235", range: [frameWindow.start, frameWindow.end] };
  layout.yaxis = { automargin: true, type: "category", gridcolor: "#2c3235", tickmode: "array", tickvals: labels,
    ticktext: labels.map(b => (b === "+Inf" ? b : `${b}${fmt.suffix}`)) };
  return [[trace], layout];
}

const DRAW = { timeseries, stat, gauge, table, heatmap };
let frameWindow = { start: 0, end: 0 };

function values() {
  const out = {};
  document.querySelectorAll("#variables select").forEach(s => { out[s.name] = s.value; });
  return out;
}

function query(vars) {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(vars)) params.set(`var-${k}`, v);
  params.set("range", document.getElementById("range").value);
  return params;
}

function showVariables(list) {
  const box = document.getElementById("variables");
  const existing = {};
  box.querySelectorAll("select").forEach(s => { existing[s.name] = s; });
  for (const v of list) {
    if (v.hidden) continue;
    let sel = existing[v.name];
    if (!sel) {
      const label = document.createElement("label");
      label.textContent = `${v.label} `;
      sel = document.createElement("select");
      sel.name = v.name; sel.id = `var-${v.name}`;
      sel.addEventListener("change", () => { sync(); draw(); });
      label.appendChild(sel); box.appendChild(label);
    }
    sel.replaceChildren(...v.options.map(o => new Option(o, o, false, o === v.value)));
    if (!v.options.includes(v.value)) sel.appendChild(new Option(v.value || "(none)", v.value, true, true));
    sel.disabled = v.fixed;
  }
}

function sync() {
  history.replaceState(null, "", `${location.pathname}?${query(values()).toString()}`);
}

function title(text, vars) {
  return text.replace(/\$\{(\w+)\}|\$(\w+)/g, (m, a, b) => (vars[a || b] ?? m));
}

function message(text) {
  const box = document.getElementById("message");
  box.hidden = !text; box.textContent = text || "";
}

async function draw() {
  if (drawing) { again = true; return; }
  drawing = true;
  again = false;
  try {
    const first = !document.querySelector("#variables select");
    const vars = first ? Object.fromEntries([...new URLSearchParams(location.search)]
      .filter(([k]) => k.startsWith("var-")).map(([k, v]) => [k.slice(4), v])) : values();
    const r = await fetch(`${BOOT.base}/api/dashboards/${encodeURIComponent(BOOT.uid)}/data?${query(vars)}`,
      { credentials: "same-origin" });
    const body = await r.json();
    if (!r.ok) {
      message(`${body.field ? body.field + ": " : ""}${body.reason || body.error}`);
      document.body.dataset.state = "error";
      return;
    }
    message("");
    frameWindow = { start: body.start, end: body.end };
    showVariables(body.variables);
    const chosen = Object.fromEntries(body.variables.map(v => [v.name, v.value]));
    let drawn = 0;
    for (const view of PANELS) {
      const section = document.getElementById(`panel-${view.id}`);
      section.querySelector(".title").textContent = title(view.title, chosen);
      const frame = body.panels[String(view.id)] || {};
      const plot = document.getElementById(`plot-${view.id}`);
      const error = section.querySelector(".error");
      if (error) { error.hidden = !(frame.errors || []).length; error.textContent = (frame.errors || []).join("; "); }
      if (view.type === "text") { plot.textContent = view.content || ""; continue; }
      const make = DRAW[view.type];
      if (!make || !plot) continue;
      const [traces, layout] = make(view, frame);
      await Plotly.react(plot, traces, layout, CONFIG);
      section.dataset.traces = String(traces.length);
      drawn += 1;
    }
    document.body.dataset.drawn = String(drawn);
    document.body.dataset.tenant = chosen.tenant || "";
    document.body.dataset.state = "ready";
    document.getElementById("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (err) {
    message(`could not draw: ${err}`);
    document.body.dataset.state = "error";
  } finally {
    drawing = false;
    if (again) draw();
  }
}

function schedule() {
  clearInterval(timer);
  const text = document.getElementById("refresh").value;
  if (text === "off") return;
  const n = parseFloat(text);
  timer = setInterval(draw, (text.endsWith("m") ? n * 60 : n) * 1000);
}

function start() {
  const params = new URLSearchParams(location.search);
  const range = document.getElementById("range");
  const wanted = params.get("range") || null;
  if (wanted && ![...range.options].some(o => o.value === wanted)) range.appendChild(new Option(wanted, wanted));
  range.value = wanted || defaultRange();
  const refresh = document.getElementById("refresh");
  const every = BOOT.refresh ? (BOOT.refresh >= 60 ? `${BOOT.refresh / 60}m` : `${BOOT.refresh}s`) : "off";
  if (![...refresh.options].some(o => o.value === every)) refresh.appendChild(new Option(every, every));
  refresh.value = every;
  range.addEventListener("change", () => { sync(); draw(); });
  refresh.addEventListener("change", schedule);
  document.getElementById("dashboard-picker").addEventListener("change", e => {
    location.href = `${BOOT.base}/d/${encodeURIComponent(e.target.value)}`;
  });
  schedule();
  draw();
}

function defaultRange() {
  const s = BOOT.range;
  const names = { 300: "5m", 900: "15m", 3600: "1h", 21600: "6h", 43200: "12h", 86400: "1d", 604800: "7d" };
  return names[s] || "1h";
}

start();
