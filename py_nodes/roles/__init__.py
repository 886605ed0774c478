"""Node roles: what a Python node started with ``stellarops node --role ROLE`` runs."""
