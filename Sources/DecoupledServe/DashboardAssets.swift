// The dashboard page: HTML, style and script, compiled into the binary so that `decoupled
// serve` works from an installed copy and never loads anything from the internet (the
// Content-Security-Policy header allows only this server's own files).
//
// The script polls the JSON API every two seconds and draws with SVG elements it creates:
// the runs table, learning curves (test error and training loss against epoch), one heatmap
// per method and the verdict. Curves fetch only the records they do not have yet
// (`?since=N`). Data is inserted as text nodes, never as HTML.

enum DashboardAssets {
    static let html = #"""
    <!doctype html>
    <html lang="en">
    <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>decoupled serve</title>
    <link rel="stylesheet" href="dashboard.css">
    <script src="dashboard.js" defer></script>
    </head>
    <body>
    <header>
      <h1 id="title">decoupled serve</h1>
      <p id="headline" class="muted">loading…</p>
      <p id="error" class="error" hidden></p>
    </header>
    <section id="verdict-section" hidden>
      <h2>Study verdict</h2>
      <p id="verdict-selection" class="muted"></p>
      <ul id="verdict"></ul>
      <table id="verdict-selected"></table>
    </section>
    <section id="curves-section">
      <h2>Learning curves</h2>
      <p id="curves-note" class="muted"></p>
      <div class="charts">
        <figure><figcaption>test error (%) — dashed: validation error</figcaption><svg id="chart-error" class="chart" width="560" height="300"></svg></figure>
        <figure><figcaption>training data loss (log scale)</figcaption><svg id="chart-loss" class="chart" width="560" height="300"></svg></figure>
      </div>
      <div id="legend" class="legend"></div>
    </section>
    <section id="heatmaps-section" hidden>
      <h2>Heatmaps</h2>
      <p id="heatmaps-note" class="muted"></p>
      <div id="heatmaps" class="heatmaps"></div>
    </section>
    <section id="runs-section">
      <h2>Runs</h2>
      <p class="muted">Click a row to add or remove its curves.</p>
      <div class="table-wrap"><table id="runs"><thead></thead><tbody></tbody></table></div>
      <ul id="problems" class="error"></ul>
    </section>
    <footer class="muted">Served read-only by <code>decoupled serve</code>; updates every 2 s. <span id="updated"></span></footer>
    </body>
    </html>
    """#

    static let style = #"""
    body { font: 14px/1.4 "DejaVu Sans", system-ui, sans-serif; margin: 16px 24px; color: #1a1a1a; background: #fff; }
    h1 { font-size: 20px; margin: 0 0 4px; }
    h2 { font-size: 16px; margin: 20px 0 6px; border-bottom: 1px solid #ddd; padding-bottom: 2px; }
    .muted { color: #666; margin: 2px 0; }
    .error { color: #b00020; }
    code { font-size: 13px; }
    .charts { display: flex; flex-wrap: wrap; gap: 12px; }
    figure { margin: 0; }
    figcaption { font-size: 12px; color: #444; }
    svg.chart { border: 1px solid #e4e4e4; background: #fcfcfc; }
    svg text { font: 11px "DejaVu Sans", sans-serif; fill: #333; }
    .axis line, .axis path { stroke: #999; }
    .grid line { stroke: #eee; }
    path.curve { fill: none; stroke-width: 1.8; }
    path.curve.validation { stroke-dasharray: 5 3; stroke-width: 1.4; }
    .legend { display: flex; flex-wrap: wrap; gap: 4px 16px; font-size: 12px; margin-top: 4px; }
    .legend span.swatch { display: inline-block; width: 18px; height: 3px; vertical-align: middle; margin-right: 4px; }
    .heatmaps { display: flex; flex-wrap: wrap; gap: 16px; }
    .heatmaps figure svg text.value { font-size: 12px; }
    .heatmaps figure svg text.missing { font-size: 10px; fill: #555; }
    .heatmaps figure svg text.seeds { font-size: 9px; }
    .table-wrap { max-height: 420px; overflow: auto; border: 1px solid #e4e4e4; }
    table { border-collapse: collapse; font-size: 13px; }
    th, td { padding: 3px 10px; text-align: left; white-space: nowrap; }
    thead th { position: sticky; top: 0; background: #f3f3f3; }
    tbody tr { cursor: pointer; }
    tbody tr:nth-child(even) { background: #fafafa; }
    tbody tr.plotted td:first-child { box-shadow: inset 4px 0 0 var(--run-colour, #0072B2); }
    td.reason { white-space: normal; max-width: 420px; color: #555; }
    .status { font-weight: 600; }
    .status-completed { color: #1b7a2e; }
    .status-running { color: #0a5fb4; }
    .status-pending { color: #777; }
    .status-preempted { color: #b36b00; }
    .status-diverged, .status-failed { color: #b00020; }
    #verdict li { margin: 2px 0; }
    #verdict-selected td, #verdict-selected th { padding: 2px 10px; }
    footer { margin-top: 24px; font-size: 12px; }
    """#

    static let script = #"""
    "use strict";
    // The dashboard of `decoupled serve`: polls the JSON API and redraws. No libraries.
    const SVG = "http://www.w3.org/2000/svg";
    const COLOURS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"];
    const VIRIDIS = [[0x44, 0x01, 0x54], [0x3b, 0x52, 0x8b], [0x21, 0x91, 0x8c], [0x5e, 0xc9, 0x62], [0xfd, 0xe7, 0x25]];
    const POLL_MS = 2000;
    const MAX_DEFAULT_CURVES = 6;

    const state = {
      runs: [],          // the latest /api/runs rows
      kind: null,
      metrics: {},       // id -> {records: [], next: 0}
      chosen: null,      // ids the user picked by clicking rows; null: the automatic choice
      bestRuns: [],      // the selected run of each heatmap
      polls: 0,
    };

    function el(tag, attrs, text) {
      const e = document.createElement(tag);
      for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
      if (text !== undefined && text !== null) e.textContent = String(text);
      return e;
    }
    function svg(tag, attrs, text) {
      const e = document.createElementNS(SVG, tag);
      for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
      if (text !== undefined && text !== null) e.textContent = String(text);
      return e;
    }
    // The API writes non-finite numbers as the strings "NaN", "Infinity": not plottable.
    function num(v) { return typeof v === "number" && isFinite(v) ? v : null; }
    function fmt(v, digits) { return num(v) === null ? "–" : Number(v).toPrecision(digits || 3).replace(/\.?0+(e|$)/, "$1"); }

    async function getJSON(path) {
      const r = await fetch(path, { cache: "no-store" });
      const body = await r.json().catch(() => null);
      if (!r.ok) throw new Error((body && body.error) || (path + ": HTTP " + r.status));
      return body;
    }

    function showError(message) {
      const e = document.getElementById("error");
      e.hidden = !message;
      e.textContent = message || "";
    }

    // MARK: runs

    function runLabel(r) {
      if (state.kind !== "sweep") return r.id;
      return r.method + " lr " + fmt(r.lr) + " λ " + fmt(r.decay) + " seed " + r.seed;
    }

    function plottedIDs() {
      if (state.chosen) return state.chosen.filter(id => state.runs.some(r => r.id === id));
      if (state.kind !== "sweep") return state.runs.map(r => r.id);
      const running = state.runs.filter(r => r.state === "running").map(r => r.id);
      const best = state.bestRuns.filter(id => !running.includes(id));
      let ids = running.concat(best).slice(0, MAX_DEFAULT_CURVES);
      if (ids.length === 0) ids = state.runs.filter(r => r.state === "completed").slice(-4).map(r => r.id);
      return ids;
    }

    function colourOf(id, ids) { return COLOURS[ids.indexOf(id) % COLOURS.length]; }

    function renderRuns(payload) {
      document.getElementById("title").textContent =
        (payload.kind === "sweep" ? "sweep " : "run ") + payload.name;
      document.title = payload.name + " — decoupled serve";
      const c = payload.counts;
      document.getElementById("headline").textContent = payload.directory + " · " + payload.runs.length +
        (payload.runs.length === 1 ? " run: " : " runs: ") + c.done + " done, " + c.running + " running, " +
        c.pending + " pending, " + c.failed + " failed";
      document.getElementById("updated").textContent = "Last update " + payload.updated + ".";

      const sweep = payload.kind === "sweep";
      const head = ["id", "status"].concat(sweep ? ["method", "lr", "decay", "seed"] : [])
        .concat(["test acc", "step", "reason"]);
      const thead = document.querySelector("#runs thead");
      thead.replaceChildren(el("tr"));
      for (const h of head) thead.firstChild.appendChild(el("th", {}, h));

      const ids = plottedIDs();
      const tbody = document.querySelector("#runs tbody");
      tbody.replaceChildren();
      for (const r of payload.runs) {
        const tr = el("tr", { "data-run-id": r.id, "data-state": r.state });
        if (ids.includes(r.id)) { tr.classList.add("plotted"); tr.style.setProperty("--run-colour", colourOf(r.id, ids)); }
        tr.appendChild(el("td", {}, r.id));
        const status = r.state + (r.lock_holder ? " (pid " + r.lock_holder + ")" : "");
        tr.appendChild(el("td", { class: "status status-" + r.state }, status));
        if (sweep) {
          tr.appendChild(el("td", {}, r.method));
          tr.appendChild(el("td", {}, fmt(r.lr)));
          tr.appendChild(el("td", {}, fmt(r.decay)));
          tr.appendChild(el("td", {}, r.seed));
        }
        tr.appendChild(el("td", {}, num(r.final_test_acc) === null ? "–" : (r.final_test_acc * 100).toFixed(2) + " %"));
        // A running run has no summary yet: its newest metrics record says how far it is.
        const step = r.progress ? r.progress.step + " (epoch " + r.progress.epoch.toFixed(2) + ")"
          : r.step === undefined || r.step === null ? "–" : r.step + (r.steps_total ? "/" + r.steps_total : "");
        tr.appendChild(el("td", {}, step));
        tr.appendChild(el("td", { class: "reason" }, r.reason || ""));
        tr.addEventListener("click", () => toggleRun(r.id));
        tbody.appendChild(tr);
      }
      const problems = document.getElementById("problems");
      problems.replaceChildren();
      for (const p of payload.problems) problems.appendChild(el("li", {}, p));
    }

    function toggleRun(id) {
      const ids = plottedIDs();
      state.chosen = ids.includes(id) ? ids.filter(x => x !== id) : ids.concat([id]);
      refresh();
    }

    // MARK: metrics

    // A run whose log cannot be read keeps the records it had; the reader's message (file,
    // line and key) goes into `problems`, and the other runs are still drawn.
    async function updateMetrics(ids, problems) {
      for (const id of ids) {
        const m = state.metrics[id] || (state.metrics[id] = { records: [], next: 0 });
        try {
          const url = "api/runs/" + encodeURIComponent(id) + "/metrics?since=";
          let p = await getJSON(url + m.next);
          // Steps only grow within a log; a new record at or before the last one held means
          // a resume trimmed the log and wrote it again: start this run's curves over.
          const last = m.records[m.records.length - 1];
          if (!p.reset && last && p.records.length && p.records[0].step <= last.step) p = await getJSON(url + "0");
          m.records = p.reset || p.since === 0 ? p.records : m.records.concat(p.records);
          m.next = p.next;
        } catch (e) {
          problems.push("metrics of " + id + ": " + e.message);
        }
      }
    }

    // MARK: charts

    function niceTicks(lo, hi, count) {
      if (!(hi > lo)) { hi = lo + 1; }
      const raw = (hi - lo) / count, mag = Math.pow(10, Math.floor(Math.log10(raw)));
      const step = [1, 2, 2.5, 5, 10].map(f => f * mag).find(s => s >= raw);
      const ticks = [];
      for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) ticks.push(+t.toPrecision(12));
      return ticks;
    }
    function logTicks(lo, hi) {
      const ticks = [];
      for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
        for (const m of (Math.log10(hi / lo) < 1.5 ? [1, 2, 5] : [1])) {
          const t = m * Math.pow(10, e);
          if (t >= lo && t <= hi) ticks.push(t);
        }
      }
      return ticks;
    }

    // series: [{id, colour, cls, points: [[x, y]]}]; draws into the <svg> `node`.
    function drawChart(node, series, opts) {
      const W = +node.getAttribute("width"), H = +node.getAttribute("height");
      const m = { l: 52, r: 12, t: 10, b: 34 };
      node.replaceChildren();
      const all = series.flatMap(s => s.points).filter(p => p[1] !== null && (!opts.log || p[1] > 0));
      node.setAttribute("data-series", String(series.length));
      if (all.length === 0) {
        node.appendChild(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "empty" }, "no records yet"));
        return;
      }
      let x0 = 0, x1 = Math.max(...all.map(p => p[0]));
      if (!(x1 > x0)) x1 = x0 + 1;
      let y0 = Math.min(...all.map(p => p[1])), y1 = Math.max(...all.map(p => p[1]));
      const tr = opts.log ? (v => Math.log10(v)) : (v => v);
      if (opts.log) { if (y1 / y0 < 1.2) { y0 /= 1.1; y1 *= 1.1; } }
      else { const pad = (y1 - y0) * 0.05 || Math.abs(y1) * 0.05 || 1; y0 = Math.max(opts.floor ?? -Infinity, y0 - pad); y1 += pad; }
      const X = v => m.l + (v - x0) / (x1 - x0) * (W - m.l - m.r);
      const Y = v => H - m.b - (tr(v) - tr(y0)) / (tr(y1) - tr(y0)) * (H - m.t - m.b);
      const grid = svg("g", { class: "grid" }), axis = svg("g", { class: "axis" });
      node.appendChild(grid); node.appendChild(axis);
      for (const t of niceTicks(x0, x1, 6)) {
        grid.appendChild(svg("line", { x1: X(t), x2: X(t), y1: m.t, y2: H - m.b }));
        axis.appendChild(svg("text", { x: X(t), y: H - m.b + 14, "text-anchor": "middle" }, fmt(t, 4)));
      }
      for (const t of (opts.log ? logTicks(y0, y1) : niceTicks(y0, y1, 5))) {
        grid.appendChild(svg("line", { x1: m.l, x2: W - m.r, y1: Y(t), y2: Y(t) }));
        axis.appendChild(svg("text", { x: m.l - 4, y: Y(t) + 4, "text-anchor": "end" }, fmt(t, 3)));
      }
      axis.appendChild(svg("line", { x1: m.l, x2: W - m.r, y1: H - m.b, y2: H - m.b }));
      axis.appendChild(svg("line", { x1: m.l, x2: m.l, y1: m.t, y2: H - m.b }));
      axis.appendChild(svg("text", { x: (m.l + W - m.r) / 2, y: H - 4, "text-anchor": "middle" }, "epoch"));
      for (const s of series) {
        const pts = s.points.filter(p => p[1] !== null && (!opts.log || p[1] > 0));
        if (pts.length === 0) continue;
        const d = pts.map((p, i) => (i ? "L" : "M") + X(p[0]).toFixed(1) + " " + Y(p[1]).toFixed(1)).join(" ");
        node.appendChild(svg("path", { class: "curve " + s.cls, d: pts.length === 1 ? d + " l 0.1 0" : d, stroke: s.colour,
                                       "data-run": s.id, "data-points": String(pts.length) }));
        if (pts.length <= 40) {
          for (const p of pts) node.appendChild(svg("circle", { cx: X(p[0]), cy: Y(p[1]), r: 2.2, fill: s.colour }));
        }
      }
    }

    function renderCurves(ids) {
      const errors = [], losses = [];
      const legend = document.getElementById("legend");
      legend.replaceChildren();
      for (const id of ids) {
        const records = (state.metrics[id] || { records: [] }).records;
        const colour = colourOf(id, ids);
        const evals = records.filter(r => num(r.test_acc) !== null);
        errors.push({ id, colour, cls: "test", points: evals.map(r => [r.epoch, (1 - r.test_acc) * 100]) });
        const vals = records.filter(r => num(r.val_acc) !== null);
        if (vals.length) errors.push({ id, colour, cls: "validation", points: vals.map(r => [r.epoch, (1 - r.val_acc) * 100]) });
        losses.push({ id, colour, cls: "train", points: records.filter(r => num(r.data_loss) !== null).map(r => [r.epoch, r.data_loss]) });
        const run = state.runs.find(r => r.id === id);
        const item = el("span", { "data-run": id });
        const swatch = el("span", { class: "swatch" }); swatch.style.background = colour;
        item.appendChild(swatch);
        item.appendChild(document.createTextNode(run ? runLabel(run) + (state.kind === "sweep" ? " (" + id + ")" : "") : id));
        legend.appendChild(item);
      }
      drawChart(document.getElementById("chart-error"), errors, { floor: 0 });
      drawChart(document.getElementById("chart-loss"), losses, { log: true });
      document.getElementById("curves-note").textContent = ids.length === 0 ? "No run to plot yet." :
        (state.chosen ? "Runs you picked." : state.kind === "sweep" ? "Running runs and each method's selected run (click rows to choose)." : "");
    }

    // MARK: heatmaps

    function viridis(t) {
      t = Math.min(1, Math.max(0, t)) * (VIRIDIS.length - 1);
      const i = Math.min(VIRIDIS.length - 2, Math.floor(t)), f = t - i;
      const c = VIRIDIS[i].map((a, k) => Math.round(a + (VIRIDIS[i + 1][k] - a) * f));
      return { fill: "rgb(" + c.join(",") + ")", ink: t / (VIRIDIS.length - 1) < 0.62 ? "#ffffff" : "#1a1a1a" };
    }

    function renderHeatmaps(set) {
      const section = document.getElementById("heatmaps-section");
      section.hidden = !set;
      if (!set) { state.bestRuns = []; return; }
      state.bestRuns = set.grids.map(g => g.selected_run).filter(Boolean);
      document.getElementById("heatmaps-note").textContent = set.metric + " (%), mean over the completed seeds; " +
        "red outline: " + set.selection + "; grey: no completed run (status shown)" +
        (set.colour_capped ? "; colours saturate above " + fmt(set.colour_high) + " %" : "") + ".";
      const box = document.getElementById("heatmaps");
      box.replaceChildren();
      const cw = 74, ch = 40, left = 64, top = 8, bottom = 40;
      for (const g of set.grids) {
        const W = left + cw * g.lrs.length + 10, H = top + ch * g.decays.length + bottom;
        const fig = el("figure", { "data-method": g.method });
        fig.appendChild(el("figcaption", {}, g.method));
        const s = svg("svg", { width: W, height: H, class: "heatmap" });
        g.cells.forEach((c, i) => {
          const xi = i % g.lrs.length, yi = Math.floor(i / g.lrs.length);
          const x = left + xi * cw, y = top + (g.decays.length - 1 - yi) * ch;
          const hasValue = num(c.mean) !== null && set.colour_low !== null;
          const colour = hasValue ? viridis((c.mean - set.colour_low) / ((set.colour_high - set.colour_low) || 1)) : null;
          s.appendChild(svg("rect", { x: x + 1, y: y + 1, width: cw - 2, height: ch - 2, class: "cell" + (hasValue ? " done" : " missing"),
                                      fill: colour ? colour.fill : (c.seeds ? "#d4d4d4" : "#ededed"),
                                      "data-lr": c.lr, "data-decay": c.decay }));
          if (hasValue) {
            // Ink through the style object: the page's policy refuses style attributes.
            const value = svg("text", { x: x + cw / 2, y: y + ch / 2 + (c.completed < c.seeds ? 0 : 4), "text-anchor": "middle",
                                        class: "value" }, c.mean.toFixed(1));
            value.style.fill = colour.ink;
            s.appendChild(value);
            if (c.completed < c.seeds) {
              const seeds = svg("text", { x: x + cw / 2, y: y + ch / 2 + 13, "text-anchor": "middle", class: "seeds" },
                                c.completed + " of " + c.seeds + " seeds");
              seeds.style.fill = colour.ink;
              s.appendChild(seeds);
            }
          } else {
            // The report says "pending" for a run without a summary; live, some of those are running.
            const running = c.runs.some(id => state.runs.some(r => r.id === id && r.state === "running"));
            s.appendChild(svg("text", { x: x + cw / 2, y: y + ch / 2 + 4, "text-anchor": "middle", class: "missing" },
                              running ? "running" : (c.missing || "")));
          }
          if (c.selected) {
            s.appendChild(svg("rect", { x: x + 1, y: y + 1, width: cw - 2, height: ch - 2, fill: "none", stroke: "#ff2d20",
                                        "stroke-width": 3, class: "selected" }));
          }
        });
        g.lr_labels.forEach((l, i) => s.appendChild(svg("text", { x: left + i * cw + cw / 2, y: top + ch * g.decays.length + 14,
                                                                  "text-anchor": "middle" }, l)));
        s.appendChild(svg("text", { x: left + cw * g.lrs.length / 2, y: H - 6, "text-anchor": "middle" }, "learning rate"));
        const yTitle = top + ch * g.decays.length / 2;
        s.appendChild(svg("text", { x: 12, y: yTitle, "text-anchor": "middle", transform: "rotate(-90 12 " + yTitle + ")" }, "decay λ"));
        g.decay_labels.forEach((l, i) => s.appendChild(svg("text", { x: left - 6, y: top + (g.decays.length - 1 - i) * ch + ch / 2 + 4,
                                                                     "text-anchor": "end" }, l)));
        fig.appendChild(s);
        box.appendChild(fig);
      }
    }

    // MARK: verdict

    function renderVerdict(v) {
      const section = document.getElementById("verdict-section");
      section.hidden = !v;
      if (!v) return;
      document.getElementById("verdict-selection").textContent = "Selection: " + v.selection + ". " + v.seeds +
        (v.seeds === 1 ? " seed" : " seeds") + "; " + v.incomplete_runs + " runs did not complete.";
      const list = document.getElementById("verdict");
      list.replaceChildren();
      for (const s of v.statements) list.appendChild(el("li", {}, s));
      const table = document.getElementById("verdict-selected");
      table.replaceChildren();
      if (v.selected.length) {
        const h = el("tr");
        for (const c of ["method", "lr", "decay", "val loss", "test error (%)", "zeros (%)"]) h.appendChild(el("th", {}, c));
        table.appendChild(h);
      }
      for (const s of v.selected) {
        const tr = el("tr");
        const percent = v => num(v) === null ? "–" : (v * 100).toFixed(2);
        for (const c of [s.method, fmt(s.lr), fmt(s.decay), fmt(s.val_loss.mean, 4), percent(s.test_error.mean),
                         percent(s.zero_fraction.mean)]) tr.appendChild(el("td", {}, c));
        table.appendChild(tr);
      }
    }

    // MARK: the loop

    let timer = null;
    async function refresh() {
      clearTimeout(timer);
      try {
        const runs = await getJSON("api/runs");
        state.kind = runs.kind;
        state.runs = runs.runs;
        const problems = [];
        if (runs.kind === "sweep") {
          try { renderHeatmaps(await getJSON("api/heatmaps")); } catch (e) { problems.push("heatmaps: " + e.message); }
          try { renderVerdict(await getJSON("api/verdict")); } catch (e) { problems.push("verdict: " + e.message); }
        }
        renderRuns(runs);
        const ids = plottedIDs();
        await updateMetrics(ids, problems);
        renderCurves(ids);
        showError(problems.join(" · "));
      } catch (e) {
        showError("Cannot update: " + e.message);
      }
      state.polls += 1;
      document.body.setAttribute("data-polls", String(state.polls));
      timer = setTimeout(refresh, POLL_MS);
    }
    refresh();
    """#
}
