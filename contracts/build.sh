#!/usr/bin/env bash
# Rebuild contracts/build/TestStablecoin.json, TestProxy.json and TetherLikeToken.json ({"abi": [...],
# "bytecode": "0x..."}) with the solcjs pinned in package.json (run `npm ci` first). The output is committed
# so tests need no compiler.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The package's own script, not node_modules/.bin/solcjs: that link is missing or stale after some
# `npm install` runs (another package may claim the `solcjs` bin name).
SOLCJS="$ROOT/node_modules/solc/solc.js"
[ -f "$SOLCJS" ] || { echo "solcjs not found at $SOLCJS: run 'npm ci' in $ROOT" >&2; exit 1; }
mkdir -p "$ROOT/contracts/build"
cd "$ROOT/contracts"
node -e '
const fs = require("fs");
process.stdout.write(JSON.stringify({
  language: "Solidity",
  sources: {
    "TestStablecoin.sol": { content: fs.readFileSync("TestStablecoin.sol", "utf8") },
    "TestProxy.sol": { content: fs.readFileSync("TestProxy.sol", "utf8") },
    "TetherLikeToken.sol": { content: fs.readFileSync("TetherLikeToken.sol", "utf8") },
  },
  settings: {
    optimizer: { enabled: true, runs: 200 },
    evmVersion: "paris",
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } },
  },
}));
' | node "$SOLCJS" --standard-json | node -e '
const fs = require("fs");
const raw = fs.readFileSync(0, "utf8");
const out = JSON.parse(raw.slice(raw.indexOf("{")));  // solcjs prints a line before the JSON
const errors = (out.errors || []).filter((e) => e.severity === "error");
for (const e of out.errors || []) console.error(e.formattedMessage || e.message);
if (errors.length) process.exit(1);
for (const name of ["TestStablecoin", "TestProxy", "TetherLikeToken"]) {
  const c = out.contracts[name + ".sol"][name];
  const artifact = { abi: c.abi, bytecode: "0x" + c.evm.bytecode.object };
  fs.writeFileSync("build/" + name + ".json", JSON.stringify(artifact, null, 2) + "\n");
  console.log("wrote contracts/build/" + name + ".json (" + c.evm.bytecode.object.length / 2 + " bytes)");
}
'
