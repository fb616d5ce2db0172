"""The content-addressed image store: files named by their SHA-256, never blobs in SQL.

Layout: ``STORE/ab/cd/<sha256><ext>`` for images, ``STORE/thumbs/ab/<sha256>.png``
for thumbnails. Writes are atomic (temporary name, fsync, rename, fsync of the
folder). Before a file is written its hash is noted in ``STORE/.journal``; the
note is removed once the catalog has committed the image. A process killed
between the two leaves a note, and :meth:`ContentStore.reconcile` removes the
store files the catalog never learned of; their source is still in the drop
folder, because ingest removes a source only after the commit.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return  # not supported on this platform/filesystem
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Write then rename, so readers never see a partial file.

    ``durable``: fsync the file and its folder, so it survives a power cut
    (needed before the catalog may point at it; not for derived files).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temp, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException:
        # A full disk (or any failure) must not leave a partial file that nothing will ever remove.
        temp.unlink(missing_ok=True)
        raise
    if durable:
        _fsync_dir(path.parent)


def link_atomic(source: Path, path: Path, expected: tuple[int, int]) -> bool:
    """Hard-link ``source`` into the store (no copy) if it still is the file that was hashed.

    ``expected``: (size, mtime_ns) when it was read. Returns False (and links
    nothing) across filesystems or if the file changed; the caller then writes
    the bytes it read.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.lnk")
    try:
        os.link(source, temp)
    except OSError:
        return False
    try:
        st = os.stat(temp)
        if (st.st_size, st.st_mtime_ns) != expected:
            os.unlink(temp)
            return False
        fd = os.open(temp, os.O_RDONLY)
        try:
            os.fsync(fd)  # the scanner's own writes may still be in the page cache
        finally:
            os.close(fd)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return True


def _is_temporary(name: str) -> bool:
    return name.startswith(".") and name.endswith((".tmp", ".lnk"))


def remove_temporaries(folder: Path, name: str | None = None) -> list[Path]:
    """Remove the temporary files a killed or failed write left in ``folder`` (those for ``name`` only, if given)."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return removed
    for entry in entries:
        if _is_temporary(entry.name) and (name is None or entry.name.startswith(f".{name}.")) and entry.is_file():
            Path(entry.path).unlink(missing_ok=True)
            removed.append(Path(entry.path))
    return removed


class ContentStore:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.journal = self.root / ".journal"

    def image_path(self, sha256: str, ext: str) -> Path:
        return self.root / sha256[:2] / sha256[2:4] / f"{sha256}{ext}"

    def thumb_path(self, sha256: str) -> Path:
        return self.root / "thumbs" / sha256[:2] / f"{sha256}.png"

    def relative(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def begin(self, sha256: str, ext: str) -> None:
        """Note that files for ``sha256`` are about to be written (see reconcile).

        Not fsynced: a process kill keeps it (the page cache survives); after a
        power cut a missing note can only leave an unknown store file behind,
        never lose an image.
        """
        self.journal.mkdir(parents=True, exist_ok=True)
        write_atomic(self.journal / sha256, ext.encode(), durable=False)

    def put(self, sha256: str, ext: str, data: bytes, source: Path | None = None,
            source_signature: tuple[int, int] | None = None) -> Path:
        """Store the bytes (durably). With ``source``, hard-link it instead of copying when possible."""
        path = self.image_path(sha256, ext)
        if path.exists() and path.stat().st_size == len(data):
            return path
        if source is not None and source_signature is not None and link_atomic(source, path, source_signature):
            return path
        write_atomic(path, data)
        return path

    def put_thumb(self, sha256: str, png: bytes) -> Path:
        """Thumbnails are derived from the stored image, so they need no fsync."""
        path = self.thumb_path(sha256)
        write_atomic(path, png, durable=False)
        return path

    def done(self, sha256: str) -> None:
        """The catalog has the image: forget the note."""
        try:
            (self.journal / sha256).unlink()
        except FileNotFoundError:
            pass

    def reconcile(self, known: Callable[[str], bool]) -> list[str]:
        """Remove store files of interrupted ingests that the catalog does not know.

        ``known(sha)`` says whether the catalog has that image. Returns the
        hashes whose files were removed.
        """
        removed = []
        self._sweep_once()
        if not self.journal.is_dir():
            return removed
        for note in sorted(self.journal.iterdir()):
            if note.name.startswith("."):
                note.unlink(missing_ok=True)  # a half-written note
                continue
            sha = note.name
            try:
                ext = note.read_text().strip()
            except (OSError, UnicodeDecodeError):
                ext = ""
            image = self.image_path(sha, ext)
            for leftover in (image, self.thumb_path(sha)):
                remove_temporaries(leftover.parent, leftover.name)
            if not known(sha):
                image.unlink(missing_ok=True)
                self.thumb_path(sha).unlink(missing_ok=True)
                removed.append(sha)
            note.unlink(missing_ok=True)
        return removed

    def _sweep_once(self) -> None:
        """Remove every temporary file in the store, once per store.

        Later leftovers all have a journal note (written before any store
        write), so :meth:`reconcile` finds them without walking a store of
        millions of files; this full walk catches those of versions that
        left them without one.
        """
        marker = self.root / ".swept"
        if marker.exists() or not self.root.is_dir():
            return
        for folder, _, names in os.walk(self.root):
            for name in names:
                if _is_temporary(name):
                    (Path(folder) / name).unlink(missing_ok=True)
        marker.touch()

    def orphans(self, known: Callable[[str], bool]) -> list[Path]:
        """Every image file the catalog does not know (a full scan; for checks and tests)."""
        out = []
        for path in [*self.root.glob("??/??/*"), *self.root.glob("thumbs/??/*")]:
            if path.is_file() and not path.name.startswith(".") and not known(path.name[:64]):
                out.append(path)
        return out
