#!/usr/bin/env python3
"""The official comfy-sdk's usual flow against a ComfyGate gateway, through its public API only.

Run by ComfySDKTests (swift test), which starts the gateway in front of the ComfyUI stand-in and sets
COMFY_BASE_URL (the gateway's origin; the SDK adds /api/v2) and COMFY_API_KEY (a ComfyGate API token).
For the cancellation step it asks the test, on stdout, to hold the stand-in's execution and waits for a
line on stdin, so the job is cancelled while it runs, every time. Exits non-zero at the first expectation
that does not hold.
"""
from __future__ import annotations

import os
import struct
import sys
import uuid
import zlib

from comfy_sdk import (Comfy, IdempotencyKeyReuse, JobFailed, NotFound, OutputReady, Preview, Progress,
                       StatusChange)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# Core nodes only: load the uploaded image, save it.
GRAPH = {
    "1": {"class_type": "LoadImage", "inputs": {"image": ""}},
    "2": {"class_type": "SaveImage", "inputs": {"filename_prefix": "sdkflow", "images": ["1", 0]}},
}


def png(width: int = 16, height: int = 16) -> bytes:
    """The same small RGB PNG on every run, built with the standard library."""
    def chunk(tag: bytes, payload: bytes) -> bytes:
        return (struct.pack(">I", len(payload)) + tag + payload
                + struct.pack(">I", zlib.crc32(tag + payload) & 0xFFFFFFFF))
    rows = b"".join(b"\x00" + bytes((x * 16) % 256 for x in range(width) for _ in range(3)) for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return PNG_SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def check(condition: bool, what: str) -> None:
    print(("ok   " if condition else "FAIL ") + what, flush=True)
    if not condition:
        sys.exit(1)


def ask_test(request: str) -> None:
    """Asks the Swift test to act on the stand-in, and waits until it has."""
    print(f"@@ {request}", flush=True)
    answer = sys.stdin.readline().strip()
    check(answer == "done", f"the test did: {request}")


def main() -> int:
    check(bool(os.environ.get("COMFY_BASE_URL")), "COMFY_BASE_URL is set")
    with Comfy(api_key=os.environ["COMFY_API_KEY"], timeout=30) as client:
        image = png()
        asset = client.assets.from_bytes(image, filename="sdkflow_in.png", content_type="image/png")
        asset_id = asset.commit()
        check(bool(asset_id) and asset.hash.startswith("blake3:"), f"asset uploaded: {asset_id}")
        again = client.assets.from_bytes(image, filename="sdkflow_in.png", content_type="image/png")
        again.commit()
        check(again.hash == asset.hash and again.created_new is False, "the same bytes again took the by-hash path")

        workflow = client.workflows.from_json(GRAPH)
        workflow.set_input("1", "image", asset)
        job = client.submit(workflow)
        check(job.status in {"queued", "running", "succeeded"}, f"submitted job {job.id} ({job.status})")

        seen: list[str] = []
        last = None
        for event in job.events():
            last = event
            if isinstance(event, StatusChange):
                seen.append(f"status:{event.status}")
            elif isinstance(event, Progress):
                seen.append(f"progress:{event.value:.2f}")
            elif isinstance(event, Preview):
                seen.append("preview")
            elif isinstance(event, OutputReady):
                seen.append(f"output:{event.output.name}")
        print("     events:", " ".join(seen), flush=True)
        check(bool(seen) and seen[0].startswith("status:"), "the stream opens with a status snapshot")
        check(any(kind.startswith("output:") for kind in seen), "an output arrived before the end")
        check(isinstance(last, StatusChange) and last.status == "succeeded", "the stream ends on succeeded")

        job.result()
        outputs = job.get_outputs("2")
        check(len(outputs) == 1 and outputs[0].type == "image", "one image output from node 2")
        data = outputs[0].to_bytes()
        check(data[:8] == PNG_SIGNATURE, f"downloaded {outputs[0].name}, {len(data)} bytes of PNG")
        check(outputs[0].to_bytes(range=(0, 7)) == data[:8], "a ranged download gives exactly those bytes")
        check(client.jobs.get(job.id).status == "succeeded", "the job read again by id")
        back = job.get_workflow()
        check(back.format == "api" and "2" in back.graph, "the executed workflow came back")
        check(any(summary.id == job.id for summary in client.list_jobs(limit=5)), "the job is in the caller's list")

        # Another prefix, so ComfyUI cannot answer the job from its cache: it runs, and waits there while held.
        victim_workflow = client.workflows.from_json(
            {**GRAPH, "2": {"class_type": "SaveImage", "inputs": {"filename_prefix": "sdkvictim", "images": ["1", 0]}}})
        victim_workflow.set_input("1", "image", asset)
        ask_test("hold execution")
        victim = client.submit(victim_workflow)
        victim.cancel()
        check(victim.status in {"queued", "running", "canceling", "canceled"}, f"cancel answered {victim.status}")
        victim.wait(timeout=60)
        check(victim.status == "canceled", f"the cancelled job ended {victim.status}")
        try:
            victim.result()
            check(False, "result() of a cancelled job raises JobFailed")
        except JobFailed:
            check(True, "result() of a cancelled job raises JobFailed")
        ask_test("release execution")

        finished = client.run(workflow, timeout=60)
        check(finished.status == "succeeded", "run() waits for the result")

        try:
            client.jobs.get(str(uuid.uuid4()))
            check(False, "an unknown job is NotFound")
        except NotFound:
            check(True, "an unknown job is NotFound")
        key = str(uuid.uuid4())
        client.submit(workflow, idempotency_key=key)
        try:
            client.submit(workflow, idempotency_key=key)
            check(False, "a reused Idempotency-Key is refused")
        except IdempotencyKeyReuse:
            check(True, "a reused Idempotency-Key is refused")

        asset.delete()
        try:
            client.assets.get(asset_id)
            check(False, "a deleted asset is NotFound")
        except NotFound:
            check(True, "a deleted asset is NotFound")
    print("comfy-sdk flow: all expectations held", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
