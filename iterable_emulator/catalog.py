"""The small resources a connector lists in full: channels, message types, lists, campaigns,
templates and metadata tables, plus the users they refer to."""

import copy
import threading

from .config import EmulatorConfig
from .randomness import mix64, pick, salt
from .users import Users

CHANNELS = [
    (39581, "Marketing Email", "Marketing", "Email"),
    (39582, "Transactional Email", "Transactional", "Email"),
    (39583, "Push Marketing", "Marketing", "Push"),
    (39584, "Default WebPush channel", "Marketing", "WebPush"),
    (39585, "In-App Messages", "Marketing", "InApp"),
    (39586, "SMS Marketing", "Marketing", "SMS"),
    (39587, "WhatsApp", "Marketing", "WhatsApp"),
    (39588, "RCS", "Marketing", "RCS"),
    (39589, "Embedded", "Marketing", "Embedded"),
]
TEMPLATE_TYPES = ["Base", "Blast", "Triggered", "Workflow"]
TEMPLATE_MEDIA = ["Email", "Push", "InApp", "SMS"]
CAMPAIGN_MEDIA = ["Email", "Email", "Push", "WebPush", "SMS", "InApp", "Email", "WhatsApp"]
BLAST_STATES = ["Finished", "Finished", "Running", "Draft", "Scheduled", "Recurring", "Aborted", "Archived"]
LIST_NAMES = ["Newsletter", "VIP customers", "Bounced", "Spring promo", "Beta testers", "Churn risk"]
LIST_TYPES = ["Standard", "Dynamic", "Suppression"]
LABELS = [[], [], ["promo"], ["newsletter", "q1"]]
STAFF = ["ops@example.com", "marketing@example.com", "crm-team@example.com"]
METADATA_TABLES = ["products", "stores", "coupons"]
SENDERS = [("Example Shop", "news@example.com"), ("Example Support", "support@example.com"),
           ("Lena from Example", "lena@mail.example.net")]
LOCALES = ["en", "en", "de", "fr"]
_DAY_MS = 86_400_000


