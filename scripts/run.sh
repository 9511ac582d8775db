#!/usr/bin/env bash
# The one entry behind `npm start` and `npm test` (and `pnpm start` / `pnpm test`):
# installs what is missing — pnpm, the workspace's packages, redis-server, the Kafka jars —
# idempotently, then runs the command. Safe to run again and again.
set -euo pipefail
cd "$(dirname "$0")/.."

PNPM_VERSION=9.15.9
log() { printf '[clickjoin] %s\n' "$*" >&2; }

ensure_pnpm() {
  if command -v pnpm >/dev/null 2>&1 && [[ "$(pnpm --version 2>/dev/null)" == 9.* ]]; then return; fi
  local local_bin="$PWD/.cache/pnpm/node_modules/.bin"
  if [[ -x "$local_bin/pnpm" ]]; then export PATH="$local_bin:$PATH"; return; fi
  # corepack refuses this registry mirror (no signatures); npm itself works.
  log "installing pnpm $PNPM_VERSION"
  if npm install -g "pnpm@$PNPM_VERSION" >/dev/null 2>&1 && command -v pnpm >/dev/null 2>&1; then return; fi
  npm install --no-save --prefix .cache/pnpm "pnpm@$PNPM_VERSION" >/dev/null
  export PATH="$local_bin:$PATH"
}

ensure_pnpm
# npm passes its own config to child processes as npm_config_*; pnpm would read it as its own.
unset npm_config_prefix npm_config_global npm_config_nodedir 2>/dev/null || true
pnpm install --frozen-lockfile --prefer-offline --reporter=silent
pnpm exec tsx packages/local-stack/src/install.ts

command="${1:-}"
shift || true
case "$command" in
  start) exec node --import tsx packages/local-stack/src/start.ts "$@" ;;
  test)
    pnpm exec tsc -p tsconfig.json
    pnpm exec eslint --max-warnings 0 .
    mkdir -p .cache/test-results
    # The default reporter for people, a JSON report for .ci/run's closing count.
    pnpm exec vitest run --project unit --reporter=default --reporter=json --outputFile.json=.cache/test-results/unit.json "$@"
    rm -f .cache/test-results/integration-2.json
    # The whole integration run goes in two lanes (packages/local-stack/src/test-lanes.ts); a
    # run narrowed by arguments, in one.
    if [[ $# -eq 0 ]]; then exec pnpm exec tsx packages/local-stack/src/test-lanes.ts; fi
    exec pnpm exec vitest run --project integration --reporter=default --reporter=json --outputFile.json=.cache/test-results/integration.json "$@"
    ;;
  install) ;;
  *) log "usage: scripts/run.sh start|test|install"; exit 2 ;;
esac
