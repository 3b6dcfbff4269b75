// Data pages: the stream list's numbers and one stream's numbers, rate chart, latest
// records and quarantine, pushed every 2 s over the page's websocket (live.js).
"use strict";
(function () {
  const script = document.getElementById("data-js");
  const state = document.getElementById("live-state");
  const config = { displayModeBar: false, responsive: true };

  function bytes(n) {
    const units = ["bytes", "KB", "MB", "GB", "TB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : n) + " " + units[i];
  }

  function when(iso) {
    return iso ? new Date(iso).toLocaleString() : "nothing yet";
  }

  function setFields(root, s) {
    const values = {
      rate: s.rate, records: s.records.toLocaleString(), bytes: bytes(s.bytes),
      duplicates: s.duplicates, quarantined: s.quarantined, last_record_at: when(s.last_record_at),
    };
    Object.entries(values).forEach(([name, value]) => {
      const el = root.querySelector('[data-field="' + name + '"]');
      if (el) el.textContent = value;
    });
  }

  function live() { state.textContent = "live · " + new Date().toLocaleTimeString(); }

  function list() {
    window.mlpSocket("/ws/streams/", (event, p) => {
      if (event !== "streams") return;
      p.streams.forEach((s) => {
        const row = document.querySelector('tr[data-stream="' + s.id + '"]');
        if (row) setFields(row, s);
      });
      live();
    });
  }

  function cell(value) {
    const td = document.createElement("td");
    td.textContent = value === null || value === undefined ? "" : value;
    return td;
  }

  function preview(p) {
    const table = document.getElementById("preview");
    const head = document.createElement("tr");
    p.columns.forEach((c) => { const th = document.createElement("th"); th.textContent = c; head.append(th); });
    table.tHead.replaceChildren(head);
    table.tBodies[0].replaceChildren(...p.rows.map((r) => { const tr = document.createElement("tr"); r.forEach((v) => tr.append(cell(v))); return tr; }));
    document.getElementById("preview-empty").hidden = p.rows.length > 0;
  }

  function quarantine(q) {
    document.getElementById("held-count").textContent = q.held;
    const body = document.getElementById("quarantine-rows");
    const ticked = new Set([...body.querySelectorAll("input:checked")].map((i) => i.value));
    const canRelease = !!document.getElementById("release");
    if (!q.items.length) {
      const tr = document.createElement("tr");
      const td = cell("Nothing held: every record fitted the schema.");
      td.colSpan = 4; td.className = "muted"; tr.append(td);
      body.replaceChildren(tr);
      return;
    }
    body.replaceChildren(...q.items.map((item) => {
      const tr = document.createElement("tr");
      const box = document.createElement("td");
      if (canRelease) {
        const input = document.createElement("input");
        input.type = "checkbox"; input.name = "ids"; input.value = item.id; input.checked = ticked.has(String(item.id));
        box.append(input);
      }
      const code = document.createElement("code");
      code.textContent = item.payload;
      const rec = document.createElement("td");
      rec.append(code);
      tr.append(box, cell(item.received_at.slice(11, 19)), rec, cell(item.reason));
      return tr;
    }));
  }

  function schema(value) {
    // Shown once the first records define it; never over what someone is typing.
    const text = document.getElementById("schema-text");
    if (!value || !text || text.value.trim() || document.activeElement === text) return;
    text.value = JSON.stringify(value, null, 2);
    document.getElementById("schema-note").textContent = "Inferred from the first records, frozen. JSON Schema for one record.";
  }

  function draw(p) {
    schema(p.schema);
    setFields(document.getElementById("stream-numbers"), p.stream);
    Plotly.react(document.getElementById("rate-chart"), p.figure.data, p.figure.layout, config);
    preview(p.preview);
    quarantine(p.quarantine);
  }

  function detail() {
    draw(JSON.parse(document.getElementById("initial-snapshot").textContent));
    const path = "/ws/streams/" + encodeURIComponent(script.dataset.project) + "/" + encodeURIComponent(script.dataset.stream) + "/";
    window.mlpSocket(path, (event, p) => {
      if (event !== "stream") return;
      draw(p);
      live();
    });
  }

  if (script.dataset.page === "list") list(); else detail();
})();
