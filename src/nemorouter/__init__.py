"""nemorouter: an OpenAI-compatible LLM gateway for document processing at volume."""

__version__ = "0.1.0"
