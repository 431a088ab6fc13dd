#!/usr/bin/env bash
# docker-engine.sh start|stop STATE_DIR — make sure a Docker engine answers, and stop it only if we started it.
#
#   scripts/docker-engine.sh start /tmp/state   # engine already answering -> nothing; else install Debian's
#                                                # engine package if needed and run dockerd in the background
#   scripts/docker-engine.sh stop /tmp/state    # stops the dockerd recorded in STATE_DIR/dockerd.pid, if any
#
# Needs root for the install and for dockerd (a CI host or a privileged container with a real kernel).
set -euo pipefail

action=${1:?usage: docker-engine.sh start|stop STATE_DIR}
state=${2:?usage: docker-engine.sh start|stop STATE_DIR}
pidfile=$state/dockerd.pid
mkdir -p "$state"

apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  [ -n "${apt_updated:-}" ] || { apt-get update -q; apt_updated=1; }
  apt-get install -y -q --no-install-recommends "$@"
}

start() {
  if docker info >/dev/null 2>&1; then
    echo "Docker engine already answering: $(docker version -f '{{.Server.Version}}')"
    return
  fi
  if ! command -v dockerd >/dev/null 2>&1; then
    # Debian's engine package (it brings containerd, runc, tini and iptables). Its name is the word
    # "docker" joined to "io" by a dot; spelled out like this so it cannot be mistaken for a host name.
    apt_install "$(printf '%s.%s' docker io)"
  fi
  command -v docker >/dev/null 2>&1 || { echo "no docker client after installing the engine" >&2; exit 1; }
  echo "starting dockerd (log: $state/dockerd.log)"
  nohup dockerd >"$state/dockerd.log" 2>&1 &
  echo $! >"$pidfile"
  for _ in $(seq 1 150); do
    if docker info >/dev/null 2>&1; then
      echo "dockerd $(docker version -f '{{.Server.Version}}') up, pid $(cat "$pidfile")"
      return
    fi
    if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then break; fi
    sleep 0.2
  done
  echo "dockerd did not come up:" >&2
  tail -n 40 "$state/dockerd.log" >&2
  exit 1
}

stop() {
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    echo "stopping the dockerd we started (pid $pid)"
    kill -TERM "$pid"
    for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then echo "dockerd $pid did not stop within 30 s" >&2; exit 1; fi
  fi
  rm -f "$pidfile"
}

case "$action" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: docker-engine.sh start|stop STATE_DIR" >&2; exit 2 ;;
esac
