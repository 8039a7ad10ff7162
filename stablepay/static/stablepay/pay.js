// Payment page: countdown, copy buttons and live status (polls the public status JSON; no reloads).
(function () {
  "use strict";
  const root = document.getElementById("pay");
  if (!root) return;
  const t = JSON.parse(document.getElementById("pay-i18n").textContent);
  const statusUrl = root.dataset.statusUrl;
  const expiresAt = new Date(root.dataset.expiresAt);
  const FINAL = ["paid", "refunded", "canceled"];
  let current = JSON.parse(document.getElementById("initial-status").textContent);
  let timer = null;

  function text(id, value) {
    const el = document.getElementById(id);
    if (el && el.textContent !== value) el.textContent = value;
  }

  function message(s) {
    if (s.exception && t[s.exception]) return t[s.exception];
    return t[s.status] || s.status;
  }

  function confirmations(s) {
    const live = s.transfers.filter((x) => x.state !== "orphaned" && x.token === s.token);
    if (!live.length) return null;
    return Math.min.apply(null, live.map((x) => x.confirmations));
  }

  function renderTransfers(s) {
    const list = document.getElementById("transfers");
    list.replaceChildren();
    if (!s.transfers.length) {
      const li = document.createElement("li");
      li.className = "muted";
      li.textContent = "—";
      list.appendChild(li);
      return;
    }
    s.transfers.forEach(function (x) {
      const li = document.createElement("li");
      li.className = "transfer transfer-" + x.state;
      const amount = document.createElement("span");
      amount.className = "transfer-amount";
      const units = BigInt(x.amount_base_units);
      const scale = BigInt(10) ** BigInt(s.decimals);
      const frac = (units % scale).toString().padStart(s.decimals, "0");
      amount.textContent = (units / scale).toString() + (s.decimals ? "." + frac : "") + " " + x.token;
      const meta = document.createElement("span");
      meta.className = "transfer-meta";
      if (x.state === "orphaned") meta.textContent = t.orphaned;
      else if (x.state === "confirmed") meta.textContent = t.confirmed;
      else meta.textContent = Math.min(x.confirmations, s.required_confirmations) + "/" +
        s.required_confirmations + " " + t.confirmations;
      li.append(amount, meta);
      if (x.explorer_url) {
        const a = document.createElement("a");
        a.href = x.explorer_url; a.rel = "noopener"; a.target = "_blank";
        a.textContent = t.view;
        li.appendChild(a);
      } else {
        const code = document.createElement("code");
        code.className = "tx";
        code.textContent = x.tx_hash.slice(0, 10) + "…" + x.tx_hash.slice(-8);
        code.title = x.tx_hash;
        li.appendChild(code);
      }
      list.appendChild(li);
    });
  }

  function render(s) {
    current = s;
    root.dataset.status = s.status;
    const badge = document.getElementById("status-badge");
    badge.dataset.status = s.status;
    text("status-badge", t["status_" + s.status] || s.status);
    let line = message(s);
    const n = confirmations(s);
    const progress = document.getElementById("progress");
    if (s.status === "confirming" && n !== null) {
      line += " (" + Math.min(n, s.required_confirmations) + "/" + s.required_confirmations + " " + t.confirmations + ")";
      progress.hidden = false;
      document.getElementById("progress-bar").style.width =
        Math.min(100, (100 * Math.min(n, s.required_confirmations)) / s.required_confirmations) + "%";
    } else {
      progress.hidden = s.status !== "paid";
      document.getElementById("progress-bar").style.width = s.status === "paid" ? "100%" : "0%";
    }
    text("status-text", line);
    text("amount-paid", s.amount_paid);
    renderTransfers(s);
    const done = FINAL.includes(s.status) || s.status === "needs_review" || s.status === "expired";
    document.getElementById("pay-instructions").classList.toggle("is-done", s.status === "paid");
    const demo = document.getElementById("demo-wallet");
    if (demo) demo.hidden = done || s.status === "confirming";
    document.getElementById("countdown-wrap").hidden = done || s.status === "confirming";
  }

  function tick() {
    const left = Math.max(0, Math.floor((expiresAt - new Date()) / 1000));
    const m = Math.floor(left / 60), sec = left % 60;
    text("countdown", left > 0 ? m + ":" + String(sec).padStart(2, "0") : t.expired_short);
  }

  async function poll() {
    try {
      const response = await fetch(statusUrl, { headers: { Accept: "application/json" }, cache: "no-store" });
      if (response.ok) render(await response.json());
    } catch (e) { /* offline for a moment: the next poll retries */ }
    if (!FINAL.includes(current.status)) timer = setTimeout(poll, 1500);
  }

  document.querySelectorAll("button.copy").forEach(function (button) {
    button.addEventListener("click", async function () {
      try { await navigator.clipboard.writeText(button.dataset.copy); } catch (e) { return; }
      const before = button.textContent;
      button.textContent = t.copied;
      setTimeout(function () { button.textContent = before; }, 1500);
    });
  });

  render(current);
  tick();
  setInterval(tick, 1000);
  poll();
})();
