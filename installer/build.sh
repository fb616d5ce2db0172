#!/usr/bin/env bash
# Build the offline bundle into dist/xlab/ and smoke-test it without network.
#   bash installer/build.sh              # dist/xlab/ (no torch)
#   bash installer/build.sh --trainer    # dist/xlab-trainer/ (torch, torchvision: the run process)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--trainer" ]; then
    python3 -m venv .venv
    .venv/bin/pip install -q -e '.[train]' 'pyinstaller>=6'
    .venv/bin/pyinstaller --noconfirm --clean --distpath dist --workpath build/pyinstaller-trainer installer/trainer.spec
    NONET=""
    if [ "$(id -u)" = 0 ] && unshare -n true 2>/dev/null; then NONET="unshare -n"; fi
    # The probe must answer from the bundle alone, with no network.
    $NONET dist/xlab-trainer/xlab-trainer --probe
    echo "trainer bundle ready: dist/xlab-trainer ($(du -sh dist/xlab-trainer | cut -f1)); install it beside dist/xlab"
    exit 0
fi
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
