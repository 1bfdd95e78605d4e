"""What the emulator's project contains: sizes, time span and seed of the generated data."""

from dataclasses import dataclass, field
from datetime import datetime

from .event_types import canonical_type
from .timefmt import to_epoch_s


@dataclass(frozen=True)
class EmulatorConfig:
    """Shape of the emulated Iterable project. Everything served is a pure function of this.

    Attributes:
        seed: varies every generated value; the same seed always gives the same bytes.
        start, end: export records (and template/list/campaign creation times) are spread over
            ``[start, end)``; a ``datetime`` (naive means UTC) or an ISO string.
        records_per_type: export records per event type, an int for all types or a dict
            ``dataTypeName -> count`` (any letter case; types missing from the dict get
            ``default_records_per_type``).
            The ``user`` export always has ``users`` records.
        users: user profiles; events, list memberships and ``userEvents`` refer to them.
        lists, campaigns: how many of each.
        templates_per_combination: templates per (templateType, messageMedium) pair (4 x 4 pairs).
        max_page_size: cap on ``pageSize`` for campaigns and templates (Iterable's is 1000); lower it
            to force several pages out of few items.
        fractional_seconds_ratio: share of event records whose ``createdAt`` has milliseconds.
        api_key: the only key the server accepts.
    """

    seed: int = 1
    start: datetime | str = "2024-01-01T00:00:00Z"
    end: datetime | str = "2024-03-01T00:00:00Z"
    records_per_type: int | dict[str, int] = 50
    default_records_per_type: int = 50
    users: int = 40
    lists: int = 3
    campaigns: int = 25
    templates_per_combination: int = 2
    max_page_size: int = 1000
    fractional_seconds_ratio: float = 0.1
    api_key: str = "emulator-api-key"
    start_ms: int = field(init=False, repr=False)
    end_ms: int = field(init=False, repr=False)

    def __post_init__(self):
        start_ms, end_ms = to_epoch_s(self.start) * 1000, to_epoch_s(self.end) * 1000
        if end_ms <= start_ms:
            raise ValueError("end must be after start")
        if self.lists < 1 or self.campaigns < 1 or self.users < self.lists:
            raise ValueError("lists and campaigns must be at least 1, and users at least lists (no empty list)")
        if isinstance(self.records_per_type, dict):
            counts = {canonical_type(name): count for name, count in self.records_per_type.items()}
            if None in counts:
                raise ValueError(f"Unknown data types in records_per_type: {sorted(self.records_per_type)}")
            object.__setattr__(self, "records_per_type", counts)
        object.__setattr__(self, "start_ms", start_ms)
        object.__setattr__(self, "end_ms", end_ms)

    def count(self, data_type: str) -> int:
        """How many export records the canonical ``data_type`` has."""
        if data_type == "user":
            return self.users
        if isinstance(self.records_per_type, int):
            return self.records_per_type
        return self.records_per_type.get(data_type, self.default_records_per_type)

    @property
    def span_ms(self) -> int:
        return self.end_ms - self.start_ms