class Catalog:
    """Everything except the export streams, built once from the config.

    Templates are the only mutable part: ``edit_template`` moves a template's ``updatedAt`` so a test
    can check that an incremental sync notices edits to templates created long ago.
    """

    def __init__(self, config: EmulatorConfig):
        self._config = config
        self.channels = [
            {"id": cid, "name": name, "channelType": ctype, "messageMedium": medium}
            for cid, name, ctype, medium in CHANNELS
        ]
        self.message_types = self._build_message_types()
        self.lists = self._build_lists()
        self.users = Users(
            config.seed, config.users, [lst["id"] for lst in self.lists],
            [c["id"] for c in self.channels], [m["id"] for m in self.message_types],
            config.unlisted_user_field_every, config.user_fields_of_every_type, config.listed_users,
        )
        self._templates = self._build_templates()
        self.campaigns = self._build_campaigns()
        self._template_edits: dict[int, int] = {}
        self._lock = threading.Lock()

    def _hash(self, label: str, i: int) -> int:
        return mix64(salt(self._config.seed, f"catalog.{label}") ^ i)

    def _build_message_types(self) -> list[dict]:
        start = self._config.start_ms
        types = []
        for k, (channel_id, name, ctype, _) in enumerate(CHANNELS):
            created = start - (60 - k) * _DAY_MS
            types.append({
                "id": 47257 + k, "name": f"{name} Message", "channelId": channel_id,
                "subscriptionPolicy": "OptIn" if ctype == "Transactional" else "OptOut",
                "createdAt": created, "updatedAt": created + k * 3_600_000,
            })
        types.append({
            "id": 47257 + len(CHANNELS), "name": "Weekly Newsletter", "channelId": CHANNELS[0][0],
            "subscriptionPolicy": "OptOut", "createdAt": start - 30 * _DAY_MS, "updatedAt": start - 2 * _DAY_MS,
            "frequencyCap": {"days": 7, "messages": 3}, "rateLimitPerMinute": 1000,
        })
        return types

    def message_types_of(self, medium: str) -> list[dict]:
        channel_ids = {cid for cid, _, _, m in CHANNELS if m == medium}
        return [mt for mt in self.message_types if mt["channelId"] in channel_ids]

    def _build_lists(self) -> list[dict]:
        lists = []
        for k in range(self._config.lists):
            list_type = "Standard" if k == 0 else LIST_TYPES[k % 3]
            lst = {
                "id": 949814 + 86 * k,
                "name": f"{LIST_NAMES[k % len(LIST_NAMES)]} {k // len(LIST_NAMES) or ''}".strip(),
                "createdAt": self._config.start_ms - (self._config.lists - k) * _DAY_MS
                + self._hash("list", k) % 3_600_000,
                "listType": list_type,
            }
            if k % 2 == 0:
                lst["description"] = f"Audience #{k} for the emulator"
            if list_type == "Suppression":
                lst["isGlobalSuppressionEnabled"] = k % 4 == 2
            lists.append(lst)
        return lists

    def _build_templates(self) -> list[tuple[str, str, dict]]:
        combos = [(t, m) for t in TEMPLATE_TYPES for m in TEMPLATE_MEDIA]
        total = len(combos) * self._config.templates_per_combination
        span, start = self._config.span_ms, self._config.start_ms
        templates = []
        for k in range(total):
            template_type, medium = combos[k % len(combos)]
            h = self._hash("template", k)
            created = start + (k * span) // total + h % 1000
            updated = created if h & 3 == 0 else min(created + (h >> 8) % (20 * _DAY_MS), self._config.end_ms - 1)
            record = {
                "templateId": 3043605 + 11 * k, "name": f"{medium} {template_type} template {k}",
                "createdAt": created, "updatedAt": updated, "creatorUserId": pick(STAFF, h >> 40),
                "messageTypeId": pick(self.message_types_of(medium), h >> 44)["id"],
            }
            if h & 4:
                record["clientTemplateId"] = f"tpl-{medium.lower()}-{k}"
            templates.append((template_type, medium, record))
        return templates

    def _build_campaigns(self) -> list[dict]:
        config, campaigns, recurring = self._config, [], None
        for i in range(config.campaigns):
            h = self._hash("campaign", i)
            medium = CAMPAIGN_MEDIA[i % len(CAMPAIGN_MEDIA)]
            kind = "Triggered" if i % 4 == 3 else "Blast"
            # Campaign 1 is recurring so that later blasts can be its children (``recurringCampaignId``).
            state = "Running" if kind == "Triggered" else "Recurring" if i == 1 else pick(BLAST_STATES, h)
            if config.sending_campaigns is not None:
                state = "Running" if i >= config.campaigns - config.sending_campaigns else "Finished"
            created = config.start_ms - 7 * _DAY_MS + (i * config.span_ms) // config.campaigns + h % 60_000
            campaign = {
                "id": 2220229 + 17 * i, "name": f"{medium} {kind.lower()} campaign {i}", "type": kind,
                "campaignState": state, "messageMedium": medium,
                "createdAt": created, "updatedAt": created + (h >> 16) % (3 * _DAY_MS),
            }
            if state not in ("Draft", "Scheduled"):
                campaign["startAt"] = campaign["updatedAt"]
            if state in ("Finished", "Aborted", "Archived"):
                campaign["endedAt"] = campaign["startAt"] + (h >> 24) % 7_200_000
            template = self._template_for(medium, kind, i)
            if template:
                campaign["templateId"] = template["templateId"]
                template.setdefault("campaignId", campaign["id"])
            campaign["createdByUserId"] = pick(STAFF, h >> 32)
            campaign["updatedByUserId"] = pick(STAFF, h >> 36)
            standard = [lst["id"] for lst in self.lists if lst["listType"] != "Suppression"]
            suppression = [lst["id"] for lst in self.lists if lst["listType"] == "Suppression"]
            campaign["listIds"] = [pick(standard, h >> 40)] if kind == "Blast" else []
            campaign["suppressionListIds"] = suppression[:1] if h & 1 else []
            campaign["labels"] = list(pick(LABELS, h >> 44))
            if state == "Finished":
                campaign["sendSize"] = (h >> 48) % 5000
            if kind == "Blast" and recurring and h & 2:
                campaign["recurringCampaignId"] = recurring
            if kind == "Triggered" and h & 4:
                campaign["workflowId"] = 60000 + (h >> 52) % 1000
            if state == "Recurring":
                recurring = campaign["id"]
            campaigns.append(campaign)
        return campaigns

    def _template_for(self, medium: str, kind: str, i: int) -> dict | None:
        matching = [rec for ttype, tmedium, rec in self._templates if tmedium == medium and ttype == kind]
        return matching[i % len(matching)] if matching else None

    def templates(self, template_type=None, medium=None, start_ms=None, end_ms=None) -> list[dict]:
        """Templates as ``GET /api/templates`` filters them: by type, medium and ``createdAt`` in [start, end)."""
        with self._lock:
            edits = dict(self._template_edits)
        found = []
        for ttype, tmedium, record in self._templates:
            if template_type and ttype != template_type or medium and tmedium != medium:
                continue
            created = record["createdAt"]
            if start_ms is not None and created < start_ms or end_ms is not None and created >= end_ms:
                continue
            record = copy.deepcopy(record)
            record["updatedAt"] = edits.get(record["templateId"], record["updatedAt"])
            found.append(record)
        return found

    def email_template(self, template_id: int) -> dict | None:
        """``templates/email/get`` of an Email template: its listing fields (``updatedAt`` edits
        included) followed by its content; ``None`` for unknown ids and other media.

        Contents carry non-ASCII text, quotes and Handlebars so that connectors store them verbatim.
        """
        found = [rec for _, medium, rec in self._templates if medium == "Email" and rec["templateId"] == template_id]
        if not found:
            return None
        record = copy.deepcopy(found[0])
        with self._lock:
            record["updatedAt"] = self._template_edits.get(template_id, record["updatedAt"])
        h = self._hash("emailTemplate", template_id)
        from_name, from_email = pick(SENDERS, h)
        topic = pick(["Spring deals", "Your weekly digest", "Grüße & news", "We miss you"], h >> 4)
        subject = f"{record['name']}: {topic}"
        preheader = pick(["Don't miss out — 20% off", "Fresh picks for {{firstName}}", ""], h >> 8)
        body = f"Hello {{{{firstName}}}}, here is “{record['name']}”."
        record.update({
            "fromName": from_name, "fromEmail": from_email, "replyToEmail": "support@example.com",
            "subject": subject, "preheaderText": preheader, "ccEmails": [], "bccEmails": [],
            "html": f'<html><body><p style="color:#333">{body}</p>'
                    f'<a href="https://example.com/?id={template_id}">Shop</a></body></html>',
            "plainText": f"{body}\nShop: https://example.com/?id={template_id}",
            "locale": pick(LOCALES, h >> 12), "isDefaultLocale": True,
            "metadata": {"designTool": pick(["html", "dragAndDrop"], h >> 16)} if h & 32 else {},
            "googleAnalyticsCampaignName": f"tpl-{template_id}" if h & 64 else None,
            "linkParams": [{"key": "utm_source", "value": "iterable"}] if h & 128 else [],
            "dataFeedIds": [], "cacheDataFeed": False, "mergeDataFeedContext": False,
        })
        if record["googleAnalyticsCampaignName"] is None:
            del record["googleAnalyticsCampaignName"]
        return record

    def edit_template(self, template_id: int, updated_at_ms: int) -> None:
        """Pretend someone edited the template at ``updated_at_ms`` (epoch ms)."""
        if not any(rec["templateId"] == template_id for _, _, rec in self._templates):
            raise KeyError(template_id)
        with self._lock:
            self._template_edits[template_id] = updated_at_ms

    def list_by_id(self, list_id: int) -> dict | None:
        return next((lst for lst in self.lists if lst["id"] == list_id), None)
