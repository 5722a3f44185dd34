"""Coming from LiteLLM: `nemorouter config from-litellm` turns a LiteLLM proxy config into a
nemorouter one (convert.py: models, groups, fallbacks; routes.py: provider prefixes;
settings.py: settings and key limits; cli.py: the command)."""
