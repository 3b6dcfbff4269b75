// Experiment pages: draw the server-built plotly figures, switch metric charts between
// step and time axes, and keep the runs table's "Compare selected" button honest.
(function () {
  "use strict";

  function readJson(id) {
    var el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  }

  var config = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["lasso2d", "select2d"] };
  var metricCharts = [];
  var axis = "step";

  function showAxis(chart) {
    var x = axis === "time" ? chart.data.times : chart.data.steps;
    window.Plotly.update(chart.el, { x: [x] }, { "xaxis.title.text": axis === "time" ? "time (UTC)" : "step",
      "xaxis.type": axis === "time" ? "date" : "linear" });
  }

  function isoTime(ms) { return new Date(ms).toISOString().replace("T", " ").slice(0, 23); }

  // A downsampled chart asks the server again for the window it is zoomed to (at full
  // resolution up to the same cap) and for everything when zoomed back out. Windows
  // are steps, so a chart shown against time keeps what it has.
  function resampleOnZoom(el, data) {
    var zoom = data.zoom, latest = 0;
    el.on("plotly_relayout", function (event) {
      var range = event["xaxis.range"] || [event["xaxis.range[0]"], event["xaxis.range[1]"]];
      var reset = event["xaxis.autorange"] === true;
      if ((range[0] === undefined && !reset) || (data.times && axis === "time")) return;
      var query = new URLSearchParams({ key: zoom.key, max_points: zoom.max_points });
      zoom.runs.forEach(function (r) { query.append("run_ids", r); });
      if (!reset) {
        query.set("min_step", Math.floor(range[0]));
        query.set("max_step", Math.ceil(range[1]));
      }
      var ticket = ++latest;
      fetch("/api/v1/runs/metrics/series/?" + query, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
        .then(function (found) {
          if (ticket !== latest) return;  // a later zoom is on its way
          var traces = found.map(function (s, i) { return i; });
          window.Plotly.restyle(el, { x: found.map(function (s) { return s.steps; }),
            y: found.map(function (s) { return s.values; }) }, traces);
          if (data.times) {
            data.steps = found[0].steps;
            data.times = found[0].timestamps.map(isoTime);
          }
          el.setAttribute("data-window", reset ? "all" : query.get("min_step") + ":" + query.get("max_step"));
        })
        .catch(function () {});
    });
  }

  // Draws the figures under `root` and wires its step/time switch; run again on the
  // parts a live refresh replaced.
  function drawCharts(root) {
    metricCharts = metricCharts.filter(function (c) { return document.body.contains(c.el); });
    root.querySelectorAll("[data-chart]").forEach(function (el) {
      var data = readJson(el.getAttribute("data-chart"));
      if (!data || !window.Plotly) return;
      var figure = data.figure || data;
      window.Plotly.newPlot(el, figure.data, figure.layout, config);
      if (data.zoom && data.zoom.sampled) resampleOnZoom(el, data);
      if (data.times) {
        var chart = { el: el, data: data };
        metricCharts.push(chart);
        if (axis === "time") showAxis(chart);
      }
    });
    root.querySelectorAll(".segmented .seg").forEach(function (button) {
      button.classList.toggle("active", button.getAttribute("data-axis") === axis);
      button.addEventListener("click", function () {
        axis = button.getAttribute("data-axis");
        document.querySelectorAll(".segmented .seg").forEach(function (b) { b.classList.toggle("active", b === button); });
        metricCharts.forEach(showAxis);
      });
    });
  }
  drawCharts(document);

  // A run page follows its run: when the run logs metrics or changes status, the
  // server-rendered parts marked data-live are fetched again (at most once a second)
  // and swapped in place; the chosen axis stays.
  var live = document.querySelector("[data-live-run]");
  if (live && window.mlpSocket) {
    var busy = false, again = false;
    var refresh = function () {
      if (busy) { again = true; return; }
      busy = true;
      fetch(location.href, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
        .then(function (html) {
          var fresh = new DOMParser().parseFromString(html, "text/html");
          document.querySelectorAll("[data-live]").forEach(function (part) {
            var next = fresh.getElementById(part.id);
            if (!next) return;
            part.replaceWith(next);
            drawCharts(next);
          });
        })
        .catch(function () {})
        .finally(function () {
          setTimeout(function () { busy = false; if (again) { again = false; refresh(); } }, 1000);
        });
    };
    // The server sends at most two metric nudges a second per run, so the points of a
    // run's last half second may come with no nudge of their own: one more look after
    // the events stop picks them up.
    var trailing = null;
    window.mlpSocket(live.getAttribute("data-live-run"), function (event) {
      if (event.indexOf("run.") !== 0) return;
      refresh();
      clearTimeout(trailing);
      trailing = setTimeout(refresh, 1500);
    });
  }

  // The runs table's column chooser: the chosen columns as chips (each a hidden
  // `columns` input of the search form), a search over the experiment's keys as you
  // type (the server lists at most 50 of each kind, never all 5,000), and pins that
  // this browser remembers per experiment: opening the experiment without chosen
  // columns asks for the pinned ones, first.
  var chooser = document.getElementById("columns-chooser");
  if (chooser) {
    var storeKey = "mlp.pinned-columns." + chooser.getAttribute("data-experiment");
    var pinned = [];
    try { pinned = JSON.parse(localStorage.getItem(storeKey) || "[]"); } catch (e) { pinned = []; }
    var here = new URLSearchParams(location.search);
    if (!here.has("columns") && pinned.length) {
      pinned.forEach(function (c) { here.append("columns", c); });
      location.replace(location.pathname + "?" + here);
    }
    var chips = document.getElementById("chosen-columns");
    var results = document.getElementById("column-results");
    var search = document.getElementById("column-search");
    var savePins = function () { localStorage.setItem(storeKey, JSON.stringify(pinned)); };
    var shown = function () {
      return Array.prototype.map.call(chips.querySelectorAll(".col-chip"), function (c) { return c.getAttribute("data-column"); });
    };
    var markPins = function () {
      var all = Array.prototype.slice.call(chips.querySelectorAll(".col-chip"));
      all.forEach(function (chip) {
        var on = pinned.indexOf(chip.getAttribute("data-column")) >= 0;
        chip.classList.toggle("pinned", on);
        chip.querySelector(".pin").setAttribute("aria-pressed", on ? "true" : "false");
      });
      var firstUnpinned = chips.querySelector(".col-chip:not(.pinned)");
      pinned.forEach(function (name) {  // pinned first, in the order they were pinned
        var chip = all.filter(function (c) { return c.getAttribute("data-column") === name; })[0];
        if (chip) chips.insertBefore(chip, firstUnpinned);
      });
      document.querySelectorAll("#runs-table thead th[title]").forEach(function (th) {
        th.classList.toggle("pinned-col", pinned.indexOf(th.getAttribute("title")) >= 0);
      });
    };
    var addChip = function (name) {
      var template = chips.querySelector(".col-chip");
      var chip = document.createElement("span");
      chip.className = "col-chip";
      chip.setAttribute("data-column", name);
      var input = document.createElement("input");
      input.type = "hidden"; input.name = "columns"; input.value = name;
      var pin = document.createElement("button");
      pin.type = "button"; pin.className = "chip-btn pin"; pin.textContent = "pin";
      pin.title = template ? template.querySelector(".pin").title : "Pin";
      var kind = document.createElement("span");
      kind.className = "col-kind"; kind.textContent = name.slice(0, name.indexOf(".") - 1);
      var remove = document.createElement("button");
      remove.type = "button"; remove.className = "chip-btn remove"; remove.textContent = "\u00d7";
      remove.setAttribute("aria-label", "Hide " + name);
      chip.append(input, pin, kind, document.createTextNode(" " + name.slice(name.indexOf(".") + 1)), remove);
      chips.appendChild(chip);
      markPins();
    };
    chips.addEventListener("click", function (event) {
      var chip = event.target.closest(".col-chip");
      if (!chip) return;
      var name = chip.getAttribute("data-column");
      if (event.target.closest(".pin")) {
        pinned = pinned.indexOf(name) >= 0 ? pinned.filter(function (c) { return c !== name; }) : pinned.concat([name]);
      } else if (event.target.closest(".remove")) {
        pinned = pinned.filter(function (c) { return c !== name; });
        chip.remove();
      } else {
        return;
      }
      savePins();
      markPins();
      showMatches();
    });
    var latest = 0, timer = null, matches = [];
    var showMatches = function () {
      var chosen = shown();
      results.replaceChildren.apply(results, matches.map(function (column) {
        var li = document.createElement("li");
        var label = document.createElement("span");
        label.innerHTML = "<span class=\"col-kind\"></span> ";
        label.firstChild.textContent = column.kind.slice(0, -1);
        label.append(column.key);
        var add = document.createElement("button");
        add.type = "button"; add.className = "btn btn-small btn-secondary";
        add.setAttribute("data-column", column.name);
        add.textContent = chosen.indexOf(column.name) >= 0 ? "shown" : "add";
        add.disabled = chosen.indexOf(column.name) >= 0;
        li.append(label, add);
        return li;
      }));
    };
    var lookup = function () {
      var ticket = ++latest, query = search.value.trim();
      var url = chooser.getAttribute("data-search-url") + "?limit=25&q=" + encodeURIComponent(query);
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
        .then(function (found) {
          if (ticket !== latest) return;  // the user typed on
          matches = found;
          showMatches();
          results.setAttribute("data-query", query);
        })
        .catch(function () {});
    };
    search.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(lookup, 150); });
    search.addEventListener("keydown", function (event) { if (event.key === "Enter") event.preventDefault(); });
    chooser.addEventListener("toggle", function () { if (chooser.open && !matches.length) lookup(); });
    results.addEventListener("click", function (event) {
      var add = event.target.closest("button[data-column]");
      if (!add) return;
      addChip(add.getAttribute("data-column"));
      showMatches();
    });
    markPins();
  }

  var form = document.getElementById("compare-form");
  if (form) {
    var boxes = form.querySelectorAll("input[name=runs]");
    var button = document.getElementById("compare-btn");
    var count = document.getElementById("compare-count");
    var refresh = function () {
      var n = form.querySelectorAll("input[name=runs]:checked").length;
      button.disabled = n < 2 || n > 100;
      count.textContent = n === 0 ? "Select 2 to 100 runs to compare." : n + " selected";
    };
    boxes.forEach(function (b) { b.addEventListener("change", refresh); });
    var all = document.getElementById("select-all");
    if (all) all.addEventListener("change", function () {
      boxes.forEach(function (b) { b.checked = all.checked; });
      refresh();
    });
    refresh();
  }

  var onlyDiff = document.getElementById("only-diff");
  if (onlyDiff) onlyDiff.addEventListener("change", function () {
    document.getElementById("compare-table").classList.toggle("only-diff", onlyDiff.checked);
  });
})();
