#!/usr/bin/env bash
# Container smoke test, on demand, not in `make test` (about 5 minutes here, base image included):
#
#   1. a Debian bookworm base image made locally with debootstrap from the configured mirror
#      (no registry needed), cached across runs;
#   2. the CPU bento built into a temporary BentoML home with freshly trained reference models,
#      and its image build context (bento, models, Containerfile) written by BentoML;
#   3. the image built with `buildah bud --storage-driver vfs --isolation chroot`;
#   4. migrations run as a one-off command in a second container (as a Kubernetes Job would),
#      against the embedded SQLite database on a volume (DB_URL: PostgreSQL works the same);
#   5. the server started with `buildah run --isolation chroot`, the image's files made
#      read-only to the serving user, /tmp and /data the only writable mounts;
#   6. /ready awaited, the migrations re-run against the live database (idempotent), and every
#      pinned model's golden examples predicted through /api/v1/predictions, compared exactly;
#      with a bearer token when the image has the auth CLI (services/cli), plainly otherwise.
#
# Two substitutions, printed when made, stand in for what this machine cannot reach:
#   - FROM python:3.11-slim -> the debootstrap base (no container registry here), which also
#     trusts this machine's local CA certificates, if any (TLS egress may be re-signed);
#   - the CPU torch wheel URL (download.pytorch.org) -> the same file served on 127.0.0.1 from a
#     local copy (SMOKE_TORCH_WHEEL, or found in $PIP_FIND_LINKS or /opt/wheels), only when
#     download.pytorch.org does not answer.
#
# The containers run as in production (the image's SERVING_ENVIRONMENT=production) with a random
# AUTH_JWT_SECRET; SMOKE_ENV_FILE adds KEY=VALUE lines to every container (REDIS_URL, or DB_URL
# for PostgreSQL: both reachable on the host's loopback, as chroot isolation shares its network).
#
# Settings (environment): SMOKE_WORK (/var/tmp/model-packaging-smoke: storage, base rootfs,
# logs), SMOKE_PORT (38080), SMOKE_READY_TIMEOUT (600 s), SMOKE_KEEP_IMAGE (0: removed after
# the run), SMOKE_KEEP_RUN (0: the run's folder is removed after a pass), SMOKE_ENV_FILE,
# SMOKE_ADMIN_USER (smoke-admin), DEBIAN_MIRROR (default: from /etc/apt/sources.list*).
set -Eeuo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PY:-$ROOT/.venv/bin/python}"
WORK="${SMOKE_WORK:-/var/tmp/model-packaging-smoke}"
PORT="${SMOKE_PORT:-38080}"
READY_TIMEOUT="${SMOKE_READY_TIMEOUT:-600}"
BASE_IMAGE="localhost/model-packaging-base:bookworm"
SUITE=bookworm
BENTO_PATH=/home/bentoml/bento

