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

  document.querySelectorAll("[data-chart]").forEach(function (el) {
    var data = readJson(el.getAttribute("data-chart"));
    if (!data || !window.Plotly) return;
    var figure = data.figure || data;
    window.Plotly.newPlot(el, figure.data, figure.layout, config);
    if (data.times) metricCharts.push({ el: el, data: data });
  });

  document.querySelectorAll(".segmented .seg").forEach(function (button) {
    button.addEventListener("click", function () {
      var axis = button.getAttribute("data-axis");
      document.querySelectorAll(".segmented .seg").forEach(function (b) { b.classList.toggle("active", b === button); });
      metricCharts.forEach(function (c) {
        var x = axis === "time" ? c.data.times : c.data.steps;
        window.Plotly.update(c.el, { x: [x] }, { "xaxis.title.text": axis === "time" ? "time (UTC)" : "step",
          "xaxis.type": axis === "time" ? "date" : "linear" });
      });
    });
  });

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
