"""Configuration: the settings (settings.py), the routes (routes.py), the TOML file that may set
both (file.py), and the effective configuration as `config show` prints it (effective.py)."""