log() { printf '[smoke %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { log "FAILED: $*"; exit 1; }
now() { date +%s; }
declare -A TIMES=()
STARTED=$(now)

[ "$(id -u)" = 0 ] || die "run as root (buildah with vfs storage and chroot isolation, debootstrap)"
if ! command -v buildah >/dev/null || ! command -v debootstrap >/dev/null; then
  log "installing buildah and debootstrap from the Debian mirror"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq buildah debootstrap \
    || die "apt-get install buildah debootstrap"
fi
[ -x "$PY" ] || die "no $PY: run make run (or make test) first to create the virtual environment"

mkdir -p "$WORK"
RUN_DIR="$(mktemp -d "$WORK/run.XXXXXX")"
B=(buildah --root "$WORK/storage" --runroot "$WORK/runroot" --storage-driver vfs)
IMAGE=""
SERVE_PID=""
WHEEL_PID=""
CONTAINERS=()

SERVE_NS=""

# The mount namespace of whatever listens on our port from inside a container (else empty):
# chroot isolation gives the container's processes a mount namespace of their own.
listener_ns() {
  local pid ns
  for pid in $(ss -ltnpH "sport = :$PORT" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2); do
    ns="$(readlink "/proc/$pid/ns/mnt" 2>/dev/null)"
    [ -n "$ns" ] && [ "$ns" != "$(readlink /proc/$$/ns/mnt)" ] && echo "$ns" && return
  done
}

cleanup() {
  local rc=$?
  set +e
  [ -z "$SERVE_NS" ] && SERVE_NS="$(listener_ns)"
  if [ -n "$SERVE_PID" ]; then
    kill -- "-$SERVE_PID" 2>/dev/null
    sleep 3
    kill -9 -- "-$SERVE_PID" 2>/dev/null
  fi
  # BentoML's workers run in process groups of their own: end every process of the container.
  if [ -n "$SERVE_NS" ]; then
    for proc in /proc/[0-9]*; do
      if [ "$(readlink "$proc/ns/mnt" 2>/dev/null)" = "$SERVE_NS" ]; then
        kill -9 "${proc#/proc/}" 2>/dev/null
      fi
    done
  fi
  for ctr in "${CONTAINERS[@]}"; do
    "${B[@]}" rm "$ctr" >/dev/null 2>&1
  done
  [ -n "$WHEEL_PID" ] && kill "$WHEEL_PID" 2>/dev/null
  if [ -n "$IMAGE" ] && [ "${SMOKE_KEEP_IMAGE:-0}" != 1 ]; then
    "${B[@]}" rmi "$IMAGE" >/dev/null 2>&1
  fi
  if [ $rc -ne 0 ]; then
    log "logs: $RUN_DIR"
  elif [ -n "${RUN_DIR_DONE:-}" ]; then
    rm -rf "$RUN_DIR"
  fi
  exit $rc
}
trap cleanup EXIT

debian_mirror() {
  if [ -n "${DEBIAN_MIRROR:-}" ]; then echo "$DEBIAN_MIRROR"; return; fi
  local uri
  uri="$(grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null \
    | awk '{print $2}' | grep -E '/debian/?$' | head -n1)"
  [ -z "$uri" ] && uri="$(grep -hsE '^deb ' /etc/apt/sources.list 2>/dev/null \
    | awk '{print $2}' | grep -E '/debian/?$' | head -n1)"
  echo "${uri:-http://deb.debian.org/debian}"
}

# 1. The base image: Debian with its Python 3.11 (the bento's python_version) and pip.
phase=$(now)
if ! "${B[@]}" inspect --type image "$BASE_IMAGE" >/dev/null 2>&1; then
  MIRROR="$(debian_mirror)"
  ROOTFS="$WORK/rootfs-$SUITE"
  log "debootstrap $SUITE from $MIRROR"
  rm -rf "$ROOTFS"
  debootstrap --variant=minbase --include=python3,python3-pip,python3-venv,ca-certificates \
    "$SUITE" "$ROOTFS" "$MIRROR" >"$RUN_DIR/debootstrap.log" 2>&1 \
    || die "debootstrap (see $RUN_DIR/debootstrap.log)"
  # Like python:3.11-slim, let pip install into the system Python (BentoML installs uv so).
  rm -f "$ROOTFS"/usr/lib/python3.*/EXTERNALLY-MANAGED
  # Where this machine re-signs TLS egress with a local CA, the build's pip and uv must trust it.
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$ROOTFS/usr/local/share/ca-certificates/"
    chroot "$ROOTFS" update-ca-certificates >>"$RUN_DIR/debootstrap.log" 2>&1
    log "base trusts this machine's local CA certificates (/usr/local/share/ca-certificates)"
  fi
  chroot "$ROOTFS" apt-get clean
  rm -rf "$ROOTFS"/var/lib/apt/lists/*
  ctr="$("${B[@]}" from scratch)"
  mnt="$("${B[@]}" mount "$ctr")"
  tar -C "$ROOTFS" -cf - . | tar -C "$mnt" -xf -
  "${B[@]}" umount "$ctr" >/dev/null
  # uv trusts its own bundled roots unless told to use the system's.
  "${B[@]}" config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env LANG=C.UTF-8 --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    --env UV_NATIVE_TLS=1 --cmd /bin/bash "$ctr"
  "${B[@]}" commit --rm --quiet "$ctr" "$BASE_IMAGE" >/dev/null
  rm -rf "$ROOTFS"
fi
TIMES[base_image]=$(($(now) - phase))
log "base image $BASE_IMAGE ready (${TIMES[base_image]} s)"

# 2. The CPU bento in a temporary BentoML home, with freshly trained reference models.
phase=$(now)
export BENTOML_HOME="$RUN_DIR/bentoml" EXPORT_DATA_DIR="$RUN_DIR/data" BENTOML_DO_NOT_TRACK=True
"$PY" -m training_export train --all >"$RUN_DIR/train.log" 2>&1 || die "training (train.log)"
"$PY" bentos/build.py cpu --context "$RUN_DIR/context" >"$RUN_DIR/build.log" \
  2>"$RUN_DIR/build.err" || die "bento build (see $RUN_DIR/build.log, build.err)"
TAG="$(tail -n1 "$RUN_DIR/build.log")"
CTX="$RUN_DIR/context"
TIMES[bento]=$(($(now) - phase))
log "bento $TAG built (${TIMES[bento]} s)"

# The two substitutions for this machine.
DOCKERFILE="$CTX/env/docker/Dockerfile"
grep -q '^FROM python:3.11-slim AS base-container$' "$DOCKERFILE" \
  || die "unexpected FROM line in $DOCKERFILE"
sed -i "s|^FROM python:3.11-slim AS base-container\$|FROM $BASE_IMAGE AS base-container|" \
  "$DOCKERFILE"
log "substituted FROM python:3.11-slim -> $BASE_IMAGE"
REQS="$CTX/env/python/requirements.txt"
# (BentoML writes the requirement as `torch@URL`.)
TORCH_URL="$(sed -n 's|^torch *@ *\(https://download.pytorch.org/.*\)$|\1|p' "$REQS")"
if [ -n "$TORCH_URL" ] && ! curl -sfI --max-time 10 "$TORCH_URL" >/dev/null 2>&1; then
  WHEEL_NAME="$(basename "$TORCH_URL" | sed 's/%2B/+/g')"
  WHEEL="${SMOKE_TORCH_WHEEL:-}"
  if [ -z "$WHEEL" ]; then
    for dir in ${PIP_FIND_LINKS:-} /opt/wheels; do
      [ -f "$dir/$WHEEL_NAME" ] && WHEEL="$dir/$WHEEL_NAME" && break
    done
  fi
  [ -n "$WHEEL" ] && [ -f "$WHEEL" ] || die "download.pytorch.org is unreachable and no local \
$WHEEL_NAME was found: set SMOKE_TORCH_WHEEL to a copy of $TORCH_URL"
  WHEEL_PORT=$((PORT + 1))
  python3 -m http.server --bind 127.0.0.1 --directory "$(dirname "$WHEEL")" "$WHEEL_PORT" \
    >"$RUN_DIR/wheel-server.log" 2>&1 &
  WHEEL_PID=$!
  LOCAL_URL="http://127.0.0.1:$WHEEL_PORT/$(basename "$TORCH_URL")"
  for _ in $(seq 20); do curl -sfI "$LOCAL_URL" >/dev/null && break; sleep 0.5; done
  curl -sfI "$LOCAL_URL" >/dev/null || die "cannot serve the wheel on port $WHEEL_PORT (in use?)"
  sed -i "s|^torch *@ *https://download.pytorch.org/.*\$|torch @ $LOCAL_URL|" "$REQS"
  grep -qF "torch @ $LOCAL_URL" "$REQS" || die "could not redirect the torch requirement"
  log "download.pytorch.org unreachable: torch from $WHEEL via $LOCAL_URL"
fi

# 3. The image.
phase=$(now)
IMAGE="localhost/${TAG%%:*}:${TAG##*:}"
log "buildah bud $IMAGE (log: $RUN_DIR/image-build.log)"
"${B[@]}" bud --isolation chroot --format oci -f "$DOCKERFILE" -t "$IMAGE" "$CTX" \
  >"$RUN_DIR/image-build.log" 2>&1 || die "image build (see $RUN_DIR/image-build.log)"
TIMES[image]=$(($(now) - phase))
SIZE="$("${B[@]}" images --format '{{.Size}}' "$IMAGE" | head -n1)"
log "image built in ${TIMES[image]} s; buildah reports $SIZE"
[ -n "$WHEEL_PID" ] && kill "$WHEEL_PID" && WHEEL_PID=""

# 4-6. Run it: one container serves, a second one runs the one-off commands (Job, CLI).
DATA="$RUN_DIR/volume-data"
mkdir -p "$DATA" "$RUN_DIR/tmp-serve" "$RUN_DIR/tmp-job"
chown 1034:1034 "$DATA"
chmod 1777 "$RUN_DIR/tmp-serve" "$RUN_DIR/tmp-job"
JWT_SECRET="$(head -c 48 /dev/urandom | base64 | tr -d '/+=\n')"
ENV_ARGS=(--env BENTOML_HOME=/tmp/bentoml --env "AUTH_JWT_SECRET=$JWT_SECRET")
if [ -n "${SMOKE_ENV_FILE:-}" ]; then
  while IFS= read -r line; do
    [[ -z "$line" || "$line" == \#* ]] || ENV_ARGS+=(--env "$line")
  done <"$SMOKE_ENV_FILE"
fi
SERVE_CTR="$("${B[@]}" from --pull=false "$IMAGE")"
CONTAINERS+=("$SERVE_CTR")
JOB_CTR="$("${B[@]}" from --pull=false "$IMAGE")"
CONTAINERS+=("$JOB_CTR")
ROOTFS_BYTES="$(du -sb "$("${B[@]}" mount "$JOB_CTR")" | cut -f1)"
"${B[@]}" umount "$JOB_CTR" >/dev/null
log "image root filesystem: $((ROOTFS_BYTES / 1000000)) MB unpacked"
job() {
  "${B[@]}" run --isolation chroot --user bentoml --workingdir "$BENTO_PATH/src" \
    --volume "$DATA:/data" --volume "$RUN_DIR/tmp-job:/tmp" "${ENV_ARGS[@]}" "$JOB_CTR" -- "$@"
}
# The serving user may not write the image's files: only /tmp and /data are writable.
"${B[@]}" run --isolation chroot --user root "$SERVE_CTR" -- chmod -R a-w /home/bentoml /app

phase=$(now)
if [ -f "$CTX/src/db/migrate.py" ]; then
  job python -m db.migrate upgrade >"$RUN_DIR/migrate.log" 2>&1 \
    || die "migrations (see $RUN_DIR/migrate.log)"
  TIMES[migrate]=$(($(now) - phase))
  log "migrations applied (${TIMES[migrate]} s)"
else
  log "SKIP migrations: the bento has no db/migrate.py yet"
fi

if ss -ltnH "sport = :$PORT" | grep -q .; then
  die "port $PORT is in use: set SMOKE_PORT"
fi
phase=$(now)
setsid "${B[@]}" run --isolation chroot --user bentoml \
  --volume "$DATA:/data" --volume "$RUN_DIR/tmp-serve:/tmp" "${ENV_ARGS[@]}" "$SERVE_CTR" -- \
  "$BENTO_PATH/env/docker/entrypoint.sh" --host 127.0.0.1 --port "$PORT" \
  >"$RUN_DIR/serve.log" 2>&1 &
SERVE_PID=$!
log "serving on 127.0.0.1:$PORT (log: $RUN_DIR/serve.log); waiting for /ready"
deadline=$(($(now) + READY_TIMEOUT))
until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/ready")" = 200 ]; do
  kill -0 "$SERVE_PID" 2>/dev/null || die "the server exited (see $RUN_DIR/serve.log)"
  [ "$(now)" -lt "$deadline" ] || die "not ready after $READY_TIMEOUT s (see $RUN_DIR/serve.log)"
  sleep 2
done
TIMES[ready]=$(($(now) - phase))
SERVE_NS="$(listener_ns)"
[ -n "$SERVE_NS" ] || die "cannot find the serving container's processes"
log "/ready answered 200 after ${TIMES[ready]} s"

if [ -f "$CTX/src/db/migrate.py" ]; then
  job python -m db.migrate upgrade >>"$RUN_DIR/migrate.log" 2>&1 \
    || die "migrations against the live database (see $RUN_DIR/migrate.log)"
  job python -m db.migrate check >>"$RUN_DIR/migrate.log" 2>&1 \
    || die "database schema behind the code after migrating (see $RUN_DIR/migrate.log)"
  log "migrations re-run against the live database: nothing to do, schema at head"
fi

AUTH_ARGS=()
if grep -qs create-admin "$CTX/src/services/cli.py"; then
  ADMIN_USER="${SMOKE_ADMIN_USER:-smoke-admin}"
  SMOKE_ADMIN_PASSWORD="${SMOKE_ADMIN_PASSWORD:-$(head -c 24 /dev/urandom | base64 | tr -d '/+=')}"
  export SMOKE_ADMIN_PASSWORD
  job env "ADMIN_PASSWORD=$SMOKE_ADMIN_PASSWORD" python -m services.cli create-admin "$ADMIN_USER" \
    >"$RUN_DIR/admin.log" 2>&1 || die "creating the admin (see $RUN_DIR/admin.log)"
  AUTH_ARGS=(--user "$ADMIN_USER")
  log "admin $ADMIN_USER created (python -m services.cli create-admin); predicting with a token"
else
  log "no auth CLI (services/cli.py create-admin) in the bento: predicting without a token"
fi

phase=$(now)
"$PY" bentos/smoke_predict.py --url "http://127.0.0.1:$PORT" --bento "$TAG" "${AUTH_ARGS[@]}" \
  | tee "$RUN_DIR/predict.log" || die "predictions (see $RUN_DIR/predict.log)"
TIMES[predict]=$(($(now) - phase))

TOTAL=$(($(now) - STARTED))
{
  echo "bento:        $TAG"
  echo "image:        $IMAGE: $SIZE (buildah), $((ROOTFS_BYTES / 1000000)) MB unpacked"
  for key in base_image bento image migrate ready predict; do
    [ -n "${TIMES[$key]:-}" ] && printf '%-13s %s s\n' "$key:" "${TIMES[$key]}"
  done
  echo "total:        $TOTAL s"
} | tee "$WORK/last-summary.txt"
[ "${SMOKE_KEEP_RUN:-0}" = 1 ] || RUN_DIR_DONE=1
log "PASSED (summary: $WORK/last-summary.txt)"
