"""The contrib/ example plugin's own tests, run by the top-level suite as well
(so CI's ``python -m pytest -q`` covers it without installing it): the test
module loads the plugin with ``--plugin`` from its source directory when the
package is not installed."""

import pathlib
import sys

TESTS = pathlib.Path(__file__).resolve().parents[2] / "contrib" / "pluggy-nats-htpasswd" / "tests"
sys.path.insert(0, str(TESTS))

from test_htpasswd import *  # noqa: E402,F401,F403
