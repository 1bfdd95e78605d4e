"""Line splitting for Iterable's streamed JSONL bodies."""

from typing import Iterator

import requests
from airbyte_cdk.sources.declarative.requesters.requester import Requester

CHUNK_BYTES = 1 << 16


def iter_body_lines(response: requests.Response) -> Iterator[bytes]:
    """Yields each line of a streamed response body, without its newline, as raw bytes.

    Reads `response.raw` in 64 KiB chunks (gzip decoded by urllib3), so memory does not grow
    with the body. A connection dropped mid-body surfaces as urllib3's `ProtocolError` or
    `ReadTimeoutError` from here; the caller decides what a partial body means.
    """
    pending = b""
    for chunk in response.raw.stream(CHUNK_BYTES, decode_content=True):
        if pending:
            chunk = pending + chunk
        lines = chunk.split(b"\n")
        pending = lines.pop()
        yield from lines
    if pending:
        yield pending


def streaming(requester: Requester) -> Requester:
    """`requester`, made to send with `stream=True` so that a body is read as it arrives.

    A requester built outside a retriever gets the default (buffering) decoder; the CDK's
    HttpRequester reads its `stream_response` attribute when it sends, and has no public setter.
    """
    requester.stream_response = True  # type: ignore[attr-defined]
    return requester
