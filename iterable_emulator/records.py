"""Export and userEvents records: the fields each event kind carries, and the lazily computed
stream of every export data type."""

import functools
from collections.abc import Callable
from dataclasses import dataclass

import orjson

from .catalog import Catalog
from .config import EmulatorConfig
from .event_types import SEND_TYPE_BY_MEDIUM, EventType
from .randomness import IndexHash, pick
from .timefmt import MINUTES, TWO_DIGITS, TimestampFormatter

USER_AGENTS = [
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0", "Other"),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko)", "iPhone"),
    ("Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)", "Gmail"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)", "Mac"),
]
GEO = [("Kyiv", "30", "Ukraine"), ("Berlin", "BE", "Germany"), ("Austin", "TX", "United States"),
       (None, None, None), ("São Paulo", "SP", "Brazil")]
URLS = ["https://shop.example.com/spring", "https://example.com/blog/post?id=42&utm_source=iterable",
        "https://example.com/account"]
PLATFORMS = ["APNS", "GCM", "Web"]
SKIP_REASONS = ["FrequencyCapped", "DuplicateMarketingMessage", "MessageTypeUnsubscribed", "ListUnsubscribed"]
BOUNCES = [("HardBounce", "5.1.1"), ("SoftBounce", "4.2.2"), ("MailBlock", "5.7.1")]
UNSUB_SOURCES = ["EmailLink", "HostedUnsubscribePage", "Complaint", "Manual"]
CUSTOM_EVENTS = ["viewedProduct", "addedToCart", "appLaunched", "completedOnboarding"]
PRODUCTS = [("sku-1", "Trail shoes", 89.99), ("sku-2", "Rain jacket", 129.5), ("sku-3", "Socks", 9.0)]
INBOUND_TEXTS = ["STOP", "YES", "HELP", "Thanks! 👍"]
MESSAGE_BOUND_KINDS = {"open", "click", "bounce", "complaint", "unsubscribe", "uninstall", "close", "delete",
                       "delivery", "recall", "impression", "usage"}
MESSAGE_KINDS = MESSAGE_BOUND_KINDS | {"send", "skip"}
TWIN_KINDS = {"open", "click"}
# How many users' identifier fragments ``RecordContext`` keeps (about 10 MB at most).
USER_FIELDS_CACHED = 1 << 16


def _json(value) -> str:
    return orjson.dumps(value).decode()


def _fragment(fields: dict) -> str:
    """``fields`` as JSON members to append after others: ``,"a":1,"b":2``."""
    return "," + _json(fields)[1:-1] if fields else ""


def _fragmenting(build: Callable[..., dict]) -> Callable[..., str]:
    return lambda *args: _fragment(build(*args))


@dataclass(frozen=True, slots=True)
class RecordShape:
    """What ``RecordContext.line`` needs to know about one event type, resolved once per type.

    Attributes:
        etype: the event type.
        fields: the kind's field builder, ``(etype, h, hm, user, created) -> JSON fragment``.
        heads: pre-serialized campaign and message type fields of the medium, one per pair; a
            message with hash ``hm`` has ``heads[(hm >> 20) % len(heads)]``.
    """

    etype: EventType
    fields: Callable[..., str]
    heads: list[str]


