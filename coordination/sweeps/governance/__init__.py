"""Who may let a sweep go on: gates, their votes and decisions, forge reviews, the freeze, steering's audit log, who holds what."""
