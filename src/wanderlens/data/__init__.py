"""Foundation data layer: manifest schema, synthetic sample, ingestion with quarantine, importers."""