class RecordContext:
    """What records of every type share: users, campaigns and message types per medium, formatting.

    ``line`` serializes one record from hashes only, so the same code serves export lines (hashes
    of the record index) and userEvents (hashes of the user and event number). Users (the
    ``USER_FIELDS_CACHED`` most recently used) and the (campaign, message type) pairs of each medium
    are pre-serialized JSON fragments, and the fields of the hottest shape (email sends) depend on
    12 bits of the hash and are formatted once per value: building and dumping a dict per record
    would cut export speed by half. Server threads share these caches; filling a slot twice writes
    the same value, so it needs no lock.
    """

    def __init__(self, config: EmulatorConfig, catalog: Catalog, index_hash: IndexHash):
        self.fmt = TimestampFormatter()
        self._dates = self.fmt.dates
        self.users = catalog.users
        self.index_hash = index_hash
        self._bus_ids = index_hash.hex_low
        self._email_send_fields: list[str | None] = [None] * 4096
        self._user_count = len(catalog.users)
        # Built on first use and kept in a bounded cache: millions of users cost no memory.
        self._user_fields = functools.lru_cache(maxsize=USER_FIELDS_CACHED)(self._user_fields_of)
        self._heads: dict[str, list[str]] = {}
        self._head_channels: dict[str, list[int]] = {}
        for medium in SEND_TYPE_BY_MEDIUM:
            campaigns = [c for c in catalog.campaigns if c["messageMedium"] == medium] or catalog.campaigns
            pairs = [(c, mt) for c in campaigns for mt in catalog.message_types_of(medium)]
            self._heads[medium] = [
                f'{self._campaign_fields(c)},"messageTypeId":{mt["id"]},"channelId":{mt["channelId"]}'
                for c, mt in pairs
            ]
            self._head_channels[medium] = [mt["channelId"] for _, mt in pairs]
        self._email_campaigns = [c for c in catalog.campaigns if c["messageMedium"] == "Email"] or catalog.campaigns
        dict_shapes = {
            "skip": self._skip, "open": self._open, "click": self._click, "bounce": self._bounce,
            "complaint": self._complaint, "unsubscribe": self._unsubscribe, "subscribe": self._subscribe,
            "uninstall": self._uninstall, "close": self._close, "delete": self._delete, "delivery": self._delivery,
            "recall": self._recall, "session": self._session, "impression": self._impression,
            "received": self._received, "usage": self._usage, "purchase": self._purchase, "custom": self._custom,
            "journeyExit": self._journey_exit,
        }
        self._shapes = {kind: _fragmenting(build) for kind, build in dict_shapes.items()}

    def _user_fields_of(self, user: int) -> str:
        """The user's identifiers as a JSON fragment: ``"email":"...","userId":"..."``."""
        email, user_id = self.users.email(user), self.users.user_id(user)
        return f'"email":{_json(email)}' + (f',"userId":{_json(user_id)}' if user_id else "")

    @staticmethod
    def _campaign_fields(campaign: dict) -> str:
        template_id = campaign.get("templateId")
        content_id = 12_000_000 + (template_id or campaign["id"]) % 1_000_000
        template = f',"templateId":{template_id}' if template_id else ""
        return f'"campaignId":{campaign["id"]}{template},"contentId":{content_id}'

    def shape(self, etype: EventType) -> RecordShape:
        if etype.kind == "send":
            fields = {"Email": self._email_send, "SMS": self._phone_send, "WhatsApp": self._phone_send,
                      "RCS": self._phone_send}.get(etype.medium, self._app_send)
        else:
            fields = self._shapes[etype.kind]
        return RecordShape(etype, fields, self._heads.get(etype.medium, []))

    def line(self, shape: RecordShape, h: int, ms: int, fractional: bool, hm: int, message_id: str | None,
             user: int | None = None, lead: str = "", internal: dict | None = None,
             indexed_ms: int | None = None) -> str:
        """One serialized record of ``shape.etype`` at ``ms`` with content hash ``h``.

        ``hm`` and ``message_id`` are the hash and id of the message the event belongs to (its own
        for sends, the send it reacts to otherwise, ``None`` for events outside messages), which fix
        user, campaign and messageId; ``user`` forces the user instead (userEvents). ``lead`` is raw
        JSON put first (userEvents' ``_type``); ``internal`` is the record's ``itblInternal`` object
        as given, else ``indexed_ms`` (if not ``None``) stamps it as indexed then: a nested
        ``itblInternal`` object, or in one record of eight the dotted keys Iterable's user exports
        use (whether event exports nest them is not documented, so both forms are served).
        """
        # TimestampFormatter.event, inlined: a call per record costs a tenth of export speed.
        day, rest = divmod(ms, 86_400_000)
        date = self._dates.get(day) or self.fmt.date(day)
        if fractional:
            created = f"{date} {MINUTES[rest // 60_000]}:{TWO_DIGITS[rest // 1000 % 60]}.{rest % 1000:03d} +00:00"
        else:
            created = f"{date} {MINUTES[rest // 60_000]}:{TWO_DIGITS[rest // 1000 % 60]} +00:00"
        if user is None:
            user = hm % self._user_count
        fields = shape.fields(shape.etype, h, hm, user, created)
        if internal is not None:
            fields += ',"itblInternal":' + _json(internal)
        elif indexed_ms is not None:
            stamp = self.fmt.event(indexed_ms)
            if (h >> 8) & 7 == 0:
                fields += f',"itblInternal.documentCreatedAt":"{stamp}","itblInternal.documentUpdatedAt":"{stamp}"'
            else:
                fields += f',"itblInternal":{{"documentCreatedAt":"{stamp}","documentUpdatedAt":"{stamp}"}}'
        if message_id is None:
            return f'{{{lead}"createdAt":"{created}",{self._user_fields(user)}{fields}}}'
        heads = shape.heads
        return (f'{{{lead}"createdAt":"{created}",{self._user_fields(user)},{heads[(hm >> 20) % len(heads)]},'
                f'"messageId":"{message_id}"{fields}}}')

    # Kind-specific fields. Each takes (etype, h, hm, user, created) and returns the fields to
    # append after the common ones: a dict (turned into a fragment by ``_fragmenting``), or, for the
    # hot ``send`` shape, the JSON fragment itself.

    def _phone_send(self, etype, h, hm, user, created):
        return f',"toPhoneNumber":"{self.users.phone(user)}","fromPhoneNumber":"+15550001111"'

    def _app_send(self, etype, h, hm, user, created):
        return f',"platform":"{pick(PLATFORMS, h >> 5)}"'

    def _email_send(self, etype, h, hm, user, created):
        # Email sends are the biggest exports, so their fields depend on 12 bits of the hash only
        # and are formatted once per value (a small cache stays in the CPU's).
        variant = (h >> 24) & 0xFFF
        fields = self._email_send_fields[variant]
        if fields is None:
            fields = (f',"messageBusId":"0100{self._bus_ids[variant]}-000000","catalogCollectionCount":0,'
                      f'"catalogLookupCount":{variant % 3},"productRecommendationCount":0')
            if variant >> 8 == 3:
                data = f'{{"orderId":"ord-{variant:05d}","amount":{variant % 10000 / 100}}}'
                fields += f',"transactionalData":{_json(data)}'
            self._email_send_fields[variant] = fields
        return fields

    def _skip(self, etype, h, hm, user, created):
        return {"reason": pick(SKIP_REASONS, h >> 5)}

    @staticmethod
    def _client(etype, h, fields):
        fields["ip"] = f"{(h >> 8) % 223 + 1}.{(h >> 16) & 255}.{(h >> 24) & 255}.{(h >> 32) & 255}"
        fields["userAgent"], fields["userAgentDevice"] = pick(USER_AGENTS, h >> 40)
        if etype.medium == "Email":
            fields["city"], fields["region"], fields["country"] = pick(GEO, h >> 44)
        return fields

    def _open(self, etype, h, hm, user, created):
        return self._client(etype, h, {})

    def _click(self, etype, h, hm, user, created):
        if etype.name == "hostedUnsubscribeClick":
            fields = {"url": f"https://links.example.com/unsubscribe/{hm & 0xFFFFFFFFFFFF:012x}"}
        else:
            fields = {"url": pick(URLS, h >> 48), "hrefIndex": (h >> 52) % 4}
        return self._client(etype, h, fields)

    def _bounce(self, etype, h, hm, user, created):
        state, status = pick(BOUNCES, h >> 5)
        return {"recipientState": state, "status": status}

    def _complaint(self, etype, h, hm, user, created):
        return {"recipientState": "Complaint", "status": "5.7.1"}

    def _unsubscribe(self, etype, h, hm, user, created):
        channel_id = pick(self._head_channels[etype.medium], hm >> 20)  # the channel of the message's head
        fields = {"unsubSource": pick(UNSUB_SOURCES, h >> 5),
                  "emailListIds": self.users.list_ids_of(user)[:1] if h & 16 else [],
                  "channelIds": [channel_id] if h & 32 else []}
        if fields["unsubSource"] == "Complaint":
            fields["recipientState"], fields["status"] = "Complaint", "5.7.1"
        elif h & 64:
            fields["recipientState"], fields["status"] = pick(BOUNCES, h >> 7)
        return fields

    def _subscribe(self, etype, h, hm, user, created):
        first, last = self.users.names(user)
        return {"firstName": first, "lastName": last, "profileUpdatedAt": created[:19] + " +00:00",
                "signupSource": pick(["ListAPI", "WebForm", "Import"], h >> 5),
                "emailListIds": self.users.list_ids_of(user), "channelIds": [], "messageTypeIds": []}

    def _uninstall(self, etype, h, hm, user, created):
        return {"platform": pick(PLATFORMS[:2], h >> 5), "appPackageName": "com.example.app"}

    @staticmethod
    def _message_context(h, fields):
        fields["messageContext"] = {"saveToInbox": bool(h & 16), "silentInbox": False,
                                    "location": "inbox" if h & 32 else "in-app"}
        return fields

    def _close(self, etype, h, hm, user, created):
        return self._message_context(h, {"closeAction": pick(["link", "back", "delete"], h >> 5)})

    def _delete(self, etype, h, hm, user, created):
        return self._message_context(h, {"deleteAction": pick(["delete-button", "inbox-swipe"], h >> 5)})

    def _delivery(self, etype, h, hm, user, created):
        return self._message_context(h, {})

    def _recall(self, etype, h, hm, user, created):
        return {"reason": "Recalled"}

    def _session(self, etype, h, hm, user, created):
        return {"sessionId": f"{h:016x}", "sessionStartTime": created, "startTotalMessageCount": (h >> 8) % 10,
                "endTotalMessageCount": (h >> 12) % 10, "sessionDurationMs": (h >> 16) % 600_000,
                "deviceInfo": {"platform": pick(PLATFORMS[:2], h >> 36), "appPackageName": "com.example.app",
                               "deviceId": f"dev-{(h >> 40) % 100000:05d}"}}

    def _impression(self, etype, h, hm, user, created):
        return {"displayCount": 1 + (h >> 5) % 4, "displayDuration": (h >> 9) % 60_000 / 1000}

    def _received(self, etype, h, hm, user, created):
        return {"fromPhoneNumber": self.users.phone(user), "toPhoneNumber": "+15550001111",
                "smsMessage": pick(INBOUND_TEXTS, h >> 5)}

    def _usage(self, etype, h, hm, user, created):
        segments = 1 + (h >> 5) % 3
        return {"segmentCount": segments, "creditCost": round(segments * 0.0075, 4)}

    def _purchase(self, etype, h, hm, user, created):
        first, items = (h >> 8) % len(PRODUCTS), []
        for k in range(1 + (h >> 5) % 3):
            sku, name, price = PRODUCTS[(first + k) % len(PRODUCTS)]
            items.append({"id": sku, "sku": sku, "name": name, "price": price, "quantity": 1 + k,
                          "categories": ["outdoor"] if price > 50 else []})
        fields = {"id": f"order-{h:016x}", "items": items,
                  "total": round(sum(i["price"] * i["quantity"] for i in items), 2)}
        if h & 64:
            campaign = pick(self._email_campaigns, h >> 20)
            fields["campaignId"] = campaign["id"]
            if "templateId" in campaign:
                fields["templateId"] = campaign["templateId"]
        return fields

    def _custom(self, etype, h, hm, user, created):
        data = {"sessionId": f"s-{h:016x}", "price": (h >> 8) % 10_000 / 100, "isMobile": bool(h & 128),
                "tags": ["a", "b"][: (h >> 20) % 3], "context": {"screen": "home", "depth": (h >> 24) % 5}}
        fields = {"eventName": pick(CUSTOM_EVENTS, h >> 5), "dataFields": data}
        if h & 256:  # a custom event updated after it was tracked
            fields["eventUpdatedAt"] = created[:19] + " +00:00"
        return fields

    def _journey_exit(self, etype, h, hm, user, created):
        return {"workflowId": 60000 + (h >> 5) % 1000, "workflowName": f"Onboarding journey {(h >> 5) % 1000}",
                "exitReason": pick(["Completed", "ExitRuleMatched", "Removed"], h >> 20)}


