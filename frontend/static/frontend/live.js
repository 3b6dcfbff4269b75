// The live pages' websocket: one reconnecting connection per page; events arrive as
// {event, payload} (mlplatform.consumers). A close code of 4400 and up is a refusal
// (no session, no access): no retry then.
"use strict";
window.mlpSocket = function (path, onEvent) {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  let retry = 500;
  function open() {
    const ws = new WebSocket(proto + "//" + location.host + path);
    ws.onmessage = (m) => { const data = JSON.parse(m.data); onEvent(data.event, data.payload); };
    ws.onopen = () => { retry = 500; };
    ws.onclose = (e) => { if (e.code < 4400) setTimeout(open, retry = Math.min(retry * 2, 10000)); };
  }
  open();
};
