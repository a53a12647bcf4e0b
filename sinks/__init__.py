"""The built-in sinks: each one module with its settings (the kind) and its sink."""
