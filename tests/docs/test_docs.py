"""The docs hold what they show: README.md, docs/*.md and the emitters' READMEs.

- They are self-contained: no path of a developer's machine or outside the repository, and
  every relative link leads to a file of the repository.
- Every shell block marked runnable (an HTML comment `<!-- runnable -->` on the line before
  its fence) runs with bash -euo pipefail, the built telecap first on PATH, in a temporary
  folder that links the repository's top-level entries (so `examples/...` and `tests/data/...`
  resolve and whatever a command writes lands there), and exits 0.
- Every YAML block is checked with the binary: a run config (it has `pools:`) with
  `telecap run --config FILE --check` when the binary has it, else by starting it until its
  control socket is up (a config error exits 2 before that); a metrics file (`counters:`,
  `histograms:` or `gauges:`) with `telecap metrics --check`. The same for examples/**/*.yaml.
- Every JSON block without an ellipsis parses, one document or one per line.

TELECAP_BIN selects the binary (default build/telecap). Run from the repository root.
"""

import glob
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.abspath(os.environ.get("TELECAP_BIN", os.path.join(ROOT, "build", "telecap")))
DOCS = [os.path.join(ROOT, "README.md"), os.path.join(ROOT, "adapters/emitters/README.md"),
        os.path.join(ROOT, "adapters/emitters/python/README.md")] + \
    sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```\s*$", re.S | re.M)
RUNNABLE = "<!-- runnable -->"


def blocks(path):
    """(language, text, line number, runnable) of each fenced block."""
    text = read(path)
    for m in FENCE.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        before = text[:m.start()].rstrip("\n").rsplit("\n", 1)[-1].strip()
        yield m.group(1), m.group(2), line, before == RUNNABLE


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def where(path, line):
    return f"{os.path.relpath(path, ROOT)}:{line}"


def repo_view():
    """A temporary folder that links every top-level entry of the repository."""
    tmp = tempfile.mkdtemp(prefix="telecap-docs.")
    for name in os.listdir(ROOT):
        if name.startswith(".") or name.startswith("build"):
            continue
        os.symlink(os.path.join(ROOT, name), os.path.join(tmp, name))
    return tmp


def has_check():
    r = subprocess.run([BIN, "run", "--help"], capture_output=True, text=True, timeout=30)
    return "--check" in r.stdout


def check_run_config(path, cwd):
    """None when telecap takes the config, else what it said."""
    if has_check():
        r = subprocess.run([BIN, "run", "--config", path, "--check"], cwd=cwd,
                           capture_output=True, text=True, timeout=60)
        return None if r.returncode == 0 else f"exit {r.returncode}: {r.stderr}"
    # No --check yet: start it. Everything is validated before the control socket listens.
    sock = os.path.join(cwd, ".docs-check.sock")
    err = open(os.path.join(cwd, ".docs-check.err"), "w+")
    p = subprocess.Popen([BIN, "run", "--config", path, "--control", sock, "--grace", "1"],
                         cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=err)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            code = p.poll()
            if code is not None:  # ended before: valid unless a usage or config error
                break
            if os.path.exists(sock):
                p.send_signal(signal.SIGTERM)
                p.wait(timeout=30)
                return None
            time.sleep(0.02)  # polling for the socket or the exit
        else:
            return "neither a control socket nor an exit within 30 s"
        err.seek(0)
        return None if p.returncode != 2 else f"exit 2: {err.read()}"
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        err.close()
        if os.path.exists(sock):
            os.unlink(sock)


def check_yaml(text, cwd):
    """None, or why telecap refuses the YAML (a run config or a metrics file)."""
    # In the repository's view: paths in it (commands, catalogs) are relative to the root,
    # whether telecap reads them from the working folder or from the config's.
    fd, path = tempfile.mkstemp(suffix=".yaml", dir=cwd)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    try:
        if re.search(r"^pools:", text, re.M):
            return check_run_config(path, cwd)
        if re.search(r"^(counters|histograms|gauges):", text, re.M):
            r = subprocess.run([BIN, "metrics", "--check", path], capture_output=True,
                               text=True, timeout=60)
            return None if r.returncode == 0 else f"exit {r.returncode}: {r.stderr}"
        return "neither a run config (pools:) nor a metrics file: say which in the test"
    finally:
        os.unlink(path)


class DocsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.access(BIN, os.X_OK):
            raise unittest.SkipTest(f"no telecap binary at {BIN}")
        cls.view = repo_view()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.view, ignore_errors=True)

    def test_docs_are_self_contained(self):
        outside = re.compile(r"/work/|\.\./shared|shared/reference|/home/\w|/root/|~/")
        link = re.compile(r"\]\(([^)#\s]+)(#[^)\s]*)?\)")
        for doc in DOCS:
            text = read(doc)
            for n, line in enumerate(text.splitlines(), 1):
                with self.subTest(doc=where(doc, n)):
                    self.assertIsNone(outside.search(line), line)
                    for target, _ in link.findall(line):
                        if re.match(r"\w+:", target):  # https:, mailto:
                            continue
                        full = os.path.normpath(os.path.join(os.path.dirname(doc), target))
                        self.assertTrue(full.startswith(ROOT + os.sep) and os.path.exists(full),
                                        f"link to {target}: not a file of the repository")

    def test_terms_are_defined_once_and_linked(self):
        contract = read(os.path.join(ROOT, "docs/contract.md"))
        self.assertEqual(contract.count("\n## Terms\n"), 1)
        for term in ("**Snakepit**", "**Wire name**", "**Catalog**"):
            self.assertEqual(contract.count(term), 1, term)
        readme = read(os.path.join(ROOT, "README.md"))
        self.assertIn("(docs/contract.md#terms)", readme)

    def test_runnable_shell_blocks_run(self):
        ran = 0
        env = dict(os.environ, PATH=os.path.dirname(BIN) + os.pathsep + os.environ["PATH"])
        for doc in DOCS:
            for lang, text, line, runnable in blocks(doc):
                if not runnable:
                    continue
                with self.subTest(block=where(doc, line)):
                    self.assertIn(lang, ("sh", "bash"), "only shell blocks can be runnable")
                    r = subprocess.run(["bash", "-euo", "pipefail", "-c", text], cwd=self.view,
                                       env=env, capture_output=True, text=True, timeout=120)
                    self.assertEqual(r.returncode, 0,
                                     f"{where(doc, line)}:\n{text}\nstdout:\n{r.stdout[-2000:]}"
                                     f"\nstderr:\n{r.stderr[-2000:]}")
                    ran += 1
        self.assertGreater(ran, 0, "no block is marked runnable")

    def test_yaml_examples_validate(self):
        found = 0
        for doc in DOCS:
            for lang, text, line, _ in blocks(doc):
                if lang not in ("yaml", "yml"):
                    continue
                found += 1
                with self.subTest(block=where(doc, line)):
                    problem = check_yaml(text, self.view)
                    self.assertIsNone(problem, f"{where(doc, line)}:\n{text}\n{problem}")
        for path in sorted(glob.glob(os.path.join(ROOT, "examples", "**", "*.yaml"),
                                     recursive=True)):
            found += 1
            with self.subTest(example=os.path.relpath(path, ROOT)):
                # A deployed config's log folder exists on the machine it is deployed to.
                text = read(path).replace("/var/log/telecap", self.view)
                problem = check_yaml(text, self.view)
                self.assertIsNone(problem, f"{os.path.relpath(path, ROOT)}: {problem}")
        self.assertGreaterEqual(found, 3)

    def test_json_examples_parse(self):
        for doc in DOCS:
            for lang, text, line, _ in blocks(doc):
                if lang != "json" or "..." in text:
                    continue
                with self.subTest(block=where(doc, line)):
                    try:
                        json.loads(text)
                    except json.JSONDecodeError:
                        if text.lstrip().startswith('"'):  # a member of a larger object
                            json.loads("{" + text + "}")
                        else:
                            for row in text.strip().splitlines():  # JSON lines
                                json.loads(row)


if __name__ == "__main__":
    unittest.main()
