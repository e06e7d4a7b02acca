"""The lowest layer: settings, the database engine and the error hierarchy."""
