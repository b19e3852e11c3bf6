"""Prefect flows: thin orchestration over rmcore; tasks pass paths and small summaries."""

import os

# A flow run without PREFECT_API_URL starts a temporary Prefect server, which sends usage telemetry
# and, on a machine without internet access, logs an ERROR on every run. Off unless the user sets
# the variable; set here, before any flow module imports prefect, so the server process inherits it.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# MLflow draws a progress bar for every artifact download (the champion, each logged model), which
# in a flow run's log is a line of carriage returns; off unless the user sets the variable.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
