"""`python -m hookflow_executor`."""

from hookflow_executor.main import main

main()
