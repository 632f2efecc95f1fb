"""The demo of ``ensemble serve --demo``: a tenant with people, a hub, printers that print, manuals.

* :func:`seed_demo` creates, once, the "Acme Print & HVAC" tenant (an owner,
  two technicians, a viewer), a claimed hub with three OPC UA printers,
  print files, a few print jobs and the sample manuals; the passwords and the
  hub's secret are kept in ``<data_dir>/demo-credentials.json`` (0600).
* :func:`run_fleet` runs three simulated printers and an in-process hub agent
  connected to the server's own port, plus the director that keeps bay 1
  printing (``_director.py``).
* :func:`run_demo` does both for ``serve()`` and prints the credentials.

See docs/demo.md.
"""

from ensemble.demo._banner import print_credentials
from ensemble.demo._catalog import HUB_NAME, PRINT_FILES, PRINTERS, SIMULATOR_SETTINGS, TENANT_NAME, USERS
from ensemble.demo._credentials import CREDENTIALS_FILE, DemoCredentials, load_credentials, save_credentials
from ensemble.demo._director import DirectorOptions
from ensemble.demo._fleet import DemoFleet, local_origin, run_fleet
from ensemble.demo._jobs import cancel_print_job, describe_hub, submit_print_job
from ensemble.demo._run import DEMO_HUB_STATE_DIR, RunningDemo, run_demo
from ensemble.demo._seed import DemoPrinter, DemoSeed, DemoUser, credentials_path, seed_demo

__all__ = [
    "CREDENTIALS_FILE",
    "DEMO_HUB_STATE_DIR",
    "HUB_NAME",
    "PRINTERS",
    "PRINT_FILES",
    "SIMULATOR_SETTINGS",
    "TENANT_NAME",
    "USERS",
    "DemoCredentials",
    "DemoFleet",
    "DemoPrinter",
    "DemoSeed",
    "DemoUser",
    "DirectorOptions",
    "RunningDemo",
    "cancel_print_job",
    "credentials_path",
    "describe_hub",
    "load_credentials",
    "local_origin",
    "print_credentials",
    "run_demo",
    "run_fleet",
    "save_credentials",
    "seed_demo",
    "submit_print_job",
]
