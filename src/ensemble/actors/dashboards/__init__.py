"""The TenantDashboard actor (one per tenant) and per-connection printer filters."""

from ensemble.actors.dashboards._dashboard import (
    DASHBOARD_KIND,
    PrinterFilter,
    TenantDashboard,
    install_printer_filter,
    newer,
)

__all__ = ["DASHBOARD_KIND", "PrinterFilter", "TenantDashboard", "install_printer_filter", "newer"]
