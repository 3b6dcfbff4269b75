// The MLflow client prints "View run at <tracking URI>/#/experiments/<id>/runs/<id>":
// MLflow's own UI routes, in the fragment, which never reaches the server, so such a
// link opened our home page. Send it to the matching page here (through the login
// form's `next` when signing in first).
(function () {
  "use strict";
  var routes = [
    [/^#\/experiments\/\d+\/runs\/([0-9a-f]{32})/, function (m) { return "/runs/" + m[1] + "/"; }],
    [/^#\/experiments\/(\d+)/, function (m) { return "/experiments/" + m[1] + "/"; }],
    [/^#\/models\/([^/]+)\/versions\/(\d+)/, function (m) {
      var name = decodeURIComponent(m[1]), cut = name.indexOf("/");
      return cut < 0 ? null : "/models/" + name.slice(0, cut) + "/" + name.slice(cut + 1) + "/versions/" + m[2] + "/";
    }],
  ];
  var target = null;
  for (var i = 0; i < routes.length && !target; i++) {
    var m = location.hash.match(routes[i][0]);
    if (m) target = routes[i][1](m);
  }
  if (!target) return;
  document.addEventListener("DOMContentLoaded", function () {
    var next = document.querySelector("form input[name=next]");
    if (next) {
      next.value = target;
      history.replaceState(null, "", location.pathname + location.search);
    } else {
      location.replace(target);
    }
  });
})();
