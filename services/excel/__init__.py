"""Excel processor: `.xlsx` uploads -> sheet/row records, read in streaming mode with limits."""
