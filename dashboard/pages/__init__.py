"""One module per page: its layout (no data) and its callbacks (all data), ids prefixed by the page name."""
