#!/usr/bin/env bash
# .ci/run's Docker part (issue 14): the ingest and attributor integration suites with Kafka and
# Redis from testcontainers, then the compose check (scripts/compose-check.ts).
#
# The engine: the one DOCKER_HOST or /var/run/docker.sock answers on; else, as root, Debian's
# docker.io (installed if missing) started on a private socket, /run/clickjoin-docker/docker.sock,
# and stopped at the end. A private socket, so that other checkouts' `npm test` on this machine
# do not switch to containers while it runs. Images come from scripts/docker-images.sh (cached in
# /var/cache/clickjoin-docker and in dockerd's /var/lib/docker: a second run builds nothing).
# Without an engine and without root, it says so and does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[ci-docker] %s\n' "$*" >&2; }
# scripts/run.sh puts pnpm here when it could not install it globally.
command -v pnpm >/dev/null || export PATH=$PWD/.cache/pnpm/node_modules/.bin:$PATH
private_dir=/run/clickjoin-docker
private_host=unix://$private_dir/docker.sock
started_dockerd=
started=$(date +%s)
declare -A took

stop_dockerd() {
  [[ -n $started_dockerd ]] || return 0
  log "stopping the dockerd we started (pid $started_dockerd)"
  kill -TERM "$started_dockerd" 2>/dev/null || true
  for _ in $(seq 1 150); do kill -0 "$started_dockerd" 2>/dev/null || return 0; sleep 0.2; done
  log "dockerd $started_dockerd did not stop within 30 s; killing it"; kill -KILL "$started_dockerd" 2>/dev/null || true
}
trap stop_dockerd EXIT

apt_install() {
  log "installing $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1 || {
    apt-get update -qq >/dev/null 2>&1
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  }
}

t=$(date +%s)
if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
  log "using the Docker engine at ${DOCKER_HOST:-/var/run/docker.sock}"
elif command -v docker >/dev/null && DOCKER_HOST=$private_host docker info >/dev/null 2>&1; then
  export DOCKER_HOST=$private_host
  log "using the Docker engine at $DOCKER_HOST"
elif [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
  command -v dockerd >/dev/null || apt_install docker.io
fi
if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
  : # found above, or the package's own service started with the installation (systemd)
elif [[ $(id -u) == 0 ]]; then
  mkdir -p "$private_dir"
  log "starting dockerd on $private_host"
  dockerd -H "$private_host" --pidfile "$private_dir/dockerd.pid" >"$private_dir/dockerd.log" 2>&1 &
  started_dockerd=$!
  export DOCKER_HOST=$private_host
  for _ in $(seq 1 150); do docker info >/dev/null 2>&1 && break; sleep 0.2; done
  docker info >/dev/null 2>&1 || { tail -20 "$private_dir/dockerd.log" >&2; log "dockerd did not answer"; exit 1; }
else
  log "no Docker engine answers and not root: the Docker checks are not run"
  exit 0
fi
if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null; then
  [[ $(id -u) == 0 ]] || { log "neither docker compose nor docker-compose is installed"; exit 1; }
  apt_install docker-compose
fi
took[engine]=$(( $(date +%s) - t ))

t=$(date +%s)
bash scripts/docker-images.sh
took[images]=$(( $(date +%s) - t ))

# The ingest and attributor suites, Kafka and Redis from testcontainers: the global setup's
# log line must name the container images, or the run did not go through Docker.
t=$(date +%s)
mkdir -p .cache/test-results
out=.cache/test-results/docker-integration.log
set +e
# The attributor suites against the containerised Redis only: their Redis Cluster half (local
# redis-server processes, not containers) ran in the main run already.
# kafka-outage and replication start their own broker processes (one frozen and killed, a
# 3-broker cluster) and never touch the containers: the main run covers them. The attributor's
# kill -9 suites (crash, rebalance, takeover: 7 of the main run's 22 minutes) exercise processes
# dying, not where Kafka and Redis come from; the main run covers them against the same code.
CLICKJOIN_TEST_REDIS_TARGETS=redis pnpm exec vitest run --project integration services/ingest services/attributor \
  --exclude '**/kafka-outage.int.test.ts' --exclude '**/replication.int.test.ts' \
  --exclude '**/attributor/test/crash.int.test.ts' --exclude '**/rebalance.int.test.ts' --exclude '**/takeover.int.test.ts' \
  --reporter=default --reporter=json --outputFile.json=.cache/test-results/docker-integration.json 2>&1 | tee "$out"
status=${PIPESTATUS[0]}
set -e
# A failure is reported at the end: the compose check runs anyway.
failures=()
[[ $status == 0 ]] || failures+=("the ingest and attributor suites through testcontainers (exit $status)")
if grep -Eq 'kafka=[^ ]+ \(container [^)]+\), redis=[^ ]+ \(container [^)]+\)' "$out"; then
  grep -E '^\[local-stack\] ready' "$out" >&2
else
  failures+=("the suites did not get Kafka and Redis from containers (see the [local-stack] line)")
fi
took[suites]=$(( $(date +%s) - t ))

t=$(date +%s)
node --import tsx scripts/compose-check.ts || failures+=("the compose check")
took[compose]=$(( $(date +%s) - t ))

log "took $(( $(date +%s) - started )) s: engine ${took[engine]} s, images ${took[images]} s, ingest+attributor suites via testcontainers ${took[suites]} s, compose check ${took[compose]} s"
if (( ${#failures[@]} > 0 )); then
  for f in "${failures[@]}"; do log "FAILED: $f"; done
  exit 1
fi
log "passed"
