"""A browser stand-in in its own process: read an SSE stream, write each message's id and data to a file.

Usage: python _sse_client_child.py URL OUT_FILE [LAST_EVENT_ID]. One line per message (``id<TAB>data``),
flushed as it arrives, so a test can SIGKILL this process mid-stream and see exactly what it got.
"""

from __future__ import annotations

import sys

import httpx

from swarm_observability.server.live import iter_sse


def main() -> None:
    url, out = sys.argv[1], sys.argv[2]
    headers = {"Last-Event-ID": sys.argv[3]} if len(sys.argv) > 3 else {}
    with (
        open(out, "a", encoding="utf-8") as sink,
        httpx.stream("GET", url, headers=headers, timeout=None) as response,
    ):
        for message in iter_sse(response.iter_lines()):
            sink.write(f"{message.get('id', '')}\t{message['data']}\n")
            sink.flush()


if __name__ == "__main__":
    main()
