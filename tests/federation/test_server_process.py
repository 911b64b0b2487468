"""`run_server` (behind `peernet node serve` and `peernet hub serve`), in a real process."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request

from federation.server_process import freeze_heap

SERVER = """
import gc, sys
from aiohttp import web
from federation.server_process import run_server

async def state(_request):
    loop = type(__import__("asyncio").get_running_loop()).__module__
    return web.json_response({"frozen": gc.get_freeze_count(), "loop": loop})

app = web.Application()
app.router.add_get("/", state)
run_server(app, host="127.0.0.1", port=int(sys.argv[1]), echo=lambda m: print(m, flush=True))
"""


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_served_app_runs_on_uvloop_with_its_startup_heap_frozen() -> None:
    port = _port()
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:  # noqa: S310
                    state = json.loads(r.read())
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "server did not come up"
                time.sleep(0.1)
        assert state["frozen"] > 1000  # the imported modules and the app, at least
        assert state["loop"].startswith("uvloop")
    finally:
        proc.terminate()
        out, _err = proc.communicate(timeout=10)
    # aiohttp's startup notice reached `echo`, first line only.
    assert out.splitlines()[0].startswith("======== Running on http://127.0.0.1:")


def test_freeze_heap_moves_live_objects_out_of_collection() -> None:
    import gc

    before = gc.get_freeze_count()
    try:
        freeze_heap()
        assert gc.get_freeze_count() > before
    finally:
        gc.unfreeze()  # a test process keeps making servers: give the objects back
    assert gc.get_freeze_count() == 0
