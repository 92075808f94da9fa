"""A worker driven by commands on stdin, for tests/emitters/test_control_pipe.py.

Commands (one per line), each answered by one JSON status line on stdout:
  emit N NAME      emit() N events named NAME
  wait SEQ         poll the emitter's controls until it applied state SEQ (10 s deadline)
  status           just the status
  child            run a child (close_fds=False) that says whether it has TELECAP_CONTROL_FD
  rawread          read the control pipe itself (non-blocking) and print its last line
The status counts the events the emitter actually formatted (json.dumps calls), so a test
sees what the controls saved the worker.
"""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, sys.argv[1])
CONTROL_FD = os.environ.get("TELECAP_CONTROL_FD", "")  # the emitter takes it out at import
telecap_emit = None  # imported at the first command that needs it: rawread must come first
formatted = 0


class _CountingJson:
    def __getattr__(self, name):
        return getattr(json, name)

    @staticmethod
    def dumps(*a, **k):
        global formatted
        formatted += 1
        return _dumps(*a, **k)


def load():
    global telecap_emit, _dumps
    if telecap_emit is None:
        import telecap_emit as module  # reads the pipe and starts its reader thread
        telecap_emit = module
        _dumps = json.dumps
        telecap_emit.json = _CountingJson()


def status(**extra):
    if telecap_emit is None:
        print(json.dumps(extra), flush=True)
        return
    c = telecap_emit.controls()
    c["formatted"] = formatted
    c.update(extra)
    print(json.dumps(c), flush=True)


for line in sys.stdin:
    cmd = line.split()
    if not cmd:
        continue
    if cmd[0] != "rawread":
        load()
    if cmd[0] == "emit":
        for i in range(int(cmd[1])):
            telecap_emit.emit(cmd[2], {"duration": i})
        status()
    elif cmd[0] == "wait":
        deadline = time.monotonic() + 10
        while telecap_emit.controls()["seq"] < int(cmd[1]) and time.monotonic() < deadline:
            time.sleep(0.005)
        status()
    elif cmd[0] == "status":
        status()
    elif cmd[0] == "child":
        fd = CONTROL_FD
        r = subprocess.run([sys.executable, "-c",
                            "import os,sys; print(os.path.exists('/proc/self/fd/' + sys.argv[1]),"
                            " 'TELECAP_CONTROL_FD' in os.environ)",
                            fd], close_fds=False, capture_output=True, text=True)
        has_fd, has_env = r.stdout.split()
        status(child_has_fd=has_fd == "True", child_has_env=has_env == "True", fd=fd)
    elif cmd[0] == "rawread":
        fd = int(CONTROL_FD)
        os.set_blocking(fd, False)
        data = b""
        try:
            while True:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                data += chunk
        except BlockingIOError:
            pass
        lines = data.decode().splitlines()
        status(raw_lines=len(lines), last=json.loads(lines[-1]) if lines else None,
               target=os.readlink("/proc/self/fd/%d" % fd))
