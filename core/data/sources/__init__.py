"""Dataset plugins, one module per source family; ``core/data/registry.py`` lists them."""
