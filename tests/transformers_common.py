"""transformers' own common test modules (ModelTesterMixin, ConfigTester), imported from the source distribution
that `tests/fetch_transformers_tests.py` unpacks into a cache outside this repository.

The distribution's `tests/` folder and `transformers_standins/` together form one package path, so the relative
imports of the common modules resolve: to the distribution's file where it has one, else to a stand-in.
"""

import importlib
import os
import sys
import types
from pathlib import Path

import pytest
from fetch_transformers_tests import tests_dir

PACKAGE = "transformers_common_tests"
STANDINS = Path(__file__).resolve().parent / "transformers_standins"


def import_common(module: str):
    """`transformers_common_tests.<module>`, or a skip (a failure with MACRL_REQUIRE_TRANSFORMERS_TESTS=1, as CI
    sets) when the distribution's tests have not been fetched."""
    folder = tests_dir()
    if not (folder / "test_modeling_common.py").exists():
        reason = (f"transformers' common tests are not at {folder}: run `python tests/fetch_transformers_tests.py` "
                  "(or set MACRL_TRANSFORMERS_TESTS_DIR)")
        if os.environ.get("MACRL_REQUIRE_TRANSFORMERS_TESTS") == "1":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason, allow_module_level=True)
    if PACKAGE not in sys.modules:
        package = types.ModuleType(PACKAGE)
        package.__path__ = [str(folder), str(STANDINS)]
        sys.modules[PACKAGE] = package
    return importlib.import_module(f"{PACKAGE}.{module}")
