"""Privacy rules: what is removed from free text before it is stored, classified or logged."""
