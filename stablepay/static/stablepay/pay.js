// Payment page: countdown, copy buttons and live status (polls the public status JSON; no reloads).
// Every text comes from the page's JSON i18n block; the server works out the state and the display amounts.
(function () {
  "use strict";
  const root = document.getElementById("pay");
  if (!root) return;
  const t = JSON.parse(document.getElementById("pay-i18n").textContent);
  const statusUrl = root.dataset.statusUrl;
  const expiresAt = new Date(root.dataset.expiresAt);
  const FINAL = ["paid", "refunded", "canceled"];
  const DONE = ["paid", "overpaid", "expired", "underpaid_expired", "late", "needs_review", "refunded", "canceled"];
  const RECEIPT = ["paid", "overpaid"];
  let current = JSON.parse(document.getElementById("initial-status").textContent);
  let announced = null;

  function $(id) { return document.getElementById(id); }

  function text(id, value) {
    const el = $(id);
    if (el && el.textContent !== value) el.textContent = value;
  }

  function fill(template, s) {
    return template.replace("{paid}", s.display.amount_paid).replace("{remaining}", s.display.amount_remaining);
  }

  function confirmations(s) {
    const live = s.transfers.filter((x) => x.state !== "orphaned" && x.token === s.token);
    if (!live.length) return null;
    return Math.min.apply(null, live.map((x) => x.confirmations));
  }

  function txLink(x) {
    if (x.explorer_url) {
      const a = document.createElement("a");
      a.href = x.explorer_url; a.rel = "noopener"; a.target = "_blank";
      a.className = "tx";
      a.textContent = x.tx_hash.slice(0, 10) + "…" + x.tx_hash.slice(-8);
      a.title = x.tx_hash;
      const hidden = document.createElement("span");
      hidden.className = "visually-hidden";
      hidden.textContent = " " + t.view;
      a.appendChild(hidden);
      return a;
    }
    const code = document.createElement("code");
    code.className = "tx";
    code.textContent = x.tx_hash.slice(0, 10) + "…" + x.tx_hash.slice(-8);
    code.title = x.tx_hash;
    return code;
  }

  function renderTransfers(s) {
    const list = $("transfers");
    list.replaceChildren();
    if (!s.transfers.length) {
      const li = document.createElement("li");
      li.className = "muted";
      li.textContent = t.none_yet;
      list.appendChild(li);
      return;
    }
    s.transfers.forEach(function (x) {
      const li = document.createElement("li");
      li.className = "transfer transfer-" + x.state;
      const amount = document.createElement("span");
      amount.className = "transfer-amount";
      amount.textContent = x.amount_display;
      const meta = document.createElement("span");
      meta.className = "transfer-meta";
      if (x.state === "orphaned") meta.textContent = t.orphaned;
      else if (x.state === "confirmed") meta.textContent = t.confirmed;
      else meta.textContent = Math.min(x.confirmations, s.required_confirmations) + "/" +
        s.required_confirmations + " " + t.confirmations;
      li.append(amount, meta, txLink(x));
      list.appendChild(li);
    });
  }

  function renderReceipt(s) {
    const show = RECEIPT.includes(s.state);
    $("receipt").hidden = !show;
    if (!show) return;
    text("receipt-price", s.display.price);
    text("receipt-amount", s.display.amount_paid);
    text("receipt-time", s.display.paid_at);
    const list = $("receipt-txs");
    list.replaceChildren();
    s.transfers.filter((x) => x.state !== "orphaned" && x.token === s.token).forEach(function (x) {
      const li = document.createElement("li");
      li.appendChild(txLink(x));
      list.appendChild(li);
    });
  }

  function render(s) {
    current = s;
    root.dataset.status = s.status;
    root.dataset.state = s.state;
    $("pay-status").dataset.state = s.state;
    const badge = $("status-badge");
    badge.dataset.status = s.status;
    text("status-badge", t["status_" + s.status] || s.status);

    let line = t["state_" + s.state] || s.state;
    const n = confirmations(s);
    const progress = $("progress");
    const shown = s.state === "confirming" && n !== null ? Math.min(n, s.required_confirmations) : null;
    if (shown !== null) line += " (" + shown + "/" + s.required_confirmations + " " + t.confirmations + ")";
    progress.hidden = !(shown !== null || RECEIPT.includes(s.state));
    const value = RECEIPT.includes(s.state) ? s.required_confirmations : (shown || 0);
    progress.setAttribute("aria-valuenow", String(value));
    $("progress-bar").style.width = Math.min(100, (100 * value) / Math.max(1, s.required_confirmations)) + "%";
    text("status-text", line);

    const detail = t["detail_" + s.state];
    $("status-detail").hidden = !detail;
    text("status-detail", detail ? fill(detail, s) : "");

    // Underpaid: what is left to send, to the same address (the QR code holds the full amount, so it hides).
    const topUp = s.state === "underpaid";
    const left = topUp ? s.amount_remaining : s.amount_due;
    text("amount-copy", left);
    text("send-label", topUp ? t.send_rest : t.send_exactly);
    $("copy-amount").dataset.copy = left;
    $("pay-qr").hidden = topUp;
    text("amount-paid", s.display.amount_paid);

    renderTransfers(s);
    renderReceipt(s);
    const done = DONE.includes(s.state);
    // Confirming: everything due has arrived; "send exactly" and a QR still on screen would invite paying twice.
    const sent = done || s.state === "confirming";
    $("pay-instructions").hidden = sent;
    $("pay-hint").hidden = sent;
    const restart = $("restart");
    if (restart) restart.hidden = s.state !== "expired";
    const demo = $("demo-wallet");
    if (demo) demo.hidden = done || s.state === "confirming";
    $("countdown-wrap").hidden = done || s.state === "confirming";

    // One announcement per change of state (or of the amount still due), never per countdown tick.
    const key = s.state + ":" + s.amount_remaining_base_units + ":" + (shown === null ? "" : shown);
    if (announced !== null && key !== announced) {
      text("announce", detail ? line + " " + fill(detail, s) : line);
    }
    announced = key;
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
    if (!FINAL.includes(current.status)) setTimeout(poll, 1500);
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
