#!/usr/bin/env bash
# Installs what the remote-engine tests use: OpenSSH (ssh launcher), Open MPI (mpi launcher),
# Slurm with munge (slurm launcher) and iproute2 (network namespaces). Needs root and apt-get;
# without them, or if the install fails, those tests skip and say why.
set -uo pipefail
packages=(openssh-server openssh-client openmpi-bin slurm-wlm munge iproute2)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "ci-setup: ${packages[*]} already installed"
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "ci-setup: not root or no apt-get; tests needing ${missing[*]} will skip" >&2
  exit 0
fi
echo "ci-setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }; then
  echo "ci-setup: apt-get install failed; tests needing ${missing[*]} will skip" >&2
fi
exit 0
