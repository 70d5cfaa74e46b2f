"""pytest glue: the `daemons` fixture (see mxb.py) and tool checks."""
import os
import shutil
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import mxb  # noqa: E402

# Daemons started as root without options { user } refuse to run
# (docs/hardening.md); the tests run as root in CI and start them that way.
# test_privileges.py clears this to show the refusal and the drop.
os.environ.setdefault("MXB_ALLOW_ROOT", "1")


def pytest_configure(config):
    # tests/tools/run-integration.sh runs the suite in two passes: everything
    # else spread over pytest-xdist workers, then the tests marked serial one
    # at a time with nothing else running (docs/testing.md).
    config.addinivalue_line(
        "markers", "serial: run alone, not beside other tests (a timing bound that is "
                   "a product claim, or fixed ports): -m serial without -n")


@pytest.fixture
def daemons(tmp_path):
    """Start daemons with daemons.start()/daemons.mxbroker(); all stopped after."""
    d = mxb.Daemons(tmp_path)
    yield d
    d.stop_all()


def require_tool(name):
    """A tool the test needs: missing is a loud failure, never a skip."""
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin")
    assert path, f"{name} is not installed: run 'make deps' (as root)"
    return path
