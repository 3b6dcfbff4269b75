"""Python client of the ML platform; the `mlp` command is built on it.

from mlp_client import Client
client = Client()                      # MLP_URL/MLP_TOKEN, a profile, or MLFLOW_TRACKING_*
client.runs.search("churn/Default", filter="metrics.auc > 0.8").to_pandas()
"""

__version__ = "0.1.0"

from mlp_client.client import Client  # noqa: E402
from mlp_client.errors import Failed, MlpError, NotFound, Refused, TimedOut, UsageError  # noqa: E402
from mlp_client.tables import Record, Table  # noqa: E402

__all__ = ["Client", "Failed", "MlpError", "NotFound", "Record", "Refused", "Table", "TimedOut", "UsageError"]
