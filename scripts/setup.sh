#!/usr/bin/env bash
# Installs what is missing to build popek, and builds it into build/.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
install_missing $POPEK_BUILD_PACKAGES
build_popek build
echo "built: build/popek"
