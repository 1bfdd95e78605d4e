"""What the emulator's project contains: sizes, time span and seed of the generated data."""

from dataclasses import dataclass, field
from datetime import datetime

from .event_types import canonical_type
from .indexing import IndexingDelays
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
        users: user profiles; events, list memberships and ``userEvents`` refer to them. Users are
            generated on demand: millions cost no memory.
        lists, campaigns: how many of each.
        listed_users: if set, only the first ``listed_users`` users (in user order) are members of
            lists, by the same rule; the others have no ``emailListIds``. With ``lists=1`` the one
            list holds exactly these users (a benchmark's big list). ``None``: every user is listed.
        templates_per_combination: templates per (templateType, messageMedium) pair (4 x 4 pairs).
        max_page_size: cap on ``pageSize`` for campaigns and templates (Iterable's is 1000); lower it
            to force several pages out of few items.
        fractional_seconds_ratio: share of event records whose ``createdAt`` has milliseconds.
        api_key: the only key the server accepts.
        unavailable_data_types: the project's plan lacks these data types (any spelling), e.g.
            ``{"whatsAppSend"}``: a sync export or an export job of one answers 400 ``BadParams``
            exactly as for an unknown ``dataTypeName`` (what Iterable answers for a type a project
            does not have is not documented; the same answer is the one a connector cannot tell
            apart, so it must handle it), and ``userEvents`` leaves such events out. The data is
            still generated: ``EmulatorData.export_records`` says what the project would hold.
        unlisted_user_field_every: if set, every K-th user (index ``% K == K - 1``) carries
            ``users.UNLISTED_USER_FIELD``, a field ``users/getFields`` does not list (one added
            after the connector read the fields).
        user_fields_of_every_type: users also carry a ``nested`` field (``devices``) and a
            ``geo_location`` one (``lastKnownLocation``), so that ``users/getFields`` lists every
            Iterable field type.
        sending_campaigns: if set, the newest ``sending_campaigns`` campaigns are ``Running`` and
            every other one ``Finished`` (a large organisation's campaign history, for benchmarks);
            ``None``: the states of a small project, a quarter of them sending.
        indexing_delays: how late Iterable indexes each export record after its cursor (see
            ``indexing.py``); by default with a heavy tail, 2% of records up to a day late. A record
            is stamped with its indexing time and shows in exports from then on, up to a minute later.
        indexing_stamps: export records carry ``itblInternal.documentCreatedAt`` and
            ``documentUpdatedAt`` (users: ``itblInternal.documentUpdatedAt``); ``False`` serves them
            without any indexing stamp, as a data type that lacks them would be (the delays still apply).
        experiment_metrics_header: ``"readable"`` (``Campaign Id,Experiment Id,...``, Iterable's
            human-readable headers, as ``campaigns/metrics`` has them) or ``"camelCase"``
            (``campaignId,experimentId,...``, the names Matatika's tap derives from them itself).
    """

    seed: int = 1
    start: datetime | str = "2024-01-01T00:00:00Z"
    end: datetime | str = "2024-03-01T00:00:00Z"
    records_per_type: int | dict[str, int] = 50
    default_records_per_type: int = 50
    users: int = 40
    lists: int = 3
    listed_users: int | None = None
    campaigns: int = 25
    templates_per_combination: int = 2
    max_page_size: int = 1000
    fractional_seconds_ratio: float = 0.1
    api_key: str = "emulator-api-key"
    unavailable_data_types: frozenset[str] = frozenset()
    unlisted_user_field_every: int | None = None
    user_fields_of_every_type: bool = True
    experiment_metrics_header: str = "readable"
    sending_campaigns: int | None = None
    indexing_delays: IndexingDelays = IndexingDelays()
    indexing_stamps: bool = True
    start_ms: int = field(init=False, repr=False)
    end_ms: int = field(init=False, repr=False)

    def __post_init__(self):
        start_ms, end_ms = to_epoch_s(self.start) * 1000, to_epoch_s(self.end) * 1000
        if end_ms <= start_ms:
            raise ValueError("end must be after start")
        if self.lists < 1 or self.campaigns < 1 or self.users < self.lists:
            raise ValueError("lists and campaigns must be at least 1, and users at least lists (no empty list)")
        if self.listed_users is not None and not self.lists <= self.listed_users <= self.users:
            raise ValueError("listed_users must be between lists (no empty list) and users")
        if isinstance(self.records_per_type, dict):
            counts = {canonical_type(name): count for name, count in self.records_per_type.items()}
            if None in counts:
                raise ValueError(f"Unknown data types in records_per_type: {sorted(self.records_per_type)}")
            object.__setattr__(self, "records_per_type", counts)
        unavailable = {canonical_type(name) for name in self.unavailable_data_types}
        if None in unavailable:
            raise ValueError(f"Unknown data types in unavailable_data_types: {sorted(self.unavailable_data_types)}")
        object.__setattr__(self, "unavailable_data_types", frozenset(unavailable))
        if self.experiment_metrics_header not in ("camelCase", "readable"):
            raise ValueError("experiment_metrics_header must be 'camelCase' or 'readable'")
        if self.unlisted_user_field_every is not None and self.unlisted_user_field_every < 1:
            raise ValueError("unlisted_user_field_every must be at least 1")
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
