"""Which process ingests which scanner.

Two processes ingesting the same drop folder race for every file (each takes
it, one commits, the other finds it gone or half-moved) and both hold the
scanner's capture session. So a scanner's drop folder is ingested by at most
one process: each scanner has a lock file under ``LAB/locks/``, held with an
operating-system lock for as long as the process ingests.

The operating system releases the lock when its process ends, however it
ends (SIGKILL and power cut included), so a lock that can be taken is proof
that its last owner is gone; the file's content (user, host, PID, since) is
only there to tell the next person who holds it.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from core.errors import IngestRunningError


@dataclass(frozen=True)
class LockOwner:
    user: str
    host: str
    pid: int
    since: str  # ISO-8601, UTC

    def describe(self) -> str:
        return f"{self.user} on {self.host} (process {self.pid}, since {self.since[:16].replace('T', ' ')} UTC)"


def _lock_dir(lab_root: Path) -> Path:
    return lab_root / "locks"


def _lock_path(lab_root: Path, scanner: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in scanner)
    return _lock_dir(lab_root) / f"ingest-{safe}.lock"


def _try_lock(fd: int) -> bool:
    if os.name == "nt":
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def _read_owner(path: Path) -> LockOwner:
    """Who holds the lock at ``path``, as its file says (a holder that wrote nothing readable yet: "another process")."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return LockOwner(str(data["user"]), str(data["host"]), int(data["pid"]), str(data["since"]))
    except (OSError, ValueError, KeyError, TypeError):
        return LockOwner("another process", "?", 0, "")


def _me() -> LockOwner:
    # The lab user this process signed in as (core.users: $XLAB_USER), else the login.
    user = os.environ.get("XLAB_USER", "")
    if not user:
        try:
            user = getpass.getuser()
        except Exception:  # noqa: BLE001 - no login name (a service account): say so
            user = "unknown user"
    return LockOwner(user, socket.gethostname(), os.getpid(), time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()))


class IngestLock:
    """The ingest locks of some scanners, held by this process until :meth:`release`."""

    def __init__(self, held: dict[str, int]):
        self._held = held

    @classmethod
    def acquire(cls, lab_root: Path, scanners: Iterable[str]) -> "IngestLock":
        """Take every scanner's lock, or none: raise :class:`IngestRunningError`
        naming who ingests the scanners already taken."""
        folder = _lock_dir(lab_root)
        folder.mkdir(parents=True, exist_ok=True)
        held: dict[str, int] = {}
        busy: dict[str, LockOwner] = {}
        me = _me()
        for name in scanners:
            path = _lock_path(lab_root, name)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            # A viewer's probe holds a free lock for an instant: look twice.
            if not _try_lock(fd) and not (time.sleep(0.05) or _try_lock(fd)):
                os.close(fd)
                busy[name] = _read_owner(path)
                continue
            os.ftruncate(fd, 0)
            os.write(fd, json.dumps(me.__dict__).encode())
            held[name] = fd
        if busy:
            cls(held).release()
            raise IngestRunningError(busy, describe_owners(busy))
        return cls(held)

    def release(self) -> None:
        for fd in self._held.values():
            # Closing the descriptor drops the OS lock; the stale owner text
            # left in the file means nothing once the lock can be taken.
            os.close(fd)
        self._held = {}


def try_hold(path: Path) -> int | None:
    """Take the lock file at ``path`` for this process (any lock of the lab, not only a
    scanner's): the open descriptor (close it to release), or None when another process
    holds it (:func:`holder` says who)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    if not _try_lock(fd):
        os.close(fd)
        return None
    os.ftruncate(fd, 0)
    os.write(fd, json.dumps(_me().__dict__).encode())
    return fd


def holder(path: Path) -> LockOwner | None:
    """Who holds the lock file at ``path`` now (None: nobody; probes without keeping it)."""
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return None
    try:
        return None if _try_lock(fd) else _read_owner(path)
    finally:
        os.close(fd)


def ingest_owners(lab_root: Path, scanners: Iterable[str]) -> dict[str, LockOwner]:
    """Who ingests each of ``scanners`` now (only the scanners some process ingests).

    Probes each lock without keeping it, so a viewer can say who runs ingest.
    """
    out: dict[str, LockOwner] = {}
    folder = _lock_dir(lab_root)
    if not folder.is_dir():
        return out
    for name in scanners:
        path = _lock_path(lab_root, name)
        if not path.exists():
            continue
        try:
            fd = os.open(path, os.O_RDWR)
        except OSError:
            continue
        try:
            if _try_lock(fd):
                continue  # free: its last owner is gone
            out[name] = _read_owner(path)
        finally:
            os.close(fd)  # also drops the probe's lock, if it took one
    return out


def lab_ingest_owners(lab) -> dict[str, LockOwner]:  # noqa: ANN001 - core.lab.Lab (import cycle)
    """Who ingests each of the lab's scanners now, if anyone."""
    from core.catalog import ingest_store

    return ingest_owners(lab.paths.root, [r["name"] for r in ingest_store.scanners(lab.catalog)])


def describe_owners(owners: dict[str, LockOwner]) -> str:
    """One line: which scanners are ingested by whom."""
    by_owner: dict[str, list[str]] = {}
    for scanner, owner in owners.items():
        by_owner.setdefault(owner.describe(), []).append(scanner)
    return "; ".join(f"{', '.join(names)} by {who}" for who, names in by_owner.items())


class StoreUse:
    """This process writes into the lab's content store (a shared lock, held
    for as long as it ingests).

    At start ingest removes the store files and temporary files that a
    killed ingest left behind. Done while another process ingests, that
    clean-up would take the other's files in flight (written, not yet
    committed) for leftovers. So it runs only when this process can hold the
    lock alone; otherwise the leftovers wait for a start with nobody else.
    """

    def __init__(self, lab_root: Path):
        folder = _lock_dir(lab_root)
        folder.mkdir(parents=True, exist_ok=True)
        self._fd: int | None = os.open(folder / "store.lock", os.O_RDWR | os.O_CREAT, 0o644)
        if os.name != "nt":
            import fcntl

            fcntl.flock(self._fd, fcntl.LOCK_SH)

    def alone(self) -> bool:
        """Whether no other process writes into the store now (and none can start until :meth:`shared`)."""
        if os.name == "nt" or self._fd is None:
            return True
        import fcntl

        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            fcntl.flock(self._fd, fcntl.LOCK_SH)  # a failed conversion may have dropped it
            return False

    def shared(self) -> None:
        """Let other processes write into the store again (after :meth:`alone` said True)."""
        if os.name != "nt" and self._fd is not None:
            import fcntl

            fcntl.flock(self._fd, fcntl.LOCK_SH)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
