"""What a sweep tells the world: webhook notifications, their outbox and deliveries, milestones, overdue todos."""
