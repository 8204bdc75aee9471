"""The channel runtime: settings, migrations, the channel path, the CLI and the composition root."""
