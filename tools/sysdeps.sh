#!/usr/bin/env bash
# Installs the Debian packages the tests need, or says exactly what to run.
# Each entry is "command:package"; a command already on PATH needs nothing.
set -euo pipefail
needs=(
  "arm-none-eabi-gcc:gcc-arm-none-eabi"
  "qemu-system-arm:qemu-system-arm"
  "dot:graphviz"
  "chromium:chromium"
  "espeak-ng:espeak-ng"
)
missing=()
for entry in "${needs[@]}"; do
  command -v "${entry%%:*}" >/dev/null 2>&1 || missing+=("${entry#*:}")
done
# newlib has no command of its own: look for its C library.
[ -e /usr/lib/arm-none-eabi/newlib/libc.a ] || missing+=(libnewlib-arm-none-eabi)
[ ${#missing[@]} -eq 0 ] && exit 0
line="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "Missing system packages. Run as root:  $line" >&2
  exit 1
fi
echo "Installing system packages: ${missing[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive $line
