"""Push wake-ups for sleeping devices (SenSeeAct's register-push / unregister-push):
registrations, the FCM and webhook transports, and the dispatcher that pushes after writes."""
