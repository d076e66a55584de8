#!/usr/bin/env python3
"""A ComfyUI for the job rows of bench/run: one GPU that runs prompts first in, first out, each taking
JOB_MS milliseconds (0: instant), with ComfyUI's HTTP shapes and websocket messages. Needs aiohttp.

  jobstub.py PORT JOB_MS

ComfyUI's routes the gateway and comfy-api-proxy use: GET /system_stats, GET /users, POST /prompt, GET /queue, GET /history/{id},
POST /queue (delete, clear), POST /interrupt, POST /api/jobs/{id}/cancel, GET /ws (status broadcasts;
execution_start, executing and execution_success to the prompt's client). GET /object_info answers 404,
so the gateway holds prompts unchecked. The bench reads what happened from GET /bench/stats: for each prompt
its owner tag (the last folder-free part of its SaveImage filename_prefix) and when it arrived, started and
finished (time.time()), or one prompt's at GET /bench/stats/{id}; POST /bench/reset forgets everything (`{"job_ms": N}` also sets the job time).
"""
import asyncio, json, sys, time, uuid

from aiohttp import WSMsgType, web


class GPU:
    def __init__(self, job_ms):
        self.job_seconds = job_ms / 1000
        self.pending = []          # [number, id, prompt, extra, outputs]
        self.running = None
        self.history = {}
        self.stats = {}
        self.sockets = {}          # client id -> websocket
        self.number = 0
        self.wakeup = asyncio.Event()
        self.interrupt = set()

    async def send(self, message, client=None):
        text = json.dumps(message)
        targets = [self.sockets.get(client)] if client else list(self.sockets.values())
        for ws in targets:
            if ws is not None and not ws.closed:
                try:
                    await ws.send_str(text)
                except ConnectionError:
                    pass

    async def status(self):
        remaining = len(self.pending) + (1 if self.running else 0)
        await self.send({"type": "status", "data": {"status": {"exec_info": {"queue_remaining": remaining}}}})

    async def run(self):
        while True:
            while not self.pending:
                self.wakeup.clear()
                await self.wakeup.wait()
            item = self.pending.pop(0)
            self.running = item
            number, prompt_id, prompt, extra, _ = item
            client = extra.get("client_id")
            self.stats[prompt_id]["started"] = time.time()
            await self.send({"type": "execution_start", "data": {"prompt_id": prompt_id}}, client)
            if self.job_seconds:
                await asyncio.sleep(self.job_seconds)
            interrupted = prompt_id in self.interrupt
            outputs = {}
            for node_id, node in prompt.items():
                if node.get("class_type") == "SaveImage":
                    folder, _, base = node["inputs"].get("filename_prefix", "out").rpartition("/")
                    outputs[node_id] = {"images": [{"filename": f"{base}_{number:05}_.png", "subfolder": folder, "type": "output"}]}
            now = int(time.time() * 1000)
            end = ["execution_interrupted" if interrupted else "execution_success", {"prompt_id": prompt_id, "timestamp": now}]
            self.history[prompt_id] = {
                "prompt": item, "outputs": {} if interrupted else outputs,
                "status": {"status_str": "error" if interrupted else "success", "completed": not interrupted,
                           "messages": [["execution_start", {"prompt_id": prompt_id, "timestamp": now}], end]},
                "meta": {},
            }
            self.stats[prompt_id]["finished"] = time.time()
            self.running = None
            await self.send({"type": end[0], "data": end[1]}, client)
            await self.send({"type": "executing", "data": {"node": None, "prompt_id": prompt_id}}, client)
            await self.status()


def tag_of(prompt):
    for node in prompt.values():
        if node.get("class_type") == "SaveImage":
            return node["inputs"].get("filename_prefix", "").rpartition("/")[2]
    return ""


