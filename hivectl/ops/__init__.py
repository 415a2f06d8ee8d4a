"""Operations: one module per verb group. They return data and plans; they never print."""
