"""downloadFile / uploadFile throughput and peak memory, side by side.

    python bench/files.py [--rounds 5] [--download-mib 1024] [--upload-mib 256]
                          [--quick] [--json PATH]

Download: a file of --download-mib MiB served by nginx (`nginx-light`; a Python static
server in another process when nginx is missing), fetched to a file by `ft.downloadFile`,
`curl -o`, urllib3 streaming in 64 KiB chunks, and `http.client` `readinto` with one reused
buffer (the ceiling a Python client can reach). Upload: a --upload-mib MiB file posted as
multipart/form-data to a server (another process) that discards the body with `recv_into`,
by `ft.uploadFile`, `curl -F`, a urllib3 streamed multipart body, and `requests` (which
builds the whole body in memory).

Bulk transfers: each contender runs in its own subprocess pinned to CPU 0 and the servers
to CPU 1 (`taskset -c`, when it exists and there are two CPUs), so a server never shares the
client's CPU; its peak RSS is its own VmHWM (see `measure`). Rounds are interleaved (every
contender once per round, order rotated) and the medians printed, with each contender's ratio
to http.client `readinto` (download) and to urllib3 (upload): the peers of issue 15's goals.
Python upload contenders first post a 1 KiB file, untimed, on the connection the timed upload
reuses (curl cannot). Files live in a temp dir under /tmp, removed at the end.
"""

from __future__ import annotations

import os
import sys

# bench/http.py would shadow the stdlib `http` package: keep this directory off sys.path.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import argparse  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from typing import Any, Dict, List, Optional, Tuple  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from bench.common import free_port, pinned, read_head, wait_listening  # noqa: E402
from bench.results import NO_STYLE, SPLIT, UNPINNED, Goal, Results, add_arguments  # noqa: E402

MiB = 1 << 20
CHUNK = 64 * 1024

# -- contenders (run in a child process: `files.py child <name> <url> <path> <workdir>`) ------


class Timed:
    """`with Timed() as timed:` the wall and the CPU time (every thread of this process) of
    the timed part, for the child's result: `seconds` and `cpu`. At these rates the server's
    side can be what limits MiB/s; the client's CPU per MiB still tells the clients apart."""

    def __enter__(self) -> "Timed":
        self.seconds, self.cpu = -time.perf_counter(), -time.process_time()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.seconds += time.perf_counter()
        self.cpu += time.process_time()

    def result(self, **fields: Any) -> Dict[str, Any]:
        return dict(fields, seconds=self.seconds, cpu=self.cpu)


def child_ft_download(url: str, path: str, workdir: str) -> Dict[str, Any]:
    import ftcore

    sandbox = os.path.join(workdir, "sandbox")
    rt = ftcore.Runtime(
        config={
            "sandbox": sandbox,
            "limits": {"downloadMaxBytes": 1 << 40},
            "networkTimeout": {"downloadFile": 600000},
        },
        entrypoints=False,
    )
    try:
        rt.transport("http")  # urllib3 and ssl imported before timing, as for the others
        with Timed() as timed:
            res = rt.downloadFile(url=url).result()
        size = os.path.getsize(res["tempFilePath"])
        os.unlink(res["tempFilePath"])
    finally:
        rt.close()
    return timed.result(bytes=size, status=res["statusCode"])


def child_urllib3_download(url: str, path: str, workdir: str) -> Dict[str, Any]:
    import urllib3

    pool = urllib3.PoolManager()
    with Timed() as timed:
        response = pool.request("GET", url, preload_content=False)
        with open(path, "wb") as handle:
            for chunk in response.stream(CHUNK):
                handle.write(chunk)
        response.release_conn()
    return timed.result(bytes=os.path.getsize(path), status=response.status)


def child_readinto_download(url: str, path: str, workdir: str) -> Dict[str, Any]:
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    with Timed() as timed:
        conn = http.client.HTTPConnection(parts.hostname, parts.port)
        conn.request("GET", parts.path)
        response = conn.getresponse()
        buffer = bytearray(256 * 1024)
        view = memoryview(buffer)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            while True:
                n = response.readinto(buffer)
                if not n:
                    break
                os.write(fd, view[:n])
        finally:
            os.close(fd)
        conn.close()
    return timed.result(bytes=os.path.getsize(path), status=response.status)


def child_ft_upload(url: str, path: str, workdir: str) -> Dict[str, Any]:
    import ftcore

    rt = ftcore.Runtime(
        config={"sandbox": os.path.dirname(path), "networkTimeout": {"uploadFile": 600000}},
        entrypoints=False,
    )
    try:
        rt.uploadFile(url=url, filePath=_warm_file(path), name="file").result()  # see _warm_file
        with Timed() as timed:
            res = rt.uploadFile(url=url, filePath=path, name="file", formData={"k": "v"}).result()
    finally:
        rt.close()
    return timed.result(bytes=int(res["data"]), status=res["statusCode"])


