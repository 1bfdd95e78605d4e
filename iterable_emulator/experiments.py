"""``GET /api/experiments/metrics``: A/B experiments of email campaigns, one CSV row per variant."""

import csv
import io

from .randomness import mix64, pick, salt
from .timefmt import TimestampFormatter

# (camelCase name as Matatika's tap reports it, readable name in the style of campaigns/metrics).
COLUMNS = [
    ("campaignId", "Campaign Id"), ("experimentId", "Experiment Id"), ("templateId", "Template Id"),
    ("name", "Name"), ("type", "Type"), ("createdBy", "Created By"), ("creationDate", "Creation Date"),
    ("lastModified", "Last Modified"), ("subject", "Subject"), ("improvement", "Improvement"),
    ("confidence", "Confidence"), ("totalEmailSends", "Total Email Sends"),
    ("uniqueEmailSends", "Unique Email Sends"), ("totalEmailsDelivered", "Total Emails Delivered"),
    ("uniqueEmailOpens", "Unique Email Opens"), ("uniqueEmailClicks", "Unique Email Clicks"),
    ("totalUnsubscribes", "Total Unsubscribes"), ("totalPurchases", "Total Purchases"), ("revenue", "Revenue"),
]
EXPERIMENT_TYPES = ["Subject Line", "From Name", "Preheader", "Email Body", "Send Time"]
SUBJECTS = ["Spring deals inside", "Last chance: 20% off", "Grüße aus Berlin", "Your picks, {{firstName}}"]
STAFF = ["ops@example.com", "marketing@example.com", "crm-team@example.com"]
_HOUR_MS = 3_600_000


class Experiments:
    """Experiments of a third of the email campaigns (one or two each), 2 or 3 variants per experiment.

    The first variant is the control (the campaign's template, no ``improvement``/``confidence``);
    the others have template ids of their own, which ``GET /api/templates`` does not list. Metrics
    are deterministic and ignore the requested date window, like ``campaigns/metrics``.
    """

    def __init__(self, seed: int, campaigns: list[dict], header: str = "camelCase"):
        self._salt = salt(seed, "experiments")
        self._fmt = TimestampFormatter()
        self._header = [readable if header == "readable" else camel for camel, readable in COLUMNS]
        self.experiments: list[dict] = []
        email = [c for c in campaigns if c["messageMedium"] == "Email"]
        for k, campaign in enumerate(email):
            if k % 3:
                continue
            h = mix64(self._salt ^ campaign["id"])
            for j in range(1 + (h & 1)):
                self.experiments.append(self._experiment(campaign, j, mix64(h ^ j)))

    def _experiment(self, campaign: dict, j: int, h: int) -> dict:
        experiment_id = 310_000 + 7 * len(self.experiments)
        created = campaign["createdAt"] + (1 + j) * _HOUR_MS + h % _HOUR_MS
        control = campaign.get("templateId") or 3_900_000 + experiment_id
        variants = [control] + [4_000_000 + experiment_id * 10 + v for v in range(1, 2 + (h >> 8) % 2)]
        return {
            "id": experiment_id, "campaignId": campaign["id"], "type": pick(EXPERIMENT_TYPES, h >> 12),
            "name": f"{campaign['name']} experiment {j + 1}", "createdBy": pick(STAFF, h >> 16),
            "creationDate": self._fmt.event(created - created % 1000),
            "lastModified": self._fmt.event(created - created % 1000 + (h >> 20) % (48 * _HOUR_MS) // 1000 * 1000),
            "templateIds": variants,
        }

    def _row(self, experiment: dict, position: int) -> list[str]:
        h = mix64(self._salt ^ experiment["id"] ^ position << 40)
        template_id = experiment["templateIds"][position]
        sends = 500 + h % 5000
        counts = {"totalEmailSends": sends, "uniqueEmailSends": sends - h % 7, "totalEmailsDelivered": sends - h % 23,
                  "uniqueEmailOpens": sends * (20 + (h >> 8) % 30) // 100,
                  "uniqueEmailClicks": sends * (2 + (h >> 16) % 8) // 100,
                  "totalUnsubscribes": (h >> 24) % 12, "totalPurchases": (h >> 28) % 40}
        values = {
            "campaignId": experiment["campaignId"], "experimentId": experiment["id"], "templateId": template_id,
            "name": experiment["name"], "type": experiment["type"], "createdBy": experiment["createdBy"],
            "creationDate": experiment["creationDate"], "lastModified": experiment["lastModified"],
            "subject": pick(SUBJECTS, h >> 32),
            "improvement": "" if position == 0 else f"{((h >> 36) % 4000 - 1000) / 100:.2f}",
            "confidence": "" if position == 0 else f"{(h >> 48) % 1000 / 1000:.3f}",
            "revenue": f"{counts['totalPurchases'] * ((h >> 52) % 9000 + 1000) / 100:.2f}",
        } | counts
        return [str(values[camel]) for camel, _ in COLUMNS]

    def rows(self, campaign_ids: list[int] | None = None,
             experiment_ids: list[int] | None = None) -> list[dict[str, str]]:
        """The rows served, as ``csv.DictReader`` reads them, for the experiments of ``campaign_ids``
        and those in ``experiment_ids`` (a union); both empty or ``None`` means every experiment.

        Experiments come in id order, each with its control row first; unknown ids are skipped.
        """
        campaigns, experiments = set(campaign_ids or ()), set(experiment_ids or ())
        chosen = [e for e in self.experiments
                  if not (campaigns or experiments) or e["campaignId"] in campaigns or e["id"] in experiments]
        return [dict(zip(self._header, self._row(e, p))) for e in chosen for p in range(len(e["templateIds"]))]

    def csv(self, campaign_ids: list[int] | None = None, experiment_ids: list[int] | None = None) -> str:
        """The CSV body: the header line (always all columns), then one line per variant."""
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=self._header, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows(campaign_ids, experiment_ids))
        return out.getvalue()
