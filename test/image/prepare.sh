#!/usr/bin/env bash
# Prepares podman on this machine and builds the runtime image that `npm run test:image` runs. Safe to re-run: each step
# checks first and does nothing when its result is already there (the base image is never rebuilt once present).
#
#   test/image/prepare.sh            configure podman, make sure the base image exists, build the runtime image
#
# Needs root (it writes /etc/containers/containers.conf and runs rootful podman) and podman, buildah, runc and
# debootstrap installed (.ci/run installs them when missing). Environment:
#   TICKWATCH_IMAGE   tag of the image built          default localhost/tickwatch:image-test
#   NODE_BASE_IMAGE   the Dockerfile's base image     default docker.io/library/node:20-bookworm-slim
#   DEBIAN_MIRROR     mirror for the stand-in base    default http://deb.debian.org/debian
#   IMAGE_GIT_REV     build this committed revision (git archive) instead of the working tree, e.g. HEAD
set -euo pipefail
cd "$(dirname "$0")/../.."

IMAGE="${TICKWATCH_IMAGE:-localhost/tickwatch:image-test}"
BASE="${NODE_BASE_IMAGE:-docker.io/library/node:20-bookworm-slim}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
CONF=/etc/containers/containers.conf

log() { printf '== image: %s\n' "$*"; }
fail() { printf 'image: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || fail "run as root: rootful podman and /etc/containers/containers.conf need it"
for tool in podman buildah runc debootstrap; do
  command -v "$tool" >/dev/null || fail "$tool is not installed (apt-get install podman buildah runc debootstrap)"
done

# ---- podman configuration ----
# runc: crun refuses this kernel's cgroup layout ("cgroups in hybrid mode not supported"). default_ulimits empty: the
# stock default sets RLIMIT_NPROC, which this machine does not permit. cgroupfs and file events: there is no systemd
# or journald to talk to.
configure() {
  cat >"$CONF" <<'EOF'
# Written by tickwatch test/image/prepare.sh (podman on a machine without systemd, with cgroups in hybrid mode).
[containers]
default_ulimits = []

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
}
if [ ! -f "$CONF" ]; then
  log "writing $CONF"
  configure
elif grep -q 'tickwatch test/image/prepare.sh' "$CONF"; then
  : # ours, already written
elif grep -Eq '^\s*default_ulimits\s*=\s*\[\s*\]' "$CONF" && grep -Eq '^\s*runtime\s*=\s*"runc"' "$CONF"; then
  : # someone else's file that already says what podman needs here
else
  fail "$CONF exists and does not set default_ulimits = [] and runtime = \"runc\": add them (see this script) and re-run"
fi

# ---- the base image ----
# No registry is reachable here. When the Dockerfile's base is not in local storage, assemble a stand-in with what
# node:20-bookworm-slim provides and we rely on: Debian bookworm (minbase), Node 20 and npm in /usr/local, a `node` user
# with uid and gid 1000, and the CA bundle (npm reaches its registry through a TLS-intercepting proxy on this network).
if podman image exists "$BASE"; then
  log "base $BASE present"
else
  command -v node >/dev/null || fail "no node on this machine to put in the stand-in base"
  node_version="$(node --version)"
  case "$node_version" in v20.*) ;; *) fail "the stand-in base needs Node 20, this machine has $node_version" ;; esac
  npm_dir="$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")"
  [ -f "$npm_dir/package.json" ] || fail "cannot find npm's package directory (looked in $npm_dir)"
  ca_bundle=/etc/ssl/certs/ca-certificates.crt
  [ -f "$ca_bundle" ] || fail "no CA bundle at $ca_bundle"
  rootfs="$(mktemp -d /var/tmp/tw-base-XXXXXX)"
  trap 'rm -rf "$rootfs"' EXIT
  log "assembling a stand-in $BASE (debootstrap bookworm from $MIRROR, node $node_version)"
  started=$SECONDS
  debootstrap --variant=minbase bookworm "$rootfs" "$MIRROR" >/dev/null
  install -m 0755 "$(readlink -f "$(command -v node)")" "$rootfs/usr/local/bin/node"
  mkdir -p "$rootfs/usr/local/lib/node_modules"
  cp -a "$npm_dir" "$rootfs/usr/local/lib/node_modules/npm"
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
  mkdir -p "$rootfs/etc/ssl/certs"
  cp "$ca_bundle" "$rootfs/etc/ssl/certs/ca-certificates.crt"
  chroot "$rootfs" groupadd --gid 1000 node
  chroot "$rootfs" useradd --uid 1000 --gid node --shell /bin/bash --create-home node
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb
  tar -C "$rootfs" --numeric-owner -c . | podman import --quiet \
    --change "ENV NODE_VERSION=${node_version#v}" \
    --change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'LABEL org.tickwatch.stand-in=debootstrap-bookworm-minbase' \
    --change 'CMD ["node"]' \
    - "$BASE" >/dev/null
  rm -rf "$rootfs"
  trap - EXIT
  log "base $BASE assembled in $((SECONDS - started)) s"
fi

# ---- our image ----
# The working tree as it is (.dockerignore keeps node_modules, dist and .env out), or with IMAGE_GIT_REV a committed
# revision: half-finished edits elsewhere in a shared checkout then cannot break the compile step. Layers are cached:
# with unchanged package.json and package-lock.json only the compile step and the copies run again.
context=.
if [ -n "${IMAGE_GIT_REV:-}" ]; then
  context="$(mktemp -d /var/tmp/tw-context-XXXXXX)"
  trap 'rm -rf "$context"' EXIT
  git archive "$IMAGE_GIT_REV" | tar -x -C "$context"
fi
log "building $IMAGE (target runtime) from ${IMAGE_GIT_REV:-the working tree}"
started=$SECONDS
build_log="$(mktemp /tmp/tw-image-build-XXXXXX.log)"
podman build --pull=never --network=host --target runtime -t "$IMAGE" -f "$context/Dockerfile" "$context" >"$build_log" 2>&1 \
  || { tail -n 60 "$build_log" >&2; fail "podman build failed (full log: $build_log)"; }
rm -f "$build_log"
# Keep the disk bounded: tag the build and prod-deps stages as well (cached: about a second each) so they stay as the
# layer cache, then prune the untagged leftovers of earlier builds (superseded stages and images). Only ours: every
# stage carries the Dockerfile's label. A pruned leaf can leave its parent untagged and childless, hence the rounds.
for stage in build prod-deps; do
  podman build -q --pull=never --network=host --target "$stage" -t "$IMAGE-$stage" -f "$context/Dockerfile" "$context" >/dev/null 2>&1 \
    || fail "podman build --target $stage failed after the runtime target built"
done
ours=label=org.opencontainers.image.title=tickwatch
for _ in 1 2 3 4 5 6; do
  [ -n "$(podman images -q --filter dangling=true --filter "$ours")" ] || break
  podman image prune --force --filter "$ours" >/dev/null
done
log "built $IMAGE in $((SECONDS - started)) s, $(podman image inspect --format '{{.Size}}' "$IMAGE" | awk '{ printf "%d MB", $1 / 1e6 }')"
