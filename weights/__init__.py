"""Model registry (registry.toml) and bundled weight files, installed as deblur_cli.registry."""
