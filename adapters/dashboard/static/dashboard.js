// VitalsStream dashboard: live refresh of [data-live] parts and confirm dialogs on [data-confirm] forms.
// Every page works without this file; then a reload shows what is new.
(function () {
  "use strict";
  var INTERVAL_MS = Number(document.body.getAttribute("data-refresh-ms")) || 5000;

  document.addEventListener("submit", function (event) {
    var question = event.target.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  });

  function announce(text) {
    var status = document.querySelector(".live-status");
    if (status) {
      status.textContent = text;
    }
  }

  function refresh(element, state) {
    if (document.hidden || state.busy || state.stopped) {
      return;
    }
    state.busy = true;
    fetch(element.getAttribute("data-live"), {credentials: "same-origin", cache: "no-store"})
      .then(function (response) {
        if (response.redirected || !response.ok) {
          state.stopped = true;  // signed out or the server is gone: a reload tells the user which
          announce("Live updates stopped: reload the page.");
          return null;
        }
        var digest = response.headers.get("X-Digest");
        if (digest && digest === element.getAttribute("data-digest")) {
          return null;  // nothing changed: the element (and what has focus in it) stays as it is
        }
        element.setAttribute("data-digest", digest || "");
        return response.text();
      })
      .then(function (html) {
        if (html === null) {
          return;
        }
        var focused = document.activeElement && document.activeElement.id;
        element.innerHTML = html;
        if (focused && document.getElementById(focused)) {
          document.getElementById(focused).focus();
        }
        announce("Updated at " + new Date().toLocaleTimeString() + ".");
      })
      .catch(function () {
        announce("Live updates paused: the server did not answer.");
      })
      .then(function () {
        state.busy = false;
      });
  }

  document.querySelectorAll("[data-live]").forEach(function (element) {
    var state = {busy: false, stopped: false};
    refresh(element, state);
    window.setInterval(function () { refresh(element, state); }, INTERVAL_MS);
  });
})();
