#!/usr/bin/env python3
"""Asks Ledgerclock's query service with nats-py, a NATS client no one here wrote.

    PYTHONPATH=.tools/python python3 scripts/ask.py [--nats URL] TENANT QUERY [JSON]

prints the answer's rows, one JSON object a line, and exits 1 with the service's code
and reason when it refuses (404 unknown person, 503 rebuilding, ...).
"""
import asyncio
import json
import sys

import nats


async def main(argv):
    url = "nats://127.0.0.1:4222"
    if len(argv) > 1 and argv[0] == "--nats":
        url, argv = argv[1], argv[2:]
    tenant, query = argv[0], argv[1]
    body = json.loads(argv[2]) if len(argv) > 2 else {}
    nc = await nats.connect(url)
    rows = []
    while True:
        msg = await nc.request(f"lc.q.v1.{tenant}.{query}", json.dumps(body).encode(), timeout=30)
        headers = msg.headers or {}
        if "Nats-Service-Error-Code" in headers:
            # Reasons are ASCII with JSON escapes (NATS headers are ASCII): 休 is \\u4f11.
            raw = headers.get("Nats-Service-Error", "")
            try:
                text = json.loads('"' + raw + '"')
            except ValueError:
                text = raw
            print(f"{headers['Nats-Service-Error-Code']} {text}", file=sys.stderr)
            await nc.close()
            return 1
        answer = json.loads(msg.data)
        rows.extend(answer.get("rows", [answer]))
        if answer.get("next_offset") is None:
            break
        body["offset"] = answer["next_offset"]
    await nc.close()
    for row in rows:
        print(json.dumps(row, ensure_ascii=False))
    return 0


sys.exit(asyncio.run(main(sys.argv[1:])))
