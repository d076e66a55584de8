#!/usr/bin/env python3
"""ComfyUI's prompt side for the isolation rows of bench/run (standard library only).

  promptstub.py serve PORT HISTORY_FILE
      On 127.0.0.1:PORT: POST /prompt runs the prompt at once, as ComfyUI 0.3.64 would run EmptyImage + SaveImage
      (one image per SaveImage, named from its filename_prefix, which the gateway has moved under the user's
      folder), and answers {"prompt_id", "number", "node_errors"}. POST /write-history writes every history
      entry so far, in ComfyUI's `GET /history` shape and order, to HISTORY_FILE (which nginx then serves).
      GET /queue (always empty: prompts run at once) and GET /history/{prompt_id} answer the gateway's job queue.
  promptstub.py fill URL OWN_TOKEN OWN OTHER_TOKEN OTHERS
      queues OWN + OTHERS EmptyImage + SaveImage prompts at URL/prompt (the gateway), one Bearer token each,
      the owner's spread evenly among the others'; exits 1 (reason on stderr) when one is not accepted.
"""
import http.client, json, sys, time, uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


def serve(port, history_file):
    history, counters = {}, {}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def answer(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path == "/queue":
                return self.answer(200, {"queue_running": [], "queue_pending": []})
            if self.path.startswith("/history/"):
                prompt_id = self.path[len("/history/"):]
                return self.answer(200, {prompt_id: history[prompt_id]} if prompt_id in history else {})
            return self.answer(404, {})

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.path == "/write-history":
                with open(history_file, "w") as out:
                    json.dump(history, out)
                return self.answer(200, {"items": len(history)})
            if self.path != "/prompt":
                return self.answer(404, {})
            request = json.loads(body)
            prompt, extra = request["prompt"], request.get("extra_data", {})
            prompt_id = request.get("prompt_id") or str(uuid.uuid4())
            number = len(history)
            now = int(time.time() * 1000)
            outputs, meta = {}, {}
            for node_id, node in prompt.items():
                if node.get("class_type") != "SaveImage":
                    continue
                folder, _, base = node["inputs"]["filename_prefix"].rpartition("/")
                counters[folder, base] = counters.get((folder, base), 0) + 1
                name = f"{base}_{counters[folder, base]:05}_.png"
                outputs[node_id] = {"images": [{"filename": name, "subfolder": folder, "type": "output"}]}
                meta[node_id] = {"node_id": node_id, "display_node": node_id, "parent_node": None, "real_node_id": node_id}
            history[prompt_id] = {
                "prompt": [number, prompt_id, prompt, extra, list(outputs)],
                "outputs": outputs,
                "status": {"status_str": "success", "completed": True, "messages": [
                    ["execution_start", {"prompt_id": prompt_id, "timestamp": now}],
                    ["execution_cached", {"nodes": [], "prompt_id": prompt_id, "timestamp": now}],
                    ["execution_success", {"prompt_id": prompt_id, "timestamp": now}]]},
                "meta": meta,
            }
            self.answer(200, {"prompt_id": prompt_id, "number": number, "node_errors": {}})

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


PROMPT = {
    "5": {"class_type": "EmptyImage", "inputs": {"width": 512, "height": 512, "batch_size": 1, "color": 0}},
    "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "ComfyUI", "images": ["5", 0]}},
}


def fill(url, own_token, own, other_token, others):
    target = urlsplit(url)
    connection = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
    total = own + others
    for index in range(total):
        # Item i is the owner's when it crosses the next multiple of total/own: own items spread evenly.
        token = own_token if (index + 1) * own // total > index * own // total else other_token
        body = json.dumps({"prompt": PROMPT, "client_id": "bench"}).encode()
        connection.request("POST", "/prompt", body, {"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        response = connection.getresponse()
        answer = response.read()
        if response.status != 200 or b"prompt_id" not in answer:
            sys.exit(f"prompt {index} not accepted: {response.status} {answer[:200]!r}")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "serve":
        serve(int(sys.argv[2]), sys.argv[3])
    elif len(sys.argv) == 7 and sys.argv[1] == "fill":
        fill(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5], int(sys.argv[6]))
    else:
        sys.exit(__doc__)
