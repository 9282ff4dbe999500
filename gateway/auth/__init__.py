"""Who is calling and what they may do: JWTs (``tokens``), the principal and its role
(``principal``), users registered on first sight (``users``), and ``access``, where every role,
membership, grant and ownership rule is decided (SenSeeAct's access rule)."""
