// Jobs pages: live status, log tail and metric charts over the job websockets.
"use strict";
(function () {
  const MAX_LINES = 5000;

  const socket = window.mlpSocket;  // live.js

  function setStatus(root, p) {
    const badge = root.querySelector("[data-status]");
    if (badge) { badge.textContent = p.status_label; badge.className = "badge status-" + p.status; }
    const msg = root.querySelector("[data-message]");
    if (msg) msg.textContent = p.message || "";
    setProgress(root, p.progress);
  }

  function setProgress(root, value) {
    if (value === null || value === undefined) return;
    const bar = root.querySelector("[data-progress]");
    if (bar) bar.value = value;
    const label = root.querySelector("[data-progress-label]");
    if (label) label.textContent = Math.round(value * 100) + "%";
  }

  function drawCharts() {
    if (!window.Plotly) return;
    document.querySelectorAll("[data-figure]").forEach((el) => {
      const fig = JSON.parse(el.dataset.figure);
      Plotly.newPlot(el, fig.data, fig.layout, { responsive: true, displaylogo: false });
    });
  }

  function list() {
    socket("/ws/jobs/", (event, p) => {
      if (event !== "job.status") return;
      const row = document.querySelector('tr[data-job="' + p.id + '"]');
      if (row) setStatus(row, p);
      else if (!document.getElementById("job-table")) location.reload();
      else location.reload();
    });
  }

  function detail() {
    const root = document.body;
    const head = document.getElementById("job");
    const events = document.querySelector("#job-events tbody");
    const log = document.getElementById("job-log");
    const follow = document.querySelector("[data-follow]");
    const count = document.querySelector("[data-count]");
    const cancel = document.querySelector("[data-cancel]");
    let total = parseInt(head.dataset.lines, 10) || 0;
    log.scrollTop = log.scrollHeight;
    drawCharts();
    socket("/ws/jobs/" + head.dataset.job + "/", (event, p) => {
      if (event === "job.status") {
        setStatus(root, p);
        const exit = document.querySelector("[data-exit]");
        if (exit && p.exit_code !== null && p.exit_code !== undefined) exit.textContent = p.exit_code;
        if (p.finished && cancel) cancel.hidden = true;
        const run = document.getElementById("job-run");
        if (run && p.run_id && !run.querySelector("a")) {
          const link = document.createElement("a");
          link.href = "/runs/" + encodeURIComponent(p.run_id) + "/";
          link.textContent = p.run_id.slice(0, 12) + "…";
          run.replaceChildren(link);
        }
        // A snapshot (sent when the socket opens) repeats the current state: the
        // history already lists how the job got there when the page was rendered.
        if (p.snapshot) head.dataset.live = "open";
        if (p.snapshot && head.dataset.state === p.status) return;
        head.dataset.state = p.status;
        const row = events.insertRow();
        row.insertCell().textContent = new Date().toTimeString().slice(0, 8);
        row.insertCell().textContent = "→ " + p.status;
        row.insertCell().textContent = p.reason + (p.message ? ": " + p.message : "");
      } else if (event === "job.log") {
        const empty = document.querySelector("[data-empty]");
        if (empty) empty.remove();
        if (p.skipped) log.appendChild(document.createTextNode("… " + p.skipped + " lines (see download) …\n"));
        log.appendChild(document.createTextNode(p.lines.join("\n") + "\n"));
        showHints(p.lines);
        total = p.first_seq + p.lines.length;
        count.textContent = total;
        while (log.childNodes.length > MAX_LINES) log.removeChild(log.firstChild);
        if (follow.checked) log.scrollTop = log.scrollHeight;
      } else if (event === "job.metrics") {
        setProgress(root, p.progress);
        addPoints(p.points);
      }
    });
  }

  // Known failures (frontend/views/jobs.py LOG_HINTS): their fix appears when the
  // log shows them.
  function showHints(lines) {
    document.querySelectorAll("[data-hint][hidden]").forEach((hint) => {
      const pattern = new RegExp(hint.dataset.hint);
      if (lines.some((line) => pattern.test(line))) hint.hidden = false;
    });
  }

  function addPoints(points) {
    if (!window.Plotly) return;
    for (const pt of points) {
      if (pt.key === "progress") continue;
      const system = pt.key.startsWith("system/");
      const el = document.getElementById(system ? "chart-system" : "chart-metrics") || newChart(system);
      const i = el.data.findIndex((t) => t.name === pt.key);
      const x = system ? pt.ts : pt.step;
      if (i < 0) Plotly.addTraces(el, { x: [x], y: [pt.value], name: pt.key, mode: "lines+markers" });
      else Plotly.extendTraces(el, { x: [[x]], y: [[pt.value]] }, [i]);
    }
  }

  function newChart(system) {
    const holder = document.getElementById("job-charts");
    const placeholder = holder.querySelector("[data-no-charts]");
    if (placeholder) placeholder.parentElement.remove();
    const card = document.createElement("section");
    card.className = "card";
    const el = document.createElement("div");
    el.id = system ? "chart-system" : "chart-metrics";
    el.className = "chart";
    card.appendChild(el);
    holder.appendChild(card);
    Plotly.newPlot(el, [], { title: { text: system ? "System" : "Metrics" }, height: 320, margin: { l: 40, r: 10, t: 40, b: 70 },
      legend: { orientation: "h" } }, { responsive: true, displaylogo: false });
    return el;
  }

  window.JobsLive = { list, detail, charts: drawCharts };
})();
