"""Use cases: what memorymesh does, expressed against ports."""
