"""A todo's output kept: each attempt's log on its way in, coord logs reading it, mask_env."""
