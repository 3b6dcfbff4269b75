// Dataset pages: draw the server-built plotly figures (profile, lineage), move to a
// node's lineage on click, and upload a file with a progress bar through the REST API.
(function () {
  "use strict";

  function readJson(id) {
    var el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  }

  document.querySelectorAll("[data-chart]").forEach(function (el) {
    var figure = readJson(el.getAttribute("data-chart"));
    if (!figure || !window.Plotly) return;
    if (figure.layout && figure.layout.height) el.style.height = figure.layout.height + "px";
    window.Plotly.newPlot(el, figure.data, figure.layout, { displaylogo: false, responsive: true });
    var lineage = el.getAttribute("data-lineage");
    if (lineage) {
      el.on("plotly_click", function (event) {
        var point = event.points && event.points[0];
        if (point && point.customdata) window.location = lineage + "?node=" + encodeURIComponent(point.customdata);
      });
    }
  });

  var form = document.getElementById("upload-form");
  if (!form) return;
  var bar = document.getElementById("upload-progress");
  var statusText = document.getElementById("upload-status");
  var errorBox = document.getElementById("upload-error");
  function fail(message) {
    errorBox.textContent = message;
    errorBox.hidden = false;
    form.querySelector("button").disabled = false;
  }
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    errorBox.hidden = true;
    var file = form.elements.file.files[0];
    var name = form.elements.name.value.trim();
    if (!name) return fail("Give the dataset a name.");
    if (!file) return fail("Choose a file to upload.");
    var body = new FormData();
    body.append("file", file);
    body.append("description", form.elements.description.value);
    var url = form.dataset.api + encodeURIComponent(form.elements.project.value) + "/datasets/" + encodeURIComponent(name) + "/upload/";
    var xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    xhr.setRequestHeader("X-CSRFToken", form.elements.csrfmiddlewaretoken.value);
    xhr.upload.onprogress = function (e) {
      if (e.lengthComputable) {
        bar.value = Math.round((100 * e.loaded) / e.total);
        statusText.textContent = bar.value < 100 ? "Uploading… " + bar.value + "%" : "Converting and hashing…";
      }
    };
    xhr.onload = function () {
      var answer = {};
      try { answer = JSON.parse(xhr.responseText); } catch (e) { /* not JSON */ }
      if (xhr.status === 200 || xhr.status === 201) {
        statusText.textContent = xhr.status === 201 ? "New version made." : "Same content as an existing version.";
        window.location = form.dataset.pages + encodeURIComponent(form.elements.project.value) + "/" + encodeURIComponent(name) + "/" + answer.id + "/";
      } else {
        fail((answer.error && answer.error.message) || "The upload failed (" + xhr.status + ").");
      }
    };
    xhr.onerror = function () { fail("The upload was interrupted; try again."); };
    bar.hidden = false;
    form.querySelector("button").disabled = true;
    xhr.send(body);
  });
})();
