"""`python -m hookflow_config_api`."""

from hookflow_config_api.main import main

main()
