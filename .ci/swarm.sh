#!/usr/bin/env bash
# Swarm stage: the compose file deployed with `docker stack deploy` on a single-node Docker Swarm, driven
# over MCP by tests/e2e/test_swarm.py (pytest -m swarm). Runs after .ci/e2e.sh and reuses its images
# (E2E_KEEP_IMAGES=1); any that are missing are built the way e2e builds them.
#
# It inits the Swarm itself and refuses an engine that is already in one, deploys the stack (the
# orchestration file + docker-compose.ci.yaml + docker-compose.swarm.yaml, through scripts/stack-config.py),
# waits for every service, runs the tests, then removes the stack, its volumes and secrets and leaves the
# Swarm, on failure too. Every wait has a deadline; the whole stage stays within a few minutes.
#
#   .ci/swarm.sh                               # from the repository root; needs root
#   SWARM_ENDPOINT_MODE=vip .ci/swarm.sh       # service virtual IPs and the ingress (needs IPVS in the kernel)
#   SWARM_REMOVE_IMAGES=1 .ci/swarm.sh         # remove the e2e images at the end (what .ci/run does)
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
export REYNOLDS_CI_CACHE=${REYNOLDS_CI_CACHE:-/var/cache/reynolds-ci}
python=${E2E_PYTHON:-$repo/.venv/bin/python}
stack=${SWARM_STACK:-reynolds-swarm}
endpoint_mode=${SWARM_ENDPOINT_MODE:-dnsrr} # this CI host's kernel has no IPVS (docs/deploy.md)
case "$endpoint_mode" in vip | dnsrr) ;; *) echo "SWARM_ENDPOINT_MODE must be vip or dnsrr" >&2; exit 2 ;; esac
# no "_": Swarm joins stack and service names with one (reynolds/scaling.py splits there)
[[ "$stack" =~ ^[a-z0-9][a-z0-9-]{0,40}$ ]] || { echo "SWARM_STACK must be a short lower-case name, no _" >&2; exit 2; }
state=$(mktemp -d "${TMPDIR:-/tmp}/reynolds-swarm.XXXXXX")
t_start=$(date +%s)
swarm_started=
deployed=
gwbridge_made= # `swarm init` creates the docker_gwbridge network; removed after leaving if it did

