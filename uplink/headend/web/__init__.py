"""The head-end's read-only web page: fleet, gateway, meter (chart) and anomaly views."""
