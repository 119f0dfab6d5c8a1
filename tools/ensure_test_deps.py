"""Installs the system packages the test suite needs (Debian's chromium for the browser tests) when missing.

Runs before pytest in `make test`; a no-op in a second when everything is there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys


def main() -> int:
    if shutil.which("chromium") or os.environ.get("WANDERLENS_SKIP_SYSTEM_DEPS"):
        return 0
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        print("note: chromium missing and cannot be installed here; browser tests will be skipped", file=sys.stderr)
        return 0
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-q"], check=False, env=env, stdout=subprocess.DEVNULL)
    r = subprocess.run(["apt-get", "install", "-y", "-q", "chromium", "chromium-driver"], env=env,
                       stdout=subprocess.DEVNULL)
    if r.returncode != 0:
        print("note: apt-get install chromium failed; browser tests will be skipped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
