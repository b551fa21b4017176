"""Sub-commands of `vopd`; each module exposes `register(subparsers)`."""
