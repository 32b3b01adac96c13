"""Subcommands of `edge-sdk`: one module each, with register(subparsers) setting func=handler."""
