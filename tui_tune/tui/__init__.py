"""The Textual app. Never imports torch & co: it only reads run directories and config."""
