"""QEMU device kinds, one module each; ``base`` says what a kind answers, ``registry`` finds them."""
