"""Near-duplicate lookup over every stored perceptual hash.

The hashes live in one numpy array (8 bytes each: 2,000,000 images take
16 MB); a lookup XORs the query with all of them and counts bits, which numpy
does in a few milliseconds. Near-duplicates across the test and train splits
are what the method forbids, so each match says whether it crosses splits.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

DEFAULT_MAX_DISTANCE = 4  # of 64 bits


_BITS_IN_BYTE = np.array([bin(b).count("1") for b in range(256)], dtype=np.uint8)


def _bit_count(words: np.ndarray) -> np.ndarray:
    """Set bits per uint64 (numpy 2's bitwise_count; a byte table on numpy 1.26)."""
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(words)
    return _BITS_IN_BYTE[words.view(np.uint8)].reshape(-1, 8).sum(axis=1, dtype=np.uint8)


@dataclass(frozen=True)
class Match:
    image_id: int
    distance: int
    split: str | None


class NearDuplicateIndex:
    def __init__(self, max_distance: int = DEFAULT_MAX_DISTANCE):
        self.max_distance = max_distance
        self._hashes = np.zeros(1024, dtype=np.uint64)
        self._ids = np.zeros(1024, dtype=np.int64)
        self._splits: list[str | None] = [None] * 1024
        self._n = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self._n

    @staticmethod
    def _unsigned(phash: int) -> int:
        return phash & ((1 << 64) - 1)

    def add_many(self, rows: list[tuple[int, int, str | None]]) -> None:
        """Add (image_id, signed phash, split) rows."""
        with self._lock:
            needed = self._n + len(rows)
            if needed > len(self._hashes):
                size = max(needed, 2 * len(self._hashes))
                self._hashes = np.resize(self._hashes, size)
                self._ids = np.resize(self._ids, size)
                self._splits.extend([None] * (size - len(self._splits)))
            if rows:
                ids, hashes, splits = zip(*rows)
                self._ids[self._n:needed] = ids
                self._hashes[self._n:needed] = np.array([self._unsigned(h) for h in hashes], dtype=np.uint64)
                self._splits[self._n:needed] = splits
            self._n = needed

    def add(self, image_id: int, phash: int, split: str | None) -> None:
        self.add_many([(image_id, phash, split)])

    def query(self, phash: int, max_distance: int | None = None, closest: int | None = None) -> list[Match]:
        """Stored images within ``max_distance`` bits, nearest first (at most ``closest`` of them)."""
        limit = self.max_distance if max_distance is None else max_distance
        with self._lock:
            if self._n == 0:
                return []
            distances = _bit_count(self._hashes[: self._n] ^ np.uint64(self._unsigned(phash)))
            hits = np.flatnonzero(distances <= limit)
            if closest is not None and len(hits) > closest:
                hits = hits[np.argpartition(distances[hits], closest - 1)[:closest]]
            hits = hits[np.argsort(distances[hits], kind="stable")]
            return [Match(int(self._ids[i]), int(distances[i]), self._splits[i]) for i in hits]
