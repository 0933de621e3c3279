"""Report renderers: each turns a summary dict into one format."""
