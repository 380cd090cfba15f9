/* report.js - draws a starhil report from the JSON embedded in the page
 * (script#report-data): front scatter plots, hypervolume curve, device
 * topologies, sortable tables; or the chip-profile comparison. No network. */
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("report-data").textContent);
  var NS = "http://www.w3.org/2000/svg";
  var tip = document.getElementById("tip");
  var nPoints = 0;

  function svgEl(tag, attrs, parent) {
    var e = document.createElementNS(NS, tag);
    for (var k in attrs) if (Object.prototype.hasOwnProperty.call(attrs, k)) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }
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

  function pointText(p) {
    var head = (p.preset ? "preset " + p.preset + "  " : "") + p.hash + (p.device ? " on " + p.device : "");
    return head + "\n" + (p.genome || "(genome text not stored)") +
      "\ncapability " + fmtNum(p.capability) + ", decode " + fmtNum(p.decode_ms) + " ms/token" +
      (p.stability_reason ? " (" + p.stability + ": " + p.stability_reason + ")" : "") +
      ", peak " + mib(p.peak_rss_bytes) + " MiB, cache " + mib(p.cache_bytes) + " MiB" +
      (p.preset ? "" : (p.on_front ? ", on the front" : ", dominated"));
  }
  function showTip(ev, p) {
    tip.textContent = pointText(p);
    tip.style.display = "block";
    tip.style.left = (ev.pageX + 14) + "px";
    tip.style.top = (ev.pageY + 14) + "px";
  }
  function hideTip() { tip.style.display = "none"; }
  function hover(node, p) {
    node.addEventListener("mousemove", function (ev) { showTip(ev, p); });
    node.addEventListener("mouseleave", hideTip);
    svgEl("title", {}, node).textContent = pointText(p);
  }

  function range(vals) {
    var lo = Math.min.apply(null, vals), hi = Math.max.apply(null, vals);
    if (lo === hi) { var d = lo === 0 ? 1 : Math.abs(lo) * 0.1; lo -= d; hi += d; }
    var pad = (hi - lo) * 0.08;
    var min = vals.every(function (v) { return v >= 0; }) ? Math.max(0, lo - pad) : lo - pad;
    return [min, hi + pad];
  }
  function axes(svg, box, xr, yr, xlabel, ylabel, xfmt, yfmt) {
    for (var i = 0; i <= 4; i++) {
      var fx = box.x0 + (box.x1 - box.x0) * i / 4, fy = box.y1 - (box.y1 - box.y0) * i / 4;
      svgEl("line", { x1: fx, y1: box.y0, x2: fx, y2: box.y1, "class": "grid" }, svg);
      svgEl("line", { x1: box.x0, y1: fy, x2: box.x1, y2: fy, "class": "grid" }, svg);
      svgEl("text", { x: fx, y: box.y1 + 14, "text-anchor": "middle" }, svg).textContent =
        xfmt(xr[0] + (xr[1] - xr[0]) * i / 4);
      svgEl("text", { x: box.x0 - 4, y: fy + 4, "text-anchor": "end" }, svg).textContent =
        yfmt(yr[0] + (yr[1] - yr[0]) * i / 4);
    }
    svgEl("line", { x1: box.x0, y1: box.y1, x2: box.x1, y2: box.y1, "class": "axis" }, svg);
    svgEl("line", { x1: box.x0, y1: box.y0, x2: box.x0, y2: box.y1, "class": "axis" }, svg);
    svgEl("text", { x: (box.x0 + box.x1) / 2, y: box.y1 + 32, "text-anchor": "middle" }, svg).textContent = xlabel;
    svgEl("text", { x: 12, y: (box.y0 + box.y1) / 2, "text-anchor": "middle",
                    transform: "rotate(-90 12 " + (box.y0 + box.y1) / 2 + ")" }, svg).textContent = ylabel;
  }

  /* 2-D domination (capability up, x down), used when the run has no ranks. */
  function dominated2d(p, pts, key) {
    return pts.some(function (q) {
      return q !== p && q.capability >= p.capability && q[key] <= p[key] &&
        (q.capability > p.capability || q[key] < p[key]);
    });
  }

  function scatter(parent, members, presets, spec, haveRanks) {
    var W = 430, H = 310, box = { x0: 66, x1: W - 14, y0: 30, y1: H - 48 };
    var svg = svgEl("svg", { width: W, height: H, viewBox: "0 0 " + W + " " + H, "class": "plot",
                             "data-metric": spec.key }, parent);
    svgEl("text", { x: W / 2, y: 18, "text-anchor": "middle", "class": "title" }, svg).textContent =
      "capability vs " + spec.label;
    var ok = function (p) { return isNum(p.capability) && isNum(p[spec.key]); };
    var ms = members.filter(ok), ps = presets.filter(ok);
    if (ms.length + ps.length === 0) {
      svgEl("text", { x: W / 2, y: H / 2, "text-anchor": "middle" }, svg).textContent =
        "no genome has both a capability score and " + spec.label;
      return;
    }
    var all = ms.concat(ps);
    var xr = range(all.map(function (p) { return p[spec.key] / spec.scale; }));
    var yr = range(all.map(function (p) { return p.capability; }));
    axes(svg, box, xr, yr, spec.label + " (" + spec.unit + ", lower is better)", "capability",
         function (v) { return fmtNum(v, 2); }, function (v) { return fmtNum(v, 3); });
    var X = function (v) { return box.x0 + (v / spec.scale - xr[0]) / (xr[1] - xr[0]) * (box.x1 - box.x0); };
    var Y = function (v) { return box.y1 - (v - yr[0]) / (yr[1] - yr[0]) * (box.y1 - box.y0); };
    ms.sort(function (a, b) { return (a.on_front ? 1 : 0) - (b.on_front ? 1 : 0); });
    ms.forEach(function (p) {
      var front = haveRanks ? p.on_front : !dominated2d(p, ms, spec.key);
      if (spec.key === "decode_ms" && isNum(p.decode_ms_low) && isNum(p.decode_ms_high)) {
        /* the latency's 95% interval, clipped to the plot */
        var xa = Math.max(box.x0, X(p.decode_ms_low)), xb = Math.min(box.x1, X(p.decode_ms_high));
        svgEl("line", { x1: xa.toFixed(2), x2: xb.toFixed(2), y1: Y(p.capability).toFixed(2),
                        y2: Y(p.capability).toFixed(2), "class": "ci" }, svg);
      }
      var c = svgEl("circle", { cx: X(p[spec.key]).toFixed(2), cy: Y(p.capability).toFixed(2),
                                r: front ? 5.5 : 4.5, "class": "pt " + (front ? "front" : "dominated") +
                                (p.disturbed ? " disturbed" : ""), "data-hash": p.hash }, svg);
      hover(c, p);
      nPoints++;
    });
    ps.forEach(function (p) {
      var x = X(p[spec.key]), y = Y(p.capability), s = 6;
      var d = "M" + x + " " + (y - s) + "L" + (x + s) + " " + y + "L" + x + " " + (y + s) + "L" + (x - s) + " " + y + "Z";
      hover(svgEl("path", { d: d, "class": "preset", "data-preset": p.preset }, svg), p);
      var right = x > box.x1 - 80;
      svgEl("text", { x: right ? x - 8 : x + 8, y: y - 6, "class": "preset-label",
                      "text-anchor": right ? "end" : "start" }, svg).textContent = p.preset;
      nPoints++;
    });
    var missing = members.length - ms.length;
    if (missing > 0)
      svgEl("text", { x: box.x1, y: box.y0 - 4, "text-anchor": "end" }, svg).textContent =
        missing + " without score or metric not shown";
  }

  var SPECS = [
    { key: "decode_ms", label: "decode latency", unit: "ms/token", scale: 1 },
    { key: "peak_rss_bytes", label: "peak memory", unit: "MiB", scale: 1048576 },
    { key: "cache_bytes", label: "cache bytes", unit: "MiB", scale: 1048576 }
  ];

  function drawPlots() {
    var root = document.getElementById("plots");
    var haveRanks = D.run.last_generation >= 0;
    var analytic = D.points.filter(function (p) { return p.device === ""; });
    if (D.devices.length === 0)
      htmlEl("p", "No genome of this run has been measured on a device yet" +
             (analytic.length ? " (the plots below show the search's closed-form estimates)." : "."), root, "note");
    if (analytic.length > 0) {
      htmlEl("h3", "Closed-form estimates (no device measurement)", root);
      var abox = htmlEl("div", null, root, "plots");
      SPECS.forEach(function (spec) { scatter(abox, analytic, [], spec, haveRanks); });
    }
    D.devices.forEach(function (dev) {
      htmlEl("h3", "Device " + dev.name, root);
      var members = D.points.filter(function (p) { return p.device === dev.name; });
      var presets = D.presets.filter(function (p) { return p.device === dev.name; });
      if (presets.length === 0)
        htmlEl("p", "No preset (LFM2, Qwen3, Llama baselines) has been measured on " + dev.name +
               ": no reference points are shown. Measure them with `starhil measure --device " +
               dev.name + " lfm2-350m` (or `starhil compare`).", root, "note");
      var legend = htmlEl("div", null, root, "legend");
      legend.innerHTML = '<span><i class="sw" style="background:#1f6fd1"></i>front</span>' +
        '<span><i class="sw" style="background:#1f6fd1;opacity:.25"></i>dominated</span>' +
        '<span><i class="sw" style="background:#e0662b;border-radius:0"></i>preset (reference)</span>';
      var box = htmlEl("div", null, root, "plots");
      SPECS.forEach(function (spec) { scatter(box, members, presets, spec, haveRanks); });
    });
  }

  function drawHypervolume() {
    var root = document.getElementById("hv");
    var gens = D.generations.filter(function (g) { return isNum(g.hypervolume); });
    if (gens.length === 0) { htmlEl("p", "No generation metrics recorded for this run.", root, "note"); return; }
    var W = 620, H = 280, box = { x0: 70, x1: W - 16, y0: 24, y1: H - 46 };
    var svg = svgEl("svg", { width: W, height: H, viewBox: "0 0 " + W + " " + H, "class": "plot", id: "hv-plot" }, root);
    var xr = range(gens.map(function (g) { return g.gen; })), yr = range(gens.map(function (g) { return g.hypervolume; }));
    axes(svg, box, xr, yr, "generation", "hypervolume", function (v) { return v.toFixed(1); },
         function (v) { return fmtNum(v, 3); });
    var X = function (v) { return box.x0 + (v - xr[0]) / (xr[1] - xr[0]) * (box.x1 - box.x0); };
    var Y = function (v) { return box.y1 - (v - yr[0]) / (yr[1] - yr[0]) * (box.y1 - box.y0); };
    svgEl("polyline", { points: gens.map(function (g) { return X(g.gen).toFixed(2) + "," + Y(g.hypervolume).toFixed(2); }).join(" "),
                        "class": "hvline" }, svg);
    gens.forEach(function (g) {
      var c = svgEl("circle", { cx: X(g.gen), cy: Y(g.hypervolume), r: 3, "class": "hvpt", "data-gen": g.gen }, svg);
      svgEl("title", {}, c).textContent = "generation " + g.gen + ": hypervolume " + fmtNum(g.hypervolume, 6) +
        ", " + g.evaluations + " evaluations, front size " + g.front_size;
    });
  }

  function topologySummary(t) {
    var parts = [];
    if (t.model) parts.push(String(t.model));
    if (isNum(t.n_cpus)) parts.push(t.n_cpus + " CPUs");
    if (Array.isArray(t.clusters)) parts.push(t.clusters.length + " cluster(s): " + t.clusters.map(function (c) {
      return (Array.isArray(c.cpus) ? c.cpus.length : "?") + " x " + (isNum(c.max_khz) && c.max_khz > 0 ? (c.max_khz / 1e6).toFixed(2) + " GHz" : "unknown GHz");
    }).join(", "));
    if (Array.isArray(t.caches)) parts.push(t.caches.map(function (c) {
      return "L" + c.level + (c.type ? " " + c.type : "") + " " + (isNum(c.size_bytes) ? (c.size_bytes / 1024) + " KiB" : "?");
    }).join(", "));
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
      htmlEl("p", topologySummary(dev.topology), root);
      var det = htmlEl("details", null, root);
      htmlEl("summary", "topology JSON", det);
      htmlEl("pre", JSON.stringify(dev.topology, null, 2), det);
    });
  }

  var COLS = [
    { key: "hash", label: "hash", text: true }, { key: "device", label: "device", text: true },
    { key: "rank", label: "rank", f: function (v) { return isNum(v) ? String(v) : "-"; } }, { key: "capability", label: "capability" },
    { key: "decode_ms", label: "decode ms/tok (" + (D.decode_estimator || "median") + ")" },
    { key: "decode_ms_low", label: "95% CI low" }, { key: "decode_ms_high", label: "95% CI high" },
    { key: "stability", label: "measured", text: true }, { key: "decode_tok_s", label: "decode tok/s" },
    { key: "prefill_tok_s", label: "prefill tok/s" }, { key: "ttft_ms", label: "TTFT ms" },
    { key: "peak_rss_bytes", label: "peak MiB", f: mib }, { key: "weight_bytes", label: "weights MiB", f: mib },
    { key: "kv_bytes", label: "KV MiB", f: mib }, { key: "conv_state_bytes", label: "conv state MiB", f: mib },
    { key: "cache_bytes", label: "cache MiB", f: mib }, { key: "params_total", label: "params M", f: mega },
    { key: "params_active", label: "active M", f: mega }, { key: "wtype", label: "wtype", text: true },
    { key: "genome", label: "genome", text: true }
  ];

  function sortableTable(root, rows, cols, id) {
    var table = htmlEl("table", null, htmlEl("div", null, root, "scroll"));
    table.id = id;
    var tr = htmlEl("tr", null, htmlEl("thead", null, table));
    var tbody = htmlEl("tbody", null, table);
    var state = { key: null, dir: 1 };
    function render() {
      tbody.textContent = "";
      rows.forEach(function (r) {
        var row = htmlEl("tr", null, tbody);
        cols.forEach(function (c) {
          var v = r[c.key];
          var txt = c.f ? c.f(v) : (c.text ? (v === null || v === undefined || v === "" ? "-" : String(v)) : fmtNum(v));
          htmlEl("td", txt, row, c.key === "genome" ? "genome" : (c.text ? "text" : null));
        });
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
    else sortableTable(root, front.slice(), COLS, "front-table");
    htmlEl("h3", "Presets measured on the same devices (" + D.presets.length + ")", root);
    if (D.presets.length === 0) htmlEl("p", "No preset has been measured on this run's devices.", root, "note");
    else sortableTable(root, D.presets.slice(), [{ key: "preset", label: "preset", text: true }].concat(COLS), "preset-table");
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
    sortableTable(root, rows, cols, "profile-table");
    var W = 760, rowH = 18, H = 40 + rows.length * rowH * D.devices.length;
    var svg = svgEl("svg", { width: W, height: H, viewBox: "0 0 " + W + " " + H, "class": "plot", id: "profile-bars" }, root);
    var max = 0;
    rows.forEach(function (r) { D.devices.forEach(function (d, i) { if (isNum(r["lat_" + i])) max = Math.max(max, r["lat_" + i]); }); });
    var colors = ["#1f6fd1", "#e0662b", "#2e8b57", "#8e44ad", "#c0392b"];
    var y = 24;
    rows.forEach(function (r) {
      D.devices.forEach(function (d, i) {
        var v = r["lat_" + i];
        svgEl("text", { x: 4, y: y + 12 }, svg).textContent = i === 0 ? r.block + " " + r.dtype : "";
        if (isNum(v) && max > 0) {
          var bar = svgEl("rect", { x: 200, y: y + 2, height: rowH - 4, width: Math.max(1, v / max * (W - 320)),
                                    fill: colors[i % colors.length], "data-device": d }, svg);
          svgEl("title", {}, bar).textContent = d + ": " + fmtNum(v) + " us (" + r.params + ")";
          svgEl("text", { x: 204 + v / max * (W - 320), y: y + 13 }, svg).textContent = d + " " + fmtNum(v) + " us";
          nPoints++;
        }
        y += rowH;
      });
    });
  }

  if (D.starhil_report === "profiles") {
    drawProfiles();
  } else {
    drawSummary();
    drawPlots();
    drawHypervolume();
    drawTopology();
    drawTables();
  }
  document.body.setAttribute("data-points", String(nPoints));
  document.body.setAttribute("data-drawn", "1");
})();
