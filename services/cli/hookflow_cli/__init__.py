"""Hookflow: webhook-triggered workflows.

The package joins the design card's layout: hookflow_gateway (services/gateway),
hookflow_executor (services/executor), hookflow_config_api (services/config-api) and
hookflow_shared (shared/); hookflow_cli is the `hookflow` command.
"""
