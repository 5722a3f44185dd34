"""Deferred jobs: OpenAI's /v1/files and /v1/batches over the providers' batch APIs
(README "Deferred jobs"). `service` answers the endpoints, `poller` drives the batches."""
