"""The built-in domains, one package each: its settings (the stream kind), its model and its
output schemas. A domain imports the engine's shared modules, never another domain."""
