"""The HubConnection actor (one per hub) and the print job state machine."""

from ensemble.actors.hubs import _jobs as job_states
from ensemble.actors.hubs._hub import (
    CLOSE_HUB_RELEASED,
    CLOSE_HUB_REPLACED,
    CLOSE_HUB_SILENT,
    DASHBOARD_KIND,
    HUB_KIND,
    HubConnection,
)
from ensemble.actors.hubs._views import dashboard_hub, dashboard_job, dashboard_printer

__all__ = [
    "CLOSE_HUB_RELEASED",
    "CLOSE_HUB_REPLACED",
    "CLOSE_HUB_SILENT",
    "DASHBOARD_KIND",
    "HUB_KIND",
    "HubConnection",
    "dashboard_hub",
    "dashboard_job",
    "dashboard_printer",
    "job_states",
]
