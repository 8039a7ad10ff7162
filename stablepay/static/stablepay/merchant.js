/* The merchant dashboard: the daily volume chart (vendored Chart.js), copy buttons, merchant switcher.
 * Amounts arrive as decimal strings; they become numbers here only to be plotted. */
(function () {
  "use strict";

  function readJson(id) {
    var node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }

  function drawVolumeChart() {
    var canvas = document.getElementById("volume-chart");
    var data = readJson("volume-data");
    var i18n = readJson("volume-i18n") || {};
    if (!canvas || !data || typeof window.Chart === "undefined") return;

    var lang = document.documentElement.lang || "en";
    var money = new Intl.NumberFormat(lang, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
    var compact = new Intl.NumberFormat(lang, { notation: "compact", maximumFractionDigits: 1 });
    var day = new Intl.DateTimeFormat(lang, { day: "numeric", month: "short", timeZone: "UTC" });
    var labels = data.labels.map(function (iso) { return day.format(new Date(iso + "T00:00:00Z")); });
    var values = data.hkd.map(function (text) { return Number(text); });
    var styles = getComputedStyle(document.documentElement);
    var brand = styles.getPropertyValue("--brand").trim() || "#0f766e";
    var brandDark = styles.getPropertyValue("--brand-dark").trim() || "#0b5c56";
    var line = styles.getPropertyValue("--line").trim() || "#e2e6ea";
    var muted = styles.getPropertyValue("--muted").trim() || "#5d6b76";
    var reduceMotion = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;
    var lastIndex = values.length - 1;

    var chart = new window.Chart(canvas, {
      type: "bar",
      data: {
        labels: labels,
        datasets: [{
          label: i18n.dataset || "HKD",
          data: values,
          backgroundColor: values.map(function (_, i) { return i === lastIndex ? brandDark : brand; }),
          hoverBackgroundColor: brandDark,
          borderRadius: 4,
          maxBarThickness: 28,
          minBarLength: 0
        }]
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: reduceMotion ? false : { duration: 400 },
        plugins: {
          legend: { display: false },
          tooltip: {
            displayColors: false,
            callbacks: {
              title: function (items) { return data.labels[items[0].dataIndex]; },
              label: function (item) {
                var count = data.counts[item.dataIndex];
                return (i18n.currency || "HKD") + " " + money.format(item.parsed.y) +
                  " \u00b7 " + count + " " + (i18n.payments || "payments");
              }
            }
          }
        },
        scales: {
          x: {
            grid: { display: false },
            ticks: { color: muted, maxRotation: 0, autoSkip: true, autoSkipPadding: 12 },
            border: { color: line }
          },
          y: {
            beginAtZero: true,
            grid: { color: line },
            border: { display: false },
            ticks: {
              color: muted,
              maxTicksLimit: 5,
              callback: function (value) { return compact.format(value); }
            }
          }
        }
      }
    });
    canvas.dataset.rendered = "true";
    canvas.dataset.points = String(chart.data.datasets[0].data.length);
  }

  function wireCopyButtons() {
    document.querySelectorAll("[data-copy]").forEach(function (button) {
      button.addEventListener("click", function () {
        var text = button.getAttribute("data-copy");
        var label = button.textContent;
        var done = function () {
          button.textContent = "\u2713";
          setTimeout(function () { button.textContent = label; }, 1500);
        };
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(text).then(done, function () {});
        } else {
          var area = document.createElement("textarea");
          area.value = text;
          area.setAttribute("readonly", "");
          area.style.position = "absolute";
          area.style.left = "-9999px";
          document.body.appendChild(area);
          area.select();
          try { document.execCommand("copy"); done(); } catch (e) { /* nothing to do */ }
          document.body.removeChild(area);
        }
      });
    });
  }

  function wireAutosubmit() {
    document.querySelectorAll("form[data-autosubmit] select").forEach(function (select) {
      select.addEventListener("change", function () { select.form.submit(); });
    });
  }

  function start() {
    drawVolumeChart();
    wireCopyButtons();
    wireAutosubmit();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
