"""The app's views (one per tab) and its modal screens."""
