"""What starts a sweep besides a person: triggers (a push, a command) and plans' schedules."""