log() { echo "=== [swarm $(($(date +%s) - t_start))s] $*"; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

until_true() { # until_true SECONDS WHAT COMMAND... — poll COMMAND every 2 s until it succeeds or time runs out
  local within=$1 what=$2 deadline
  shift 2
  deadline=$(($(date +%s) + within))
  until "$@"; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      echo "!!! timed out after ${within}s waiting for $what" >&2
      return 1
    fi
    sleep 2
  done
}

# ------------------------------------------------------------------------------------------ settings
export PYTHON_IMAGE=${PYTHON_IMAGE:-local/python:3.11-slim}
export REYNOLDS_IMAGE_TAG=${REYNOLDS_IMAGE_TAG:-e2e}
export REYNOLDS_SECRETS_DIR=$state/secrets
export REYNOLDS_PUBLISHED_PORT=${REYNOLDS_PUBLISHED_PORT:-$(free_port)}
export PROMETHEUS_PUBLISHED_PORT=${PROMETHEUS_PUBLISHED_PORT:-$(free_port)}
export REYNOLDS_SWARM_URL=http://127.0.0.1:$REYNOLDS_PUBLISHED_PORT/mcp
export REYNOLDS_SWARM_TOKEN_FILE=$REYNOLDS_SECRETS_DIR/client_token
export REYNOLDS_SWARM_STACK=$stack
files=(-f docker-compose.orchestration.yaml -f docker-compose.ci.yaml -f docker-compose.swarm.yaml)

images() {
  local name
  for name in agent-base reynolds devops-agent platform-agent code-agent docker-agent; do echo "reynolds/$name:$REYNOLDS_IMAGE_TAG"; done
  for name in postgres redis prometheus; do echo "reynolds-ci/$name:$REYNOLDS_IMAGE_TAG"; done
}

STACK_LABEL=com.docker.stack.namespace
no_containers() { [ -z "$(docker ps -aq --filter "label=$STACK_LABEL=$stack")" ]; }
no_network() { [ -z "$(docker network ls -q --filter "label=$STACK_LABEL=$stack")" ]; }

remove_stack() { # the stack's services, network and secrets (docker stack rm), then its volumes
  docker stack rm "$stack" || return 1
  until_true 90 "the stack's containers to go" no_containers || return 1
  until_true 60 "the stack's network to go" no_network || return 1
  local volumes
  volumes=$(docker volume ls -q --filter "label=$STACK_LABEL=$stack")
  # shellcheck disable=SC2086
  [ -z "$volumes" ] || docker volume rm $volumes >/dev/null
}

leave_swarm() {
  docker swarm leave --force >/dev/null || return 1
  swarm_started=
  [ -n "$gwbridge_made" ] || return 0
  # the engine detaches its own endpoints from docker_gwbridge a moment after leaving: retry, bounded
  for _ in $(seq 1 30); do
    docker network rm docker_gwbridge >/dev/null 2>&1 && { gwbridge_made=; return 0; }
    sleep 1
  done
  # harmless if it stays (a later `swarm init` reuses it), so it is reported rather than failing the stage
  echo "!!! docker_gwbridge still has endpoints 30 s after leaving the Swarm; left in place" >&2
}

cleanup() {
  local rc=$? failed=0
  trap '' TERM INT # a second signal must not cut the clean-up short (the host's engine would stay a Swarm)
  set +e
  step() { "$@" || { echo "!!! clean-up step failed: $*" >&2; failed=1; }; }
  if [ "$rc" -ne 0 ] && [ -n "$deployed" ]; then
    echo
    echo "!!! swarm stage FAILED (exit $rc); state of the stack:"
    docker stack services "$stack"
    docker stack ps --no-trunc "$stack" | head -n 40
    for service in $(docker stack services -q "$stack"); do
      echo "--- logs of $(docker service inspect -f '{{.Spec.Name}}' "$service")"
      docker service logs --no-task-ids --tail 30 "$service" 2>&1
    done
  fi
  log "clean up"
  if [ -n "$deployed" ]; then step remove_stack; fi
  if [ -n "$swarm_started" ]; then step leave_swarm; fi
  if [ -n "${SWARM_REMOVE_IMAGES:-}" ] && docker info >/dev/null 2>&1; then
    local present
    present=$(images | while read -r image; do docker image inspect "$image" >/dev/null 2>&1 && echo "$image"; done)
    # shellcheck disable=SC2086
    [ -z "$present" ] || step docker image rm $present
  fi
  step scripts/docker-engine.sh stop "$state"
  rm -rf "$state"
  [ "$rc" -ne 0 ] || rc=$failed
  log "done (exit $rc)"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 143' TERM INT # `timeout` or ^C: still clean up

# ------------------------------------------------------------------------------------------ stages
log "docker engine"
scripts/docker-engine.sh start "$state"
[ -x "$python" ] || { echo "no project venv at $python (set E2E_PYTHON)" >&2; exit 1; }
exports=$(scripts/compose-v2.sh) # stack-config.py resolves the files with `docker compose config`
eval "$exports"
export DOCKER_GID
DOCKER_GID=$(stat -c %g /var/run/docker.sock)

log "images (tag $REYNOLDS_IMAGE_TAG)"
missing=$(images | while read -r image; do docker image inspect "$image" >/dev/null 2>&1 || echo "$image"; done)
if [ -n "$missing" ]; then
  echo "not left by the e2e stage, building: $missing"
  env BASE_TAG="$PYTHON_IMAGE" scripts/base-image.sh
  docker compose -p "$stack" "${files[@]}" --profile build build
fi

log "secrets (optional ones marked unset: a Swarm refuses empty secrets)"
scripts/make-secrets.sh "$REYNOLDS_SECRETS_DIR"

log "stack file (endpoint mode $endpoint_mode)"
python3 scripts/stack-config.py "${files[@]}" --endpoint-mode "$endpoint_mode" >"$state/stack.json"
docker stack config -c "$state/stack.json" >/dev/null
# Checked, not deployed here: the default endpoint mode, and Postgres and Redis as managed services by URL.
python3 scripts/stack-config.py -f docker-compose.orchestration.yaml -f docker-compose.swarm.yaml |
  docker stack config -c - >/dev/null
REYNOLDS_DATABASE_URL=postgresql://reynolds@db.invalid:5432/reynolds REYNOLDS_REDIS_URL=redis://redis.invalid:6379/0 \
  python3 scripts/stack-config.py -f docker-compose.orchestration.yaml -f docker-compose.swarm.yaml \
  -f docker-compose.managed-state.yaml | docker stack config -c - | grep -q 'db.invalid'
echo "docker stack config: ok (this stack; vip mode and managed Postgres/Redis checked too)"
services=$(python3 -c 'import json, sys; print(len(json.load(open(sys.argv[1]))["services"]))' "$state/stack.json")

log "swarm init"
node_state=$(docker info --format '{{.Swarm.LocalNodeState}}')
if [ "$node_state" != inactive ]; then
  echo "this Docker engine is already in a Swarm ($node_state): the stage only uses a Swarm it creates" >&2
  exit 1
fi
docker network inspect docker_gwbridge >/dev/null 2>&1 || gwbridge_made=1
swarm_started=1 # before init: a signal during it must still leave the Swarm
docker swarm init --advertise-addr 127.0.0.1 >/dev/null

log "docker stack deploy $stack ($services services)"
deployed=1
# The images are local: never ask a registry for them (there is none here).
docker stack deploy --resolve-image never --detach=true -c "$state/stack.json" "$stack"

last_listing=
all_running() { # every service of the stack has all its replicas running (Swarm counts a task once healthy)
  local listing
  listing=$(docker stack services "$stack" --format '{{.Name}} {{.Replicas}}' | sed "s/^${stack}_//" | sort)
  if [ "$listing" != "$last_listing" ]; then # progress: print what changed, not every poll
    echo "    [$(($(date +%s) - t_start))s] $(echo "$listing" | tr '\n' ' ')"
    last_listing=$listing
  fi
  [ "$(echo "$listing" | grep -c .)" -eq "$services" ] || return 1
  echo "$listing" | awk '{ split($2, r, "/"); if (r[1] + 0 != r[2] + 0) bad = 1 } END { exit bad }'
}
log "waiting for every service"
until_true 180 "every service of $stack to run all its replicas" all_running

ready() {
  python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=3)' "${REYNOLDS_SWARM_URL%/mcp}/ready" 2>/dev/null
}
until_true 60 "Reynolds /ready on port $REYNOLDS_PUBLISHED_PORT" ready

log "pytest tests/e2e/test_swarm.py -m swarm"
timeout 240 "$python" -m pytest tests/e2e/test_swarm.py -m swarm -p no:cacheprovider -q -x

log "docker stack rm, and leave the swarm"
remove_stack
deployed=
leave_swarm
log "swarm stage passed"
