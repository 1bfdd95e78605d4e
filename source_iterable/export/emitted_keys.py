"""The keys of the lines a window read emitted, kept in flat memory."""

import tempfile
from array import array
from typing import IO, Iterator, Optional

# 1M keys (8 MB) in memory; an export job's window can hold many millions of records.
KEYS_IN_MEMORY = 1 << 20


class EmittedKeys:
    """An append-only list of 8-byte line keys that spills to a temporary file past `in_memory`.

    They are read back only when a window fails mid-way (`DropRecovery`), so a job window of
    millions of records costs at most `in_memory` keys of memory on the normal path.
    """

    def __init__(self, in_memory: Optional[int] = None) -> None:
        self.in_memory = in_memory or KEYS_IN_MEMORY
        self.recent = array("q")  # appended to directly by the read loop, spilled by `spill_if_full`
        self._spilled: Optional[IO[bytes]] = None
        self._spilled_count = 0

    def __len__(self) -> int:
        return self._spilled_count + len(self.recent)

    def __iter__(self) -> Iterator[int]:
        if self._spilled is not None:
            self._spilled.seek(0)
            while chunk := self._spilled.read(self.in_memory * self.recent.itemsize):
                yield from array("q", chunk)
        yield from self.recent

    def spill_if_full(self) -> None:
        if len(self.recent) < self.in_memory:
            return
        if self._spilled is None:
            self._spilled = tempfile.TemporaryFile(prefix="iterable-emitted-keys-")
        self._spilled.seek(0, 2)
        self.recent.tofile(self._spilled)
        self._spilled_count += len(self.recent)
        self.recent = array("q")

    def close(self) -> None:
        """Removes the spill file (also done when the object is collected)."""
        if self._spilled is not None:
            self._spilled.close()
            self._spilled = None
