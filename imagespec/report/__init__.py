"""Reports: the views commands print, as JSON-able data and as rich text."""
