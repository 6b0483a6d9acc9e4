"""Screens of the app: runs, editor, presets, monitor, compare, help and dialogs."""