def app(gpu):
    routes = web.RouteTableDef()

    @routes.post("/prompt")
    async def prompt(request):
        body = await request.json()
        prompt_id = body.get("prompt_id") or str(uuid.uuid4())
        if prompt_id in gpu.stats:
            return web.json_response({"error": {"type": "duplicate", "message": "prompt_id exists"}, "node_errors": {}}, status=400)
        extra = body.get("extra_data", {})
        if "client_id" in body:
            extra["client_id"] = body["client_id"]
        gpu.number += 1
        gpu.stats[prompt_id] = {"tag": tag_of(body["prompt"]), "arrived": time.time()}
        gpu.pending.append([gpu.number, prompt_id, body["prompt"], extra, []])
        gpu.wakeup.set()
        await gpu.status()
        return web.json_response({"prompt_id": prompt_id, "number": gpu.number, "node_errors": {}})

    @routes.get("/users")
    async def users(request):
        # ComfyUI without --multi-user.
        return web.json_response({"storage": "server", "migrated": True})

    @routes.get("/system_stats")
    async def system_stats(request):
        # ComfyUI's shape, with one made-up GPU: what a gateway's watch of its backends reads.
        return web.json_response({
            "system": {"os": "posix", "comfyui_version": "0.3.64", "python_version": sys.version, "embedded_python": False},
            "devices": [{"name": "cuda:0 bench GPU", "type": "cuda", "index": 0,
                         "vram_total": 25769803776, "vram_free": 25769803776,
                         "torch_vram_total": 0, "torch_vram_free": 0}],
        })

    @routes.get("/queue")
    async def queue(request):
        return web.json_response({"queue_running": [gpu.running] if gpu.running else [], "queue_pending": gpu.pending})

    @routes.get("/history/{prompt_id}")
    async def history_item(request):
        prompt_id = request.match_info["prompt_id"]
        return web.json_response({prompt_id: gpu.history[prompt_id]} if prompt_id in gpu.history else {})

    @routes.post("/queue")
    async def queue_control(request):
        body = await request.json()
        if body.get("clear"):
            for item in gpu.pending:
                gpu.stats.pop(item[1], None)
            gpu.pending.clear()
        doomed = set(body.get("delete", []))
        for item in [item for item in gpu.pending if item[1] in doomed]:
            gpu.pending.remove(item)
            gpu.stats.pop(item[1], None)
        await gpu.status()
        return web.json_response({})

    @routes.post("/interrupt")
    async def interrupt(request):
        body = await request.json() if request.can_read_body else {}
        if gpu.running and body.get("prompt_id") in (None, gpu.running[1]):
            gpu.interrupt.add(gpu.running[1])
        return web.json_response({})

    @routes.post("/api/jobs/{prompt_id}/cancel")
    async def cancel(request):
        prompt_id = request.match_info["prompt_id"]
        gpu.pending[:] = [item for item in gpu.pending if item[1] != prompt_id]
        if gpu.running and gpu.running[1] == prompt_id:
            gpu.interrupt.add(prompt_id)
        return web.json_response({})

    @routes.get("/ws")
    async def websocket(request):
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        client = request.query.get("clientId") or uuid.uuid4().hex
        gpu.sockets[client] = ws
        await ws.send_str(json.dumps({"type": "status", "data": {"status": {"exec_info": {"queue_remaining": len(gpu.pending)}}, "sid": client}}))
        async for message in ws:
            if message.type == WSMsgType.ERROR:
                break
        gpu.sockets.pop(client, None)
        return ws

    @routes.get("/bench/stats")
    async def stats(request):
        return web.json_response(gpu.stats)

    @routes.get("/bench/stats/{prompt_id}")
    async def stats_item(request):
        return web.json_response(gpu.stats.get(request.match_info["prompt_id"], {}))

    @routes.post("/bench/reset")
    async def reset(request):
        body = await request.json() if request.can_read_body else {}
        gpu.job_seconds = body.get("job_ms", gpu.job_seconds * 1000) / 1000
        gpu.pending.clear()
        gpu.history.clear()
        gpu.stats.clear()
        return web.json_response({})

    application = web.Application(client_max_size=64 << 20)
    application.add_routes(routes)

    async def start(_):
        application["runner"] = asyncio.create_task(gpu.run())
    application.on_startup.append(start)
    return application


if __name__ == "__main__":
    port, job_ms = int(sys.argv[1]), float(sys.argv[2])
    web.run_app(app(GPU(job_ms)), host="127.0.0.1", port=port, print=None, access_log=None)
