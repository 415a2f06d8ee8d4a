"""Switch types, one module each; see ``base`` for what a type answers and ``registry`` for the list."""
