#!/usr/bin/env python3
"""The demo's two applications, one per lab host.

  lab_peers.py server          (in host B) listens on 8080, 8081 and 9090:
                               8080 reads everything and answers; 8081 accepts
                               and never reads; 9090 accepts and holds.
  lab_peers.py client ADDR     (in host A) opens one connection to each:
                               8080 a healthy exchange, 8081 writes until
                               blocked, 9090 stays idle (the demo then makes it
                               half-open).

Each prints "ready" once set up, then holds its sockets until SIGTERM.
Traffic stays inside the lab's namespaces.
"""
import signal
import socket
import sys
import threading
import time


def hold():
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        signal.pause()


def server():
    keep = []

    def serve(port, handler):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", port))
        s.listen(8)
        keep.append(s)

        def loop():
            while True:
                c, _ = s.accept()
                keep.append(c)
                threading.Thread(target=handler, args=(c,), daemon=True).start()
        threading.Thread(target=loop, daemon=True).start()

    def echo(c):
        while True:
            data = c.recv(65536)
            if not data:
                return
            c.sendall(b"ok:" + str(len(data)).encode() + b"\n")

    serve(8080, echo)
    serve(8081, lambda c: None)   # accepts, never reads
    serve(9090, lambda c: None)   # accepts, holds
    print("ready", flush=True)
    hold()


def client(addr):
    healthy = socket.create_connection((addr, 8080))
    healthy.sendall(b"x" * 20000)
    got = b""
    while not got.endswith(b"\n"):
        got += healthy.recv(100)
    stuck = socket.create_connection((addr, 8081))
    stuck.setblocking(False)
    idle = 0
    while idle < 5:
        try:
            stuck.send(b"y" * 65536)
            idle = 0
        except BlockingIOError:
            idle += 1
            time.sleep(0.1)
    held = socket.create_connection((addr, 9090))
    print("ready", held.getsockname()[1], flush=True)
    hold()


if __name__ == "__main__":
    if sys.argv[1:2] == ["server"]:
        server()
    elif sys.argv[1:2] == ["client"] and len(sys.argv) == 3:
        client(sys.argv[2])
    else:
        sys.exit("usage: lab_peers.py server | client ADDR")
