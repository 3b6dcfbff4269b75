// The live workshop board. Changes go to the REST API; every participant (this page
// included) hears about them on the board's websocket and redraws what changed.
// All user text is set with textContent: nothing typed on a card becomes markup.
(function () {
  "use strict";
  const stateEl = document.getElementById("board-state");
  if (!stateEl) return;
  const S = JSON.parse(stateEl.textContent);
  const csrf = document.querySelector("[name=csrfmiddlewaretoken]").value;
  const API = `/api/v1/boards/${S.id}/`;
  const ideas = new Map(S.ideas.map((i) => [i.id, i]));
  const myVotes = new Map(Object.entries(S.my_votes).map(([k, v]) => [Number(k), v]));
  let lanes = S.lanes.slice().sort((a, b) => a.position - b.position);
  let view = location.hash === "#matrix" ? "matrix" : "lanes";
  let editing = null; // {id, versions, started}

  const $ = (sel, root = document) => root.querySelector(sel);
  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children) if (c !== null && c !== undefined) node.append(c);
    return node;
  }

  function toast(message, kind = "info") {
    const box = el("div", { class: `toast toast-${kind}`, role: kind === "error" ? "alert" : "status", text: message });
    $("#toasts").append(box);
    setTimeout(() => box.remove(), 6000);
  }

  // Every message of an error answer: a validation error names each field at fault.
  function errorText(data, status) {
    const error = data && data.error;
    if (!error) return `The change failed (${status}).`;
    const details = error.details && typeof error.details === "object" && !Array.isArray(error.details) ? error.details : null;
    if (!details) return error.message || `The change failed (${status}).`;
    const parts = Object.entries(details).map(([field, msgs]) => {
      const text = [].concat(msgs).map((m) => (typeof m === "string" ? m : JSON.stringify(m))).join(" ");
      return field === "non_field_errors" ? text : `${field.replace("_", " ")}: ${text}`;
    });
    return parts.join("; ") || error.message;
  }

  async function request(method, path, body) {
    let response;
    try {
      response = await fetch(API + path, {
        method,
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrf, Accept: "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      return { ok: false, message: "The server cannot be reached; your change was not saved." };
    }
    if (response.status === 204) return { ok: true, data: {} };
    let data = {};
    try { data = await response.json(); } catch (err) { data = {}; }
    return response.ok ? { ok: true, data } : { ok: false, message: errorText(data, response.status) };
  }

  async function call(method, path, body) {
    const out = await request(method, path, body);
    if (out.ok) return out.data;
    toast(out.message, "error");
    return null;
  }

  const canWrite = () => S.can_participate && !S.locked;
  const laneIdeas = (laneId) =>
    [...ideas.values()].filter((i) => i.lane === laneId).sort((a, b) => a.position - b.position || a.id - b.id);
  const votesText = (idea) => (idea.votes === null || idea.votes === undefined ? "?" : String(idea.votes));
  const KIND = { pain_point: "Pain point", low_hanging_fruit: "Low-hanging fruit" };

  // --- cards -------------------------------------------------------------------------
  function cardEl(idea) {
    const mine = myVotes.get(idea.id) || 0;
    const card = el(
      "article",
      { class: `idea-card kind-${idea.kind} status-${idea.status}`, "data-idea-id": idea.id, draggable: canWrite() ? "true" : null },
      el("div", { class: "idea-top" },
        el("span", { class: `badge kind-badge`, text: KIND[idea.kind] || idea.kind }),
        idea.status !== "new" ? el("span", { class: "badge badge-info", text: idea.status }) : null),
      el("a", { class: "idea-title", href: `/ideation/boards/${S.id}/ideas/${idea.id}/`, text: idea.title }),
      idea.problem ? el("p", { class: "idea-problem", text: idea.problem }) : null,
      el("div", { class: "idea-meta" },
        el("span", { class: "chip", title: "Impact", text: `impact ${idea.impact}` }),
        el("span", { class: "chip", title: "Effort", text: `effort ${idea.effort}` }),
        ...(idea.tags || []).map((t) => el("span", { class: "chip tag", text: t })),
        idea.owner ? el("span", { class: "chip", text: `@${idea.owner}` }) : null,
        idea.comments ? el("span", { class: "chip comments", text: `${idea.comments} comment${idea.comments === 1 ? "" : "s"}` }) : null),
      idea.project ? el("a", { class: "project-link", href: `/projects/${idea.project}/`, text: `→ project ${idea.project}` }) : null,
      el("div", { class: "idea-foot" },
        el("span", { class: "votes", title: "Votes", text: votesText(idea) }),
        el("span", { class: "dots", text: "●".repeat(Math.min(mine, 20)), title: `Your votes: ${mine}` }),
        el("span", { class: "spacer" }),
        canWrite() ? el("button", { type: "button", class: "btn btn-small vote-up", title: "Vote", "aria-label": `Vote for ${idea.title}`, text: "+1", onclick: () => vote(idea.id, +1) }) : null,
        canWrite() && mine ? el("button", { type: "button", class: "btn btn-small btn-secondary vote-down", title: "Take a vote back", text: "−1", onclick: () => vote(idea.id, -1) }) : null,
        canWrite() ? el("button", { type: "button", class: "btn btn-small btn-secondary edit", text: "Edit", onclick: () => openEdit(idea.id) }) : null,
        canWrite() && (idea.author === S.me || S.can_facilitate) && !idea.project
          ? el("button", { type: "button", class: "btn btn-small btn-link delete", "aria-label": "Delete card", text: "✕", onclick: () => removeIdea(idea.id) })
          : null),
    );
    card.addEventListener("dragstart", (e) => {
      e.dataTransfer.setData("text/plain", String(idea.id));
      e.dataTransfer.effectAllowed = "move";
      card.classList.add("dragging");
    });
    card.addEventListener("dragend", () => card.classList.remove("dragging"));
    return card;
  }

  function laneEl(lane) {
    const list = el("div", { class: "lane-cards", "data-lane-id": lane.id });
    list.addEventListener("dragover", (e) => { if (canWrite()) { e.preventDefault(); list.classList.add("drop"); } });
    list.addEventListener("dragleave", () => list.classList.remove("drop"));
    list.addEventListener("drop", (e) => {
      e.preventDefault();
      list.classList.remove("drop");
      const id = Number(e.dataTransfer.getData("text/plain"));
      if (id) move(id, lane.id, dropIndex(list, e.clientY, id));
    });
    const head = el("header", { class: "lane-head" },
      el("h2", { class: "lane-title", text: lane.title }),
      el("span", { class: "lane-count muted" }));
    if (S.can_facilitate) {
      head.append(
        el("button", { type: "button", class: "btn btn-link btn-small", title: "Rename lane", text: "✎", onclick: () => renameLane(lane) }),
        el("button", { type: "button", class: "btn btn-link btn-small", title: "Move lane left", text: "←", onclick: () => shiftLane(lane.id, -1) }),
        el("button", { type: "button", class: "btn btn-link btn-small", title: "Move lane right", text: "→", onclick: () => shiftLane(lane.id, +1) }));
    }
    const input = el("input", { type: "text", maxlength: "200", placeholder: "New idea…", "aria-label": `New idea in ${lane.title}` });
    const kind = el("select", { "aria-label": "Kind" },
      el("option", { value: "pain_point", text: "Pain point" }),
      el("option", { value: "low_hanging_fruit", text: "Low-hanging fruit" }));
    const add = el("form", { class: "add-card", onsubmit: async (e) => {
      e.preventDefault();
      const title = input.value.trim();
      if (!title) return;
      const made = await call("POST", "ideas/", { title, lane: lane.id, kind: kind.value });
      if (made) { input.value = ""; upsert(made); }
    } }, input, kind, el("button", { class: "btn btn-small", type: "submit", text: "Add" }));
    return el("section", { class: "lane", "data-lane-id": lane.id }, head, list, add);
  }

  function dropIndex(list, y, draggedId) {
    const cards = [...list.querySelectorAll(".idea-card")].filter((c) => Number(c.dataset.ideaId) !== draggedId);
    const i = cards.findIndex((c) => { const r = c.getBoundingClientRect(); return y < r.top + r.height / 2; });
    return i === -1 ? cards.length : i;
  }

  function renderLanes() {
    $("#lanes").replaceChildren(...lanes.map(laneEl));
    lanes.forEach((l) => renderLaneCards(l.id));
  }

  function renderLaneCards(laneId) {
    const list = $(`.lane-cards[data-lane-id="${laneId}"]`);
    if (!list) return;
    const items = laneIdeas(laneId);
    list.replaceChildren(...(items.length ? items.map(cardEl) : [el("p", { class: "empty", text: canWrite() ? "Drop a card here or add one below." : "No cards." })]));
    const count = list.parentElement.querySelector(".lane-count");
    if (count) count.textContent = String(items.length);
    const form = list.parentElement.querySelector(".add-card");
    if (form) form.hidden = !canWrite();
  }

  function renderCard(id) {
    const idea = ideas.get(id);
    const old = $(`#lanes .idea-card[data-idea-id="${id}"]`);
    if (idea && old && Number(old.parentElement.dataset.laneId) === idea.lane) old.replaceWith(cardEl(idea));
    else if (idea) renderLaneCards(idea.lane);
    if (view === "matrix") renderMatrix();
  }

  // --- matrix ------------------------------------------------------------------------
  const QUADRANTS = [
    ["Quick wins", "high impact, low effort"], ["Major projects", "high impact, high effort"],
    ["Fill-ins", "low impact, low effort"], ["Thankless tasks", "low impact, high effort"],
  ];

  function renderMatrix() {
    const grid = el("div", { class: "matrix", role: "grid", "aria-label": "Impact / effort matrix" });
    for (let impact = 5; impact >= 1; impact--) {
      for (let effort = 1; effort <= 5; effort++) {
        const cell = el("div", { class: `matrix-cell ${impact >= 3 ? "hi" : "lo"}-impact ${effort <= 3 ? "lo" : "hi"}-effort`, "data-impact": impact, "data-effort": effort });
        cell.addEventListener("dragover", (e) => { if (canWrite()) { e.preventDefault(); cell.classList.add("drop"); } });
        cell.addEventListener("dragleave", () => cell.classList.remove("drop"));
        cell.addEventListener("drop", (e) => {
          e.preventDefault();
          cell.classList.remove("drop");
          const id = Number(e.dataTransfer.getData("text/plain"));
          if (id) rate(id, impact, effort);
        });
        for (const idea of [...ideas.values()].filter((i) => i.impact === impact && i.effort === effort)) {
          const chip = el("div", { class: `matrix-chip kind-${idea.kind}`, "data-idea-id": idea.id, draggable: canWrite() ? "true" : null, title: idea.title },
            el("span", { class: "chip-title", text: idea.title }), el("span", { class: "votes", text: votesText(idea) }));
          chip.addEventListener("dragstart", (e) => e.dataTransfer.setData("text/plain", String(idea.id)));
          cell.append(chip);
        }
        grid.append(cell);
      }
    }
    const labels = el("div", { class: "matrix-quadrants" }, ...QUADRANTS.map(([t, s]) => el("div", {}, el("strong", { text: t }), el("span", { class: "muted", text: ` ${s}` }))));
    $("#matrix").replaceChildren(
      el("div", { class: "matrix-frame" }, el("div", { class: "axis-y", text: "Impact ↑" }), grid, el("div", { class: "axis-x", text: "Effort →" })),
      labels);
  }

  function setView(next) {
    view = next;
    $("#lanes").hidden = view !== "lanes";
    $("#matrix").hidden = view !== "matrix";
    document.querySelectorAll(".view-toggle button").forEach((b) => b.classList.toggle("btn-secondary", b.dataset.view !== view));
    history.replaceState(null, "", view === "matrix" ? "#matrix" : "#");
    if (view === "matrix") renderMatrix();
  }

  // --- board chrome ------------------------------------------------------------------
  function renderChrome() {
    $("#lock-banner").hidden = !S.locked;
    const left = S.can_participate ? `You have ${S.votes_left} of ${S.vote_budget} votes left` : "You follow this board (no voting)";
    $("#my-votes").textContent = left + (S.votes_hidden ? " · tallies hidden until the facilitator reveals them" : "");
    const lock = $("#toggle-lock");
    if (lock) lock.textContent = S.locked ? "Unlock board" : "Lock board";
    const hide = $("#toggle-hidden");
    if (hide) hide.textContent = S.votes_hidden ? "Reveal votes" : "Hide votes";
  }

  function renderPresence() {
    const users = S.presence || [];
    $("#presence").replaceChildren(el("span", { class: "muted", text: "On the board: " }),
      ...users.map((u) => el("span", { class: `avatar${u === S.me ? " me" : ""}`, title: u, text: u })));
  }

  function tick() {
    const box = $("#timer");
    if (!S.timer_ends_at) { box.hidden = true; return; }
    const left = Math.max(0, Math.round((new Date(S.timer_ends_at) - Date.now()) / 1000));
    box.hidden = false;
    box.textContent = left ? `⏱ ${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}` : "⏱ time is up";
    box.classList.toggle("done", left === 0);
  }

  // --- actions -----------------------------------------------------------------------
  function upsert(idea) {
    const before = ideas.get(idea.id);
    ideas.set(idea.id, { ...(before || {}), ...idea });
    if (before && before.lane !== idea.lane) renderLaneCards(before.lane);
    renderLaneCards(idea.lane);
    if (view === "matrix") renderMatrix();
  }

  async function vote(id, delta) {
    const out = await call(delta > 0 ? "POST" : "DELETE", `ideas/${id}/votes/`);
    if (!out) return;
    myVotes.set(id, Math.max(0, (myVotes.get(id) || 0) + delta));
    S.votes_left = out.votes_left;
    renderChrome();
    renderCard(id);
  }

  function applyOrder(laneId, order) {
    order.forEach((cardId, i) => { const c = ideas.get(cardId); if (c) { c.lane = laneId; c.position = i; } });
  }

  async function move(id, laneId, index) {
    const idea = ideas.get(id);
    if (!idea) { toast("That card no longer exists: someone deleted it a moment ago.", "error"); return; }
    const fromLane = idea.lane;
    const order = laneIdeas(laneId).filter((c) => c.id !== id).map((c) => c.id);
    order.splice(index, 0, id);
    applyOrder(laneId, order); // optimistic; the server's order arrives on the socket
    renderLaneCards(fromLane);
    renderLaneCards(laneId);
    const out = await call("POST", `ideas/${id}/move/`, { lane: laneId, position: index });
    if (out) return;
    idea.lane = fromLane;
    if (await gone(id)) ideas.delete(id); // deleted by someone whose event has not arrived yet
    renderLaneCards(fromLane);
    renderLaneCards(laneId);
  }

  async function gone(id) {
    const response = await fetch(`${API}ideas/${id}/`, { credentials: "same-origin", headers: { Accept: "application/json" } });
    return response.status === 404;
  }

  async function rate(id, impact, effort) {
    const idea = ideas.get(id);
    if (!idea) return;
    await call("PATCH", `ideas/${id}/`, { impact, effort, versions: { impact: idea.versions.impact || 0, effort: idea.versions.effort || 0 } });
  }

  async function removeIdea(id) {
    const idea = ideas.get(id);
    if (!idea || !confirm(`Delete the card "${idea.title}"?`)) return;
    if (await call("DELETE", `ideas/${id}/`)) { ideas.delete(id); renderLaneCards(idea.lane); }
  }

  async function renameLane(lane) {
    const title = prompt("Lane title", lane.title);
    if (title && title.trim() && title !== lane.title) await call("PATCH", `lanes/${lane.id}/`, { title });
  }

  async function shiftLane(id, by) {
    const order = lanes.map((l) => l.id);
    const i = order.indexOf(id), j = i + by;
    if (j < 0 || j >= order.length) return;
    [order[i], order[j]] = [order[j], order[i]];
    await call("POST", "lanes/order/", { order });
  }

  const EDIT_FIELDS = ["title", "problem", "solution", "data_available", "benefit", "kind", "impact", "effort", "status", "tags", "owner"];

  function formValue(name, idea) {
    if (name === "tags") return (idea.tags || []).join(", ");
    if (name === "owner") return idea.owner || "";
    return idea[name] === null || idea[name] === undefined ? "" : String(idea[name]);
  }

  function openEdit(id) {
    const idea = ideas.get(id);
    if (!idea) return;
    const form = $("#edit-form");
    for (const name of EDIT_FIELDS) form.elements[name].value = formValue(name, idea);
    editing = { id, versions: { ...idea.versions }, started: Object.fromEntries(EDIT_FIELDS.map((n) => [n, formValue(n, idea)])) };
    $("#edit-notice").textContent = "";
    $("#edit-error").textContent = "";
    $("#edit-dialog").showModal();
  }

  function editChanges(current) {
    const form = $("#edit-form");
    const changes = {};
    for (const name of EDIT_FIELDS) {
      const value = form.elements[name].value;
      if (value !== current.started[name]) changes[name] = value;
    }
    if (changes.tags !== undefined) changes.tags = changes.tags.split(",").map((t) => t.trim()).filter(Boolean);
    for (const n of ["impact", "effort"]) if (changes[n] !== undefined) changes[n] = Number(changes[n]);
    return changes;
  }

  // Save keeps the dialog open until the server accepts the change: a refused save
  // shows why inside the dialog (a toast would sit behind the modal) and the text stays.
  $("#edit-form").addEventListener("submit", async (event) => {
    if (!event.submitter || event.submitter.value !== "save") return; // Cancel closes as usual
    event.preventDefault();
    const current = editing;
    if (!current) return;
    const changes = editChanges(current);
    if (!Object.keys(changes).length) { $("#edit-dialog").close("cancel"); return; }
    const versions = Object.fromEntries(Object.keys(changes).map((n) => [n, current.versions[n] || 0]));
    const button = event.submitter;
    button.disabled = true;
    $("#edit-error").textContent = "";
    const out = await request("PATCH", `ideas/${current.id}/`, { ...changes, versions });
    button.disabled = false;
    if (!out.ok) { $("#edit-error").textContent = `Not saved: ${out.message}`; return; }
    if (editing === current) $("#edit-dialog").close("save");
    upsert(out.data);
    for (const c of out.data.conflicts || []) toast(`Your change to ${c.field.replace("_", " ")} replaced one ${c.overwritten} made meanwhile.`, "warning");
  });

  $("#edit-dialog").addEventListener("close", () => { editing = null; });

  // --- live events -------------------------------------------------------------------
  const handlers = {
    "idea.created": (p) => upsert(p),
    "idea.updated": (p) => {
      upsert(p);
      for (const c of p.conflicts || []) {
        if (c.overwritten === S.me) toast(`${p.by} overwrote your change to ${c.field.replace("_", " ")} on "${p.title}".`, "warning");
      }
      if (editing && editing.id === p.id && p.by !== S.me) {
        $("#edit-notice").textContent = `${p.by} just changed ${(p.fields || []).join(", ")}; if you save the same fields, yours win and they are told.`;
      }
    },
    "idea.moved": (p) => {
      const idea = ideas.get(p.id);
      const from = idea ? idea.lane : null;
      applyOrder(p.lane, p.order);
      if (from && from !== p.lane) renderLaneCards(from);
      renderLaneCards(p.lane);
    },
    "idea.deleted": (p) => {
      const idea = ideas.get(p.id);
      ideas.delete(p.id);
      myVotes.delete(p.id);
      if (idea) renderLaneCards(idea.lane);
      if (view === "matrix") renderMatrix();
      if (editing && editing.id === p.id) { editing = null; $("#edit-dialog").close(); toast(`${p.by} deleted the card you were editing.`, "warning"); }
      if (p.by !== S.me) refreshVotesLeft();
    },
    "vote.changed": (p) => { const i = ideas.get(p.id); if (i) { i.votes = p.votes; renderCard(p.id); } },
    "comment.added": (p) => { const i = ideas.get(p.idea); if (i) { i.comments = p.count; renderCard(p.idea); } },
    "board.updated": (p) => {
      const relock = p.locked !== S.locked;
      Object.assign(S, { title: p.title, locked: p.locked, votes_hidden: p.votes_hidden, vote_budget: p.vote_budget, timer_ends_at: p.timer_ends_at });
      if (p.vote_counts) for (const [id, n] of Object.entries(p.vote_counts)) { const i = ideas.get(Number(id)); if (i) i.votes = n; }
      if (p.votes_hidden) for (const i of ideas.values()) i.votes = null;
      refreshVotesLeft();
      renderChrome();
      tick();
      lanes.forEach((l) => renderLaneCards(l.id));
      if (view === "matrix") renderMatrix();
      if (relock && p.by !== S.me) toast(p.locked ? `${p.by} locked the board.` : `${p.by} unlocked the board.`);
    },
    "lane.created": (p) => { lanes.push(p); renderLanes(); },
    "lane.updated": (p) => { lanes = lanes.map((l) => (l.id === p.id ? { ...l, ...p } : l)); renderLanes(); },
    "lane.deleted": (p) => { lanes = lanes.filter((l) => l.id !== p.id); renderLanes(); },
    "lanes.reordered": (p) => { lanes = p.order.map((id, i) => ({ ...lanes.find((l) => l.id === id), position: i })); renderLanes(); },
    presence: (p) => { S.presence = p.users; renderPresence(); },
  };

  async function refreshVotesLeft() {
    if (!S.can_participate) return;
    const response = await fetch(API, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!response.ok) return;
    const data = await response.json();
    S.votes_left = data.votes_left;
    myVotes.clear();
    for (const [k, v] of Object.entries(data.my_votes)) myVotes.set(Number(k), v);
    renderChrome();
  }

  let retry = 0;
  function connect() {
    const status = $("#live-status");
    const socket = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws/boards/${S.id}/`);
    let pinger = null;
    socket.onopen = () => {
      retry = 0;
      status.textContent = "live";
      status.className = "badge badge-ok";
      pinger = setInterval(() => socket.send(JSON.stringify({ type: "ping" })), 30000);
    };
    socket.onmessage = (msg) => {
      const { event, payload } = JSON.parse(msg.data);
      const handler = handlers[event];
      if (handler) handler(payload);
    };
    socket.onclose = (e) => {
      clearInterval(pinger);
      if (e.code === 4403 || e.code === 4401) { status.textContent = "not allowed"; status.className = "badge badge-bad"; return; }
      status.textContent = "reconnecting…";
      status.className = "badge badge-warn";
      setTimeout(connect, Math.min(10000, 500 * 2 ** retry++));
    };
  }

  // --- facilitator controls ----------------------------------------------------------
  const bind = (id, fn) => { const b = document.getElementById(id); if (b) b.addEventListener("click", fn); };
  bind("toggle-lock", () => call("PATCH", "", { locked: !S.locked }));
  bind("toggle-hidden", () => call("PATCH", "", { votes_hidden: !S.votes_hidden }));
  bind("set-budget", () => call("PATCH", "", { vote_budget: Number($("#budget").value) }));
  bind("start-timer", () => call("PATCH", "", { timer_minutes: Number($("#timer-minutes").value) }));
  bind("stop-timer", () => call("PATCH", "", { timer_minutes: 0 }));
  bind("add-lane", async () => {
    const input = $("#new-lane");
    if (input.value.trim() && (await call("POST", "lanes/", { title: input.value.trim() }))) input.value = "";
  });
  document.querySelectorAll(".view-toggle button").forEach((b) => b.addEventListener("click", () => setView(b.dataset.view)));

  renderLanes();
  renderChrome();
  renderPresence();
  setView(view);
  tick();
  setInterval(tick, 1000);
  connect();
})();
