"""The pytest plugins: options, markers, fixtures and failure reports."""
