"""The REST control endpoint of nvmultiurisrcbin (DeepStream's nvds_rest_server routes).

Bound to 127.0.0.1 by default; with a token, every request needs ``Authorization: Bearer <token>``.
Stream add/remove bodies are DeepStream's: ``{"key": "sensor", "value": {"camera_id": ...,
"camera_url": ..., "change": "camera_add" | "camera_remove", ...}}``."""

from __future__ import annotations

import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Optional

MAX_BODY = 1 << 20


class RestServer:
    def __init__(self, element: Any, host: str, port: int, token: Optional[str] = None) -> None:
        self.element = element
        self.token = token
        if host in ("localhost", ""):
            host = "127.0.0.1"
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, fmt: str, *args: Any) -> None:  # quiet: the pipeline reports
                pass

            def _send(self, code: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _authorized(self) -> bool:
                if not server.token:
                    return True
                got = self.headers.get("Authorization", "")
                ok = got.startswith("Bearer ") and hmac.compare_digest(got[7:].strip(), server.token)
                if not ok:
                    self._send(401, {"status": "UNAUTHORIZED", "reason": "missing or wrong bearer token"})
                return ok

            def _body(self) -> Optional[dict]:
                n = int(self.headers.get("Content-Length") or 0)
                if n > MAX_BODY:
                    self._send(413, {"status": "FAIL", "reason": "body too large"})
                    return None
                try:
                    body = json.loads(self.rfile.read(n) or b"{}")
                except ValueError:
                    self._send(400, {"status": "FAIL", "reason": "body is not JSON"})
                    return None
                if not isinstance(body, dict):
                    self._send(400, {"status": "FAIL", "reason": "body must be a JSON object"})
                    return None
                return body

            def do_GET(self) -> None:  # noqa: N802
                if not self._authorized():
                    return
                server.handle_get(self)

            def do_POST(self) -> None:  # noqa: N802
                if not self._authorized():
                    return
                body = self._body()
                if body is not None:
                    server.handle_post(self, body)

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.address = self.httpd.server_address
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"pysm-rest:{element.name}", daemon=True)
        self._thread.start()

    # -- routes ------------------------------------------------------------------------------------
    def handle_get(self, h: Any) -> None:
        el = self.element
        path = h.path.split("?")[0].rstrip("/")
        if path == "/api/v1/stream/get-stream-info":
            h._send(200, {"status": "HTTP/1.1 200 OK", "reason": "GET_LIVE_STREAM_INFO_SUCCESS",
                          "stream-info": {"stream-count": len(el.sources()), "stream-info": el.sources()}})
        elif path in ("/api/v1/health/get-dsready-state", "/api/v1/ready", "/api/v1/live", "/api/v1/startup"):
            from pysm.pipeline.state import PipelineState

            ready = el.state == PipelineState.PLAYING
            h._send(200 if ready or path == "/api/v1/live" else 503,
                    {"status": "HTTP/1.1 200 OK" if ready else "NOT_READY", "ds-ready": "YES" if ready else "NO"})
        elif path == "/api/v1/metrics":
            h._send(200, {"status": "HTTP/1.1 200 OK", "batches": el.batches_pushed,
                          "streams": {str(s["source_id"]): s["frames"] for s in el.sources()}})
        else:
            h._send(404, {"status": "FAIL", "reason": f"unknown route GET {path}"})

    def handle_post(self, h: Any, body: dict) -> None:
        el = self.element
        path = h.path.split("?")[0].rstrip("/")
        if path in ("/api/v1/stream/add", "/api/v1/stream/remove"):
            adding = path.endswith("add")
            fail = "STREAM_ADD_FAIL" if adding else "STREAM_REMOVE_FAIL"
            value = body.get("value") or body.get("event")
            if not isinstance(value, dict) or not value.get("camera_id") or not value.get("camera_url"):
                h._send(400, {"status": "HTTP/1.1 400 Bad Request", "reason": fail,
                              "detail": "value.camera_id and value.camera_url are required"})
                return
            change = str(value.get("change", "camera_add" if adding else "camera_remove"))
            try:
                if "add" in change:
                    sid = el.add_source(value["camera_url"], str(value["camera_id"]), value.get("camera_name"))
                    h._send(200, {"status": "HTTP/1.1 200 OK", "reason": "STREAM_ADD_SUCCESS", "source_id": sid})
                else:
                    ok = el.remove_source(str(value["camera_id"])) or el.remove_source(value["camera_url"])
                    if ok:
                        h._send(200, {"status": "HTTP/1.1 200 OK", "reason": "STREAM_REMOVE_SUCCESS"})
                    else:
                        h._send(400, {"status": "HTTP/1.1 400 Bad Request", "reason": fail,
                                      "detail": f"no stream '{value['camera_id']}'"})
            except Exception as exc:
                h._send(400, {"status": "HTTP/1.1 400 Bad Request", "reason": fail, "detail": str(exc)})
        elif path in ("/api/v1/mux/batched-push-timeout", "/api/v1/mux/max-latency"):
            key = path.rsplit("/", 1)[1]
            stream = body.get("stream", body)
            value = stream.get(key.replace("-", "_"), stream.get(key))
            try:
                el.set_property(key, int(value))
            except Exception as exc:
                h._send(400, {"status": "FAIL", "reason": str(exc)})
                return
            h._send(200, {"status": "HTTP/1.1 200 OK", "reason": f"{key.upper()}_UPDATE_SUCCESS"})
        elif path == "/api/v1/app/quit":
            h._send(200, {"status": "HTTP/1.1 200 OK", "reason": "APP_QUIT_SUCCESS"})
            threading.Thread(target=el.pipeline.stop, daemon=True).start()
        else:
            h._send(501, {"status": "FAIL", "reason": f"route POST {path} is not supported by pysm"})

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(2.0)
