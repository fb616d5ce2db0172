"""Before Qt loads its X11 platform: are the system libraries it needs there?

Qt's xcb platform plugin links a dozen X11 libraries that a minimal Linux
lacks. When one is missing, Qt prints a hint about one of them and aborts the
process (SIGABRT, a core dump). XLab looks first, without importing Qt, and
says which are missing and the command that installs them.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SystemLibrary:
    soname: str
    debian: str  # Debian / Ubuntu package
    fedora: str  # Fedora / RHEL package


# What PySide6's libqxcb.so and libQt6XcbQpa.so need beyond a base system
# (read with ldd from PySide6 6.11).
XCB_LIBRARIES = (
    SystemLibrary("libxcb.so.1", "libxcb1", "libxcb"),
    SystemLibrary("libX11-xcb.so.1", "libx11-xcb1", "libX11-xcb"),
    SystemLibrary("libxcb-cursor.so.0", "libxcb-cursor0", "xcb-util-cursor"),
    SystemLibrary("libxcb-icccm.so.4", "libxcb-icccm4", "xcb-util-wm"),
    SystemLibrary("libxcb-keysyms.so.1", "libxcb-keysyms1", "xcb-util-keysyms"),
    SystemLibrary("libxcb-image.so.0", "libxcb-image0", "xcb-util-image"),
    SystemLibrary("libxcb-render-util.so.0", "libxcb-render-util0", "xcb-util-renderutil"),
    SystemLibrary("libxcb-util.so.1", "libxcb-util1", "xcb-util"),
    SystemLibrary("libxcb-shape.so.0", "libxcb-shape0", "libxcb"),
    SystemLibrary("libxcb-randr.so.0", "libxcb-randr0", "libxcb"),
    SystemLibrary("libxcb-xfixes.so.0", "libxcb-xfixes0", "libxcb"),
    SystemLibrary("libxcb-sync.so.1", "libxcb-sync1", "libxcb"),
    SystemLibrary("libxcb-xkb.so.1", "libxcb-xkb1", "libxcb"),
    SystemLibrary("libxcb-shm.so.0", "libxcb-shm0", "libxcb"),
    SystemLibrary("libxcb-render.so.0", "libxcb-render0", "libxcb"),
    SystemLibrary("libxkbcommon.so.0", "libxkbcommon0", "libxkbcommon"),
    SystemLibrary("libxkbcommon-x11.so.0", "libxkbcommon-x11-0", "libxkbcommon-x11"),
    SystemLibrary("libEGL.so.1", "libegl1", "libglvnd-egl"),
    SystemLibrary("libGL.so.1", "libgl1", "libglvnd-glx"),
    SystemLibrary("libfontconfig.so.1", "libfontconfig1", "fontconfig"),
    SystemLibrary("libdbus-1.so.3", "libdbus-1-3", "dbus-libs"),
)


def uses_xcb(environ: dict[str, str] | None = None) -> bool:
    """Whether Qt will pick its X11 (xcb) platform."""
    env = os.environ if environ is None else environ
    if not sys.platform.startswith("linux"):
        return False
    platform = env.get("QT_QPA_PLATFORM", "")
    if platform:
        return platform.split(":")[0].split(";")[0] == "xcb"
    return env.get("XDG_SESSION_TYPE") != "wayland" or not env.get("WAYLAND_DISPLAY")


def missing_libraries(libraries: tuple[SystemLibrary, ...] = XCB_LIBRARIES) -> list[SystemLibrary]:
    """The libraries the dynamic loader cannot find (loading one is what Qt does next anyway)."""
    import ctypes

    bundled = Path(getattr(sys, "_MEIPASS", "")) if getattr(sys, "frozen", False) else None
    missing = []
    for library in libraries:
        if bundled is not None and (bundled / library.soname).exists():
            continue
        try:
            ctypes.CDLL(library.soname)
        except OSError:
            missing.append(library)
    return missing


def install_hint(missing: list[SystemLibrary]) -> str:
    debian = " ".join(sorted({m.debian for m in missing}))
    fedora = " ".join(sorted({m.fedora for m in missing}))
    return (f"  Debian/Ubuntu: sudo apt-get install {debian}\n"
            f"  Fedora/RHEL:   sudo dnf install {fedora}")


def display_problem(environ: dict[str, str] | None = None,
                    libraries: tuple[SystemLibrary, ...] = XCB_LIBRARIES) -> str | None:
    """Why the window cannot open on this machine, or None if it can try."""
    env = os.environ if environ is None else environ
    if not uses_xcb(env):
        return None
    missing = missing_libraries(libraries)
    if missing:
        names = ", ".join(m.soname for m in missing)
        return (f"the window needs X11 libraries that this system lacks: {names}.\n"
                f"Install them, then start XLab again:\n{install_hint(missing)}")
    if not env.get("DISPLAY"):
        return ("no X11 display to open the window on (DISPLAY is not set). Start XLab from a desktop "
                "session, or use the headless commands (xlab --help), e.g. 'xlab demo --headless'.")
    return None
