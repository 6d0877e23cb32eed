"""Hookflow: webhook-triggered workflows.

The command joins the services of the layout: hookflow_gateway (services/gateway),
hookflow_executor (services/executor), hookflow_config_api (services/config-api) and
hookflow_shared (shared/); hookflow_cli is the `hookflow` command.
"""
