"""The config API: the admins' REST API over workflows, their triggers and executions."""
