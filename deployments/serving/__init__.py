"""The serving data plane: a lean ASGI app outside Django's request cycle.

Nothing under this package touches the Django ORM on the request path. Configuration
comes from a `ConfigSource` polled in the background, predictions leave through the
prediction-log spool (see predlog.py), so a request costs parsing, one slot in a
micro-batch and one append to a local file."""
