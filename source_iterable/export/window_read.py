"""The records of one export window, as RECORD messages."""

import time
from typing import Callable, Iterable, Iterator, Optional, Set

import orjson
from airbyte_cdk.models import AirbyteMessage, AirbyteRecordMessage, Type

from source_iterable.export.emitted_keys import EmittedKeys
from source_iterable.export.late_records import LateRecords
from source_iterable.export.plan import Window
from source_iterable.export.records import RecordShaper
from source_iterable.record_contract import rfc3339_utc

ISO_SECONDS_FORMAT = "%Y-%m-%dT%H:%M:%S"


class WindowRead:
    """Reads one window's lines into RECORD messages, and counts what it did.

    A line is parsed, kept only if its cursor lies inside the window (Iterable's answer may
    spill over), shaped by the stream's record contract and key, and emitted; lines in
    `skip` (emitted by a failed attempt at this window) are passed over. A line without a
    readable cursor is emitted and counted. With `late` (incremental syncs), a record an
    earlier sync already emitted is passed over too, and the keys the ledger must remember
    of this read are gathered (`LateRecords`).

    Attributes:
        records, malformed, outside_window, without_cursor: what the lines turned out to be.
        emitted_keys: a key per emitted line, for `DropRecovery` if the read fails mid-way
            (spilled to disk past a million, so a job window keeps memory flat).
    """

    def __init__(
        self,
        stream: str,
        window: Window,
        cursor_field: str,
        shaper: RecordShaper,
        skip: Optional[Set[int]],
        late: Optional[LateRecords] = None,
        read_at: Callable[[], int] = lambda: int(time.time()),
    ) -> None:
        self.stream, self.window, self.cursor_field = stream, window, cursor_field
        self._shaper, self._skip, self.late, self._read_at = shaper, skip, late, read_at
        self.records = self.malformed = self.outside_window = self.without_cursor = 0
        self.emitted_keys = EmittedKeys()

    def messages(self, lines: Iterable[bytes]) -> Iterator[AirbyteMessage]:
        low, high = self.window.low.strftime(ISO_SECONDS_FORMAT), self.window.high.strftime(ISO_SECONDS_FORMAT)
        stream, cursor_field, shape, skip, loads = self.stream, self.cursor_field, self._shaper.shape, self._skip, orjson.loads
        key_of, late = self._shaper.key, self.late
        reread_until = late.reread_until if late is not None else ""
        seen_until: Optional[str] = None
        keys, emitted_at = self.emitted_keys, int(time.time() * 1000)
        emitted, in_memory = keys.recent, keys.in_memory
        for line in lines:
            line_key = hash(line)
            if skip is not None and line_key in skip:
                continue
            try:
                record = loads(line)
            except orjson.JSONDecodeError:
                if line.strip():
                    self.malformed += 1
                continue
            if type(record) is not dict:
                self.malformed += 1
                continue
            cursor = rfc3339_utc(record.get(cursor_field))
            if cursor is None:
                self.without_cursor += 1
            elif not low <= cursor[:19] < high:
                self.outside_window += 1
                continue
            primary_key = None
            if late is not None:
                if seen_until is None:
                    seen_until = late.begin(self._read_at())
                stamp = late.stamp(record)
                if stamp is not None and stamp > seen_until:
                    primary_key = key_of(record)
                    late.remember(primary_key, cursor)
                if cursor is not None and cursor < reread_until:
                    primary_key = primary_key or key_of(record)
                    if late.emitted_before(cursor, stamp, primary_key):
                        continue
            emitted.append(line_key)
            self.records += 1
            if len(emitted) >= in_memory:
                keys.spill_if_full()
                emitted = keys.recent
            yield AirbyteMessage(
                type=Type.RECORD,
                record=AirbyteRecordMessage(
                    stream=stream, data=shape(record, cursor_field, cursor, primary_key), emitted_at=emitted_at
                ),
            )