def _warm_file(path: str) -> str:
    """A 1 KiB file next to `path`. Each upload contender that runs in Python first posts it,
    untimed, over the connection the timed upload then reuses: one-time costs (imports, the
    first connection, the mimetypes table) stay out of the 256 MiB figure, for all alike."""
    warm = path + ".warm"
    if not os.path.exists(warm):
        with open(warm, "wb") as handle:
            handle.write(b"w" * 1024)
    return warm


def _multipart_parts(path: str) -> Tuple[bytes, bytes, str]:
    boundary = "----bench" + os.urandom(16).hex()
    head = (
        '--%s\r\nContent-Disposition: form-data; name="k"\r\n\r\nv\r\n'
        '--%s\r\nContent-Disposition: form-data; name="file"; filename="%s"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
        % (boundary, boundary, os.path.basename(path))
    ).encode()
    tail = ("\r\n--%s--\r\n" % boundary).encode()
    return head, tail, "multipart/form-data; boundary=" + boundary


def child_urllib3_upload(url: str, path: str, workdir: str) -> Dict[str, Any]:
    import urllib3

    head, tail, content_type = _multipart_parts(path)
    size = os.path.getsize(path)

    def body() -> Any:
        yield head
        with open(path, "rb") as handle:
            while True:
                piece = handle.read(256 * 1024)
                if not piece:
                    break
                yield piece
        yield tail

    pool = urllib3.PoolManager()
    with open(_warm_file(path), "rb") as handle:  # see _warm_file
        pool.request("POST", url, fields={"file": ("w", handle.read())})
    with Timed() as timed:
        response = pool.request(
            "POST",
            url,
            body=body(),
            headers={
                "Content-Type": content_type,
                "Content-Length": str(len(head) + size + len(tail)),
            },
        )
    return timed.result(bytes=int(response.data), status=response.status)


def child_requests_upload(url: str, path: str, workdir: str) -> Dict[str, Any]:
    import requests

    session = requests.Session()
    with open(_warm_file(path), "rb") as handle:  # see _warm_file
        session.post(url, files={"file": handle})
    with Timed() as timed, open(path, "rb") as handle:
        response = session.post(url, files={"file": handle}, data={"k": "v"})
    return timed.result(bytes=int(response.text), status=response.status_code)


CHILDREN = {
    "ft.downloadFile": child_ft_download,
    "urllib3 stream 64K": child_urllib3_download,
    "http.client readinto": child_readinto_download,
    "ft.uploadFile": child_ft_upload,
    "urllib3 streamed upload": child_urllib3_upload,
    "requests (buffers)": child_requests_upload,
}


def vm_hwm_mib(pid: object = "self") -> Optional[float]:
    """VmHWM (peak RSS of the current program image) from /proc, in MiB."""
    try:
        with open("/proc/%s/status" % pid) as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def run_child(name: str, argv: List[str]) -> None:
    result = CHILDREN[name](*argv)
    result["vmhwm"] = vm_hwm_mib()
    sys.stdout.write(json.dumps(result) + "\n")


# -- servers --------------------------------------------------------------------------------


NGINX_CONF = """
daemon off;
master_process off;
worker_processes 1;
error_log {dir}/error.log warn;
pid {dir}/nginx.pid;
events {{ worker_connections 64; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    types {{ application/octet-stream bin; }}
    server {{
        listen 127.0.0.1:{port};
        root {root};
    }}
}}
"""


