// Endpoint dashboard: figures built by the server (deployments/dashboard.py) arrive
// over the websocket every 2 s; timeline events arrive as they happen.
(function () {
  "use strict";
  const script = document.getElementById("deployments-js");
  const slug = script.dataset.slug;
  const state = document.getElementById("live-state");
  const charts = ["traffic", "latency", "errors", "drift", "kpi"];
  const config = { displayModeBar: false, responsive: true };

  function fmt(value, digits) {
    return value === null || value === undefined ? "–" : Number(value).toFixed(digits);
  }

  function liveNumbers(id, revision) {
    const box = document.getElementById(id);
    if (!box || !revision) return;
    const w = revision.window;
    const rows = [
      ["requests (5 min)", w.requests],
      ["error rate", fmt(w.error_rate * 100, 1) + " %"],
      ["p50 / p99", fmt(w.p50, 1) + " / " + fmt(w.p99, 1) + " ms"],
      ["live " + revision.kpi.metric, fmt(revision.kpi.value, 3) + " (n=" + revision.kpi.n + ")"],
    ];
    box.replaceChildren();
    rows.forEach(([label, value]) => {
      const dt = document.createElement("dt");
      dt.textContent = label;
      const dd = document.createElement("dd");
      dd.textContent = value;
      box.append(dt, dd);
    });
  }

  function onMetrics(payload) {
    charts.forEach((name) => {
      const fig = payload.figures[name];
      const el = document.getElementById("chart-" + name);
      if (fig && el) Plotly.react(el, fig.data, fig.layout, config);
    });
    liveNumbers("champion-live", payload.revisions.champion);
    liveNumbers("challenger-live", payload.revisions.challenger);
    const log = payload.log;
    document.getElementById("log-health").textContent =
      "Prediction log: " + log.logged + " stored, " + log.dropped + " dropped; " + log.serving_processes + " serving process(es) live.";
    state.textContent = "live · " + new Date().toLocaleTimeString();
  }

  function onEvent(payload) {
    const list = document.getElementById("timeline");
    const item = document.createElement("li");
    item.className = "ev ev-" + payload.kind + (payload.automatic ? " ev-auto" : "");
    const time = document.createElement("time");
    time.textContent = new Date(payload.at).toLocaleString();
    const what = document.createElement("strong");
    what.textContent = " " + payload.kind.replace(/_/g, " ") + (payload.revision ? " r" + payload.revision : "");
    item.append(time, what);
    if (payload.automatic) {
      const badge = document.createElement("span");
      badge.className = "badge badge-warn";
      badge.textContent = "automatic";
      item.append(" ", badge);
    } else if (payload.actor) item.append(" by " + payload.actor);
    if (payload.reason) {
      const why = document.createElement("div");
      why.className = "muted";
      why.textContent = payload.reason;
      item.append(why);
    }
    list.prepend(item);
  }

  function renderReference(role, live) {
    const box = document.querySelector("#" + role + "-card [data-rev-reference]");
    if (box && live && live.reference) box.textContent = "Drift reference: " + live.reference.status;
  }

  function renderCard(role, rev, routing) {
    const card = document.getElementById(role + "-card");
    if (!card) return;
    card.querySelector("[data-rev]").hidden = !rev;
    card.querySelector("[data-rev-none]").hidden = !!rev;
    if (!rev) return;
    card.querySelector("[data-rev-name]").textContent = "r" + rev.number + " · " + rev.model;
    const badge = card.querySelector("[data-rev-status]");
    badge.textContent = rev.status_label;
    badge.className = "badge rev-" + rev.status;
    const mode = card.querySelector("[data-rev-mode]");
    if (mode) {
      mode.textContent = routing.mode_label +
        (routing.mode === "canary" ? " · " + Math.round(routing.traffic * 100) + "% of traffic" : "");
    }
    const number = card.querySelector("[data-rev-number]");
    if (number) number.value = rev.number;
    const promote = card.querySelector("[data-promote]");
    if (promote) promote.hidden = rev.status !== "ready";
  }

  function renderRouting(routing) {
    renderCard("champion", routing.champion, routing);
    renderCard("challenger", routing.challenger, routing);
    const body = document.querySelector("#revision-table tbody");
    routing.revisions.slice().reverse().forEach((rev) => {
      let badge = document.querySelector('[data-revision-status="' + rev.number + '"]');
      if (!badge && body) {
        const empty = body.querySelector("[data-no-revisions]");
        if (empty) empty.remove();
        const row = body.insertRow(0);
        row.insertCell().textContent = "r" + rev.number;
        row.insertCell().textContent = rev.model;
        badge = document.createElement("span");
        badge.dataset.revisionStatus = rev.number;
        row.insertCell().append(badge);
        row.insertCell().className = "muted";
        row.insertCell().textContent = "just now";
      }
      if (!badge) return;
      badge.textContent = rev.status_label;
      badge.className = "badge rev-" + rev.status;
    });
  }

  // The deploy form's pickers: the browser filters each datalist as the user types;
  // the versions offered follow the model chosen.
  const pickerData = document.getElementById("picker-data");
  if (pickerData) {
    const byModel = JSON.parse(pickerData.textContent);
    const model = document.querySelector("#deploy-form [name=model]");
    const versions = document.getElementById("picker-versions");
    const fill = () => {
      versions.replaceChildren(...(byModel[model.value] || []).map((v) => {
        const option = document.createElement("option");
        option.value = v.version;
        option.label = v.label;
        return option;
      }));
    };
    model.addEventListener("input", fill);
    fill();
  }

  // live.js: the one reconnecting socket every live page uses.
  window.mlpSocket("/ws/endpoints/" + encodeURIComponent(slug) + "/", (event, payload) => {
    if (event === "metrics") {
      onMetrics(payload);
      if (payload.routing) renderRouting(payload.routing);
      renderReference("champion", payload.revisions.champion);
      renderReference("challenger", payload.revisions.challenger);
    } else if (event === "endpoint.event") onEvent(payload);
  });
})();
