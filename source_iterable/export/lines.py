"""Line splitting for Iterable's streamed JSONL bodies."""

from typing import Iterator

import requests

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
