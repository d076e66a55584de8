#!/usr/bin/env python3
"""Websocket source and load client for bench/run (standard library only).

  wsbench.py serve PORT
      A websocket source on 127.0.0.1:PORT. A client asks for a stream in the query string:
        /ws?mode=binary&n=N&size=S   N binary frames of S bytes, then a close frame
        /ws?mode=text&n=N            N small JSON text frames (like ComfyUI's progress messages), then close
        /ws?mode=hold                nothing; the connection stays open until the client leaves
  wsbench.py stream URL [HEADER ...]  receive one stream; prints 'RESULT seconds=… bytes=… frames=…'
  wsbench.py hold URL COUNT [HEADER ...]
      open COUNT websockets, print 'OPEN n', keep them until stdin closes
"""
import asyncio, base64, hashlib, os, socket, struct, sys, time
from urllib.parse import urlsplit, parse_qs

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TEXT = b'{"type":"progress","data":{"value":7,"max":20,"prompt_id":"bench","node":"3"}}'


def frame_header(opcode, length):
    if length < 126:
        return struct.pack("!BB", 0x80 | opcode, length)
    if length < 65536:
        return struct.pack("!BBH", 0x80 | opcode, 126, length)
    return struct.pack("!BBQ", 0x80 | opcode, 127, length)


def stream_plan(query):
    q = parse_qs(query)
    mode = q.get("mode", ["hold"])[0]
    n = int(q.get("n", ["0"])[0])
    if mode == "binary":
        size = int(q.get("size", ["262144"])[0])
        return mode, n, frame_header(2, size) + os.urandom(size)
    if mode == "text":
        return mode, n, frame_header(1, len(TEXT)) + TEXT
    return mode, 0, b""


async def serve_client(reader, writer):
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        target = lines[0].split(" ")[1]
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        key = headers.get("sec-websocket-key", "")
        accept = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
        writer.write(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Accept: {accept}\r\n\r\n").encode())
        mode, n, frame = stream_plan(urlsplit(target).query)
        if mode in ("binary", "text"):
            batch = max(1, (1 << 20) // len(frame))
            chunk = frame * batch
            sent = 0
            while sent < n:
                count = min(batch, n - sent)
                writer.write(chunk if count == batch else frame * count)
                await writer.drain()
                sent += count
            writer.write(frame_header(8, 2) + struct.pack("!H", 1000))
            await writer.drain()
        while await reader.read(65536):
            pass
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


def handshake_bytes(url, headers):
    parts = urlsplit(url)
    target = parts.path + ("?" + parts.query if parts.query else "")
    key = base64.b64encode(os.urandom(16)).decode()
    text = (f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n")
    for h in headers:
        text += h + "\r\n"
    return parts, (text + "\r\n").encode()


def expected_stream_bytes(url):
    mode, n, frame = stream_plan(urlsplit(url).query)
    return n, n * len(frame)


def stream(url, headers):
    parts, hs = handshake_bytes(url, headers)
    frames, total = expected_stream_bytes(url)
    s = socket.create_connection((parts.hostname, parts.port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(hs)
    buf = b""
    while b"\r\n\r\n" not in buf:
        data = s.recv(65536)
        if not data:
            sys.exit(f"connection closed during the handshake: {buf[:200]!r}")
        buf += data
    head, rest = buf.split(b"\r\n\r\n", 1)
    if b" 101 " not in head.split(b"\r\n")[0]:
        sys.exit(f"handshake refused: {head.splitlines()[0]!r}")
    received = len(rest)
    start = time.perf_counter()
    view = bytearray(4 << 20)
    while received < total:
        got = s.recv_into(view)
        if got == 0:
            sys.exit(f"stream ended after {received} of {total} bytes")
        received += got
    elapsed = time.perf_counter() - start
    s.sendall(struct.pack("!BB", 0x88, 0x82) + b"\0\0\0\0" + struct.pack("!H", 1000))
    s.close()
    print(f"RESULT seconds={elapsed:.6f} bytes={total} frames={frames}")


async def hold(url, count, headers):
    parts, _ = handshake_bytes(url, headers)
    conns = []

    async def open_one():
        _, hs = handshake_bytes(url, headers)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        writer.write(hs)
        head = await reader.readuntil(b"\r\n\r\n")
        if b" 101 " not in head.split(b"\r\n")[0]:
            raise RuntimeError(f"handshake refused: {head.splitlines()[0]!r}")
        conns.append(writer)

    sem = asyncio.Semaphore(50)

    async def guarded():
        async with sem:
            await open_one()

    await asyncio.gather(*(guarded() for _ in range(count)))
    print(f"OPEN {len(conns)}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    for w in conns:
        w.close()


async def serve(port):
    server = await asyncio.start_server(serve_client, "127.0.0.1", port, backlog=2048)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "serve":
        asyncio.run(serve(int(sys.argv[2])))
    elif cmd == "stream":
        stream(sys.argv[2], sys.argv[3:])
    elif cmd == "hold":
        asyncio.run(hold(sys.argv[2], int(sys.argv[3]), sys.argv[4:]))
    else:
        sys.exit(__doc__)
