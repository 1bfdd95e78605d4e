"""Deterministic per-record randomness.

Every generated value is a pure function of (seed, label, index), so any record can be rebuilt on
its own, in any order, by the server and by a test alike. A sequential ``random.Random`` stream
would force generating records from the start; stateless hashes let a window of a million-record
stream be computed lazily from its first index. ``mix64`` serves the small catalogue, ``IndexHash``
the export hot path.
"""

import random
import zlib

MASK64 = (1 << 64) - 1


def mix64(x: int) -> int:
    """SplitMix64 finaliser: a well-spread 64-bit hash of an integer (too slow for the export hot path)."""
    z = (x + 0x9E3779B97F4A7C15) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def salt(seed: int, label: str) -> int:
    """A 64-bit key for one named stream of values (e.g. ``"emailSend"``) under a seed."""
    return mix64((seed << 32) ^ zlib.crc32(label.encode()))


def pick(sequence, h: int):
    """The element of ``sequence`` chosen by hash ``h``."""
    return sequence[h % len(sequence)]


class IndexHash:
    """Random 64-bit words and hex ids for 32-bit indexes, at the cost of two list lookups.

    ``mix64`` costs about as much as formatting a whole field, and the export hot path needs a
    hash and a messageId per record; looking them up in tables of 2**16 precomputed random values
    (for the low and high half of the index) keeps a million-line export fast. A stream key,
    XOR-ed into the index, gives each stream its own view of the index space while keeping ids
    distinct for distinct indexes. The high table is indexed by ``high ^ low`` (a bijection of the
    index too) so consecutive indexes do not share a half.
    """

    SIZE = 1 << 16

    def __init__(self, seed: int):
        rng = random.Random(seed)
        self.low = [rng.getrandbits(64) for _ in range(self.SIZE)]
        self.high = [rng.getrandbits(64) for _ in range(self.SIZE)]
        self.hex_low = [f"{rng.getrandbits(64):016x}" for _ in range(self.SIZE)]
        self.hex_high = [f"{rng.getrandbits(64):016x}" for _ in range(self.SIZE)]
        self._seed = seed

    def key(self, label: str) -> int:
        """The 32-bit key of a named stream."""
        return salt(self._seed, label) & 0xFFFFFFFF

    def word(self, index: int, key: int) -> int:
        """A random 64-bit word for ``index`` (taken modulo 2**32) in the stream ``key``."""
        x = (index ^ key) & 0xFFFFFFFF
        return self.low[x & 0xFFFF] ^ self.high[(x >> 16) ^ (x & 0xFFFF)]

    def hex_id(self, index: int, key: int) -> str:
        """32 hex digits, distinct for distinct ``index`` (modulo 2**32) in the stream ``key``."""
        x = (index ^ key) & 0xFFFFFFFF
        return self.hex_low[x & 0xFFFF] + self.hex_high[(x >> 16) ^ (x & 0xFFFF)]
