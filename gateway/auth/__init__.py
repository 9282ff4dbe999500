"""Who is calling (JWT), what they may see (SenSeeAct's access rule), and access grants."""
