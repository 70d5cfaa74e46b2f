#!/usr/bin/python3
"""poll-responder.py - answer the metric poll protocol for many members at
once (tests/bench/poll.sh): one UDP socket on 0.0.0.0:PORT, IP_PKTINFO to
learn which 127.x.y.z a poll was sent to and to answer from that address
(the poller matches the exact address).  Replies are signed with the
shared key.  Rating of member 127.a.b.c: a fixed value from its address, so
the ranking is stable; addresses listed in the SILENCE file (re-read every
second) get no answer, which is how the benchmark stops a member.

usage: poll-responder.py PORT SECRET_B64 SILENCE_FILE
"""
import base64
import hashlib
import hmac
import os
import socket
import struct
import sys
import time

IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)  # Linux; Python 3.11 lacks the name
HEADER = struct.Struct("!4sBBHI8s")
BODY = struct.Struct("!iiiiIHHIIQQQI")


def main():
    port, secret, silence_path = int(sys.argv[1]), base64.b64decode(sys.argv[2]), sys.argv[3]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
    s.bind(("0.0.0.0", port))
    s.settimeout(0.2)
    silent, checked, answered = set(), 0.0, 0
    while True:
        now = time.monotonic()
        if now - checked >= 1:
            checked = now
            try:
                with open(silence_path) as f:
                    silent = set(f.read().split())
            except OSError:
                silent = set()
        try:
            data, anc, _, peer = s.recvmsg(512, socket.CMSG_SPACE(12))
        except socket.timeout:
            continue
        dst = None
        for level, kind, val in anc:
            if level == socket.IPPROTO_IP and kind == IP_PKTINFO:
                dst = socket.inet_ntoa(val[8:12])
        if dst is None or dst in silent or len(data) < 20:
            continue
        magic, ver, typ, flags, seq, nonce = HEADER.unpack_from(data)
        if magic != b"MXBM" or typ != 1:
            continue
        b = [int(x) for x in dst.split(".")]
        rating = 20000 + (b[2] * 251 + b[3]) * 7919 % 80000
        hdr = HEADER.pack(b"MXBM", 1, 2, 1, seq, nonce)
        body = BODY.pack(rating, 20000, rating - 20000, 0, 1000, 50, 0, 0, 100, 1 << 30, 0,
                         int(time.time() * 1000), 10)
        msg = hdr + body
        msg += hmac.new(secret, msg, hashlib.sha256).digest()
        pktinfo = struct.pack("@i4s4s", 0, socket.inet_aton(dst), socket.inet_aton(dst))
        s.sendmsg([msg], [(socket.IPPROTO_IP, IP_PKTINFO, pktinfo)], 0, peer)
        answered += 1


if __name__ == "__main__":
    main()
