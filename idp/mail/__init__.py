"""Mail: messages rendered from templates (text and HTML), queued in the transaction of
the action that sends them (the outbox), and delivered by a background worker."""
