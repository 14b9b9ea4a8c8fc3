"""The append-only audit log: who saw which reports' free text, and who changed what."""
