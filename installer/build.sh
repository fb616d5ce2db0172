#!/usr/bin/env bash
# Build the offline bundle into dist/xlab/ and smoke-test it without network.
#   bash installer/build.sh
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install -q -e . 'pyinstaller>=6'
.venv/bin/pyinstaller --noconfirm --clean --distpath dist --workpath build/pyinstaller installer/xlab.spec
# The bundle must run on its own, with no network where we can cut it off:
# make a lab, import, plan, simulate, status, open the window.
NONET=""
if [ "$(id -u)" = 0 ] && unshare -n true 2>/dev/null; then NONET="unshare -n"; fi
LAB=$(mktemp -d)
$NONET dist/xlab/xlab demo --headless --count 2 --rate 0 --quiet --lab "$LAB/lab"
$NONET dist/xlab/xlab quota status --lab "$LAB/lab" | head -3
QT_QPA_PLATFORM=offscreen XLAB_STARTUP_PROBE=1 $NONET dist/xlab/xlab gui --lab "$LAB/lab"
rm -rf "$LAB"
echo "bundle ready: dist/xlab ($(du -sh dist/xlab | cut -f1))"
