"""The document batch runner: pages from files, sent through the gateway, resumable."""
