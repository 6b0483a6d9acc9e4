"""Widgets of the app: charts, forms, panels."""
