#!/usr/bin/env python3
"""Websocket source and load client for bench/run (standard library only).

  wsbench.py serve PORT
      A websocket source on 127.0.0.1:PORT. A client asks for a stream in the query string:
        /ws?mode=binary&n=N&size=S   N binary frames of S bytes, then a close frame
        /ws?mode=text&n=N            N small JSON text frames (like ComfyUI's progress messages), then close
        /ws?mode=hold                nothing; the connection stays open until the client leaves
        Every text frame carries its sequence number (prompt_id, 8 digits); the first and last binary payloads
        start with theirs (8 bytes).
  wsbench.py stream URL [HEADER ...]
      receive one stream, parsing every frame; prints 'RESULT seconds=… bytes=… frames=… msgs_per_s=… mb_per_s=…'.
      The clock starts at the 101 answer and stops when the N-th message has been parsed. Exits 1 (reason on
      stderr) unless exactly N messages of the asked size arrive and the first and last carry seq 0 and N-1.
      WSBENCH_BULK=0 turns off the bulk header check of runs of small frames (frame-by-frame loop only).
  wsbench.py hold URL COUNT [HEADER ...]
      open COUNT websockets, print 'OPEN n', keep them until stdin closes
"""
import asyncio, base64, hashlib, os, socket, struct, sys, time
from urllib.parse import urlsplit, parse_qs

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
# A small JSON text frame like ComfyUI's progress messages: 78 bytes of payload (80 on the wire). Each one
# carries its sequence number (8 digits, in prompt_id) so that the client can check it got the right ones.
TEXT_PRE = b'{"type":"progress","data":{"value":7,"max":9,"prompt_id":"'
TEXT_POST = b'","node":3}}'
TEXT_LEN = len(TEXT_PRE) + 8 + len(TEXT_POST)
TEXT_MAX_FRAMES = 10 ** 8
TEXT_BATCH = 10000           # frames per write (800 kB); seq = batch * TEXT_BATCH + index
BATCH_BYTES = 1 << 20        # binary frames per write: as many as fit in 1 MiB (at least one)
SKIP_MIN = 1 << 16           # the client receives payloads this large into a reused buffer, not kept whole


def text_payload(seq):
    return TEXT_PRE + b"%08d" % seq + TEXT_POST


def binary_tag(seq):         # the first 8 bytes of binary frame number seq (when size >= 8)
    return struct.pack("!Q", seq)


def frame_header(opcode, length):
    if length < 126:
        return struct.pack("!BB", 0x80 | opcode, length)
    if length < 65536:
        return struct.pack("!BBH", 0x80 | opcode, 126, length)
    return struct.pack("!BBQ", 0x80 | opcode, 127, length)


def stream_plan(query):
    """(mode, frame count, payload size) asked for by a /ws query string."""
    q = parse_qs(query)
    mode = q.get("mode", ["hold"])[0]
    n = int(q.get("n", ["0"])[0])
    if n < 0:
        raise ValueError("n < 0")
    if mode == "binary":
        return mode, n, int(q.get("size", ["262144"])[0])
    if mode == "text":
        if n > TEXT_MAX_FRAMES:
            raise ValueError(f"at most {TEXT_MAX_FRAMES} text frames")
        return mode, n, TEXT_LEN
    return "hold", 0, 0


_text_template = None


def text_batches(n):
    """The text stream as write-sized chunks; every frame carries its own sequence number."""
    global _text_template
    if _text_template is None:    # TEXT_BATCH frames whose seq reads HHHH0000 … HHHH9999
        hdr = frame_header(1, TEXT_LEN)
        _text_template = b"".join(hdr + TEXT_PRE + b"HHHH%04d" % i + TEXT_POST for i in range(TEXT_BATCH))
    template, flen = _text_template, len(_text_template) // TEXT_BATCH

    def gen():
        for b, first in enumerate(range(0, n, TEXT_BATCH)):
            count = min(TEXT_BATCH, n - first)
            part = template if count == TEXT_BATCH else template[:count * flen]
            yield part.replace(b"HHHH", b"%04d" % b)   # one C-level pass stamps the high 4 digits
    return gen()


