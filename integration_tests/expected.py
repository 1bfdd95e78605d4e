"""What each stream must deliver for an emulated project, and how to compare it with what came out.

The connector reshapes records (RFC 3339 timestamps, a primary key field, Iterable's dotted keys
nested into their objects, undeclared fields and misfits moved into an object column).
`canonical` undoes that with code independent of the connector's: both sides are flattened into
dotted keys and timestamps compared as instants, so emitted and served records are compared
field by field.
"""

import json
from collections import Counter
from datetime import datetime, timezone
from typing import Any, Dict, Iterable, List, Mapping, Optional

from iterable_emulator import IterableEmulator

TEMPLATE_TYPES = ["Base", "Blast", "Triggered", "Workflow"]
MEDIA = ["Email", "Push", "InApp", "SMS"]
ADDED_KEYS = {"eventHash", "userKey"}

EXPORT_STREAMS = {
    "email_bounce": "emailBounce", "email_click": "emailClick", "email_complaint": "emailComplaint",
    "email_open": "emailOpen", "email_send": "emailSend", "email_send_skip": "emailSendSkip",
    "email_subscribe": "emailSubscribe", "email_unsubscribe": "emailUnSubscribe",
    "push_send": "pushSend", "push_send_skip": "pushSendSkip", "push_open": "pushOpen",
    "push_uninstall": "pushUninstall", "push_bounce": "pushBounce",
    "web_push_send": "webPushSend", "web_push_click": "webPushClick", "web_push_send_skip": "webPushSendSkip",
    "in_app_send": "inAppSend", "in_app_open": "inAppOpen", "in_app_click": "inAppClick", "in_app_close": "inAppClose",
    "in_app_delete": "inAppDelete", "in_app_delivery": "inAppDelivery", "in_app_send_skip": "inAppSendSkip",
    "inbox_session": "inboxSession", "inbox_message_impression": "inboxMessageImpression",
    "sms_send": "smsSend", "sms_bounce": "smsBounce", "sms_click": "smsClick", "sms_received": "smsReceived",
    "sms_send_skip": "smsSendSkip", "sms_usage_info": "smsUsageInfo",
    "purchase": "purchase", "custom_event": "customEvent", "hosted_unsubscribe_click": "hostedUnsubscribeClick",
    "in_app_recall": "inAppRecall", "rcs_send": "rcsSend", "rcs_send_skip": "rcsSendSkip",
    "embedded_send": "embeddedSend", "embedded_send_skip": "embeddedSendSkip", "embedded_click": "embeddedClick",
    "embedded_received": "embeddedReceived", "embedded_impression": "embeddedImpression",
    "embedded_session": "embeddedSession", "journey_exit": "journeyExit", "anonymous_session": "unknownSession",
    "whatsapp_bounce": "whatsAppBounce", "whatsapp_click": "whatsAppClick", "whatsapp_received": "whatsAppReceived",
    "whatsapp_seen": "whatsAppSeen", "whatsapp_send": "whatsAppSend", "whatsapp_send_skip": "whatsAppSendSkip",
    "whatsapp_usage_info": "whatsAppUsageInfo",
    "users": "user",
}


def _instant(value: Any) -> Any:
    """A timestamp string in any of Iterable's or ISO's shapes, as one comparable UTC instant.

    A date alone (a `date` user field) is its midnight UTC.
    """
    if isinstance(value, str) and len(value) == 10 and value[4] == "-" and value[7] == "-":
        value = f"{value} 00:00:00 +00:00"
    if not isinstance(value, str) or len(value) < 19 or value[4] != "-" or value[13] != ":":
        return value
    text = value.replace(" +00:00", "+00:00").replace("Z", "+00:00")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat()


def overflow_key(stream: str) -> str:
    """The object column a stream moves undeclared fields (and misfits) into."""
    return "dataFields" if stream == "users" else "additionalFields"