def start_static_server(root: str, workdir: str) -> Tuple[subprocess.Popen, str, str]:
    """nginx when installed, else `python -m http.server` (slower: said in the output)."""
    port = free_port()
    nginx = shutil.which("nginx") or (
        "/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None
    )
    if nginx:
        conf = os.path.join(workdir, "nginx.conf")
        with open(conf, "w") as handle:
            handle.write(NGINX_CONF.format(dir=workdir, port=port, root=root))
        proc = subprocess.Popen(
            server_pin() + [nginx, "-c", conf, "-p", workdir], stderr=subprocess.DEVNULL
        )
        kind = "nginx"
    else:
        proc = subprocess.Popen(
            server_pin()
            + [
                sys.executable,
                "-m",
                "http.server",
                str(port),
                "--bind",
                "127.0.0.1",
                "--directory",
                root,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        kind = "python http.server"
    if not wait_listening(port):
        raise SystemExit("the static file server did not start")
    return proc, "http://127.0.0.1:%d" % port, kind


def sink_server(port: int) -> None:
    """Reads each request's Content-Length bytes into one buffer; answers the count."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(16)

    def serve(conn: socket.socket) -> None:
        buffer = bytearray(1 << 20)
        view = memoryview(buffer)
        pending = b""
        with conn:
            while True:
                request = read_head(conn, pending)
                if request is None:
                    return
                head, pending = request
                length, expect = 0, False
                for line in head.split(b"\r\n")[1:]:
                    key, _, value = line.partition(b":")
                    key = key.strip().lower()
                    if key == b"content-length":
                        length = int(value)
                    elif key == b"expect" and value.strip().lower() == b"100-continue":
                        expect = True
                if expect:
                    conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                left = length - len(pending)
                pending = b""
                while left > 0:
                    n = conn.recv_into(view, min(left, len(buffer)))
                    if not n:
                        return
                    left -= n
                text = str(length).encode()
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s"
                    % (len(text), text)
                )

    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


# -- the driver -----------------------------------------------------------------------------


def server_pin() -> List[str]:
    """The servers on CPU 1 (the last one), so a contender has CPU 0 to itself instead of
    landing on the server's CPU in some rounds and not in others."""
    return pinned((os.cpu_count() or 1) - 1)


def measure(cmd: List[str], env: Dict[str, str]) -> Tuple[Dict[str, Any], float, float]:
    """Run `cmd`; its JSON result, its own peak RSS in MiB and its CPU seconds: what a Python
    child timed itself (`Timed`), or for curl its whole run's (`os.wait4`; start-up included).

    Peak RSS is the program's own VmHWM: reported by a Python child itself at its end, or for
    curl the last value read from /proc/<pid>/status while it ran (a high-water mark, so the
    last reading is the peak up to then). `ru_maxrss` from `os.wait4` is only the fallback: on
    Linux it also counts the parent's RSS at the fork/vfork before exec, which would floor
    every figure at this driver's own size.
    """
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert proc.stdout is not None and proc.stderr is not None
    hwm: List[float] = []
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.02):  # sampling /proc, not synchronising anything
            value = vm_hwm_mib(proc.pid)
            if value is not None:
                hwm.append(value)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    err_chunks: List[bytes] = []
    reader = threading.Thread(target=lambda: err_chunks.append(proc.stderr.read()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    out = proc.stdout.read()
    reader.join()
    err = b"".join(err_chunks)
    _, status, usage = os.wait4(proc.pid, 0)
    done.set()
    watcher.join()
    proc.returncode = (
        os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") else status
    )
    if proc.returncode != 0:
        raise RuntimeError(
            "%s failed (%s): %s" % (cmd, proc.returncode, err.decode(errors="replace")[-2000:])
        )
    result = json.loads(out.decode().strip().splitlines()[-1])
    own = result.get("vmhwm") or (max(hwm) if hwm else None)
    cpu = result.get("cpu", usage.ru_utime + usage.ru_stime)
    return result, own if own is not None else usage.ru_maxrss / 1024.0, cpu


def python_child(name: str, *args: str) -> List[str]:
    return pinned(0) + [sys.executable, os.path.abspath(__file__), "child", name, *args]


def curl_download(url: str, path: str) -> List[str]:
    return pinned(0) + [
        "curl",
        "-s",
        "-o",
        path,
        "-w",
        '{"seconds": %{time_total}, "bytes": %{size_download}, "status": %{http_code}}\\n',
        url,
    ]


def curl_upload(url: str, path: str) -> List[str]:
    return pinned(0) + [
        "curl",
        "-s",
        "-o",
        "/dev/null",
        "-F",
        "k=v",
        "-F",
        "file=@" + path,
        "-H",
        "Expect:",
        "-w",
        '{"seconds": %{time_total}, "bytes": %{size_upload}, "status": %{http_code}}\\n',
        url,
    ]


def run_rounds(
    results: Results,
    title: str,
    contenders: List[Tuple[str, Any]],
    rounds: int,
    size: int,
    baseline: str,
    env: Dict[str, str],
    goals: Dict[str, List[Goal]],
    cleanup: Optional[str] = None,
) -> None:
    samples: Dict[str, List[Tuple[float, float, float]]] = {name: [] for name, _ in contenders}
    for index in range(rounds):
        order = contenders[index % len(contenders) :] + contenders[: index % len(contenders)]
        for name, command in order:
            if hasattr(os, "sync"):
                os.sync()  # the previous contender's writeback does not slow this one
            result, rss, cpu = measure(command(), env)
            if cleanup and os.path.exists(cleanup):
                os.unlink(cleanup)
            assert result["status"] == 200, (name, result)
            if "download" in title.lower():
                assert int(result["bytes"]) == size, (name, result)
            samples[name].append((size / MiB / float(result["seconds"]), rss, cpu / size * MiB))
    pinning = SPLIT if pinned(0) else UNPINNED
    rows = results.workload(title, "MiB/s", peer=baseline, pinning=pinning)
    for name, _ in contenders:
        rates = [r[0] for r in samples[name]]
        rss = statistics.median(r[1] for r in samples[name])
        cpu = statistics.median(r[2] for r in samples[name]) * 1e6
        if name.startswith("ft."):  # ft.downloadFile, ft.uploadFile
            rows.ours(
                name,
                NO_STYLE,
                rates,
                goals=goals.get(name, ()),
                peak_rss_mib=rss,
                client_cpu_us_per_mib=cpu,
            )
        else:
            rows.peer(name, NO_STYLE, rates, peak_rss_mib=rss, client_cpu_us_per_mib=cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--download-mib", type=int, default=1024)
    parser.add_argument("--upload-mib", type=int, default=256)
    parser.add_argument(
        "--dest-dir",
        default="/tmp",
        help="where the work files go (default /tmp; /dev/shm takes the disk out)",
    )
    add_arguments(parser)
    args = parser.parse_args()
    if args.quick:
        args.rounds = min(args.rounds, 3)
        args.download_mib, args.upload_mib = min(args.download_mib, 64), min(args.upload_mib, 32)
    results = Results("files", "Files", quick=args.quick)

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [ROOT, os.path.join(ROOT, "plugins"), env.get("PYTHONPATH", "")]
    )
    workdir = tempfile.mkdtemp(prefix="ftcore-bench-", dir=args.dest_dir)
    procs: List[subprocess.Popen] = []
    try:
        root = os.path.join(workdir, "www")
        os.makedirs(root)
        big = os.path.join(root, "big.bin")
        with open(big, "wb") as handle:  # generated, not sparse: nginx sends it with sendfile
            block = os.urandom(MiB)
            for _ in range(args.download_mib):
                handle.write(block)
        upload_dir = os.path.join(workdir, "up")
        os.makedirs(upload_dir)
        upload_file = os.path.join(upload_dir, "upload.bin")
        with open(upload_file, "wb") as handle:
            block = os.urandom(MiB)
            for _ in range(args.upload_mib):
                handle.write(block)
        server, base_url, kind = start_static_server(root, workdir)
        procs.append(server)
        sink_port = free_port()
        sink = subprocess.Popen(
            server_pin() + [sys.executable, os.path.abspath(__file__), "sink", str(sink_port)],
            env=env,
        )
        procs.append(sink)
        if not wait_listening(sink_port):
            raise SystemExit("the upload sink did not start")
        sink_url = "http://127.0.0.1:%d/upload" % sink_port
        url = base_url + "/big.bin"
        dest = os.path.join(workdir, "dest.bin")
        print(
            "python %s, %s; contenders pinned with %s; download server: %s; "
            "upload sink: Python recv_into"
            % (
                sys.version.split()[0],
                os.uname().machine,
                " ".join(pinned(0)) or "(no taskset)",
                kind,
            )
        )
        print("files in %s" % workdir)
        print("cpus: %d; servers pinned with %s" % (os.cpu_count() or 0, " ".join(server_pin())))
        results.notes["download server"] = kind
        results.notes["upload server"] = "Python recv_into"
        run_rounds(
            results,
            "download %d MiB" % args.download_mib,
            [
                ("ft.downloadFile", lambda: python_child("ft.downloadFile", url, dest, workdir)),
                ("curl -o", lambda: curl_download(url, dest)),
                (
                    "urllib3 stream 64K",
                    lambda: python_child("urllib3 stream 64K", url, dest, workdir),
                ),
                (
                    "http.client readinto",
                    lambda: python_child("http.client readinto", url, dest, workdir),
                ),
            ],
            args.rounds,
            args.download_mib * MiB,
            "http.client readinto",
            env,
            {"ft.downloadFile": [Goal("http.client readinto", ratio=1.0)]},  # issue 15: keep
            cleanup=dest,
        )
        run_rounds(
            results,
            "upload %d MiB, multipart/form-data" % args.upload_mib,
            [
                (
                    "ft.uploadFile",
                    lambda: python_child("ft.uploadFile", sink_url, upload_file, workdir),
                ),
                ("curl -F", lambda: curl_upload(sink_url, upload_file)),
                (
                    "urllib3 streamed upload",
                    lambda: python_child("urllib3 streamed upload", sink_url, upload_file, workdir),
                ),
                (
                    "requests (buffers)",
                    lambda: python_child("requests (buffers)", sink_url, upload_file, workdir),
                ),
            ],
            args.rounds,
            args.upload_mib * MiB,
            "urllib3 streamed upload",
            env,
            {"ft.uploadFile": [Goal("urllib3 streamed upload", ratio=1.3)]},  # issue 15: keep
        )
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)
    results.print()
    results.write(args.json)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        run_child(sys.argv[2], sys.argv[3:])
    elif len(sys.argv) > 1 and sys.argv[1] == "sink":
        sink_server(int(sys.argv[2]))
    else:
        main()