def binary_batches(n, size):
    """The binary stream as write-sized chunks of random payloads. The first and the last frame start with
    their seq (8 bytes); the ones in between with 8 bytes 0xff, so that their blocks are sent as prebuilt."""
    hdr = frame_header(2, size)
    frame = hdr + (b"\xff" * 8 + os.urandom(size - 8) if size >= 8 else os.urandom(size))
    flen = len(frame)
    batch = max(1, BATCH_BYTES // flen)
    block = frame * batch

    def stamped(first, count):
        chunk = bytearray(frame * count)
        if size >= 8:
            for seq in {0, n - 1}:
                if first <= seq < first + count:
                    struct.pack_into("!Q", chunk, (seq - first) * flen + len(hdr), seq)
        return bytes(chunk)

    def gen():
        for first in range(0, n, batch):
            count = min(batch, n - first)
            yield block if first > 0 and first + count < n else stamped(first, count)
    return gen()


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
        try:
            mode, n, size = stream_plan(urlsplit(target).query)
        except ValueError as e:
            writer.write(f"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\nX-Error: {e}\r\n\r\n".encode())
            await writer.drain()
            return
        batches = None            # prepared before the 101, so that the client's clock does not see it
        if mode == "text":
            batches = text_batches(n)
        elif mode == "binary":
            batches = binary_batches(n, size)
        key = headers.get("sec-websocket-key", "")
        accept = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
        writer.write(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Accept: {accept}\r\n\r\n").encode())
        if batches is not None:
            for chunk in batches:
                writer.write(chunk)
                await writer.drain()
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


def fail(message):
    print(f"wsbench stream: FAILED: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


def read_head(s):
    """Consumes exactly the HTTP response head (peeking first), so that no frame byte is read before the clock starts."""
    head = b""
    while True:
        peek = s.recv(65536, socket.MSG_PEEK)
        if not peek:
            fail(f"connection closed during the handshake: {head[:200]!r}")
        i = (head + peek).find(b"\r\n\r\n")
        take = len(peek) if i < 0 else i + 4 - len(head)
        got = s.recv(take, socket.MSG_WAITALL)
        if len(got) != take:
            fail("short read during the handshake")
        head += got
        if i >= 0:
            return head


def stream(url, headers):
    """Receives one stream of N frames; the clock runs from the 101 answer until the N-th message is parsed.

    Every frame is parsed (header, length, opcode), every message's length is checked, and the first and
    the last message must carry sequence numbers 0 and N-1. Anything else fails with exit status 1."""
    parts, hs = handshake_bytes(url, headers)
    try:
        mode, n, plen = stream_plan(urlsplit(url).query)
    except ValueError as e:
        fail(f"bad stream query: {e}")
    if mode == "hold":
        fail("stream needs mode=text or mode=binary")
    want = 0x81 if mode == "text" else 0x82            # FIN + text / binary, no RSV bits
    want_op = want & 0x0F

    def check(payload, seq, which):
        if mode == "text":
            ok, expected = payload == text_payload(seq), text_payload(seq)
        else:
            ok, expected = plen < 8 or payload[:8] == binary_tag(seq), binary_tag(seq)
        if not ok:
            fail(f"{which} message (seq {seq}) has the wrong payload: {bytes(payload[:100])!r}, expected {expected!r}")

    t0 = time.perf_counter()
    s = socket.create_connection((parts.hostname, parts.port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(hs)
    head = read_head(s)
    if b" 101 " not in head.split(b"\r\n")[0]:
        fail(f"handshake refused: {head.splitlines()[0]!r}")
    start = time.perf_counter()

    buf = bytearray(max(4 << 20, 4 * (plen + 14)))
    size = len(buf)
    mv = memoryview(buf)
    pos = end = 0                 # unparsed bytes are buf[pos:end]
    base = 0                      # stream bytes dropped from the front of buf
    messages = 0
    target = min(1, n)            # parse up to the first message (checked), then up to the N-th
    payload_at = -1               # where the last counted message's payload starts in buf (-1: in frag_payload)
    frags = None                  # payload pieces of a fragmented message in progress
    frag_payload = b""
    skip = 0                      # bytes still to receive of a large message whose payload is not kept
    # small messages: 2-byte headers at a fixed stride, checked in bulk below (WSBENCH_BULK=0: frame by frame)
    small = plen < 126 and os.environ.get("WSBENCH_BULK", "1") != "0"
    stride = plen + 2
    want_b, plen_b = bytes([want]), bytes([plen & 0x7F])
    run = 1 << 16                 # frames tried at once by the bulk check
    while messages < n:
        if skip:                  # receive the rest of a large payload into the (cache-warm) start of buf
            got = s.recv_into(mv[:min(skip, size)])
            if got == 0:
                fail(f"connection closed inside message {messages} of {n} ({base} bytes)")
            skip -= got
            base += got
            if skip:
                continue
            messages += 1
            payload_at = -1
            frag_payload = tag    # its first 8 bytes, all that check() looks at in a binary payload
        bulk = small
        while messages < target:
            if bulk and frags is None:
                # The whole frames in buf[pos:end], parsed in bulk: if every header at pos + i * stride reads
                # (FIN + opcode, plen), that is exactly where a frame-by-frame parse would find them. When one
                # differs, a shorter run found by halving is taken and the odd frame is parsed below; the next
                # run tried is twice the last one taken, so odd frames now and then cost little.
                k = full = min((end - pos) // stride, target - messages, run)
                while k > 1:
                    stop = pos + k * stride
                    if buf[pos:stop:stride].count(want_b) == k and buf[pos + 1:stop:stride].count(plen_b) == k:
                        messages += k
                        payload_at = stop - plen
                        pos = stop
                        break
                    k //= 2
                run = min(run * 2, 1 << 20) if k == full else max(2 * k, 64)
                if k < 16:        # few frames left, or odd ones: frame by frame until the next receive
                    bulk = False
                if messages == target:
                    break
            avail = end - pos
            if avail < 2:
                break
            b0 = buf[pos]
            ln = buf[pos + 1]
            if ln < 126:
                hl = 2
            elif ln == 126:
                if avail < 4:
                    break
                ln = buf[pos + 2] << 8 | buf[pos + 3]
                hl = 4
            elif ln == 127:
                if avail < 10:
                    break
                ln = int.from_bytes(buf[pos + 2:pos + 10], "big")
                hl = 10
            else:
                fail(f"masked frame from the server after {messages} messages")
            fe = pos + hl + ln
            if fe > end:
                if hl + ln > size:
                    fail(f"frame of {ln} bytes after {messages} messages; expected {plen}")
                if b0 == want and ln == plen and ln >= SKIP_MIN and avail >= hl + 8:
                    tag = bytes(buf[pos + hl:pos + hl + 8])
                    skip = fe - end   # counted as a message once these bytes have arrived
                    base += end
                    pos = end = 0
                break
            if b0 == want:                                   # the common case: one whole message
                if ln != plen:
                    fail(f"message {messages} has {ln} bytes; expected {plen}")
                messages += 1
                payload_at = pos + hl
            else:
                op = b0 & 0x0F
                if b0 & 0x70:
                    fail(f"frame with RSV bits set (0x{b0:02x}) after {messages} messages")
                if op == 8:
                    fail(f"stream closed after {messages} of {n} messages")
                if op in (9, 10):                            # ping / pong: not a message
                    pass
                elif op == want_op or op == 0:               # a fragment
                    if (op == 0) == (frags is None):
                        fail(f"bad fragment sequence (0x{b0:02x}) after {messages} messages")
                    frags = frags or []
                    frags.append(bytes(buf[pos + hl:fe]))
                    if b0 & 0x80:
                        frag_payload, frags = b"".join(frags), None
                        if len(frag_payload) != plen:
                            fail(f"message {messages} has {len(frag_payload)} bytes; expected {plen}")
                        messages += 1
                        payload_at = -1
                else:
                    fail(f"unexpected frame 0x{b0:02x} after {messages} messages")
            pos = fe
        if messages == target:
            payload = frag_payload if payload_at < 0 else mv[payload_at:payload_at + plen]
            check(payload, messages - 1, "first" if target == 1 else "last")
            if target == n:
                break
            target = n
            continue
        if skip:
            continue
        # need more bytes
        if pos == end:
            base += pos
            pos = end = 0
        elif size - end < (1 << 20) or pos + plen + 14 > size:   # room for a whole frame after pos
            buf[:end - pos] = buf[pos:end]
            base += pos
            end -= pos
            pos = 0
        got = s.recv_into(mv[end:])
        if got == 0:
            fail(f"connection closed after {messages} of {n} messages ({base + pos} bytes)")
        end += got
    elapsed = time.perf_counter() - start
    received = base + pos

    # After the N-th message only a close frame (or pings) may follow.
    tail = bytes(buf[pos:end])
    s.settimeout(10)
    closed = False
    try:
        while not closed:
            while len(tail) >= 2:
                b0, ln = tail[0], tail[1] & 0x7F
                hl = 2 if ln < 126 else 4 if ln == 126 else 10
                if len(tail) < hl:
                    break
                if hl > 2:
                    ln = int.from_bytes(tail[2:hl], "big")
                if len(tail) < hl + ln:
                    break
                op = b0 & 0x0F
                if op == 8:
                    closed = True
                    break
                if op not in (9, 10):
                    fail(f"more than {n} messages (frame 0x{b0:02x} after the last one)")
                tail = tail[hl + ln:]
            if closed:
                break
            data = s.recv(65536)
            if not data:
                break
            tail += data
    except socket.timeout:
        print(f"wsbench stream: warning: no close frame within 10 s after {n} messages", file=sys.stderr)
    try:
        s.sendall(struct.pack("!BB", 0x88, 0x82) + b"\0\0\0\0" + struct.pack("!H", 1000))
    except OSError:
        pass
    s.close()
    if elapsed <= 0:
        fail(f"clock did not advance ({elapsed})")
    print(f"RESULT seconds={elapsed:.6f} bytes={received} frames={messages} "
          f"msgs_per_s={messages / elapsed:.0f} mb_per_s={received / elapsed / 1e6:.1f} "
          f"handshake_ms={(start - t0) * 1e3:.3f}")


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
