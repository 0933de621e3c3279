"""The cockpit's screens: spec editor, run dashboard, runs list, help, and small dialogs."""
