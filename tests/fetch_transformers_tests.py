"""Fetch transformers' common model tests (tests/test_modeling_common.py, tests/test_configuration_common.py, ...)
for the installed transformers version, from its source distribution on the package registry.

    python tests/fetch_transformers_tests.py          # prints the folder; tests/test_transformers_common.py uses it

The test modules are not in transformers' wheel. They are unpacked into a cache outside this repository
(`$MACRL_TRANSFORMERS_TESTS_DIR`, default `~/.cache/macrl-hf/transformers-<version>-tests`); nothing of them is
copied into the repository. A second run finds the cache and downloads nothing.
"""

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path


def tests_dir(version: str | None = None) -> Path:
    if version is None:
        import transformers

        version = transformers.__version__
    default = Path.home() / ".cache" / "macrl-hf" / f"transformers-{version}-tests"
    return Path(os.environ.get("MACRL_TRANSFORMERS_TESTS_DIR", default))


def fetch(version: str | None = None) -> Path:
    target = tests_dir(version)
    if (target / "test_modeling_common.py").exists():
        return target
    if version is None:
        import transformers

        version = transformers.__version__
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", f"transformers=={version}", "--no-binary", ":all:",
                        "--no-deps", "-q", "-d", tmp], check=True)
        archive = next(Path(tmp).glob("transformers-*.tar.gz"))
        with tarfile.open(archive) as tar:
            members = [m for m in tar.getmembers() if m.name.split("/")[1:2] == ["tests"] and m.isfile()]
            tar.extractall(tmp, members=members, filter="data")
        source = Path(tmp) / f"transformers-{version}" / "tests"
        if not (source / "test_modeling_common.py").exists():
            sys.exit(f"transformers {version}'s source distribution has no tests/test_modeling_common.py")
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.with_name(target.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(source, staging)
        # The common modules import their own folder as a package (direct_transformers_import(".../__init__.py")),
        # and the distribution ships no tests/__init__.py: add an empty one.
        (staging / "__init__.py").touch()
        staging.replace(target)  # a complete folder or none: an interrupted fetch leaves no half cache
    return target


if __name__ == "__main__":
    print(fetch(sys.argv[1] if len(sys.argv) > 1 else None))
