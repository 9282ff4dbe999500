"""Push wake-ups for sleeping devices (the seed's register-push / unregister-push)."""
