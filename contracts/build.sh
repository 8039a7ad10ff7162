#!/usr/bin/env bash
# Rebuild the compiled contracts ({"abi": [...], "bytecode": "0x..."}) with the solcjs pinned in package.json
# (run `npm ci` first). The output is committed so tests and the app need no compiler.
#  - TestStablecoin, TestProxy: the dev tokens stablepay.dev deploys (the demo, the tests, a host trying
#    stablepay on a local chain), in stablepay/dev/contracts/: inside the package, so an installed app has them.
#  - TetherLikeToken: a test-only token (tests/support/real_coins.py), in contracts/build/.
#  - ForwarderFactory, Forwarder: the deposit-address factory (issue 18), in stablepay/chain/contracts/ (the
#    app reads them at run time). Built without the metadata hash (appendCBOR false), so their bytecode, and
#    with it the factory's CREATE2 address on every chain and every deposit address, depends on the code
#    alone, not on comments or file paths. Changing the code moves every forwarder deposit address:
#    stablepay/chain/forwarder.py pins the expected factory address.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The package's own script, not node_modules/.bin/solcjs: that link is missing or stale after some
# `npm install` runs (another package may claim the `solcjs` bin name).
SOLCJS="$ROOT/node_modules/solc/solc.js"
[ -f "$SOLCJS" ] || { echo "solcjs not found at $SOLCJS: run 'npm ci' in $ROOT" >&2; exit 1; }
mkdir -p "$ROOT/contracts/build"
cd "$ROOT/contracts"

# build FILES CONTRACTS APPEND_CBOR OUT_DIR
build() {
  FILES="$1" CONTRACTS="$2" APPEND_CBOR="$3" node -e '
const fs = require("fs");
const sources = {};
for (const file of process.env.FILES.split(" ")) sources[file] = { content: fs.readFileSync(file, "utf8") };
process.stdout.write(JSON.stringify({
  language: "Solidity",
  sources,
  settings: {
    optimizer: { enabled: true, runs: 200 },
    evmVersion: "paris",
    metadata: { appendCBOR: process.env.APPEND_CBOR === "true" },
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } },
  },
}));
' | node "$SOLCJS" --standard-json | CONTRACTS="$2" OUT_DIR="$4" node -e '
const fs = require("fs");
const raw = fs.readFileSync(0, "utf8");
const out = JSON.parse(raw.slice(raw.indexOf("{")));  // solcjs prints a line before the JSON
const errors = (out.errors || []).filter((e) => e.severity === "error");
for (const e of out.errors || []) console.error(e.formattedMessage || e.message);
if (errors.length) process.exit(1);
for (const pair of process.env.CONTRACTS.split(" ")) {
  const [file, name] = pair.split(":");
  const c = out.contracts[file][name];
  const artifact = { abi: c.abi, bytecode: "0x" + c.evm.bytecode.object };
  const path = process.env.OUT_DIR + "/" + name + ".json";
  fs.writeFileSync(path, JSON.stringify(artifact, null, 2) + "\n");
  console.log("wrote " + path + " (" + c.evm.bytecode.object.length / 2 + " bytes)");
}
'
}

mkdir -p "$ROOT/stablepay/dev/contracts"
build "TestStablecoin.sol TestProxy.sol" "TestStablecoin.sol:TestStablecoin TestProxy.sol:TestProxy" true \
  ../stablepay/dev/contracts
build "TetherLikeToken.sol" "TetherLikeToken.sol:TetherLikeToken" true build
# The app needs these at run time (deposit addresses, the factory's deployment): inside the package.
mkdir -p "$ROOT/stablepay/chain/contracts"
build "ForwarderFactory.sol" "ForwarderFactory.sol:ForwarderFactory ForwarderFactory.sol:Forwarder" false \
  ../stablepay/chain/contracts
