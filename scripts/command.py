#!/usr/bin/env python3
"""Sends a command to Ledgerclock's command service with nats-py, a NATS client no one
here wrote.

    PYTHONPATH=.tools/python python3 scripts/command.py [--nats URL] TENANT FAMILY JSON

FAMILY is rules, departments, people, requests or schedules; JSON is
{"command_id": ..., "actor": ..., "command": {...}}. Prints the answer (the events
stored, or "already_done") and exits 1 with the service's code and reason when the
command is refused (400 invalid, 404 unknown, 409 conflict).
"""
import asyncio
import json
import sys

import nats


async def main(argv):
    url = "nats://127.0.0.1:4222"
    if len(argv) > 1 and argv[0] == "--nats":
        url, argv = argv[1], argv[2:]
    tenant, family, body = argv[0], argv[1], argv[2]
    nc = await nats.connect(url)
    msg = await nc.request(f"lc.cmd.v1.{tenant}.{family}", body.encode(), timeout=30)
    await nc.close()
    headers = msg.headers or {}
    if "Nats-Service-Error-Code" in headers:
        print(f"{headers['Nats-Service-Error-Code']} {headers.get('Nats-Service-Error', '')}", file=sys.stderr)
        return 1
    print(json.dumps(json.loads(msg.data), ensure_ascii=False))
    return 0


sys.exit(asyncio.run(main(sys.argv[1:])))
