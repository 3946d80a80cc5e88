#!/usr/bin/env python3
"""Opens a few loopback TCP connections in telling states for the demo, prints
one line per connection, then holds them until it is sent SIGTERM or SIGINT.

  healthy      data both ways, all read
  not-reading  the receiver never reads: its Recv-Q grows, then the sender's Send-Q
  backlog      a listener (backlog 2) that never accepts: its accept queue fills
  half-closed  one side closed, the other never calls close(): FIN-WAIT-2 / CLOSE-WAIT

Loopback only. Usage: peers.py [--ready FILE]
"""
import signal
import socket
import sys
import time


def listener(backlog=8):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(backlog)
    return s, s.getsockname()[1]


def main():
    ready = sys.argv[2] if len(sys.argv) > 2 and sys.argv[1] == "--ready" else None
    keep = []
    # healthy
    l, port = listener()
    c = socket.create_connection(("127.0.0.1", port))
    a, _ = l.accept()
    c.sendall(b"ping" * 1000)
    a.recv(65536)
    a.sendall(b"pong" * 1000)
    c.recv(65536)
    keep += [l, c, a]
    print(f"healthy      127.0.0.1:{c.getsockname()[1]} <-> 127.0.0.1:{port}")
    # not reading: fill the receiver until the sender blocks
    l2, port2 = listener()
    c2 = socket.create_connection(("127.0.0.1", port2))
    a2, _ = l2.accept()
    a2.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    c2.setblocking(False)
    sent = 0
    chunk = b"x" * 65536
    deadline = time.time() + 5
    while time.time() < deadline:
        try:
            sent += c2.send(chunk)
        except BlockingIOError:
            time.sleep(0.05)
            try:
                sent += c2.send(chunk)
            except BlockingIOError:
                break
    keep += [l2, c2, a2]
    print(f"not-reading  127.0.0.1:{c2.getsockname()[1]} -> 127.0.0.1:{port2} ({sent} bytes written, none read)")
    # accept queue
    l3, port3 = listener(backlog=2)
    for _ in range(3):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", port3))
        except BlockingIOError:
            pass
        keep.append(s)
    keep.append(l3)
    print(f"backlog      127.0.0.1:{port3} listener with backlog 2, never accepts")
    # half-closed
    l4, port4 = listener()
    c4 = socket.create_connection(("127.0.0.1", port4))
    a4, _ = l4.accept()
    c4.shutdown(socket.SHUT_WR)
    keep += [l4, c4, a4]
    print(f"half-closed  127.0.0.1:{c4.getsockname()[1]} closed its side; 127.0.0.1:{port4} never calls close()")
    sys.stdout.flush()
    if ready:
        with open(ready, "w") as f:
            f.write("ready\n")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            signal.pause()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
