/* Storefront behaviours, no dependencies:
 * - form[data-submit-once]: disable the submit buttons while the form is being sent (no double orders).
 * - [data-live-refresh="N"] with an id: every N seconds, fetch this page again and swap that element in;
 *   stops when the fresh copy no longer asks to be refreshed (the order is no longer awaiting payment).
 */
(function () {
  "use strict";

  function setBusy(form, busy) {
    form.querySelectorAll("button[type=submit]").forEach(function (button) {
      button.disabled = busy;
      if (busy) button.setAttribute("aria-busy", "true"); else button.removeAttribute("aria-busy");
    });
  }

  document.querySelectorAll("form[data-submit-once]").forEach(function (form) {
    form.addEventListener("submit", function () { setBusy(form, true); });
  });
  // Coming back with the browser's Back button restores the page as it was left: enable the buttons again.
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) document.querySelectorAll("form[data-submit-once]").forEach(function (form) { setBusy(form, false); });
  });

  function watch(element) {
    var seconds = Number(element.getAttribute("data-live-refresh"));
    if (!seconds || !element.id) return;
    var delay = seconds * 1000;
    function refresh() {
      fetch(window.location.href, { credentials: "same-origin", cache: "no-store", headers: { "X-Requested-With": "fetch" } })
        .then(function (response) {
          if (!response.ok) throw new Error("HTTP " + response.status);
          return response.text();
        })
        .then(function (html) {
          var fresh = new DOMParser().parseFromString(html, "text/html").getElementById(element.id);
          if (!fresh) throw new Error("element missing");
          element.replaceWith(fresh);
          watch(fresh);
        })
        .catch(function () { window.setTimeout(refresh, delay * 3); });
    }
    window.setTimeout(refresh, delay);
  }

  document.querySelectorAll("[data-live-refresh]").forEach(watch);
})();
