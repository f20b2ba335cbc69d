#!/usr/bin/env bash
# Installs the Debian packages the tests need, or says exactly what to run.
# Each entry is "command:package"; a command already on PATH needs nothing.
# `sysdeps.sh --python-only` checks only what creating the venv needs (make site, make lab).
set -euo pipefail
needs=(
  "arm-none-eabi-gcc:gcc-arm-none-eabi"
  "qemu-system-arm:qemu-system-arm"
  "dot:graphviz"
  "chromium:chromium"
  "espeak-ng:espeak-ng"
  "xxd:xxd"
  "cc:gcc"
)
[ "${1:-}" = "--python-only" ] && needs=()
missing=()
for entry in "${needs[@]}"; do
  command -v "${entry%%:*}" >/dev/null 2>&1 || missing+=("${entry#*:}")
done
# Libraries have no command of their own: look for a file each installs.
[ ${#needs[@]} -eq 0 ] || [ -e /usr/lib/arm-none-eabi/newlib/libc.a ] || missing+=(libnewlib-arm-none-eabi)
[ ${#needs[@]} -eq 0 ] || [ -e /usr/include/stdio.h ] || missing+=(libc6-dev)  # the host build of the firmware
# A CJK font, so the browser test's screenshots of the Chinese edition show characters, not empty boxes.
[ ${#needs[@]} -eq 0 ] || [ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || missing+=(fonts-wqy-microhei)
# Debian ships venv's pip bootstrap separately from Python itself.
"${PYTHON:-python3.11}" -c "import ensurepip, venv" 2>/dev/null || missing+=(python3-venv)
[ ${#missing[@]} -eq 0 ] && exit 0
line="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "Missing system packages. Run as root:  $line" >&2
  exit 1
fi
echo "Installing system packages: ${missing[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive $line
