"""What the gateway, the executor and the config API all need: contracts, adapters, settings."""
