"""The gateway: authenticates and parses webhook calls and queues them on the broker."""
