#!/usr/bin/env bash
# Put promtool (Prometheus' config and rule checker, used by tests/unit/test_monitoring.py) into a bin
# directory without root: take it from PATH if it is there, else unpack it from Debian's/Ubuntu's
# `prometheus` package (apt-get download needs no root; nothing is installed system-wide or started).
#
#   scripts/promtool.sh .venv/bin
set -euo pipefail
dest=${1:?usage: scripts/promtool.sh BIN_DIR}
mkdir -p "$dest"
if [ -x "$dest/promtool" ]; then exit 0; fi
if found=$(command -v promtool); then
  ln -sf "$found" "$dest/promtool"
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if ! (cd "$work" && apt-get download prometheus >/dev/null 2>&1); then
  echo "promtool: could not download Debian's prometheus package; run 'sudo apt-get update' once, or" >&2
  echo "          install it yourself: sudo apt-get install -y --no-install-recommends prometheus" >&2
  exit 1
fi
dpkg-deb -x "$work"/prometheus_*.deb "$work/root"
install -m 0755 "$work/root/usr/bin/promtool" "$dest/promtool"
echo "promtool: unpacked from the prometheus package into $dest"
