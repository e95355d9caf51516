#!/usr/bin/env bash
# `npm test`: host packages, type check, lint, then every vitest suite; ends with "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."
bash hack/setup-host.sh
npx tsc --noEmit
npx eslint .
report=$(mktemp)
trap 'rm -f "$report"' EXIT
status=0
npx vitest run --reporter=default --reporter=json --outputFile="$report" "$@" || status=$?
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  console.log(`\ntests: ${r.numPassedTests} passed, ${r.numFailedTests} failed` + (r.numPendingTests ? `, ${r.numPendingTests} skipped` : ""));
' "$report" || true
exit $status
