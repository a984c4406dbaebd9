"""Entry points: the HTTP app and the command line. Thin: parse, call a use case, map."""
