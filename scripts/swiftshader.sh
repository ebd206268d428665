#!/usr/bin/env bash
# Makes SwiftShader, a Vulkan driver that runs on the CPU, available to the WebGPU
# tests, from Debian's packages only: the Vulkan loader (libvulkan1) is installed
# when missing, and chromium-common (which carries SwiftShader) is unpacked into
# .cache/swiftshader rather than installed, since installing it pulls in a hundred
# packages. Prints the path of SwiftShader's ICD manifest (for VK_ICD_FILENAMES).
set -euo pipefail
cd "$(dirname "$0")/.."
icd=/usr/lib/chromium/vk_swiftshader_icd.json
if [ ! -f "$icd" ]; then
  dir=.cache/swiftshader
  icd="$PWD/$dir/usr/lib/chromium/vk_swiftshader_icd.json"
  if [ ! -f "$icd" ]; then
    mkdir -p "$dir"
    (cd "$dir" && { apt-get download chromium-common >&2 || { apt-get update >&2 && apt-get download chromium-common >&2; }; } \
      && dpkg -x chromium-common_*.deb . && rm -f chromium-common_*.deb)
  fi
fi
if ! ldconfig -p | grep -q 'libvulkan\.so\.1 '; then
  { apt-get install -y --no-install-recommends libvulkan1 || { apt-get update && apt-get install -y --no-install-recommends libvulkan1; }; } >&2
fi
echo "$icd"
