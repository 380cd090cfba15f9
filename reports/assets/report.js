/* report.js - draws a starhil report from the JSON embedded in the page
 * (script#report-data) with Observable Plot (inlined before this script, see
 * vendor/): the front per device at a latency budget, where the presets sit,
 * hypervolume over evaluations, device topologies, sortable tables; or the
 * chip-profile comparison.  No network.  After drawing, every text label of
 * every plot is checked to lie inside its SVG (body[data-clipped]). */
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("report-data").textContent);
  var P = window.Plot;

  function htmlEl(tag, text, parent, cls) {
    var e = document.createElement(tag);
    if (text !== null && text !== undefined) e.textContent = text;
    if (cls) e.className = cls;
    if (parent) parent.appendChild(e);
    return e;
  }
  function isNum(v) { return typeof v === "number" && isFinite(v); }
  function fmtNum(v, digits) {
    if (!isNum(v)) return "-";
    var a = Math.abs(v);
    if (a !== 0 && (a >= 1e6 || a < 1e-3)) return v.toExponential(digits === undefined ? 3 : digits);
    return v.toFixed(digits === undefined ? (a >= 100 ? 1 : a >= 1 ? 3 : 4) : digits);
  }
  function mib(v) { return isNum(v) ? (v / 1048576).toFixed(2) : "-"; }
  function mega(v) { return isNum(v) ? (v / 1e6).toFixed(1) : "-"; }
  function cap(v) { return isNum(v) ? v.toFixed(4) : "not scored"; }
  function bytes(v) {
    if (!isNum(v)) return "?";
    var u = ["B", "KiB", "MiB", "GiB", "TiB"], i = 0;
    while (v >= 1024 && i < u.length - 1 && v % 1024 === 0) { v /= 1024; i++; }
    if (v >= 1024 && i < u.length - 1) { while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; } return v.toFixed(1) + " " + u[i]; }
    return v + " " + u[i];
  }

  /* "d=256 v=1024 ... | conv(3)/swiglu(64)*2 gqa(4,2,qk)/swiglu(64)": the layers after '|' */
  function layerPattern(g) {
    if (!g) return "(genome text not stored)";
    var i = g.indexOf("|");
    return i < 0 ? g : g.slice(i + 1).trim();
  }
  function globals(g) {
    if (!g) return "";
    var i = g.indexOf("|");
    return i < 0 ? "" : g.slice(0, i).trim();
  }
  function measurements(p) {
    var m = ["capability " + cap(p.capability)];
    if (isNum(p.decode_ms))
      m.push("decode " + fmtNum(p.decode_ms) + " ms/token" +
             (isNum(p.decode_ms_low) && isNum(p.decode_ms_high) ? " [" + fmtNum(p.decode_ms_low) + ", " + fmtNum(p.decode_ms_high) + "]" : ""));
    if (isNum(p.prefill_tok_s)) m.push("prefill " + fmtNum(p.prefill_tok_s) + " tok/s");
    if (isNum(p.peak_rss_bytes)) m.push("peak " + mib(p.peak_rss_bytes) + " MiB");
    if (isNum(p.cache_bytes)) m.push("cache " + mib(p.cache_bytes) + " MiB");
    if (isNum(p.params_total)) m.push(mega(p.params_total) + " M params");
    if (p.stability === "unstable" || p.stability === "disturbed")
      m.push(p.stability.toUpperCase() + " measurement" + (p.stability_reason ? " (" + p.stability_reason + ")" : ""));
    return m.join(", ");
  }
  function pointTitle(p) {
    return (p.preset ? "preset " + p.preset + " " : "") + p.hash + (p.device ? " on " + p.device : "") +
      (p.preset ? "" : (p.on_front ? ", on the front" : ", dominated")) + "\n" +
      "layers: " + layerPattern(p.genome) + "\n" + measurements(p);
  }

  /* ---- the selected genome (hover or click on any plot) ---- */
  function showDetail(box, p) {
    box.textContent = "";
    if (!p) { htmlEl("p", "Hover or click a point to see its genome here.", box, "hint"); return; }
    htmlEl("div", (p.preset ? "preset " + p.preset + ", " : "") + "genome " + p.hash +
           (p.device ? " on " + p.device : " (closed-form estimate)") +
           (p.preset ? "" : p.on_front ? ", on the front" : ", dominated"), box, "dhead");
    htmlEl("div", "layers: " + layerPattern(p.genome), box, "dlayers");
    if (globals(p.genome)) htmlEl("div", "shape: " + globals(p.genome), box, "dglobals");
    htmlEl("div", measurements(p), box, "dmeas");
  }

  /* Plot widths: three plots side by side on a wide page, fewer when narrow. */
  function plotWidth(root, perRowMax) {
    var w = Math.max(280, root.clientWidth || document.body.clientWidth || 800);
    var per = Math.max(1, Math.min(perRowMax, Math.floor(w / 420)));
    return Math.floor((w - 16 * (per - 1)) / per) - 2;
  }
  function intTicks(lo, hi) {
    var t = window.d3.ticks(lo, hi, 6).filter(function (v) { return Number.isInteger(v); });
    return t.length ? t : [Math.round(lo)];
  }

  /* The non-dominated staircase of (x low, capability high). */
  function staircase(pts, key) {
    var s = pts.filter(function (p) { return isNum(p[key]) && isNum(p.capability); })
      .slice().sort(function (a, b) { return a[key] - b[key] || b.capability - a.capability; });
    var out = [], best = -Infinity;
    s.forEach(function (p) { if (p.capability > best) { best = p.capability; out.push(p); } });
    return out;
  }
  function dominated2d(p, pts, key) {
    return pts.some(function (q) {
      return q !== p && q.capability >= p.capability && q[key] <= p[key] &&
        (q.capability > p.capability || q[key] < p[key]);
    });
  }

  var SPECS = [
    { key: "decode_ms", label: "decode latency", unit: "ms/token", scale: 1, err: true },
    { key: "peak_rss_bytes", label: "peak memory", unit: "MiB", scale: 1048576 },
    { key: "cache_bytes", label: "cache (KV + conv state)", unit: "MiB", scale: 1048576 }
  ];

  /* One scatter: capability (up) against a cost (left); front, dominated, presets,
   * the front's staircase, error bars and unstable marks when the data has them,
   * and an optional budget rule with the genome chosen under it. */
  function scatter(parent, members, presets, spec, haveRanks, width, budget, detail) {
    var ok = function (p) { return isNum(p.capability) && isNum(p[spec.key]); };
    var ms = members.filter(ok), ps = presets.filter(ok);
    var wrap = htmlEl("div", null, parent, "plotbox");
    if (ms.length + ps.length === 0) {
      htmlEl("p", "capability vs " + spec.label + ": no genome has both a capability score and " + spec.label +
             (members.length ? " (" + members.length + " not scored)" : ""), wrap, "note");
      return;
    }
    var sx = function (v) { return v / spec.scale; };
    var X = function (p) { return sx(p[spec.key]); };
    var front = [], dom = [];
    ms.forEach(function (p) { ((haveRanks ? p.on_front : !dominated2d(p, ms, spec.key)) ? front : dom).push(p); });
    var stairs = staircase(front.length ? front : ms, spec.key);
    var marks = [P.gridX(), P.gridY()];
    if (stairs.length > 1)
      marks.push(P.line(stairs, { x: X, y: "capability", curve: "step-after", stroke: "#1f6fd1", strokeOpacity: 0.45,
                                  className: "front-line" }));
    if (spec.err) {
      var withCi = ms.concat(ps).filter(function (p) { return isNum(p.decode_ms_low) && isNum(p.decode_ms_high); });
      if (withCi.length)
        marks.push(P.ruleY(withCi, { y: "capability", x1: function (p) { return sx(p.decode_ms_low); },
                                     x2: function (p) { return sx(p.decode_ms_high); }, stroke: "#555",
                                     className: "errbar" }));
    }
    if (budget !== null && spec.key === "decode_ms")
      marks.push(P.ruleX([budget], { stroke: "#c0392b", strokeDasharray: "4,3", className: "budget-rule" }));
    marks.push(P.dot(dom, { x: X, y: "capability", r: 4, fill: "#1f6fd1", fillOpacity: 0.25, className: "pts-dominated" }));
    marks.push(P.dot(front, { x: X, y: "capability", r: 5, fill: "#1f6fd1", stroke: "white", className: "pts-front" }));
    marks.push(P.dot(ps, { x: X, y: "capability", r: 6, symbol: "diamond", fill: "#e0662b", stroke: "#7a2c07",
                           className: "pts-preset" }));
    var unstable = ms.concat(ps).filter(function (p) { return p.disturbed || p.stability === "unstable"; });
    if (unstable.length)
      marks.push(P.dot(unstable, { x: X, y: "capability", r: 9, stroke: "#c0392b", strokeWidth: 1.5,
                                   className: "pts-unstable" }));
    if (detail && detail.chosen && ok(detail.chosen) && detail.chosen.device === (ms[0] || ps[0]).device)
      marks.push(P.dot([detail.chosen], { x: X, y: "capability", r: 10, stroke: "#c0392b", strokeWidth: 2,
                                          className: "pts-chosen" }));
    /* preset names beside their diamonds, towards the middle of the plot */
    var xs = ms.concat(ps).map(X), mid = (Math.min.apply(null, xs) + Math.max.apply(null, xs)) / 2;
    [["start", function (p) { return X(p) <= mid; }, 4], ["end", function (p) { return X(p) > mid; }, -4]].forEach(function (a) {
      marks.push(P.text(ps.filter(a[1]), { x: X, y: "capability", text: "preset", dy: -10, dx: a[2], fill: "#7a2c07",
                                           fontSize: 10, textAnchor: a[0], className: "preset-labels" }));
    });
    /* one pointer for everything on the plot: tip + the detail box */
    var all = ms.concat(ps);
    marks.push(P.tip(all, P.pointer({ x: X, y: "capability", title: pointTitle, maxRadius: 30 })));
    var fig = P.plot({
      width: width, height: 300, marginLeft: 56, marginRight: 24, marginTop: 28, marginBottom: 42,
      style: { fontSize: "11px", background: "white" },
      x: { label: spec.label + " (" + spec.unit + ", lower is better) \u2192", labelAnchor: "center",
           labelArrow: "none", nice: true, zero: spec.key !== "decode_ms" && false },
      y: { label: "\u2191 capability", labelArrow: "none", nice: true },
      marks: marks
    });
    fig.setAttribute("class", (fig.getAttribute("class") || "") + " plot");
    fig.setAttribute("data-metric", spec.key);
    htmlEl("div", "capability vs " + spec.label, wrap, "ptitle");
    wrap.appendChild(fig);
    if (detail) {
      fig.addEventListener("input", function () { if (fig.value) showDetail(detail.box, fig.value); });
    }
    var missing = members.length - ms.length;
    if (missing > 0) htmlEl("div", missing + " not scored or without " + spec.label + ": not shown", wrap, "pnote");
  }

  /* Which front genome is best (highest capability) at decode latency <= budget. */
  function bestUnder(front, budget) {
    var best = null;
    front.forEach(function (p) {
      if (isNum(p.decode_ms) && isNum(p.capability) && p.decode_ms <= budget && (!best || p.capability > best.capability))
        best = p;
    });
    return best;
  }

  function deviceSection(root, title, members, presets, haveRanks) {
    htmlEl("h3", title, root);
    var legend = htmlEl("div", null, root, "legend");
    legend.innerHTML = '<span><i class="sw" style="background:#1f6fd1"></i>front</span>' +
      '<span><i class="sw" style="background:#1f6fd1;opacity:.25"></i>dominated</span>' +
      '<span><i class="sw dia" style="background:#e0662b"></i>preset (reference)</span>' +
      '<span><i class="sw ring"></i>chosen at the budget / unstable</span>';
    var ctl = htmlEl("div", null, root, "budget");
    var box = htmlEl("div", null, root, "plots");
    var detailBox = htmlEl("div", null, root, "detail");
    var front = members.filter(function (p) { return haveRanks ? p.on_front : true; });
    var lat = front.concat(presets).map(function (p) { return p.decode_ms; }).filter(isNum).sort(function (a, b) { return a - b; });
    var detail = { box: detailBox, chosen: null };
    var budget = null, input = null, answer = null;
    if (lat.length) {
      htmlEl("label", "Latency budget (ms/token): ", ctl);
      input = htmlEl("input", null, ctl);
      input.type = "range";
      input.min = String(lat[0]);
      input.max = String(lat[lat.length - 1]);
      input.step = String(Math.max((lat[lat.length - 1] - lat[0]) / 200, 1e-6));
      input.value = String(lat[Math.floor((lat.length - 1) / 2)]);
      answer = htmlEl("span", null, ctl, "answer");
    }
    function draw() {
      box.textContent = "";
      if (input) {
        budget = Number(input.value);
        detail.chosen = bestUnder(members.filter(function (p) { return p.on_front || !haveRanks; }), budget);
        answer.textContent = " \u2264 " + fmtNum(budget) + " ms/token: " + (detail.chosen ?
          "best front genome " + detail.chosen.hash + " (capability " + cap(detail.chosen.capability) + ", " +
          fmtNum(detail.chosen.decode_ms) + " ms/token)" : "no front genome is that fast");
        answer.setAttribute("data-chosen", detail.chosen ? detail.chosen.hash : "");
      }
      var w = plotWidth(root, 3);
      SPECS.forEach(function (spec) { scatter(box, members, presets, spec, haveRanks, w, budget, detail); });
      showDetail(detailBox, detail.chosen);
    }
    if (input) input.addEventListener("input", draw);
    draw();
  }

  function drawPlots() {
    var root = document.getElementById("plots");
    var haveRanks = D.run.last_generation >= 0;
    var analytic = D.points.filter(function (p) { return p.device === ""; });
    if (D.devices.length === 0)
      htmlEl("p", "No genome of this run has been measured on a device yet" +
             (analytic.length ? " (the plots below show the search's closed-form estimates)." : "."), root, "note");
    if (analytic.length > 0)
      deviceSection(root, "Closed-form estimates (no device measurement)", analytic, [], haveRanks);
    D.devices.forEach(function (dev) {
      var members = D.points.filter(function (p) { return p.device === dev.name; });
      var presets = D.presets.filter(function (p) { return p.device === dev.name; });
      if (presets.length === 0)
        htmlEl("p", "No preset (LFM2, Qwen3, Llama baselines) has been measured on " + dev.name +
               ": no reference points are shown. Measure them with `starhil measure --device " +
               dev.name + " lfm2-350m` (or `starhil compare`).", root, "note");
      deviceSection(root, "Device " + dev.name, members, presets, haveRanks);
    });
  }

  function drawHypervolume() {
    var root = document.getElementById("hv");
    var gens = D.generations.filter(function (g) { return isNum(g.hypervolume); });
    if (gens.length === 0) { htmlEl("p", "No generation metrics recorded for this run.", root, "note"); return; }
    var xs = gens.map(function (g) { return g.evaluations; });
    var lo = Math.min.apply(null, xs), hi = Math.max.apply(null, xs);
    if (lo === hi) { lo = Math.max(0, lo - 1); hi = hi + 1; }
    var fig = P.plot({
      width: Math.min(760, plotWidth(root, 1)), height: 280, marginLeft: 64, marginRight: 28, marginTop: 24,
      marginBottom: 42, style: { fontSize: "11px", background: "white" },
      x: { label: "evaluations \u2192", labelAnchor: "center", labelArrow: "none", domain: [lo, hi],
           ticks: intTicks(lo, hi), tickFormat: "d" },
      /* from 0, so one generation (or a flat curve) still reads as its value */
      y: { label: "\u2191 hypervolume", labelArrow: "none", nice: true, grid: true,
           domain: [0, Math.max.apply(null, gens.map(function (g) { return g.hypervolume; })) * 1.05 || 1] },
      marks: [
        P.line(gens, { x: "evaluations", y: "hypervolume", stroke: "#2e8b57", strokeWidth: 2 }),
        P.dot(gens, { x: "evaluations", y: "hypervolume", r: 3.5, fill: "#2e8b57", className: "hv-dots" }),
        P.tip(gens, P.pointerX({ x: "evaluations", y: "hypervolume", title: function (g) {
          return "generation " + g.gen + ": hypervolume " + fmtNum(g.hypervolume, 6) + "\n" +
            g.evaluations + " evaluations, front size " + g.front_size;
        } }))
      ]
    });
    fig.setAttribute("class", (fig.getAttribute("class") || "") + " plot");
    fig.id = "hv-plot";
    root.appendChild(fig);
  }

  /* "L2 Unified 1 MiB x 2": caches grouped as the machine has them. */
  function cacheGroups(caches) {
    var groups = [], by = {};
    caches.forEach(function (c) {
      var k = c.level + "|" + (c.type || "") + "|" + c.size_bytes;
      if (!by[k]) { by[k] = { c: c, n: 0 }; groups.push(by[k]); }
      by[k].n++;
    });
    return groups.map(function (g) {
      return "L" + g.c.level + (g.c.type ? " " + g.c.type.toLowerCase() : "") + " " + bytes(g.c.size_bytes) +
        (g.n > 1 ? " x " + g.n : "");
    }).join(", ");
  }
  function topologySummary(t) {
    var parts = [];
    if (t.model) parts.push(String(t.model).trim());
    if (isNum(t.n_cpus)) parts.push(t.n_cpus + " CPUs");
    if (Array.isArray(t.clusters) && t.clusters.length) parts.push(t.clusters.map(function (c) {
      var n = Array.isArray(c.cpus) ? c.cpus.length : "?";
      /* a frequency the OS does not report is left out, not shown as "unknown" */
      return n + " core" + (n === 1 ? "" : "s") + (isNum(c.max_khz) && c.max_khz > 0 ? " at " + (c.max_khz / 1e6).toFixed(2) + " GHz" : "");
    }).join(" + "));
    if (Array.isArray(t.caches) && t.caches.length) parts.push("caches " + cacheGroups(t.caches));
    if (isNum(t.mem_total_bytes)) parts.push((t.mem_total_bytes / 1073741824).toFixed(1) + " GiB RAM");
    return parts.join("; ");
  }

  function drawTopology() {
    var root = document.getElementById("topology");
    if (D.devices.length === 0) { htmlEl("p", "No devices.", root, "note"); return; }
    D.devices.forEach(function (dev) {
      htmlEl("h3", dev.name + (dev.kind ? " (" + dev.kind + (dev.target ? ", " + dev.target : "") + ")" : ""), root);
      if (!dev.topology || typeof dev.topology !== "object") {
        htmlEl("p", "No topology recorded for this device (run `starhil device probe " + dev.name + "`).", root, "note");
        return;
      }
      htmlEl("p", topologySummary(dev.topology), root, "topo");
      var det = htmlEl("details", null, root);
      htmlEl("summary", "topology JSON", det);
      htmlEl("pre", JSON.stringify(dev.topology, null, 2), det);
    });
  }

  var COLS = [
    { key: "hash", label: "hash", text: true }, { key: "device", label: "device", text: true },
    { key: "rank", label: "rank", f: function (v) { return isNum(v) ? String(v) : "-"; } },
    { key: "capability", label: "capability", f: cap },
    { key: "decode_ms", label: "decode ms/tok (" + (D.decode_estimator || "median") + ")" },
    { key: "decode_tok_s", label: "decode tok/s" },
    { key: "prefill_tok_s", label: "prefill tok/s" }, { key: "ttft_ms", label: "TTFT ms" },
    { key: "peak_rss_bytes", label: "peak MiB", f: mib }, { key: "weight_bytes", label: "weights MiB", f: mib },
    { key: "kv_bytes", label: "KV MiB", f: mib }, { key: "conv_state_bytes", label: "conv state MiB", f: mib },
    { key: "cache_bytes", label: "cache MiB", f: mib }, { key: "params_total", label: "params M", f: mega },
    { key: "params_active", label: "active M", f: mega }, { key: "wtype", label: "wtype", text: true }
  ];

  /* Sortable table; with `genomeRow`, each row is followed by a full-width row
   * holding the genome text (wrapped, never behind a scroll bar). */
  function sortableTable(root, rows, cols, id, genomeRow) {
    var table = htmlEl("table", null, htmlEl("div", null, root, "scroll"));
    table.id = id;
    var tr = htmlEl("tr", null, htmlEl("thead", null, table));
    var tbody = htmlEl("tbody", null, table);
    var state = { key: null, dir: 1 };
    function render() {
      tbody.textContent = "";
      rows.forEach(function (r) {
        var row = htmlEl("tr", null, tbody, genomeRow ? "main" : null);
        cols.forEach(function (c) {
          var v = r[c.key];
          var txt = c.f ? c.f(v) : (c.text ? (v === null || v === undefined || v === "" ? "-" : String(v)) : fmtNum(v));
          htmlEl("td", txt, row, c.text ? "text" : null);
        });
        if (genomeRow) {
          var g = htmlEl("tr", null, tbody, "genome-row");
          var td = htmlEl("td", null, g, "genome");
          td.colSpan = cols.length;
          /* stays in view (sticky, viewport-wide) even when the table scrolls sideways */
          htmlEl("div", r.genome || "(genome text not stored)", td, "gtext");
        }
      });
    }
    cols.forEach(function (c) {
      var th = htmlEl("th", c.label, tr);
      th.setAttribute("data-key", c.key);
      th.addEventListener("click", function () {
        state.dir = state.key === c.key ? -state.dir : 1;
        state.key = c.key;
        rows.sort(function (a, b) {
          var x = a[c.key], y = b[c.key];
          var xn = x === null || x === undefined, yn = y === null || y === undefined;
          if (xn || yn) return xn === yn ? 0 : (xn ? 1 : -1);
          return (x < y ? -1 : x > y ? 1 : 0) * state.dir;
        });
        Array.prototype.forEach.call(tr.children, function (h) { h.className = ""; });
        th.className = state.dir > 0 ? "sorted-asc" : "sorted-desc";
        render();
      });
    });
    render();
    return table;
  }

  function drawTables() {
    var root = document.getElementById("tables");
    var front = D.points.filter(function (p) { return p.on_front; });
    htmlEl("h3", "Front members (" + front.length + ")", root);
    if (front.length === 0) htmlEl("p", "The run has no front yet.", root, "note");
    else sortableTable(root, front.slice(), COLS, "front-table", true);
    htmlEl("h3", "Presets measured on the same devices (" + D.presets.length + ")", root);
    if (D.presets.length === 0) htmlEl("p", "No preset has been measured on this run's devices.", root, "note");
    else sortableTable(root, D.presets.slice(), [{ key: "preset", label: "preset", text: true }].concat(COLS), "preset-table", true);
  }

  function drawSummary() {
    var r = D.run, root = document.getElementById("summary");
    var last = D.generations.length ? D.generations[D.generations.length - 1] : null;
    htmlEl("p", "Run " + r.id + " \u201c" + r.name + "\u201d, status " + r.status + ", seed " + r.seed +
           ", created " + r.created_at + ", updated " + r.updated_at + ". " + D.points.length +
           " measured or ranked genomes, " + D.points.filter(function (p) { return p.on_front; }).length +
           " on the front" + (last ? ", last generation " + last.gen + " with hypervolume " + fmtNum(last.hypervolume, 6) : "") + ".", root);
  }

  function drawProfiles() {
    var root = document.getElementById("profiles");
    var cols = [{ key: "block", label: "block", text: true }, { key: "params", label: "params", text: true },
                { key: "dtype", label: "dtype", text: true }];
    var rows = D.rows.map(function (r) {
      var o = { block: r.block, params: typeof r.params === "string" ? r.params : JSON.stringify(r.params), dtype: r.dtype };
      var base = r.devices[D.devices[0]].latency_us;
      D.devices.forEach(function (d, i) {
        var c = r.devices[d];
        o["lat_" + i] = c.latency_us; o["gbs_" + i] = c.gbytes_per_s; o["gf_" + i] = c.gflops;
        if (i > 0) o["ratio_" + i] = isNum(c.latency_us) && isNum(base) && base > 0 ? c.latency_us / base : null;
      });
      return o;
    });
    D.devices.forEach(function (d, i) {
      cols.push({ key: "lat_" + i, label: d + " us" });
      if (i > 0) cols.push({ key: "ratio_" + i, label: d + " / " + D.devices[0] });
      cols.push({ key: "gbs_" + i, label: d + " GB/s" }, { key: "gf_" + i, label: d + " GFLOP/s" });
    });
    sortableTable(root, rows, cols, "profile-table", false);
    var bars = [];
    rows.forEach(function (r, k) {
      D.devices.forEach(function (d, i) {
        if (isNum(r["lat_" + i])) bars.push({ row: (k + 1) + ". " + r.block + " " + r.dtype, device: d, us: r["lat_" + i], params: r.params });
      });
    });
    if (!bars.length) return;
    var fig = P.plot({
      width: Math.min(900, plotWidth(root, 1)), marginLeft: 150, marginRight: 24, marginBottom: 42,
      style: { fontSize: "11px", background: "white" },
      x: { label: "latency (us, lower is better) \u2192", labelAnchor: "center", labelArrow: "none", nice: true, grid: true },
      y: { label: null }, fy: { label: null },
      color: { legend: false, range: ["#1f6fd1", "#e0662b", "#2e8b57", "#8e44ad", "#c0392b"] },
      marks: [
        P.barX(bars, { y: "row", x: "us", fill: "device", className: "prof-bars",
                       title: function (b) { return b.device + ": " + fmtNum(b.us) + " us (" + b.params + ")"; } }),
        P.text(bars, { y: "row", x: "us", text: "device", dx: 4, textAnchor: "start", fontSize: 9 })
      ]
    });
    fig.setAttribute("class", (fig.getAttribute("class") || "") + " plot");
    fig.id = "profile-bars";
    root.appendChild(fig);
  }

  /* Every text of every plot must lie inside its SVG (nothing clipped). */
  function checkLabels() {
    var clipped = [], checked = 0;
    Array.prototype.forEach.call(document.querySelectorAll("svg.plot"), function (svg) {
      var s = svg.getBoundingClientRect();
      Array.prototype.forEach.call(svg.querySelectorAll("text"), function (t) {
        if (t.closest("[aria-label=tip]")) return;
        var r = t.getBoundingClientRect();
        if (r.width === 0 && r.height === 0) return;
        checked++;
        if (r.left < s.left - 0.5 || r.right > s.right + 0.5 || r.top < s.top - 0.5 || r.bottom > s.bottom + 0.5)
          clipped.push(JSON.stringify(t.textContent) + " at " + Math.round(r.left - s.left) + ".." +
                       Math.round(r.right - s.left) + " of " + Math.round(s.width));
      });
    });
    /* genome texts must be readable without scrolling sideways */
    var vw = document.documentElement.clientWidth, hidden = 0;
    Array.prototype.forEach.call(document.querySelectorAll(".gtext"), function (g) {
      if (g.getBoundingClientRect().right > vw + 1) hidden++;
    });
    document.body.setAttribute("data-genome-overflow", String(hidden));
    document.body.setAttribute("data-labels-checked", String(checked));
    document.body.setAttribute("data-clipped", String(clipped.length));
    if (clipped.length) htmlEl("pre", "clipped labels:\n" + clipped.join("\n"), document.body, "clip-report").id = "clip-report";
  }

  function count(sel) { return document.querySelectorAll(sel).length; }

  if (D.starhil_report === "profiles") {
    drawProfiles();
  } else {
    drawSummary();
    drawPlots();
    drawHypervolume();
    drawTopology();
    drawTables();
  }
  checkLabels();
  var b = document.body;
  b.setAttribute("data-front-dots", String(count("g.pts-front circle")));
  b.setAttribute("data-dominated-dots", String(count("g.pts-dominated circle")));
  b.setAttribute("data-preset-dots", String(count("g.pts-preset path")));
  b.setAttribute("data-hv-dots", String(count("g.hv-dots circle")));
  b.setAttribute("data-errbars", String(count("g.errbar line")));
  b.setAttribute("data-unstable", String(count("g.pts-unstable circle, g.pts-unstable path")));
  b.setAttribute("data-points", String(count("g.pts-front circle") + count("g.pts-dominated circle") +
                                       count("g.pts-preset path") + count("g.prof-bars rect")));
  b.setAttribute("data-drawn", "1");
})();
