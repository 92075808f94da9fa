"""scripts/check_layers against a copy of the tree: it passes on the tree as it is and fails, with
file:line and the two folders, on each kind of bad include or bad table.

    python3 -m unittest -v tests/layers/test_check_layers.py   (from the source tree)
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SCRIPT = os.path.join(REPO, "scripts", "check_layers")
DOC = os.path.join("docs", "architecture.md")


class CheckLayers(unittest.TestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="telecap-layers.")
        self.addCleanup(shutil.rmtree, self.root)
        os.makedirs(os.path.join(self.root, "docs"))
        shutil.copy(os.path.join(REPO, DOC), os.path.join(self.root, DOC))
        with open(os.path.join(REPO, DOC), encoding="utf-8") as f:
            table = f.read().split("<!-- layers:begin -->")[1].split("<!-- layers:end -->")[0]
        # The folders the table names (the checked ones and the others), as they are.
        for folder in re.findall(r"^\| ([^|]+) \|", table, re.M):
            for name in re.findall(r"`([^`]+)`", folder):
                src = os.path.join(REPO, name)
                if os.path.isdir(src) and name not in ("tests", "bench", "fuzz", "examples"):
                    shutil.copytree(src, os.path.join(self.root, name), symlinks=True)

    def run_check(self):
        r = subprocess.run([sys.executable, SCRIPT, "--root", self.root],
                           capture_output=True, text=True, timeout=60)
        return r.returncode, r.stdout + r.stderr

    def append(self, rel, text):
        path = os.path.join(self.root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "a", encoding="utf-8") as f:
            f.write(text)
        with open(path, encoding="utf-8") as f:
            return sum(1 for _ in f)  # the line just written

    def edit_doc(self, old, new):
        path = os.path.join(self.root, DOC)
        with open(path, encoding="utf-8") as f:
            text = f.read()
        self.assertIn(old, text)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text.replace(old, new, 1))

    def test_the_tree_passes(self):
        rc, out = self.run_check()
        self.assertEqual(rc, 0, out)
        self.assertIn("check_layers: ok", out)

    def test_a_lower_folder_including_a_higher_one_fails(self):
        line = self.append("core/log.hpp", '#include "telecap/capture/event.hpp"\n')
        rc, out = self.run_check()
        self.assertEqual(rc, 1, out)
        self.assertIn(f"core/log.hpp:{line}: core may not include capture (capture/event.hpp)",
                      out)

    def test_a_header_outside_the_allowed_ones_fails(self):
        line = self.append("io/rejects_writer.cpp", '#include "capture/pipeline.hpp"\n')
        rc, out = self.run_check()
        self.assertEqual(rc, 1, out)
        self.assertIn(f"io/rejects_writer.cpp:{line}: io may not include capture "
                      "(capture/pipeline.hpp); from capture only", out)

    def test_angle_brackets_and_capture_spawn(self):
        line = self.append("capture/event.cpp", "#include <telecap/spawn/spawner.hpp>\n")
        rc, out = self.run_check()
        self.assertEqual(rc, 1, out)
        self.assertIn(f"capture/event.cpp:{line}: capture may not include spawn", out)

    def test_the_emitters_stand_alone(self):
        line = self.append("adapters/emitters/c/telecap_emit.h", '#include "core/result.hpp"\n')
        rc, out = self.run_check()
        self.assertEqual(rc, 1, out)
        self.assertIn(f"adapters/emitters/c/telecap_emit.h:{line}: adapters may not include "
                      "core", out)

    def test_third_party_and_sibling_includes_pass(self):
        self.append("core/log.cpp", '#include "spdlog/spdlog.h"\n#include "log.hpp"\n'
                    '#include "telecap/version.hpp"\n')
        rc, out = self.run_check()
        self.assertEqual(rc, 0, out)

    def test_a_folder_without_a_row_fails(self):
        self.append("grpc/server.cpp", '#include "core/log.hpp"\n')
        rc, out = self.run_check()
        self.assertEqual(rc, 1, out)
        self.assertIn("grpc/: a folder of C/C++ files with no row", out)

    def test_a_table_with_a_cycle_fails(self):
        self.edit_doc("| `capture` | `core` |", "| `capture` | `core`, `dispatch` |")
        rc, out = self.run_check()
        self.assertEqual(rc, 1, out)
        self.assertIn("the table allows a cycle: capture -> dispatch -> capture", out)

    def test_no_table_fails(self):
        self.edit_doc("<!-- layers:begin -->", "")
        rc, out = self.run_check()
        self.assertEqual(rc, 1, out)
        self.assertIn("no layering table", out)


if __name__ == "__main__":
    unittest.main()
