"""Templates and static files (styles, the chart library, page scripts) for /ui."""
