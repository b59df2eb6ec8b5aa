#!/usr/bin/env bash
# The whole suite, from a fresh clone: set-up (npm deps, ZooKeeper, build), typecheck, lint,
# then unit, integration (real ZooKeeper) and e2e (the built CLI as processes) tests.
# Ends with one line "N passed, N failed" counted from the test run.
set -uo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh || exit 1

status=0
echo '== typecheck'
npm run --silent typecheck || status=1
echo '== lint'
npm run --silent lint || status=1

mkdir -p test-results
echo '== tests (vitest: unit, integration, e2e)'
npx vitest run --reporter=default --reporter=json --outputFile.json=test-results/vitest.json "$@"
tests=$?
(( tests != 0 )) && status=1

# The closing line CI reads: "N passed, N failed" from the JSON report.
node -e '
  const fs = require("node:fs")
  let r
  try { r = JSON.parse(fs.readFileSync("test-results/vitest.json", "utf8")) } catch { console.log("0 passed, 1 failed"); process.exit(0) }
  // A file that failed to load has no failed assertion but must still count as a failure.
  const brokenFiles = (r.testResults ?? []).filter(f => f.status === "failed" && !f.assertionResults.some(a => a.status === "failed")).length
  console.log(`${r.numPassedTests} passed, ${r.numFailedTests + brokenFiles} failed`)
'
exit $status
