#!/usr/bin/env bash
# Builds, from what this machine reaches (Debian's packages, Maven Central, this machine's Node),
# the local images that stand in for the official ones where no image registry is reachable:
#
#   clickjoin-local/debian:12     Debian 12 minbase: debootstrap from deb.debian.org, `docker import`
#   clickjoin-local/kafka:3.9.1   for apache/kafka:3.9.1 — the local stack's Kafka jars, Debian's JRE, KRaft
#   clickjoin-local/redis:7       for redis:7.2 — Debian's redis-server (7.0)
#   clickjoin-local/node:20       for node:20-bookworm-slim — this machine's node binary and npm
#
# Cached: the Debian root filesystem is kept as a tarball under $CLICKJOIN_DOCKER_CACHE
# (default /var/cache/clickjoin-docker as root, else .cache/docker), and an image whose build
# inputs did not change (a hash kept in its label) is not rebuilt; a second run takes seconds.
# Uses the engine `docker` reaches (DOCKER_HOST). The compose override docker-compose.local.yml
# and the tests' testcontainers pick these images up; see docs/docker.md.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[docker-images] %s\n' "$*" >&2; }
prefix=${CLICKJOIN_IMAGE_PREFIX:-clickjoin-local}
base_image=$prefix/debian:12
kafka_image=$prefix/kafka:3.9.1
redis_image=$prefix/redis:7
node_image=$prefix/node:20
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
if [[ -n "${CLICKJOIN_DOCKER_CACHE:-}" ]]; then cache=$CLICKJOIN_DOCKER_CACHE
elif [[ $(id -u) == 0 ]]; then cache=/var/cache/clickjoin-docker
else cache=$PWD/.cache/docker; fi
mkdir -p "$cache"
started=$(date +%s)

docker info >/dev/null 2>&1 || { log "no Docker engine answers (DOCKER_HOST=${DOCKER_HOST:-unset})"; exit 1; }

image_label() { docker image inspect --format "{{ index .Config.Labels \"clickjoin.inputs\" }}" "$1" 2>/dev/null || true; }

# Debian 12 from Debian's own packages: no registry needed.
build_base() {
  if docker image inspect "$base_image" >/dev/null 2>&1; then log "$base_image: present"; return; fi
  local tarball=$cache/debian-12-minbase.tar
  if [[ ! -s $tarball ]]; then
    command -v debootstrap >/dev/null || {
      [[ $(id -u) == 0 ]] || { log "debootstrap is missing (apt-get install debootstrap, as root)"; exit 1; }
      log "installing debootstrap"; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
    }
    local rootfs=$cache/rootfs.partial
    rm -rf "$rootfs"
    log "debootstrap bookworm (minbase) from $mirror"
    debootstrap --variant=minbase --include=ca-certificates bookworm "$rootfs" "$mirror" >"$cache/debootstrap.log" 2>&1 ||
      { tail -20 "$cache/debootstrap.log" >&2; exit 1; }
    # As Docker's own Debian images: no services start at package installation, no apt caches.
    printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"; chmod 755 "$rootfs/usr/sbin/policy-rc.d"
    printf 'deb %s bookworm main\ndeb %s bookworm-updates main\ndeb %s-security bookworm-security main\n' \
      "$mirror" "$mirror" "$mirror" >"$rootfs/etc/apt/sources.list"
    printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' >"$rootfs/etc/apt/apt.conf.d/docker-no-recommends"
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log
    tar -C "$rootfs" --numeric-owner -cf "$tarball.partial" . && mv "$tarball.partial" "$tarball"
    rm -rf "$rootfs"
  fi
  log "docker import $tarball as $base_image"
  docker import -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' -c 'ENV LANG=C.UTF-8' \
    -c 'CMD ["bash"]' "$tarball" "$base_image" >/dev/null
}

# docker build of a staged context, skipped when the image carries the same inputs hash.
build_context() {
  local image=$1 context=$2
  local inputs
  inputs=$( (cd "$context" && find . -type f -print0 | sort -z | xargs -0 sha256sum; docker image inspect --format '{{.Id}}' "$base_image") | sha256sum | cut -c1-16)
  if [[ $(image_label "$image") == "$inputs" ]]; then log "$image: up to date"; return; fi
  log "building $image"
  local t=$(date +%s)
  DOCKER_BUILDKIT=0 docker build -q --network host --build-arg "BASE_IMAGE=$base_image" --label "clickjoin.inputs=$inputs" -t "$image" "$context" >/dev/null
  log "$image built in $(( $(date +%s) - t )) s"
}

stage() { local dir=$cache/context/$1; rm -rf "$dir"; mkdir -p "$dir"; cp -r "docker/$1/." "$dir/"; printf '%s' "$dir"; }

build_base

# Kafka: the same jars as `npm start` (fetched from Maven Central into .cache/ if missing).
if [[ ! -f .cache/kafka-3.9.1/.tools-complete ]]; then
  log "fetching the Kafka jars"; node --import tsx packages/local-stack/src/install.ts
fi
ctx=$(stage kafka)
cp -r .cache/kafka-3.9.1/libs "$ctx/libs"
mkdir -p "$ctx/tools" && cp .cache/kafka-3.9.1/tools/*.jar "$ctx/tools/"
build_context "$kafka_image" "$ctx"

build_context "$redis_image" "$(stage redis)"

# Node 20: this machine's binary and npm (Debian 12 has Node 18 only).
ctx=$(stage node)
node_bin=$(command -v node)
[[ $("$node_bin" --version) == v20.* ]] || { log "node here is $("$node_bin" --version), not 20"; exit 1; }
cp "$(readlink -f "$node_bin")" "$ctx/node"
npm_dir=$(dirname "$(readlink -f "$(command -v npm)")")/..
cp -r "$(readlink -f "$npm_dir")" "$ctx/npm"
# The CA bundle this machine's npm trusts (a TLS-inspecting proxy's CA, if any, is in it).
cafile=$(npm config get cafile 2>/dev/null || true)
if [[ -n $cafile && $cafile != null && -f $cafile ]]; then cp "$cafile" "$ctx/ca-certificates.crt"
else cp /etc/ssl/certs/ca-certificates.crt "$ctx/ca-certificates.crt"; fi
build_context "$node_image" "$ctx"

rm -rf "$cache/context"
log "images ready in $(( $(date +%s) - started )) s: $base_image $kafka_image $redis_image $node_image"
