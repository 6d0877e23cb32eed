"""The executor: consumes accepted webhooks from the broker and runs their workflows."""
