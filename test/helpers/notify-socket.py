# A stand-in for systemd's notification socket (sd_notify(3)): binds an AF_UNIX datagram socket
# at argv[1] and prints each message it receives as one JSON line: when (ms since the epoch), the
# sender's process id (SCM_CREDENTIALS, as systemd reads it) and the message's fields.
import json
import socket
import struct
import sys
import time

path = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind(path)
print(json.dumps({"listening": path}), flush=True)
creds = struct.calcsize("3i")
while True:
    data, ancillary, _flags, _addr = s.recvmsg(65536, socket.CMSG_SPACE(creds))
    pid = None
    for level, kind, value in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid = struct.unpack("3i", value[:creds])[0]
    fields = [f for f in data.decode("utf-8", "replace").split("\n") if f]
    print(json.dumps({"t": time.time() * 1000, "pid": pid, "fields": fields}), flush=True)
