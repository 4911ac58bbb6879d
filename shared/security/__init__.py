"""Who may do what: senders of events (:mod:`.senders`) and users of the HTTP APIs (:mod:`.access`)."""
