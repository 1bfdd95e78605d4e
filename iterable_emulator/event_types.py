"""The export ``dataTypeName`` values Iterable documents, with the record shape each one has."""

from dataclasses import dataclass


@dataclass(frozen=True)
class EventType:
    """One export data type.

    Attributes:
        name: the canonical ``dataTypeName`` (Iterable's spelling, e.g. ``emailUnSubscribe``).
        medium: the message medium the event belongs to, ``None`` for events not tied to a message.
        kind: the record shape (``send``, ``open``, ``click``, ``bounce``...); see ``records.py``.
    """

    name: str
    medium: str | None
    kind: str


_TABLE = {
    "Email": {
        "emailSend": "send", "emailOpen": "open", "emailClick": "click", "hostedUnsubscribeClick": "click",
        "emailComplaint": "complaint", "emailBounce": "bounce", "emailSendSkip": "skip",
        "emailSubscribe": "subscribe", "emailUnSubscribe": "unsubscribe",
    },
    "Push": {
        "pushSend": "send", "pushOpen": "open", "pushUninstall": "uninstall", "pushBounce": "bounce",
        "pushSendSkip": "skip",
    },
    "InApp": {
        "inAppSend": "send", "inAppOpen": "open", "inAppClick": "click", "inAppClose": "close",
        "inAppDelete": "delete", "inAppDelivery": "delivery", "inAppSendSkip": "skip", "inAppRecall": "recall",
        "inboxSession": "session", "inboxMessageImpression": "impression",
    },
    "SMS": {
        "smsSend": "send", "smsBounce": "bounce", "smsClick": "click", "smsReceived": "received",
        "smsSendSkip": "skip", "smsUsageInfo": "usage",
    },
    "WebPush": {"webPushSend": "send", "webPushClick": "click", "webPushSendSkip": "skip"},
    "RCS": {"rcsSend": "send", "rcsSendSkip": "skip"},
    "Embedded": {
        "embeddedSend": "send", "embeddedSendSkip": "skip", "embeddedClick": "click",
        "embeddedReceived": "delivery", "embeddedImpression": "impression", "embeddedSession": "session",
    },
    "WhatsApp": {
        "whatsAppSend": "send", "whatsAppBounce": "bounce", "whatsAppClick": "click",
        "whatsAppReceived": "received", "whatsAppSeen": "open", "whatsAppSendSkip": "skip",
        "whatsAppUsageInfo": "usage",
    },
    None: {
        "purchase": "purchase", "customEvent": "custom", "unknownSession": "session",
        "journeyExit": "journeyExit", "user": "user",
    },
}

EVENT_TYPES: dict[str, EventType] = {
    name: EventType(name, medium, kind) for medium, kinds in _TABLE.items() for name, kind in kinds.items()
}
SEND_TYPE_BY_MEDIUM = {t.medium: t.name for t in EVENT_TYPES.values() if t.kind == "send"}

# Connectors send ``emailUnsubscribe`` and get data, so the server evidently matches case-insensitively;
# Iterable's TS client spells ``unknownSession`` as ``anonSession``.
_ALIASES = {name.lower(): name for name in EVENT_TYPES} | {"anonsession": "unknownSession"}


def canonical_type(name: str) -> str | None:
    """The canonical ``dataTypeName`` for ``name`` in any letter case, or ``None`` if unknown."""
    return _ALIASES.get(name.lower())
