"""The ecommerce domain."""
