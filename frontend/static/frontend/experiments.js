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
    if (chart.data.time_only) return;
    var x = axis === "time" ? chart.data.times : chart.data.steps;
    window.Plotly.update(chart.el, { x: [x] }, { "xaxis.title.text": axis === "time" ? "time (UTC)" : "step",
      "xaxis.type": axis === "time" ? "date" : "linear" });
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
