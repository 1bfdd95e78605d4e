"""``GET /api/campaigns/metrics``: one CSV row per campaign, columns depending on its medium."""

import csv
import io

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


class CampaignMetrics:
    """Deterministic per-campaign metrics, independent of the requested date window.

    The header is the union of the requested campaigns' columns, so cells that do not apply to a
    campaign's medium are empty, as in real mixed-medium responses. A few cells are deliberately
    odd (``N/A``, a quoted ``"1,234.5"``) so connectors must parse tolerantly.
    """

    def __init__(self, seed: int, campaigns: list[dict]):
        self._salt = salt(seed, "metrics")
        self._campaigns = {c["id"]: c for c in campaigns}
        self._positions = {c["id"]: i for i, c in enumerate(campaigns)}

    def _values(self, campaign: dict) -> dict[str, str]:
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

    def rows(self, campaign_ids: list[int]) -> list[dict[str, str]]:
        """The rows served for these ids, as ``csv.DictReader`` would read them back.

        Unknown ids are skipped and repeated ids answered once, in request order.
        """
        found = [self._campaigns[i] for i in dict.fromkeys(campaign_ids) if i in self._campaigns]
        values = [self._values(c) for c in found]
        present = set().union(*values) if values else set()
        header = ["id"] + [c for c in ALL_COLUMNS if c in present]
        return [{col: str(c["id"]) if col == "id" else v.get(col, "") for col in header} for c, v in zip(found, values)]

    def csv(self, campaign_ids: list[int]) -> str:
        """The CSV body for these ids: a header line, then one line per campaign."""
        rows = self.rows(campaign_ids)
        header = list(rows[0]) if rows else ["id"] + COMMERCE_COLUMNS
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=header, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return out.getvalue()
