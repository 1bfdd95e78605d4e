"""``GET /api/campaigns/metrics``: one CSV row per campaign, columns depending on its medium, as
of the server's clock.

A campaign's metrics grow from its ``startAt`` until ``ATTRIBUTION_DAYS`` after its ``endedAt``
(opens, clicks and purchases keep being attributed to it), then stay final; a campaign that never
started has zeros, one that sends without end reaches its final values ``SENDING_DAYS`` after it
started. They move on the hour (a model's simplification: a test's requests within one hour see
the same metrics). Iterable does not move ``updatedAt`` when a campaign starts or ends.
"""

import csv
import io
import re

from .randomness import mix64, salt

COMMERCE_COLUMNS = ["Average Order Value", "Purchases / M (Email)", "Revenue", "Total Purchases", "Unique Purchases"]
MEDIUM_COLUMNS = {
    "Email": [
        "Total Complaints", "Total Email Holdout", "Total Email Opens", "Total Email Opens (filtered)",
        "Total Email Send Skips", "Total Email Sends", "Total Emails Bounced", "Total Emails Clicked",
        "Total Emails Delivered", "Total Unsubscribes", "Unique Email Clicks", "Unique Email Opens",
        "Unique Email Opens (filtered)", "Unique Email Opens Or Clicks", "Unique Email Sends",
        "Unique Emails Bounced", "Unique Emails Delivered", "Unique Unsubscribes",
    ],
    "Push": ["Total Pushes Sent", "Unique Pushes Opened", "Total App Uninstalls", "Total Push Holdout"],
    "WebPush": ["Total Web Pushes Sent", "Unique Web Push Clicks"],
    "SMS": ["Total SMS Sent", "Total SMS Delivered", "Total SMS Bounced", "Unique SMS Clicks"],
    "InApp": ["Total In-app Sent", "Total In-app Opens", "Unique In-app Clicks"],
    "WhatsApp": ["Total WhatsApp Sent", "Total WhatsApp Delivered", "Unique WhatsApp Seen"],
}
ALL_COLUMNS = COMMERCE_COLUMNS + [c for columns in MEDIUM_COLUMNS.values() for c in columns]
ATTRIBUTION_DAYS = 14
SENDING_DAYS = 90
_DAY_MS = 86_400_000
_HOUR_MS = 3_600_000
_NUMBER = re.compile(r"^[0-9]+(\.[0-9]+)?$")


class CampaignMetrics:
    """Deterministic per-campaign metrics at a moment, independent of the requested date window.

    The header is the union of the requested campaigns' columns, so cells that do not apply to a
    campaign's medium are empty, as in real mixed-medium responses. A few cells are deliberately
    odd (``N/A``, a quoted ``"1,234.5"``) so connectors must parse tolerantly.
    """

    def __init__(self, seed: int, campaigns: list[dict]):
        self._salt = salt(seed, "metrics")
        self._campaigns = {c["id"]: c for c in campaigns}
        self._positions = {c["id"]: i for i, c in enumerate(campaigns)}

    @staticmethod
    def progress(campaign: dict, now_ms: int) -> float:
        """How much of its final metrics a campaign has at ``now_ms``, from 0 to 1."""
        started = campaign.get("startAt")
        now_ms -= now_ms % _HOUR_MS
        if started is None or now_ms <= started:
            return 0.0
        ended = campaign.get("endedAt")
        settles = ended + ATTRIBUTION_DAYS * _DAY_MS if ended is not None else started + SENDING_DAYS * _DAY_MS
        return min(1.0, (now_ms - started) / max(1, settles - started))

    def _values(self, campaign: dict, now_ms: int) -> dict[str, str]:
        progress = self.progress(campaign, now_ms)
        return {column: _scaled(value, progress) for column, value in self._final(campaign).items()}

    def _final(self, campaign: dict) -> dict[str, str]:
        h = mix64(self._salt ^ campaign["id"])
        columns = COMMERCE_COLUMNS + MEDIUM_COLUMNS.get(campaign["messageMedium"], [])
        values = {}
        for k, column in enumerate(columns):
            ch = mix64(h ^ k)
            if column.startswith(("Average", "Revenue", "Purchases /")):
                values[column] = f"{ch % 100_000 / 100:.2f}".rstrip("0").rstrip(".")
            else:
                values[column] = str(ch % 10_000 // (2 if column.startswith("Unique") else 1))
        position = self._positions[campaign["id"]]
        if position % 9 == 4:
            values["Revenue"] = "1,234.5"
        if position % 9 == 7:
            values["Average Order Value"] = "N/A"
        return values

    def rows(self, campaign_ids: list[int], now_ms: int) -> list[dict[str, str]]:
        """The rows served for these ids at ``now_ms``, as ``csv.DictReader`` would read them back.

        Unknown ids are skipped and repeated ids answered once, in request order.
        """
        found = [self._campaigns[i] for i in dict.fromkeys(campaign_ids) if i in self._campaigns]
        values = [self._values(c, now_ms) for c in found]
        present = set().union(*values) if values else set()
        header = ["id"] + [c for c in ALL_COLUMNS if c in present]
        return [{col: str(c["id"]) if col == "id" else v.get(col, "") for col in header} for c, v in zip(found, values)]

    def csv(self, campaign_ids: list[int], now_ms: int) -> str:
        """The CSV body for these ids at ``now_ms``: a header line, then one line per campaign."""
        rows = self.rows(campaign_ids, now_ms)
        header = list(rows[0]) if rows else ["id"] + COMMERCE_COLUMNS
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=header, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return out.getvalue()


def _scaled(value: str, progress: float) -> str:
    """A metric ``progress`` of the way to its final ``value``; odd cells stay as they are."""
    if progress >= 1 or not _NUMBER.match(value):
        return value
    if "." in value:
        return f"{float(value) * progress:.2f}".rstrip("0").rstrip(".")
    return str(int(int(value) * progress))
