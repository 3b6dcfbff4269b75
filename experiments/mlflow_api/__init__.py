"""The MLflow-compatible REST API: a thin adapter that speaks MLflow's wire format
(request fields, response shapes, error codes) over our services and selectors."""
