"""Two replicas behind nginx (deploy/serve.py): every session stays on one replica, and downloads work.
And the image that runs the same setup: what of its Dockerfile can be checked without a Docker engine.

Sessions are driven at the protocol level, as Streamlit's frontend talks to the server: an HTTP page load
that keeps its cookies, then the websocket /_stcore/stream (subprotocol "streamlit") with the same cookies,
carrying Streamlit's own protobufs. nginx names the replica that answered in an X-Upstream header, on HTTP
responses and on the websocket's upgrade alike.

Without nginx these tests skip and say why; with GRADIENT_LAB_REQUIRE_NGINX=1 or
GRADIENT_LAB_REQUIRE_BROWSER=1 (as .ci/run sets them) a missing nginx is a failure instead.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import shlex
import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from http.cookies import SimpleCookie
from urllib.parse import urlsplit

import pytest
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from websockets.sync.client import connect

from core import export
from core.figures import spec as figure_spec
from deploy.serve import Cluster, find_nginx
from tests.helpers import ROOT

REQUIRED = "1" in (os.environ.get("GRADIENT_LAB_REQUIRE_NGINX"), os.environ.get("GRADIENT_LAB_REQUIRE_BROWSER"))
AFFINITY = "gradient_lab_affinity"
PAGE = "loss_scaling"
VISITORS = 16  # fresh browsers: all on one of two replicas by chance has probability 2**-15
RUN_TIMEOUT = 60  # seconds for one script run: a replica's first page imports torch on a busy machine
DONE = {ForwardMsg.FINISHED_SUCCESSFULLY, ForwardMsg.FINISHED_WITH_COMPILE_ERROR}


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@pytest.fixture(scope="module")
def proxy(tmp_path_factory):
    if find_nginx() is None:
        message = "no nginx: install Debian's package with `apt-get install -y nginx` to run the proxy tests"
        if REQUIRED:
            pytest.fail(message)
        pytest.skip(message)
    port, *replicas = free_ports(3)
    workdir = tmp_path_factory.mktemp("serve")
    with open(workdir / "cluster.log", "w+") as log:
        cluster = Cluster(port, replicas, workdir, log=log)
        try:
            cluster.start()
        except RuntimeError as error:
            log.seek(0)
            pytest.fail(f"{error}\n{log.read()[-3000:]}")
        try:
            yield cluster
        finally:
            cluster.stop()


class Visitor:
    """One browser: its own cookie jar, its HTTP requests and its websocket to the app."""

    def __init__(self, port: int):
        self.port = port
        self.cookies: dict[str, str] = {}
        self.session_id = ""

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cookie_header(self) -> dict[str, str]:
        return {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())} if self.cookies else {}

    def get(self, path: str) -> tuple[int, str, bytes]:
        """GET through the proxy with this browser's cookies: status, the replica that answered, body."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=RUN_TIMEOUT)
        try:
            connection.request("GET", path, headers=self.cookie_header())
            response = connection.getresponse()
            body = response.read()
        finally:
            connection.close()
        for value in response.headers.get_all("Set-Cookie") or []:
            jar = SimpleCookie()
            jar.load(value)
            self.cookies.update({name: morsel.value for name, morsel in jar.items()})
        return response.status, response.headers.get("X-Upstream", ""), body

    def open_page(self) -> str:
        """A page load as a browser does it; the replica that served the requests carrying the cookie."""
        status, _, _ = self.get("/")
        assert status == 200 and AFFINITY in self.cookies
        replicas = {self.get(path)[1] for path in ("/_stcore/health", "/_stcore/host-config", f"/{PAGE}")}
        assert len(replicas) == 1, f"one browser's requests reached {replicas}"
        return replicas.pop()

    @contextlib.contextmanager
    def websocket(self):
        """The app's websocket, as the frontend opens it: a reconnect names the session it resumes."""
        xsrf = self.cookies.get("_streamlit_xsrf", "none")
        protocols = ["streamlit", xsrf] + ([self.session_id] if self.session_id else [])
        with connect(f"ws://127.0.0.1:{self.port}/_stcore/stream", subprotocols=protocols, origin=self.origin,
                     additional_headers=self.cookie_header(), proxy=None, max_size=None, open_timeout=30) as ws:
            yield ws

    def run(self, ws, page: str = "") -> list[ForwardMsg]:
        """BackMsg.rerun_script for `page`; every ForwardMsg until the run ends."""
        msg = BackMsg()
        msg.rerun_script.page_name = page
        msg.rerun_script.context_info.url = f"{self.origin}/{page}"
        ws.send(msg.SerializeToString())
        received, started = [], False
        deadline = time.monotonic() + RUN_TIMEOUT
        while time.monotonic() < deadline:
            fm = ForwardMsg.FromString(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            received.append(fm)
            if fm.WhichOneof("type") == "new_session":  # every run opens with it, naming the session
                self.session_id, started = fm.new_session.initialize.session_id, True
            if fm.WhichOneof("type") == "script_finished" and fm.script_finished in DONE:
                assert started and fm.script_finished == ForwardMsg.FINISHED_SUCCESSFULLY
                return received
        raise AssertionError(f"no script_finished within {RUN_TIMEOUT} s")

    def deferred_url(self, ws, file_id: str) -> str:
        """What the frontend does when a deferred download button is clicked: ask the session for the URL."""
        msg = BackMsg()
        request = msg.backend_operation_request
        request.request_id = uuid.uuid4().hex
        request.session_id = self.session_id
        request.deferred_file.file_id = file_id
        ws.send(msg.SerializeToString())
        deadline = time.monotonic() + RUN_TIMEOUT
        while time.monotonic() < deadline:
            fm = ForwardMsg.FromString(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            response = fm.backend_operation_response
            if fm.WhichOneof("type") == "backend_operation_response" and response.request_id == request.request_id:
                assert not response.error_msg, response.error_msg
                return response.deferred_file.url
        raise AssertionError(f"no answer to the download request within {RUN_TIMEOUT} s")


def download_buttons(messages: list[ForwardMsg]) -> list:
    return [fm.delta.new_element.download_button for fm in messages
            if fm.WhichOneof("type") == "delta" and fm.delta.WhichOneof("type") == "new_element"
            and fm.delta.new_element.WhichOneof("type") == "download_button"]


@pytest.fixture(scope="module")
def visitors(proxy):
    """Fresh browsers, each with the replica its cookie chose."""
    return [(v, v.open_page()) for v in (Visitor(proxy.port) for _ in range(VISITORS))]


def test_each_browser_stays_on_one_replica_and_browsers_spread_over_both(proxy, visitors):
    replicas = {f"127.0.0.1:{p}" for p in proxy.replica_ports}
    assert {replica for _, replica in visitors} == replicas
    assert len({v.cookies[AFFINITY] for v, _ in visitors}) == VISITORS  # a cookie of its own each
    for visitor, replica in visitors[:4]:
        for _ in range(3):
            assert visitor.get("/_stcore/health")[1] == replica


def test_a_client_without_the_cookie_is_held_by_its_address(proxy):
    seen = {Visitor(proxy.port).get("/_stcore/health")[1] for _ in range(6)}
    assert len(seen) == 1


def test_a_session_and_its_download_stay_on_its_replica_and_a_reconnect_resumes_it(proxy, visitors):
    first, second = {}, {}
    for visitor, replica in visitors:
        (first if not first or replica == next(iter(first.values())) else second).setdefault(visitor, replica)
    (a, replica_a), (b, replica_b) = next(iter(first.items())), next(iter(second.items()))
    assert replica_a != replica_b

    def open_b() -> str:
        """Session B on the other replica, at the same time as A: each replica's first run is a cold start."""
        with b.websocket() as ws:
            assert ws.response.headers["X-Upstream"] == replica_b
            b.run(ws)
            return b.session_id

    first_b = ThreadPoolExecutor(1).submit(open_b)

    # Session A on its replica: the websocket lands where its page load did, the page draws its download
    # buttons, and a click's file is served by that replica with that session's cookie.
    with a.websocket() as ws:
        assert ws.response.headers["X-Upstream"] == replica_a
        buttons = download_buttons(a.run(ws, PAGE))
        csv = next(button for button in buttons if button.id.endswith("_csv"))
        url = a.deferred_url(ws, csv.deferred_file_id)
        status, replica, body = a.get(urlsplit(url).path)
        assert (status, replica) == (200, replica_a)
        name = csv.id.rsplit(f"{PAGE}_", 1)[1].removesuffix("_csv")
        data, _ = figure_spec(PAGE, name, export.settings_for(PAGE, None))
        assert body == data.to_csv(index=False).encode()

        # The same address from a browser held by the other replica: that replica never had the file.
        assert b.get(urlsplit(url).path)[:2] == (404, replica_b)

    # Session B's websocket dropped; the reconnect, naming the session as the frontend does, reaches the
    # same replica, which resumes that very session.
    session = first_b.result(timeout=2 * RUN_TIMEOUT)
    with b.websocket() as ws:
        assert ws.response.headers["X-Upstream"] == replica_b
        b.run(ws)
        assert b.session_id == session

    # The same reconnect through the other replica (A's cookie chose it) cannot resume that session.
    a.session_id = session
    with a.websocket() as ws:
        assert ws.response.headers["X-Upstream"] == replica_a
        a.run(ws)
        assert a.session_id != session


def dockerfile() -> list[tuple[str, str]]:
    """The Dockerfile's instructions, continuation lines joined: (INSTRUCTION, arguments)."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines
            if line and not line.startswith("#")]


def test_the_image_installs_the_cpu_build_of_requirements_torch_then_requirements():
    pin = re.search(r"^torch==(\S+)", (ROOT / "requirements.txt").read_text(), re.MULTILINE).group(1)
    commands = [part.strip() for name, args in dockerfile() if name == "RUN" for part in args.split("&&")]
    torch = [c for c in commands if re.match(r"pip install .*\btorch\b", c)]
    assert len(torch) == 1
    words = shlex.split(torch[0])
    assert f"torch=={pin}" in words
    assert words[words.index("--index-url") + 1] == "https://download.pytorch.org/whl/cpu"
    requirements = commands.index("pip install -r requirements.txt")
    assert commands.index(torch[0]) < requirements  # then requirements.txt finds torch satisfied
    assert any(re.match(r"apt-get install .*\bnginx\b", c) for c in commands)
    assert dockerfile()[0][0] == "FROM" and dockerfile()[0][1].startswith("python:3.11")


def test_the_image_serves_on_its_exposed_port_as_a_user_that_is_not_root():
    instructions = dockerfile()
    exposed = [args for name, args in instructions if name == "EXPOSE"]
    assert exposed == ["8501"]
    command = [word for name, args in instructions if name == "CMD" for word in json.loads(args)]  # exec form
    assert command[:2] == ["python", "deploy/serve.py"]
    assert command[command.index("--port") + 1] == "8501" and command[command.index("--listen") + 1] == "0.0.0.0"
    users = [args for name, args in instructions if name == "USER"]
    assert users and users[-1] not in ("root", "0")
    names = [name for name, _ in instructions]
    assert len(names) - 1 - names[::-1].index("USER") < names.index("CMD")  # the server starts as that user


def test_the_build_context_leaves_out_the_virtualenv_history_and_run_output():
    patterns = {line.strip().strip("/") for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")}
    assert {".venv", ".git", "artifacts", "figures"} <= patterns
