"""User profiles: identities, list memberships and the records of the ``user`` export."""

import re
from collections.abc import Iterator

from .randomness import mix64, pick, salt
from .timefmt import TimestampFormatter

FIRST_NAMES = ["Alice", "Bob", "Carol", "Dmytro", "Eve", "Fatima", "Grace", "Hiro", "Ines", "José", "Kai", "Lena"]
LAST_NAMES = ["Smith", "Kovalenko", "Garcia", "Nakamura", "Okafor", "Müller", "Rossi", "Singh", "Dubois", "Lee"]
DOMAINS = ["example.com", "example.org", "mail.example.net", "example.co.uk"]
CITIES = [("Kyiv", "Ukraine"), ("Berlin", "Germany"), ("Austin", "United States"), ("São Paulo", "Brazil")]
SIGNUP_SOURCES = ["Import", "API", "ListAPI", "WebForm"]
INTERESTS = ["running", "cooking", "travel", "jazz", "gardening", "chess"]
CHANNEL_PREFERENCES = ["email", "sms", "push"]
VIP_TIERS = ["silver", "gold", "platinum"]
# One user in NESTED_OBJECTS_EVERY keeps ``address`` as a JSON object: Iterable's export flattens
# nested objects into dotted keys, but whether it always does is not documented.
NESTED_OBJECTS_EVERY = 5
_DAY_MS = 86_400_000

# ``users/getFields`` types of what ``Users.profile`` serves. Iterable names a field's type after its
# elements for arrays (``emailListIds`` is ``long``), calls an object ``object`` and lists its
# sub-fields as dotted names, and calls an array of objects ``nested``.
STANDARD_USER_FIELDS = {
    "email": "string", "userId": "string", "signupDate": "date", "signupSource": "string",
    "profileUpdatedAt": "date", "emailListIds": "long", "unsubscribedChannelIds": "long",
    "unsubscribedMessageTypeIds": "long", "phoneNumber": "string",
    "itblInternal": "object", "itblInternal.emailDomain": "string",
    "itblInternal.documentCreatedAt": "date", "itblInternal.documentUpdatedAt": "date",
}
CUSTOM_USER_FIELDS = {
    "firstName": "string", "lastName": "string", "loyaltyPoints": "long", "lifetimeValue": "double",
    "isVip": "boolean", "birthday": "date", "lastPurchaseDate": "date", "address": "object", "address.city": "string",
    "address.country": "string", "address.zip": "string", "interests": "string", "favoriteStoreIds": "long",
    "preferences": "object", "preferences.newsletter": "boolean", "preferences.channel": "string",
    "shoppingPreferences": "object", "shoppingPreferences.vip": "object", "shoppingPreferences.vip.since": "date",
    "shoppingPreferences.vip.tier": "string",
}
EVERY_TYPE_USER_FIELDS = {
    "devices": "nested", "devices.token": "string", "devices.platform": "string",
    "devices.endpointEnabled": "boolean", "lastKnownLocation": "geo_location",
}
UNLISTED_USER_FIELD = "referralCode"
# The index in an email (the digits before the ``@``) or a userId (the digits after ``usr_``).
_INDEX = re.compile(r"^usr_(\d+)$|(\d+)@[^@]*$")


def _names(h: int) -> tuple[str, str]:
    return pick(FIRST_NAMES, h), pick(LAST_NAMES, h >> 8)


