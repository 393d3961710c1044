"""Which series this sidecar replica tracks, and where each one lives in the detector bank.

A series is ``(tenant, indicator)``. Replicas split the series by a stable hash (blake2b, not
Python's per-process salted ``hash``) so ``--shard-index i --shard-count n`` gives every series to
exactly one replica, the same one after every restart. Lookups are dict hits; only a series seen for
the first time is hashed, so a cycle stays O(series) with a small constant.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from tenantpulse.kernel.errors import UsageError

SeriesKey = tuple[str, str]  # (tenant, indicator)


def shard_of(key: SeriesKey, shard_count: int) -> int:
    """The replica that owns ``key``: stable across processes, machines and Python versions."""
    digest = hashlib.blake2b(f"{key[0]}\x00{key[1]}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % shard_count


def check_shard(shard_index: int, shard_count: int) -> None:
    if shard_count < 1:
        raise UsageError(f"--shard-count must be >= 1, got {shard_count}")
    if not 0 <= shard_index < shard_count:
        raise UsageError(f"--shard-index must be in [0, {shard_count - 1}], got {shard_index}")


class Registry:
    """Series keys <-> detector-bank indices, limited to this replica's shard."""

    def __init__(
        self, allocate: Callable[[int], np.ndarray], shard_index: int = 0, shard_count: int = 1
    ) -> None:
        check_shard(shard_index, shard_count)
        self.shard_index = shard_index
        self.shard_count = shard_count
        self._allocate = allocate
        self._index: dict[SeriesKey, int] = {}
        self._foreign: set[SeriesKey] = set()
        self.on_new: list[Callable[[list[SeriesKey], np.ndarray], None]] = []

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, key: object) -> bool:
        return key in self._index

    def items(self) -> Iterable[tuple[SeriesKey, int]]:
        return self._index.items()

    def owns(self, key: SeriesKey) -> bool:
        return self.shard_count == 1 or shard_of(key, self.shard_count) == self.shard_index

    def get(self, key: SeriesKey) -> int | None:
        return self._index.get(key)

    def resolve(self, indicator: str, tenants: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """``resolve_keys`` for one indicator's tenants."""
        return self.resolve_keys([(tenant, indicator) for tenant in tenants])

    def resolve_keys(self, keys: Sequence[SeriesKey]) -> tuple[np.ndarray, np.ndarray]:
        """Bank indices of the owned series among ``keys``, adding new ones to the bank in one allocation.

        Returns ``(positions, indices)``: which entries of ``keys`` are ours, and their indices. Keys
        with an empty tenant (a row without the tenant label) are skipped.
        """
        index, foreign = self._index, self._foreign
        positions: list[int] = []
        found: list[int] = []
        new_keys: list[SeriesKey] = []
        new_positions: list[int] = []
        for pos, key in enumerate(keys):
            idx = index.get(key)
            if idx is not None:
                positions.append(pos)
                found.append(idx)
            elif key[0] and key not in foreign:  # a row without a tenant label is no tenant's series
                if self.owns(key):
                    new_keys.append(key)
                    new_positions.append(pos)
                else:
                    foreign.add(key)
        if new_keys:
            fresh = self.adopt(new_keys, self._allocate(len(new_keys)))
            positions.extend(new_positions)
            found.extend(fresh.tolist())
        return np.asarray(positions, dtype=np.intp), np.asarray(found, dtype=np.intp)

    def adopt(self, keys: list[SeriesKey], indices: np.ndarray) -> np.ndarray:
        """Record keys at given bank indices (new series, or series restored from a state file)."""
        indices = np.asarray(indices, dtype=np.intp)
        for key, idx in zip(keys, indices.tolist(), strict=True):
            self._index[key] = idx
        for hook in self.on_new:
            hook(keys, indices)
        return indices

    def remove(self, keys: Iterable[SeriesKey]) -> np.ndarray:
        """Forget series; returns their former indices so the caller can free the bank slots."""
        return np.asarray([self._index.pop(k) for k in keys if k in self._index], dtype=np.intp)

    def to_json(self) -> list[list[object]]:
        """Keys with indices, for the state file."""
        return [[t, i, idx] for (t, i), idx in self._index.items()]