class ExportStream:
    """The ``count`` records of one export data type, each computable on its own from its index.

    Record ``i`` sits at ``start + i * span // count`` (ms) plus a jitter smaller than that spacing,
    so cursors never decrease with ``i``, the indexes of any time window follow from a binary
    search, and a window is generated lazily. Non-fractional records are truncated to the second.
    Every eighth open/click (``i % 8 == 1``) is a twin of record ``i - 1``: same message and
    ``createdAt``, another client, as when mail proxies open a message twice in one second.
    Message events refer to the send of their medium at about the same position in time.
    """

    def __init__(self, config: EmulatorConfig, context: RecordContext, etype: EventType):
        self.etype = etype
        self.count = config.count(etype.name)
        self._context = context
        self._shape = None if etype.kind == "user" else context.shape(etype)
        self._hash = context.index_hash
        self._key = self._hash.key(etype.name)
        self._delay_key = self._hash.key(f"{etype.name}.indexing")
        self._delays, self._stamps = config.indexing_delays, config.indexing_stamps
        self._start, self._span = config.start_ms, config.span_ms
        self._jitter = max(1, config.span_ms // max(1, self.count))
        self._twins = etype.kind in TWIN_KINDS
        self._fraction = 0 if etype.kind == "user" else int(config.fractional_seconds_ratio * 65536)
        send_type = SEND_TYPE_BY_MEDIUM.get(etype.medium)
        self._bound = etype.kind in MESSAGE_BOUND_KINDS and send_type is not None
        self._own_message = etype.kind in MESSAGE_KINDS and not self._bound
        self._send_key = self._hash.key(send_type) if self._bound else 0
        self._sends = max(1, config.count(send_type)) if self._bound else 1

    def _time_index(self, i: int) -> int:
        return i - 1 if self._twins and i % 8 == 1 else i

    def _slot(self, b: int, hb: int) -> int:
        return self._start + b * self._span // self.count + (hb >> 16) % self._jitter

    def second(self, i: int) -> int:
        """Epoch second of record ``i``'s cursor; non-decreasing in ``i``."""
        b = self._time_index(i)
        return self._slot(b, self._hash.word(b, self._key)) // 1000

    def cursor_ms(self, i: int) -> tuple[int, bool]:
        """Epoch ms of record ``i``'s cursor and whether it is shown with milliseconds."""
        b = self._time_index(i)
        hb = self._hash.word(b, self._key)
        ms = self._slot(b, hb)
        fractional = (hb & 0xFFFF) < self._fraction
        return (ms if fractional else ms - ms % 1000), fractional

    def indexed_ms(self, i: int) -> int:
        """When Iterable indexed record ``i`` (epoch ms, whole seconds): its ``documentCreatedAt``."""
        return (self.cursor_ms(i)[0] + self._delays.delay_ms(self._hash.word(i, self._delay_key))) // 1000 * 1000

    def visible_from_ms(self, i: int) -> int:
        """From when exports show record ``i``: its indexing time plus a lag of up to a minute."""
        return self.indexed_ms(i) + self._delays.lag_ms(self._hash.word(i, self._delay_key))

    def lines(self, indexes: list[int]) -> list[str]:
        """Serialized records (without newline) for these indexes, in the given order.

        The loop inlines ``IndexHash.word`` and ``cursor_ms``: this is the export hot path.
        """
        if self.etype.kind == "user":
            users, fmt, stamps = self._context.users, self._context.fmt, self._stamps
            return [_json(users.profile(i, self.cursor_ms(i)[0], fmt, self.indexed_ms(i) if stamps else None))
                    for i in indexes]
        line, shape, key, fraction, twins = self._context.line, self._shape, self._key, self._fraction, self._twins
        low, high, hex_low, hex_high = self._hash.low, self._hash.high, self._hash.hex_low, self._hash.hex_high
        bound, own_message, send_key, sends = self._bound, self._own_message, self._send_key, self._sends
        start, span, count, jitter = self._start, self._span, self.count, self._jitter
        delay_key, delay_ms, stamps = self._delay_key, self._delays.delay_ms, self._stamps
        indexed = None
        out = []
        for i in indexes:
            x = i ^ key
            lo = x & 0xFFFF
            hi = (x >> 16) ^ lo
            h = low[lo] ^ high[hi]
            if twins and i % 8 == 1:
                b, xb = i - 1, (i - 1) ^ key
                hb = low[xb & 0xFFFF] ^ high[(xb >> 16) ^ (xb & 0xFFFF)]
            else:
                b, hb = i, h
            ms = start + b * span // count + (hb >> 16) % jitter
            fractional = (hb & 0xFFFF) < fraction
            if not fractional:
                ms -= ms % 1000
            if stamps:
                xd = i ^ delay_key
                indexed = (ms + delay_ms(low[xd & 0xFFFF] ^ high[(xd >> 16) ^ (xd & 0xFFFF)])) // 1000 * 1000
            if bound:
                y = min(sends - 1, b * sends // count) ^ send_key
                out.append(line(shape, h, ms, fractional, low[y & 0xFFFF] ^ high[(y >> 16) ^ (y & 0xFFFF)],
                                hex_low[y & 0xFFFF] + hex_high[(y >> 16) ^ (y & 0xFFFF)], indexed_ms=indexed))
            elif own_message:
                out.append(line(shape, h, ms, fractional, h, hex_low[lo] + hex_high[hi], indexed_ms=indexed))
            else:
                out.append(line(shape, h, ms, fractional, h, None, indexed_ms=indexed))
        return out
