#!/usr/bin/env python3
"""Sends a command to Ledgerclock's command service with nats-py, a NATS client no one
here wrote.

    PYTHONPATH=.tools/python python3 scripts/command.py [--nats URL] TENANT FAMILY JSON
    PYTHONPATH=.tools/python python3 scripts/command.py [--nats URL] --batch FILE

FAMILY is rules, departments, people, requests, schedules, periods or devices; JSON is
{"command_id": ..., "actor": ..., "command": {...}}. Prints the answer (the events
stored, or "already_done") and exits 1 with the service's code and reason when the
command is refused (400 invalid, 404 unknown, 409 conflict).

With --batch, FILE holds one {"tenant": ..., "family": ..., "body": {...}} a line,
sent in order; each answer is printed as a line, {"answer": {...}} or
{"error": {"code": ..., "reason": ...}}.
"""
import asyncio
import json
import sys

import nats


def reason(headers):
    """The refusal's reason: NATS headers are ASCII, so the service writes anything else
    as JSON escapes (\\u4f11 for 休); read back as a JSON string's inside."""
    raw = headers.get("Nats-Service-Error", "")
    try:
        return json.loads('"' + raw + '"')
    except ValueError:
        return raw


async def main(argv):
    url = "nats://127.0.0.1:4222"
    if len(argv) > 1 and argv[0] == "--nats":
        url, argv = argv[1], argv[2:]
    nc = await nats.connect(url)
    if argv[0] == "--batch":
        with open(argv[1], encoding="utf-8") as f:
            for line in f:
                sent = json.loads(line)
                body = json.dumps(sent["body"], ensure_ascii=False)
                msg = await nc.request(
                    f"lc.cmd.v1.{sent['tenant']}.{sent['family']}", body.encode(), timeout=30
                )
                headers = msg.headers or {}
                if "Nats-Service-Error-Code" in headers:
                    out = {"error": {"code": int(headers["Nats-Service-Error-Code"]),
                                     "reason": reason(headers)}}
                else:
                    out = {"answer": json.loads(msg.data)}
                print(json.dumps(out, ensure_ascii=False), flush=True)
        await nc.close()
        return 0
    tenant, family, body = argv[0], argv[1], argv[2]
    msg = await nc.request(f"lc.cmd.v1.{tenant}.{family}", body.encode(), timeout=30)
    await nc.close()
    headers = msg.headers or {}
    if "Nats-Service-Error-Code" in headers:
        print(f"{headers['Nats-Service-Error-Code']} {reason(headers)}", file=sys.stderr)
        return 1
    print(json.dumps(json.loads(msg.data), ensure_ascii=False))
    return 0


sys.exit(asyncio.run(main(sys.argv[1:])))
