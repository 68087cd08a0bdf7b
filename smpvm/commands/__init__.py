"""One module per ``smpvm`` subcommand; each defines ``command``."""
