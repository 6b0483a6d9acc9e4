"""A float64 column that grows in place, for the monitor's step and eval series."""

from __future__ import annotations

import math

import numpy as np

NAN = math.nan


class Column:
    """A float64 array that grows by doubling; `.values` is the filled part (a view).

    A column that holds only NaN so far (a metric this run never logs: most of a step's
    two dozen) allocates nothing until a value comes: 1,000,000 steps would otherwise hold
    ~150 MiB of NaN.
    """

    def __init__(self, capacity: int = 1024):
        self._capacity = capacity
        self._data: np.ndarray | None = None
        self._nan: np.ndarray | None = None  # the all-NaN values, made once per size
        self.size = 0

    def extend(self, values: np.ndarray) -> None:
        needed = self.size + values.size
        if self._data is None and np.isnan(values).all():
            self.size = needed  # still nothing but NaN
            return
        if self._data is None and not self.size and values.size >= self._capacity:
            self._data = values if values.flags.writeable and values.dtype == np.float64 \
                else values.astype(np.float64)  # the first values, adopted as they are
            self.size = needed
            return
        if self._data is None:
            self._data = np.empty(max(needed, self._capacity), dtype=np.float64)
            self._data[:self.size] = NAN
        elif needed > self._data.size:
            grown = np.empty(max(needed, self._data.size * 2), dtype=np.float64)
            grown[:self.size] = self._data[:self.size]
            self._data = grown
        self._data[self.size:needed] = values
        self.size = needed

    def reserve(self, capacity: int) -> None:
        """Room for `capacity` values in all (a long read knows its size: no regrowing)."""
        if self._data is None:
            self._capacity = max(self._capacity, capacity)
        elif capacity > self._data.size:
            grown = np.empty(capacity, dtype=np.float64)
            grown[:self.size] = self._data[:self.size]
            self._data = grown

    def adopt(self, data: np.ndarray, size: int) -> None:
        """Take `data` (float64, its first `size` values filled) as this empty column's store:
        a cached history read straight into room to grow, no copy."""
        assert self.size == 0 and data.dtype == np.float64 and data.size >= size
        self._data, self.size = data, size

    def extend_nan(self, count: int) -> None:
        """Append `count` NaN (readings not taken), allocating nothing while all are NaN."""
        if self._data is None:
            self.size += count
        else:
            self.extend(np.full(count, NAN))

    @property
    def allocated(self) -> bool:
        """False while every value is NaN (nothing stored)."""
        return self._data is not None

    @property
    def values(self) -> np.ndarray:
        if self._data is not None:
            return self._data[:self.size]
        if self._nan is None or self._nan.size != self.size:
            self._nan = np.full(self.size, NAN)
            self._nan.flags.writeable = False
        return self._nan
