"""Operations: one module per verb family; values in, results out, never printing."""