class Users:
    """The project's users, each a pure function of (seed, index): nothing is stored per user, so
    a project of millions of users costs no memory.

    Every listed user (index below ``listed``, by default every user) is in list ``index % lists``
    and, by hash, in up to two more, so every list is non-empty and some users share several lists.
    About one user in five has no userId (email-only users of a hybrid project). Both identifiers
    carry the index (``alice.smith12@example.com``, ``usr_0000012``), which ``index_of`` reads back.
    """

    def __init__(self, seed: int, count: int, list_ids: list[int], channel_ids: list[int], message_type_ids: list[int],
                 unlisted_field_every: int | None = None, every_field_type: bool = False, listed: int | None = None):
        self._salt = salt(seed, "users")
        self._count = count
        self._listed = count if listed is None else listed
        self._unlisted_every = unlisted_field_every
        self._every_type = every_field_type
        self._list_ids = list_ids
        self._channel_ids = channel_ids
        self._message_type_ids = message_type_ids

    def __len__(self) -> int:
        return self._count

    def _hash(self, i: int) -> int:
        return mix64(self._salt ^ i)

    def names(self, i: int) -> tuple[str, str]:
        """First and last name of user ``i``."""
        return _names(self._hash(i))

    def email(self, i: int) -> str:
        """The email of user ``i``: its names and index, e.g. ``jose.muller12@example.org``."""
        h = self._hash(i)
        first, last = _names(h)
        local = f"{first}.{last}{i}".lower().replace("ü", "ue").replace("é", "e")
        return f"{local}@{pick(DOMAINS, h >> 16)}"

    @staticmethod
    def user_id(i: int) -> str | None:
        """The userId of user ``i``, ``None`` for one user in five."""
        return None if i % 5 == 4 else f"usr_{i:07d}"

    def phone(self, i: int) -> str:
        return f"+1555{(self._hash(i) >> 27) % 10_000_000:07d}"

    def list_ids_of(self, i: int) -> list[int]:
        """The ids of the lists user ``i`` belongs to, ascending (none if ``i`` is not listed)."""
        if i >= self._listed:
            return []
        n, h = len(self._list_ids), self._hash(i) >> 24
        chosen = {i % n}
        if h & 1:
            chosen.add((i + 1 + (h >> 1)) % n)
        if h & 6 == 6:
            chosen.add((i + 2 + (h >> 3)) % n)
        return sorted(self._list_ids[k] for k in chosen)

    def members(self, list_id: int) -> Iterator[str]:
        """Emails of the users in ``list_id`` in user order, what ``lists/getUsers`` returns, lazily."""
        return (self.email(i) for i in range(self._listed) if list_id in self.list_ids_of(i))

    def index_of(self, identifier: str) -> int | None:
        """The index of the user with this email or userId, read from the digits before the ``@``
        or after ``usr_`` and checked against that user's identifiers."""
        found = _INDEX.search(identifier)
        digits = found and (found.group(1) or found.group(2))
        if not digits or len(digits) > 12:
            return None
        i = int(digits)
        return i if i < self._count and identifier in (self.email(i), self.user_id(i)) else None

    def fields(self) -> dict[str, str]:
        """What ``users/getFields`` answers: every field ``profile`` serves, by name, with its type
        (``UNLISTED_USER_FIELD`` excepted)."""
        fields = STANDARD_USER_FIELDS | CUSTOM_USER_FIELDS
        return fields | EVERY_TYPE_USER_FIELDS if self._every_type else fields

    def profile(self, i: int, updated_ms: int, fmt: TimestampFormatter, indexed_ms: int | None = None) -> dict:
        """The ``user`` export record of user ``i`` last updated at ``updated_ms`` and, unless
        ``indexed_ms`` is ``None``, indexed then (``itblInternal.documentUpdatedAt``; the profile's
        ``documentCreatedAt`` is its signup).

        As in real exports, custom fields sit at the top level and nested objects are flattened
        into dotted keys (``itblInternal.emailDomain``, ``shoppingPreferences.vip.since``), except
        ``address`` for one user in ``NESTED_OBJECTS_EVERY``; a quarter of the ``profileUpdatedAt``
        values use the ISO form Iterable also emits; date fields hold a date alone or a timestamp;
        array fields (``interests``, ``favoriteStoreIds``) are typed by their elements in getFields.
        """
        h, email, user_id = self._hash(i), self.email(i), self.user_id(i)
        record = {"email": email}
        if user_id:
            record["userId"] = user_id
        record["signupDate"] = fmt.event(updated_ms - (h >> 20) % (400 * _DAY_MS) // 1000 * 1000)
        record["signupSource"] = pick(SIGNUP_SOURCES, h >> 30)
        record["profileUpdatedAt"] = fmt.iso(updated_ms) if i % 4 == 1 else fmt.event(updated_ms)
        record["emailListIds"] = self.list_ids_of(i)
        record["unsubscribedChannelIds"] = [pick(self._channel_ids, h >> 33)] if h & 8 else []
        record["unsubscribedMessageTypeIds"] = [pick(self._message_type_ids, h >> 37)] if h & 16 else []
        record["itblInternal.emailDomain"] = email.split("@")[1]
        if indexed_ms is not None:
            record["itblInternal.documentCreatedAt"] = record["signupDate"]
            record["itblInternal.documentUpdatedAt"] = fmt.event(indexed_ms)
        record["firstName"], record["lastName"] = self.names(i)
        record["loyaltyPoints"] = (h >> 41) % 5000
        record["lifetimeValue"] = round((h >> 13) % 100_000 / 100, 2)
        record["isVip"] = bool(h & 32)
        record["birthday"] = f"{1950 + (h >> 45) % 55}-{1 + (h >> 50) % 12:02d}-{1 + (h >> 54) % 28:02d}"
        city, country = pick(CITIES, h >> 58)
        address = {"city": city, "country": country, "zip": f"{(h >> 22) % 100_000:05d}"}
        if i % NESTED_OBJECTS_EVERY == 0:
            record["address"] = address
        else:
            record.update((f"address.{name}", value) for name, value in address.items())
        if h & 64:
            first = (h >> 3) % len(INTERESTS)
            record["interests"] = [INTERESTS[first], INTERESTS[(first + 1 + (h >> 6) % 3) % len(INTERESTS)]]
            record["favoriteStoreIds"] = [7000 + (h >> 9) % 40, 7040 + (h >> 15) % 40]
        if h & 128:
            record["phoneNumber"] = self.phone(i)
            record["lastPurchaseDate"] = fmt.event(updated_ms - (h >> 17) % (90 * _DAY_MS) // 1000 * 1000)
        record["preferences.newsletter"] = bool(h & 256)
        record["preferences.channel"] = pick(CHANNEL_PREFERENCES, h >> 11)
        if record["isVip"]:
            record["shoppingPreferences.vip.since"] = fmt.event(updated_ms - (h >> 19) % (700 * _DAY_MS) // 1000 * 1000)
            record["shoppingPreferences.vip.tier"] = pick(VIP_TIERS, h >> 23)
        if self._every_type:
            record["devices"] = [
                {"token": f"tok-{h >> 8 & 0xFFFFFF:06x}-{k}", "platform": pick(["APNS", "GCM"], h >> k),
                 "endpointEnabled": bool(h >> (k + 3) & 1)}
                for k in range(1 + (h >> 2) % 2)
            ]
            record["lastKnownLocation"] = {"lat": round((h >> 24) % 18000 / 100 - 90, 2),
                                           "lon": round((h >> 40) % 36000 / 100 - 180, 2)}
        if self._unlisted_every and i % self._unlisted_every == self._unlisted_every - 1:
            record[UNLISTED_USER_FIELD] = f"ref-{h >> 12 & 0xFFFFF:05x}"
        return record
