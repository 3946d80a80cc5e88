#!/usr/bin/env python3
"""Regenerates the recorded sock_diag dumps used by the parser tests.

Opens a known set of loopback sockets, then records them with the real ss
(`ss -tanim -D FILE`), so the files are byte-for-byte what the kernel sent.
The tests assert the values set up here (ports, queue lengths, byte counts).
Run as: python3 tests/data/make_recordings.py  (any user; loopback only)
"""
import os
import socket
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    keep = []
    # IPv4 listener with 3 connections it never accepts.
    lst = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lst.bind(("127.0.0.1", 45001))
    lst.listen(8)
    keep.append(lst)
    for _ in range(3):
        keep.append(socket.create_connection(("127.0.0.1", 45001)))
    # IPv4 established pair: 12345 bytes written by the client, unread.
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 45002))
    srv.listen(1)
    cli = socket.create_connection(("127.0.0.1", 45002))
    acc, _ = srv.accept()
    cli.sendall(b"x" * 12345)
    keep += [srv, cli, acc]
    # IPv6 pair: 100 bytes unread.
    srv6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    srv6.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv6.bind(("::1", 45003))
    srv6.listen(1)
    cli6 = socket.create_connection(("::1", 45003))
    acc6, _ = srv6.accept()
    cli6.sendall(b"y" * 100)
    keep += [srv6, cli6, acc6]
    time.sleep(0.3)
    flt = "( sport >= :45001 and sport <= :45003 ) or ( dport >= :45001 and dport <= :45003 )"
    subprocess.run(["ss", "-tanim", "-D", os.path.join(HERE, "ss_tani.dump")] + flt.split(), check=True)
    subprocess.run(["ss", "-tan", "-D", os.path.join(HERE, "ss_tan.dump")] + flt.split(), check=True)
    for s in keep:
        s.close()


if __name__ == "__main__":
    main()
