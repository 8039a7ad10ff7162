/* stablepay ops console: small progressive enhancements. Every form works without this script. */
(function () {
  "use strict";

  // Queue: "select all" per group, and the bulk bar's count.
  var bulkForm = document.getElementById("bulk-form");
  if (bulkForm) {
    var count = document.getElementById("bulk-count");
    var submit = document.getElementById("bulk-submit");
    var boxes = function () { return bulkForm.querySelectorAll("input[name=requests]"); };
    var refresh = function () {
      var n = 0;
      boxes().forEach(function (box) { if (box.checked) { n += 1; } });
      if (count) { count.textContent = n ? n + " " + count.dataset.some : count.dataset.none; }
      if (submit) { submit.disabled = n === 0; }
    };
    bulkForm.querySelectorAll("[data-select-all]").forEach(function (all) {
      all.addEventListener("change", function () {
        bulkForm.querySelectorAll("input[data-group='" + all.dataset.selectAll + "']").forEach(function (box) {
          box.checked = all.checked;
        });
        refresh();
      });
    });
    bulkForm.addEventListener("change", refresh);
    refresh();
  }

  // Detail: the refund fields show only for a refund; "paid from" fills the refund address.
  var actionForm = document.getElementById("action-form");
  var refundFields = document.getElementById("refund-fields");
  if (actionForm && refundFields) {
    var sync = function () {
      var chosen = actionForm.querySelector("input[name=action]:checked");
      refundFields.hidden = !(chosen && chosen.value === "refund");
    };
    actionForm.addEventListener("change", sync);
    sync();
    refundFields.querySelectorAll("[data-fill]").forEach(function (button) {
      button.addEventListener("click", function () {
        var input = document.getElementById("id_refund_address");
        input.value = button.dataset.fill;
        input.focus();
      });
    });
  }

  // Forms: one submission per click.
  document.querySelectorAll("form.stack-form").forEach(function (form) {
    form.addEventListener("submit", function () {
      window.setTimeout(function () {
        form.querySelectorAll("button[type=submit]").forEach(function (b) { b.setAttribute("aria-busy", "true"); });
      }, 0);
    });
  });
})();
