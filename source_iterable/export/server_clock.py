"""Iterable's clock, as its responses tell it."""

import email.utils
import time

import requests


def read_started_at(response: requests.Response) -> int:
    """When Iterable began answering `response`, by Iterable's own clock (epoch s, rounded down):
    its `Date` header less the time it took to answer, else this machine's clock. Iterable's clock
    decides what its export shows, so a client's clock skew cannot mislead the late-event ledger."""
    elapsed = getattr(response, "elapsed", None)
    try:
        answered = email.utils.parsedate_to_datetime(getattr(response, "headers", {})["Date"]).timestamp()
    except (KeyError, TypeError, ValueError, IndexError):
        answered = time.time()
    return int(answered - (elapsed.total_seconds() if elapsed else 0.0))
