"""Pure rules of conversation memory: no I/O, no clock, no environment."""
