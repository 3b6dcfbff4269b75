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
    if (payload.reason) {
      const why = document.createElement("div");
      why.className = "muted";
      why.textContent = payload.reason;
      item.append(why);
    }
    list.prepend(item);
    if (["deployed", "promoted", "rolled_back", "ready", "failed"].includes(payload.kind)) {
      state.textContent = payload.kind.replace(/_/g, " ") + ": reload for the new routing";
    }
  }

  function connect() {
    const proto = location.protocol === "https:" ? "wss://" : "ws://";
    const socket = new WebSocket(proto + location.host + "/ws/endpoints/" + encodeURIComponent(slug) + "/");
    socket.onmessage = (message) => {
      const data = JSON.parse(message.data);
      if (data.event === "metrics") onMetrics(data.payload);
      else if (data.event === "endpoint.event") onEvent(data.payload);
    };
    socket.onclose = () => {
      state.textContent = "reconnecting…";
      setTimeout(connect, 2000);
    };
  }
  connect();
})();
