"""The Textual TUI: app, screens, widgets and the one stylesheet (never imports torch)."""
