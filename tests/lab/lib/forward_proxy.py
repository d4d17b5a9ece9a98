"""A small HTTP forward proxy for lab namespaces that have no way out.

It binds ADDRESS:PORT inside network namespace NETNS, then connects out from the namespace
it was started in, and forwards GET/HEAD only to the allowed HOSTs. With --cache-dir,
immutable files (*.deb and /by-hash/ paths) are kept on disk by host and path, and served
from there on later requests; index files (InRelease, Packages, ...) always go upstream.

    forward_proxy.py [--cache-dir DIR] NETNS ADDRESS PORT HOST...
"""

import argparse
import ctypes
import http.client
import os
import socketserver
import sys
import tempfile
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import urlsplit

CLONE_NEWNET = 0x40000000
HOP = {"connection", "keep-alive", "proxy-connection", "proxy-authorization", "te", "trailers", "upgrade"}
# Headers that would make the upstream answer something other than the whole file.
PARTIAL = {"range", "if-range", "if-modified-since", "if-none-match", "if-match", "if-unmodified-since"}
CHUNK = 65536


def setns(fd):
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        sys.exit(f"setns: errno {ctypes.get_errno()}")


def cacheable(path):
    return path.endswith(".deb") or "/by-hash/" in path


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    hosts: frozenset = frozenset()
    cache_dir: str | None = None

    def log_message(self, format, *args):
        sys.stderr.write("%s\n" % (format % args))

    def cache_path(self, host, path):
        if not self.cache_dir or not cacheable(path):
            return None
        parts = [p for p in path.split("/") if p]
        if any(p in {".", ".."} for p in parts):
            return None
        return os.path.join(self.cache_dir, host, *parts)

    def serve_cached(self, file, body):
        try:
            f = open(file, "rb")
        except OSError:
            return False
        with f:
            size = os.fstat(f.fileno()).st_size
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(size))
            self.send_header("X-Cache", "HIT")
            self.end_headers()
            self.log_message("cache hit %s", file)
            if body:
                while chunk := f.read(CHUNK):
                    self.wfile.write(chunk)
        return True

    def relay(self, body):
        url = urlsplit(self.path)
        if url.scheme != "http" or url.hostname not in self.hosts:
            self.send_error(403, "only http to %s" % " ".join(sorted(self.hosts)))
            return
        file = None if url.query else self.cache_path(url.hostname, url.path)
        if file and self.serve_cached(file, body):
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
        if file:
            headers = {k: v for k, v in headers.items() if k.lower() not in PARTIAL}
        path = url.path + ("?" + url.query if url.query else "")
        try:
            conn = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=60)
            conn.request(self.command, path, headers=headers)
            resp = conn.getresponse()
        except OSError as exc:
            self.send_error(502, f"{url.hostname}: {exc}")
            return
        try:
            self.forward(resp, body, file if resp.status == 200 and body else None)
        finally:
            conn.close()

    def forward(self, resp, body, file):
        self.send_response(resp.status, resp.reason)
        length = resp.getheader("Content-Length")
        for k, v in resp.getheaders():
            if k.lower() not in HOP and k.lower() != "transfer-encoding":
                self.send_header(k, v)
        if file:
            self.send_header("X-Cache", "MISS")
        if length is None and body:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if not body:
            return
        tmp = None
        if file:
            os.makedirs(os.path.dirname(file), exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=os.path.dirname(file), prefix=".part.")
            out = os.fdopen(fd, "wb")
        written = 0
        try:
            while chunk := resp.read(CHUNK):
                self.wfile.write(chunk)
                if tmp:
                    out.write(chunk)
                written += len(chunk)
            if tmp:
                out.close()
                if length is not None and written == int(length):
                    os.rename(tmp, file)
                    tmp = None
                    self.log_message("cached %s", file)
        finally:
            if tmp:
                out.close()
                os.unlink(tmp)

    def do_GET(self):
        self.relay(True)

    def do_HEAD(self):
        self.relay(False)


class Server(socketserver.ThreadingMixIn, HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", help="keep *.deb and /by-hash/ files here")
    parser.add_argument("netns", help="network namespace (name in /run/netns) to listen in")
    parser.add_argument("address")
    parser.add_argument("port", type=int)
    parser.add_argument("hosts", nargs="+", help="upstream hosts allowed (a word list is split)")
    args = parser.parse_args()

    Handler.hosts = frozenset(h for word in args.hosts for h in word.split())
    if args.cache_dir:
        os.makedirs(args.cache_dir, exist_ok=True)
        Handler.cache_dir = os.path.abspath(args.cache_dir)
    # Listen in the lab namespace; the threads that serve requests start from this one,
    # back in the original namespace, and so connect out from there.
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    setns(os.open("/run/netns/" + args.netns, os.O_RDONLY))
    server = Server((args.address, args.port), Handler)
    setns(home)
    sys.stderr.write(f"forward proxy on {args.address}:{args.port} in {args.netns}, cache {args.cache_dir}\n")
    server.serve_forever()


if __name__ == "__main__":
    main()
