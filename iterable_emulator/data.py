"""The emulated project's data: what every endpoint serves, and what tests should expect.

Tests compare what a connector emitted with these methods. They return exactly what the server
serves with no faults switched on: ``export_records`` yields the lines of ``GET export/data.json``
in served order, parsed.
"""

import copy
import random
import time
from bisect import bisect_left
from collections.abc import Iterator

import orjson

from .catalog import METADATA_TABLES, Catalog
from .config import EmulatorConfig
from .event_types import EVENT_TYPES, canonical_type
from .experiments import Experiments
from .metrics import CampaignMetrics
from .randomness import IndexHash, mix64, pick, salt
from .records import MESSAGE_KINDS, ExportStream, RecordContext
from .timefmt import to_epoch_ms, to_epoch_s

SHUFFLE_BLOCK = 256
USER_EVENT_TYPES = ["emailSend", "emailSend", "emailOpen", "emailClick", "emailSubscribe", "emailUnSubscribe",
                    "emailBounce", "pushSend", "pushOpen", "smsSend", "smsReceived", "inAppOpen", "inboxSession",
                    "purchase", "customEvent", "customEvent"]


class EmulatorData:
    """Deterministic data of one emulated project; see ``EmulatorConfig`` for its shape.

    Export streams are never materialised: each window is computed from its record indexes, so a
    million-record type costs no memory. Lines are shuffled within blocks of ``SHUFFLE_BLOCK``
    consecutive records, because Iterable does not sort exports by ``createdAt``.
    """

    def __init__(self, config: EmulatorConfig | None = None):
        self.config = config or EmulatorConfig()
        self.catalog = Catalog(self.config)
        self._context = RecordContext(self.config, self.catalog, IndexHash(self.config.seed))
        self._streams = {name: ExportStream(self.config, self._context, et) for name, et in EVENT_TYPES.items()}
        self._metrics = CampaignMetrics(self.config.seed, self.catalog.campaigns)
        self._experiments = Experiments(self.config.seed, self.catalog.campaigns, self.config.experiment_metrics_header)
        rng = random.Random(self.config.seed)
        self._permutations = [tuple(rng.sample(range(SHUFFLE_BLOCK), SHUFFLE_BLOCK)) for _ in range(8)]
        self._user_events_salt = salt(self.config.seed, "userEvents")
        self._user_events_key = self._context.index_hash.key("userEvents")

    # Export streams.

    def export_blocks(self, data_type: str, start_s: int, end_s: int, now_ms: int | None = None) -> Iterator[list[str]]:
        """Serialized lines (without newline) of a ``[start_s, end_s)`` window, one list per shuffle block.

        With ``now_ms`` set, a record is left out until the export shows it (its indexing time plus
        a visibility lag, see ``indexing.py``), which also hides every record in the future; records
        become visible out of order.
        """
        stream = self._stream(data_type)
        for order in self.export_orders(data_type, start_s, end_s, now_ms):
            yield stream.lines(order)

    def export_orders(self, data_type: str, start_s: int, end_s: int, now_ms: int | None = None,
                      from_block: int = 0) -> Iterator[list[int]]:
        """The record indexes behind ``export_blocks``, block by block in served order; each holds
        indexes of one shuffle block only (``index // SHUFFLE_BLOCK``), those before ``from_block``
        are skipped."""
        stream = self._stream(data_type)
        indexes = range(stream.count)
        lo, hi = bisect_left(indexes, start_s, key=stream.second), bisect_left(indexes, end_s, key=stream.second)
        delays = self.config.indexing_delays
        filtered = now_ms is not None and now_ms < end_s * 1000 + delays.max_delay_ms + delays.max_lag_ms + 1000
        salt_ = salt(self.config.seed, f"blocks.{stream.etype.name}")
        for block in range(max(lo // SHUFFLE_BLOCK, from_block), (hi - 1) // SHUFFLE_BLOCK + 1 if hi > lo else 0):
            base = block * SHUFFLE_BLOCK
            order = [base + k for k in pick(self._permutations, mix64(salt_ ^ block)) if lo <= base + k < hi]
            if filtered:
                order = [i for i in order if stream.visible_from_ms(i) <= now_ms]
            if order:
                yield order

    def export_lines(self, data_type: str, indexes: list[int]) -> list[str]:
        """Serialized records (without newline) of ``data_type`` at these indexes, in that order."""
        return self._stream(data_type).lines(indexes)

    def export_records(self, data_type: str, start, end, *, now=None) -> Iterator[dict]:
        """Records ``GET export/data.json`` serves for ``[start, end)``, in served order.

        ``start``/``end`` take a ``datetime``, an ISO string, an Iterable query date or epoch seconds,
        at whole seconds. Without ``now`` nothing is hidden; pass the server's clock (a ``datetime``
        or epoch seconds, e.g. ``emulator.faults.now_ms() / 1000``) to see what late indexing hides.
        """
        now_ms = None if now is None else to_epoch_ms(now)
        for block in self.export_blocks(data_type, to_epoch_s(start), to_epoch_s(end), now_ms):
            yield from map(orjson.loads, block)

    def indexed_records(self, data_type: str, start, end) -> Iterator[tuple[dict, int, int, int]]:
        """``(record, cursor_ms, indexed_ms, visible_from_ms)`` of every record in ``[start, end)``,
        in record order: each record with its cursor, when Iterable indexed it and when exports
        first show it (epoch ms)."""
        stream = self._stream(data_type)
        indexes = range(stream.count)
        lo = bisect_left(indexes, to_epoch_s(start), key=stream.second)
        hi = bisect_left(indexes, to_epoch_s(end), key=stream.second)
        for first in range(lo, hi, SHUFFLE_BLOCK):
            block = list(range(first, min(hi, first + SHUFFLE_BLOCK)))
            for i, line in zip(block, stream.lines(block)):
                yield orjson.loads(line), stream.cursor_ms(i)[0], stream.indexed_ms(i), stream.visible_from_ms(i)

    def all_export_records(self, data_type: str) -> Iterator[dict]:
        """Every record of ``data_type``, as served by one window spanning the whole data range."""
        return self.export_records(data_type, self.config.start_ms // 1000, -(-self.config.end_ms // 1000))

    def export_count(self, data_type: str, start, end) -> int:
        """How many records fall in ``[start, end)``, without generating them."""
        stream = self._stream(data_type)
        indexes = range(stream.count)
        first = bisect_left(indexes, to_epoch_s(start), key=stream.second)
        return bisect_left(indexes, to_epoch_s(end), key=stream.second) - first

    def available_type(self, name: str) -> str | None:
        """The canonical name of a ``dataTypeName`` the project has, ``None`` if it is unknown or
        not in the project's plan (``EmulatorConfig.unavailable_data_types``)."""
        data_type = canonical_type(name)
        return None if data_type in self.config.unavailable_data_types else data_type

    def _stream(self, data_type: str) -> ExportStream:
        name = canonical_type(data_type)
        if name is None:
            raise ValueError(f"Invalid dataTypeName {data_type}")
        return self._streams[name]

    # Users and lists.

    def users(self) -> list[dict]:
        """Every user profile, in user order (the ``user`` export serves the same records, shuffled).
        For tests of small projects: the list holds them all."""
        stream = self._streams["user"]
        return [orjson.loads(line) for line in stream.lines(list(range(stream.count)))]

    def user_fields(self) -> dict[str, str]:
        """What ``users/getFields`` lists: field name (dotted for sub-fields) -> Iterable type."""
        return self.catalog.users.fields()

    def lists(self) -> list[dict]:
        return copy.deepcopy(self.catalog.lists)

    def list_members(self, list_id: int) -> list[str] | None:
        """Emails ``lists/getUsers`` returns for the list, ``None`` for an unknown list."""
        members = self.iter_list_members(list_id)
        return None if members is None else list(members)

    def iter_list_members(self, list_id: int) -> Iterator[str] | None:
        """``list_members``, generated as they are read (what the server streams)."""
        return self.catalog.users.members(list_id) if self.catalog.list_by_id(list_id) else None

    def user_events(self, identifier: str, include_custom_events: bool = False) -> list[dict]:
        """``export/userEvents`` records of the user with this email or userId, oldest first.

        Custom events are left out unless asked for, as Iterable's ``includeCustomEvents`` defaults to false.
        """
        user = self.catalog.users.index_of(identifier)
        if user is None:
            return []
        config, fmt = self.config, self._context.fmt
        seed_hash = mix64(self._user_events_salt ^ user)
        events = []
        for j in range(2 + seed_hash % 7):
            h = mix64(seed_hash ^ (j + 1) << 8)
            etype = EVENT_TYPES[pick(USER_EVENT_TYPES, h >> 3)]
            if etype.name == "customEvent" and not include_custom_events:
                continue
            if etype.name in config.unavailable_data_types:
                continue
            ms = config.start_ms + (h >> 11) % config.span_ms // 1000 * 1000
            indexed = fmt.event(ms + (h >> 40) % 400 * 1000)
            internal = {"documentCreatedAt": indexed, "documentUpdatedAt": indexed}
            is_message = etype.kind in MESSAGE_KINDS
            message_id = self._context.index_hash.hex_id(h, self._user_events_key) if is_message else None
            shape, lead = self._context.shape(etype), f'"_type":"{etype.name}",'
            line = self._context.line(shape, h, ms, False, mix64(h), message_id, user, lead, internal)
            events.append(orjson.loads(line))
        return sorted(events, key=lambda e: e["createdAt"])

    # Catalogue resources (copies: a test may edit what it gets back).

    def campaigns(self) -> list[dict]:
        return copy.deepcopy(self.catalog.campaigns)

    def campaign_metrics_rows(self, campaign_ids: list[int], now=None) -> list[dict[str, str]]:
        """Rows of the metrics CSV for these ids, as ``csv.DictReader`` reads them (empty cell = ""),
        at ``now`` (the server's clock: a ``datetime`` or epoch seconds; default the wall clock)."""
        return self._metrics.rows(campaign_ids, to_epoch_ms(time.time() if now is None else now))

    def campaign_metrics_csv(self, campaign_ids: list[int], now=None) -> str:
        return self._metrics.csv(campaign_ids, to_epoch_ms(time.time() if now is None else now))

    def experiments(self) -> list[dict]:
        """Every experiment: ``id``, ``campaignId``, ``templateIds`` (control first) and its details."""
        return copy.deepcopy(self._experiments.experiments)

    def experiment_metrics_rows(self, campaign_ids: list[int] | None = None,
                                experiment_ids: list[int] | None = None) -> list[dict[str, str]]:
        """Rows of the ``experiments/metrics`` CSV, as ``csv.DictReader`` reads them (see ``Experiments.rows``)."""
        return self._experiments.rows(campaign_ids, experiment_ids)

    def experiment_metrics_csv(self, campaign_ids: list[int] | None = None,
                               experiment_ids: list[int] | None = None) -> str:
        return self._experiments.csv(campaign_ids, experiment_ids)

    def email_template(self, template_id: int) -> dict | None:
        """What ``templates/email/get`` serves for this id; ``None`` for unknown or non-email templates."""
        return self.catalog.email_template(template_id)

    def templates(self, template_type: str | None = None, medium: str | None = None,
                  start=None, end=None) -> list[dict]:
        """Templates matching the ``GET templates`` filters, ``createdAt`` in ``[start, end)``."""
        start_ms = None if start is None else to_epoch_s(start) * 1000
        end_ms = None if end is None else to_epoch_s(end) * 1000
        return self.catalog.templates(template_type, medium, start_ms, end_ms)

    def edit_template(self, template_id: int, updated_at_ms: int) -> None:
        """Move a template's ``updatedAt``, as if someone edited it; ``KeyError`` if unknown."""
        self.catalog.edit_template(template_id, updated_at_ms)

    def channels(self) -> list[dict]:
        return copy.deepcopy(self.catalog.channels)

    def message_types(self) -> list[dict]:
        return copy.deepcopy(self.catalog.message_types)

    def metadata_tables(self) -> list[str]:
        return list(METADATA_TABLES)
