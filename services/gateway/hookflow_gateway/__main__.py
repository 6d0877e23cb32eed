"""`python -m hookflow_gateway`."""

from hookflow_gateway.main import main

main()
