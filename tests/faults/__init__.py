"""Fault tests on real processes: the services as `hookflow` subprocesses, a RabbitMQ node of
the test's own, and the helpers that break things and count what came out (see conftest.py)."""
