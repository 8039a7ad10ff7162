// Payment page: "Pay with browser wallet" for wallets that inject EIP-1193 (window.ethereum).
// Connect, switch (or add) the chain, check the token balance, then send one ERC-20 transfer of the amount
// still due, encoded here from integer strings (BigInt, never floats). The QR/address path stays the default:
// without a wallet the section stays hidden. The live status (pay.js) follows the payment once it is sent.
(function () {
  "use strict";
  const root = document.getElementById("pay");
  const section = document.getElementById("wallet-pay");
  if (!root || !section) return;
  const cfg = JSON.parse(document.getElementById("wallet-config").textContent);
  const t = JSON.parse(document.getElementById("wallet-i18n").textContent);
  const button = document.getElementById("wallet-pay-button");
  const messageEl = document.getElementById("wallet-pay-message");
  const statusUrl = root.dataset.statusUrl;
  const expiresAt = new Date(root.dataset.expiresAt);
  const ADDRESS = /^0x[0-9a-fA-F]{40}$/;
  const TX_HASH = /^0x[0-9a-fA-F]{64}$/;
  const MAX_UINT256 = (BigInt(1) << BigInt(256)) - BigInt(1);
  let latest = JSON.parse(document.getElementById("initial-status").textContent);
  let busy = false;
  let sent = false;

  function provider() {
    const eth = window.ethereum;
    return eth && typeof eth.request === "function" ? eth : null;
  }

  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, function (whole, key) {
      return Object.prototype.hasOwnProperty.call(values, key) ? String(values[key]) : whole;
    });
  }

  function say(kind, text) {
    messageEl.dataset.kind = kind;
    messageEl.textContent = text;
    messageEl.hidden = !text;
  }

  function units(value) {
    const scale = BigInt(10) ** BigInt(cfg.decimals);
    const whole = (value / scale).toString();
    if (!cfg.decimals) return whole;
    return whole + "." + (value % scale).toString().padStart(cfg.decimals, "0");
  }

  function word(hex) {
    return hex.toLowerCase().replace(/^0x/, "").padStart(64, "0");
  }

  function uintWord(value) {
    if (value < BigInt(0) || value > MAX_UINT256) throw new Error("amount out of range");
    return value.toString(16).padStart(64, "0");
  }

  function addressWord(address) {
    if (!ADDRESS.test(address)) throw new Error("not an address: " + address);
    return word(address);
  }

  function remaining(s) {
    const left = BigInt(s.amount_due_base_units) - BigInt(s.amount_paid_base_units);
    return left > BigInt(0) ? left : BigInt(0);
  }

  function payable(s) {
    return s.status === "open" && remaining(s) > BigInt(0) && new Date() < expiresAt;
  }

  function errorCode(e) {
    if (!e || typeof e !== "object") return null;
    if (typeof e.code === "number") return e.code;
    const inner = e.data && (e.data.originalError || e.data);
    return inner && typeof inner.code === "number" ? inner.code : null;
  }

  function shortAddress(address) {
    return address.slice(0, 6) + "…" + address.slice(-4);
  }

  function update() {
    // Once sent, the section keeps the transaction in view until the request is settled one way or another.
    const inFlight = sent && (latest.status === "open" || latest.status === "confirming");
    const show = Boolean(provider()) && (inFlight || payable(latest));
    section.hidden = !show;
    button.hidden = sent || !payable(latest);
    button.disabled = busy;
    button.setAttribute("aria-busy", busy ? "true" : "false");
  }

  async function freshStatus() {
    try {
      const response = await fetch(statusUrl, { headers: { Accept: "application/json" }, cache: "no-store" });
      if (response.ok) latest = await response.json();
    } catch (e) { /* offline for a moment: use what the page last saw */ }
    return latest;
  }

  class WalletStop extends Error {}

  function stop(kind, text) {
    const e = new WalletStop(text);
    e.kind = kind;
    return e;
  }

  async function ensureChain(eth) {
    const want = BigInt(cfg.chain_id);
    if (BigInt(await eth.request({ method: "eth_chainId" })) === want) return;
    say("info", t.switching);
    try {
      await eth.request({ method: "wallet_switchEthereumChain", params: [{ chainId: cfg.chain_id }] });
    } catch (e) {
      if (errorCode(e) !== 4902 || !cfg.rpc_urls.length) throw stop("error", t.wrong_chain);
      const params = {
        chainId: cfg.chain_id,
        chainName: cfg.chain_name,
        rpcUrls: cfg.rpc_urls,
        nativeCurrency: cfg.native_currency,
      };
      try {
        if (cfg.explorer_tx_url) params.blockExplorerUrls = [new URL(cfg.explorer_tx_url).origin];
      } catch (e3) { /* not an absolute URL: add the chain without an explorer */ }
      try {
        await eth.request({ method: "wallet_addEthereumChain", params: [params] });
      } catch (e2) {
        throw stop("error", t.wrong_chain);
      }
    }
    if (BigInt(await eth.request({ method: "eth_chainId" })) !== want) throw stop("error", t.wrong_chain);
  }

  function showTx(hash) {
    document.getElementById("wallet-pay-tx-hash").textContent = hash.slice(0, 10) + "…" + hash.slice(-8);
    document.getElementById("wallet-pay-tx-hash").title = hash;
    const link = document.getElementById("wallet-pay-tx-link");
    if (cfg.explorer_tx_url) {
      link.href = cfg.explorer_tx_url.replace(cfg.tx_placeholder, hash);
      link.hidden = false;
    }
    document.getElementById("wallet-pay-tx").hidden = false;
  }

  async function pay() {
    const eth = provider();
    if (!eth) { say("error", t.no_wallet); return; }
    busy = true;
    update();
    try {
      const s = await freshStatus();
      const amount = remaining(s);
      if (!payable(s)) throw stop("info", t.nothing_due);
      say("info", t.connecting);
      const accounts = await eth.request({ method: "eth_requestAccounts" });
      const from = Array.isArray(accounts) ? accounts[0] : null;
      if (!from || !ADDRESS.test(from)) throw stop("error", t.no_account);
      await ensureChain(eth);

      say("info", t.checking);
      const balanceHex = await eth.request({
        method: "eth_call",
        params: [{ to: cfg.token_address, data: "0x70a08231" + addressWord(from) }, "latest"],
      });
      const balance = BigInt(balanceHex === "0x" ? 0 : balanceHex);
      if (balance < amount) {
        throw stop("error", fill(t.low_balance, {
          account: shortAddress(from), balance: units(balance), amount: units(amount),
        }));
      }

      // ERC-20 transfer(address,uint256): selector, then the two 32-byte words.
      const data = "0xa9059cbb" + addressWord(cfg.pay_to) + uintWord(amount);
      say("info", fill(t.confirm, { amount: units(amount) }));
      const hash = await eth.request({
        method: "eth_sendTransaction",
        params: [{ from: from, to: cfg.token_address, data: data, value: "0x0" }],
      });
      if (typeof hash !== "string" || !TX_HASH.test(hash)) throw new Error("no transaction hash");
      sent = true;
      section.dataset.state = "sent";
      showTx(hash);
      say("success", t.sent);
    } catch (e) {
      if (e instanceof WalletStop) say(e.kind, e.message);
      else if (errorCode(e) === 4001) say("error", t.rejected);
      else if (errorCode(e) === -32002) say("error", t.pending);
      else say("error", fill(t.failed, { reason: (e && e.message) || String(e) }));
      section.dataset.state = "error";
    } finally {
      busy = false;
      update();
    }
  }

  button.addEventListener("click", pay);
  // pay.js keeps #pay's data-status current: follow it (hide the button once the request is no longer open).
  new MutationObserver(function () {
    latest = Object.assign({}, latest, { status: root.dataset.status });
    update();
  }).observe(root, { attributes: true, attributeFilter: ["data-status"] });
  // Some wallets inject window.ethereum after the page has loaded.
  window.addEventListener("ethereum#initialized", update, { once: true });
  setTimeout(update, 3000);
  update();
  section.dataset.ready = "true";
})();
