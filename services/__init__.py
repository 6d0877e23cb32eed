"""Hookflow: webhook-triggered workflows.

The package joins the design card's layout: hookflow.gateway (services/gateway),
hookflow.executor (services/executor), hookflow.config_api (services/config-api) and
hookflow.shared (shared/); hookflow.cli is the `hookflow` command.
"""
