#!/usr/bin/python3
"""Minimal QMP client for Kona-CXL scripts (no dependency beyond python3).

    qmp.py SOCKET stats [DEVICE-ID]      print the kona-cxl counters
    qmp.py SOCKET text [DEVICE-ID]       the device's statistics report
    qmp.py SOCKET json '{"execute": ...}' run one command, print its result
    qmp.py SOCKET quit
"""
import json
import socket
import sys


class Qmp:
    def __init__(self, path, timeout=30):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.file = self.sock.makefile("rw")
        self._recv()                      # greeting
        self.cmd("qmp_capabilities")

    def _recv(self):
        while True:
            line = self.file.readline()
            if not line:
                raise ConnectionError("QMP connection closed")
            msg = json.loads(line)
            if "event" not in msg:
                return msg

    def cmd(self, name, **args):
        req = {"execute": name}
        if args:
            req["arguments"] = args
        return self.raw(req)

    def raw(self, req):
        self.file.write(json.dumps(req) + "\n")
        self.file.flush()
        rsp = self._recv()
        if "error" in rsp:
            raise RuntimeError(f"QMP {req.get('execute')}: {rsp['error'].get('desc')}")
        return rsp.get("return")


def kona_stats(qmp, dev="kona0"):
    return qmp.cmd("qom-get", path=f"/machine/peripheral/{dev}", property="stats")


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    qmp = Qmp(argv[1])
    dev = argv[3] if len(argv) > 3 else "kona0"
    if argv[2] == "stats":
        stats = kona_stats(qmp, dev)
        width = max(len(k) for k in stats)
        for key, val in stats.items():
            if not isinstance(val, list):
                print(f"  {key:<{width}}  {val}")
    elif argv[2] == "text":
        print(qmp.cmd("qom-get", path=f"/machine/peripheral/{dev}",
                      property="stats-text"), end="")
    elif argv[2] == "json":
        print(json.dumps(qmp.raw(json.loads(argv[3])), indent=2))
    elif argv[2] == "quit":
        try:
            qmp.cmd("quit")
        except ConnectionError:
            pass
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
