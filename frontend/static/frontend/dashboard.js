// Draws the KPI charts whose plotly figures the server built (json_script, escaped).
(function () {
  "use strict";
  if (!window.Plotly) return;
  document.querySelectorAll(".kpi-chart[data-figure-id]").forEach((box) => {
    const source = document.getElementById(box.dataset.figureId);
    if (!source) return;
    const fig = JSON.parse(source.textContent);
    window.Plotly.newPlot(box, fig.data, fig.layout, { displayModeBar: false, responsive: true });
  });
})();
