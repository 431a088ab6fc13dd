#!/usr/bin/env bash
# fresh-machine.sh — the README's "Without Docker" commands, exactly as the README writes them, on a clean
# Debian machine: a container of the local base image (Debian bookworm with Python, nothing
# else), given only what the README assumes a machine has (git, and sudo as on a usual install).
#
# The commands are read out of README.md, not copied here, so the README cannot drift from what is run:
#   1. the set-up line (`sudo apt-get install ...`) and `make up`, from the quick start's first block;
#      once Reynolds answers, `.venv/bin/reynolds submit examples/hello.yaml` must succeed;
#   2. `make test`, from "Run the tests", with no Postgres or Redis on the machine (the tests bring theirs).
#
#   .ci/fresh-machine.sh                    # root; starts Docker if none answers (and stops it after) and
#                                           # makes $PYTHON_IMAGE if missing (scripts/base-image.sh)
#   FRESH_TEST=0 .ci/fresh-machine.sh       # only step 1
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
image=${PYTHON_IMAGE:-local/python:3.11-slim}
name=reynolds-fresh-$$
commands=$(python3 - "$repo/README.md" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
blocks = re.findall(r"```sh\n(.*?)```", text, re.S)
def lines(block):
    return [re.sub(r"\s+#.*$", "", l).strip() for l in block.splitlines() if l.strip()]
setup = next(lines(b) for b in blocks if "make up" in b and "apt-get install" in b)
test = next(l for b in blocks for l in lines(b) if l.startswith("make test"))
print("\n".join([*setup, test]))
PY
)
setup_line=$(sed -n 1p <<<"$commands")
up_line=$(sed -n 2p <<<"$commands")
test_line=$(sed -n 3p <<<"$commands")
[ "$up_line" = "make up" ] && [[ $setup_line == "sudo apt-get install -y "* ]] && [[ $test_line == "make test"* ]] || {
  echo "cannot read the README's commands; found:"$'\n'"$commands" >&2
  exit 1
}
echo "README commands: [$setup_line] [$up_line] [$test_line]"

state=$(mktemp -d "${TMPDIR:-/tmp}/reynolds-fresh.XXXXXX")
cleanup() {
  docker rm -f "$name" >/dev/null 2>&1 || true
  "$repo/scripts/docker-engine.sh" stop "$state" || true
  rm -rf "$state"
}
trap cleanup EXIT
"$repo/scripts/docker-engine.sh" start "$state"
BASE_TAG="$image" "$repo/scripts/base-image.sh"

# A clean clone of this checkout's HEAD (what CI lands), mounted read-only and cloned inside.
docker run -d --init --name "$name" --cap-add SYS_ADMIN --shm-size=1g -v "$repo/.git:/src.git:ro" "$image" sleep infinity >/dev/null
in_box() { docker exec -i -e DEBIAN_FRONTEND=noninteractive "$name" bash -euo pipefail -c "$1"; }

in_box "apt-get update -q && apt-get install -y -q git sudo >/dev/null"   # what the README assumes
in_box "git clone -q /src.git /home/reynolds && cd /home/reynolds && git log --oneline -1"
in_box "cd /home/reynolds && $setup_line"

# `make up` in the background; its first lines say which Postgres and Redis it uses.
in_box "cd /home/reynolds && (setsid $up_line > /tmp/up.log 2>&1 &)"
# process patterns that cannot match the shell running them ("[r]" matches "r", not itself)
in_box '
up="bin/[r]eynolds up$"; all="^make up$|(bin/[r]eynolds up|-m [r]eynolds (serve|agent))$"
started() { grep -q "Reynolds.* on http://127.0.0.1:8080/mcp" /tmp/up.log; }
for _ in $(seq 600); do
  started && break
  pgrep -f "^make up$" >/dev/null || { cat /tmp/up.log; echo "make up exited" >&2; exit 1; }
  sleep 1
done
started || { tail -50 /tmp/up.log; echo "make up did not start Reynolds within 600 s" >&2; exit 1; }
cd /home/reynolds
ready() { .venv/bin/reynolds agents --json 2>/dev/null | python3 -c "import json, sys
pools = {p[\"pool\"] for p in json.load(sys.stdin)[\"pools\"] if p[\"replicas\"]}
sys.exit(not {\"devops\", \"platform\", \"code\"} <= pools)" 2>/dev/null; }
for _ in $(seq 120); do ready && break; sleep 1; done
ready || { tail -50 /tmp/up.log; echo "the agents did not register within 120 s" >&2; exit 1; }
.venv/bin/reynolds submit examples/hello.yaml || { tail -50 /tmp/up.log; exit 1; }
grep -iE "embedded|postgres|redis" /tmp/up.log | head -4
pkill -TERM -f "$up"
for _ in $(seq 60); do pgrep -f "$all" >/dev/null || break; sleep 1; done
if pgrep -af "$all" || pgrep -a "^(postgres|redis-server)$"; then  # the embedded servers go with it too
  echo "processes were left running after SIGTERM" >&2
  exit 1
fi
'
echo "make up: served examples/hello.yaml and stopped cleanly"

if [ "${FRESH_TEST:-1}" != 0 ]; then
  shots=/home/reynolds/artifacts/ui-screenshots
  status=0
  in_box "cd /home/reynolds && export REYNOLDS_UI_SCREENSHOTS=$shots && $test_line" || status=$?
  if [ -n "${REYNOLDS_UI_SCREENSHOTS:-}" ]; then  # the browser tests' screenshots, kept as CI artefacts
    mkdir -p "$REYNOLDS_UI_SCREENSHOTS" && docker cp "$name:$shots/." "$REYNOLDS_UI_SCREENSHOTS" || true
  fi
  [ "$status" -eq 0 ] || { echo "make test failed in the fresh container (exit $status)" >&2; exit "$status"; }
fi
echo "fresh machine: the README's commands passed"