def canonical(record: Dict[str, Any], overflow: Optional[str] = None) -> str:
    fields = {key: value for key, value in record.items() if key not in ADDED_KEYS and key != overflow}
    if overflow and isinstance(record.get(overflow), dict):
        fields.update(record[overflow])
    flat: Dict[str, Any] = {}
    for key, value in fields.items():
        _flatten(key, value, flat)
    # The CDK's serializer leaves top-level nulls out of a record: null and absent are the same.
    return json.dumps(
        {key: _comparable(value) for key, value in flat.items() if value is not None}, sort_keys=True, default=str
    )


def _flatten(key: str, value: Any, flat: Dict[str, Any]) -> None:
    """Objects become dotted keys (`address.city`), as Iterable's user export writes them."""
    if isinstance(value, dict):
        for name, inner in value.items():
            _flatten(f"{key}.{name}", inner, flat)
    else:
        flat[key] = value


def _comparable(value: Any) -> Any:
    if isinstance(value, list):
        return [_comparable(item) for item in value]
    if isinstance(value, dict):
        return {name: _comparable(inner) for name, inner in value.items()}
    return _instant(value)


def as_multiset(records: Iterable[Dict[str, Any]], overflow: Optional[str] = None) -> Counter:
    return Counter(canonical(record, overflow) for record in records)


def export_records(emulator: IterableEmulator, stream: str, start: str, end: str) -> List[Dict[str, Any]]:
    return list(emulator.data.export_records(EXPORT_STREAMS[stream], start, end))


def assert_exactly_once(
    emitted: Mapping[str, List[Dict[str, Any]]], emulator: IterableEmulator, streams: Iterable[str], start: str, end: str
) -> None:
    """Each stream emitted exactly the export records the emulator serves in [start, end): none lost, none twice."""
    for stream in streams:
        expected = as_multiset(export_records(emulator, stream, start, end))
        assert as_multiset(emitted[stream], overflow_key(stream)) == expected, f"{stream}: lost or duplicated records"


def catalogue_records(emulator: IterableEmulator) -> Dict[str, List[Dict[str, Any]]]:
    data = emulator.data
    templates = [
        dict(template, templateType=template_type, messageMedium=medium)
        for template_type in TEMPLATE_TYPES
        for medium in MEDIA
        for template in data.templates(template_type, medium)
    ]
    list_users = [
        {"listId": item["id"], "email": email} for item in data.lists() for email in data.list_members(item["id"]) or []
    ]
    members = {row["email"] for row in list_users}
    campaign_ids = [campaign["id"] for campaign in data.campaigns()]
    email_templates = [data.email_template(t["templateId"]) for t in data.templates(None, "Email")]
    return {
        "experiment_metrics": [_typed_experiment_row(row) for row in data.experiment_metrics_rows(campaign_ids)],
        "email_templates": email_templates,
        "campaigns": data.campaigns(),
        "channels": data.channels(),
        "lists": data.lists(),
        "list_users": list_users,
        "message_types": data.message_types(),
        "metadata": [{"name": name} for name in data.metadata_tables()],
        "templates": templates,
        "events": [event for email in sorted(members) for event in data.user_events(email, include_custom_events=True)],
    }


TEXT_COLUMNS = {"name", "type", "createdBy", "creationDate", "lastModified", "subject"}


def _typed_experiment_row(row: Dict[str, str]) -> Dict[str, Any]:
    """A CSV row as its declared columns: Iterable's `Experiment Id` is column `experimentId`."""
    typed: Dict[str, Any] = {}
    for header, value in row.items():
        if value == "":
            continue
        first, *rest = header.split()
        name = first[:1].lower() + first[1:] + "".join(word.capitalize() for word in rest)
        if name in TEXT_COLUMNS:
            typed[name] = value
        else:
            typed[name] = float(value) if "." in value else int(value)
    return typed


def campaign_metrics(emulator: IterableEmulator) -> Dict[int, Dict[str, Any]]:
    ids = [campaign["id"] for campaign in emulator.data.campaigns()]
    return {int(row["id"]): row for row in emulator.data.campaign_metrics_rows(ids)}
